//! What every `main.rs` calls: logging, the cold-start state, and the Lambda loop.

use std::future::Future;

use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use lambda_http::{service_fn, Body, Error, Request, Response};
use lambda_runtime::LambdaEvent;
use serde::Deserialize;

use crate::adapters::dynamo::codec::MAIL_JOB_KIND;
use crate::adapters::dynamo::DynamoStore;
use crate::adapters::hub_cache::HubCache;
use crate::adapters::keys::read_secret;
use crate::adapters::ses::SesMailer;
use crate::app::App;
use crate::config::Config;
use crate::domain::jwt::KeySet;
use crate::edge;
use crate::handlers::mailer::{self, MailerApp, MailerStore};
use crate::handlers::ses_events;
use crate::metrics;
use crate::ports::{Mailer, Suppressions};
use crate::routes::RouteFn;

/// JSON logs, one object per line, level from `LOG_LEVEL` (`error`, `warn`, `info`,
/// `debug`; default `info`). The level is clamped: this crate logs at most `debug` (it
/// has no `trace` events, and `trace` must not become a way to log bodies or headers),
/// and every other crate (the AWS SDK, hyper, the Lambda runtime, which log request and
/// response payloads at debug/trace) at most `info`. A `Targets` filter, not an
/// `EnvFilter`: per-target directives would link a regex engine into every function.
pub fn init_tracing() {
    use tracing_subscriber::filter::LevelFilter;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let level = std::env::var("LOG_LEVEL")
        .ok()
        .and_then(|v| v.trim().parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let _ = tracing_subscriber::fmt()
        .json()
        .with_max_level(level.min(LevelFilter::DEBUG))
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_ansi(false)
        .finish()
        .with(log_filter(level))
        .try_init();
}

/// The clamp `init_tracing` applies (see there).
pub fn log_filter(
    level: tracing_subscriber::filter::LevelFilter,
) -> tracing_subscriber::filter::Targets {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    Targets::new()
        .with_target("contact_auth", level.min(LevelFilter::DEBUG))
        .with_default(level.min(LevelFilter::INFO))
}

/// A store a function can be built with: `()` (none), the table, or the table behind
/// the hub cache. `from_env` is what a function's cold start runs; `from_store` is how
/// tests and tools build the same type around a table they made.
pub trait StoreDep: Sized + Send + Sync + 'static {
    fn from_env(config: &Config) -> impl Future<Output = Self> + Send;
    fn from_store(store: DynamoStore, config: &Config) -> Self;
}

impl StoreDep for () {
    async fn from_env(_: &Config) -> Self {}
    fn from_store(_: DynamoStore, _: &Config) -> Self {}
}

impl StoreDep for DynamoStore {
    async fn from_env(config: &Config) -> Self {
        DynamoStore::from_env(&config.table_name).await
    }
    fn from_store(store: DynamoStore, _: &Config) -> Self {
        store
    }
}

impl StoreDep for HubCache<DynamoStore> {
    async fn from_env(config: &Config) -> Self {
        HubCache::new(
            DynamoStore::from_env(&config.table_name).await,
            config.hub_cache_ttl,
        )
    }
    fn from_store(store: DynamoStore, config: &Config) -> Self {
        HubCache::new(store, config.hub_cache_ttl)
    }
}

/// Signing keys a function can be built with: `()` (none) or the key set. `refresh`
/// runs before each request or batch: a warm function rereads the secret when its copy
/// is `SIGNING_KEY_REFRESH_SECONDS` old, so a rotation reaches it within that bound.
pub trait KeysDep: Sized + Send + Sync + 'static {
    fn from_env(config: &Config) -> impl Future<Output = Result<Self, Error>> + Send;
    fn from_keys(keys: KeySet) -> Self;
    fn refresh(&self, config: &Config) -> impl Future<Output = ()> + Send;
}

impl KeysDep for () {
    async fn from_env(_: &Config) -> Result<Self, Error> {
        Ok(())
    }
    fn from_keys(_: KeySet) -> Self {}
    async fn refresh(&self, _: &Config) {}
}

impl KeysDep for KeySet {
    async fn from_env(config: &Config) -> Result<Self, Error> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        Ok(KeySet::loaded(
            &read_secret().await?,
            config.access_token_alg,
            now,
        )?)
    }
    fn from_keys(keys: KeySet) -> Self {
        keys
    }
    /// A failed read or an unusable new version keeps the keys in use (and says so in
    /// the log); the next try is one interval later.
    async fn refresh(&self, config: &Config) {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if !self.due(now, config.signing_key_refresh) {
            return;
        }
        match read_secret().await.and_then(|json| self.reread(&json)) {
            Ok(Some(kids)) => tracing::info!(kids = ?kids, "signing keys reloaded: a rotation"),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "the signing secret could not be reread or is unusable; the keys read before stay in use")
            }
        }
    }
}

/// Serves one request of `R`'s route through the edge (request id, CORS, method check,
/// error mapping, one log line).
pub async fn serve_route<R: RouteFn>(app: &App<R::Store, R::Keys>, req: Request) -> Response<Body> {
    edge::serve(
        &app.config,
        R::ROUTE.function(),
        R::ROUTE.method(),
        &R::ROUTE.path_methods(),
        req,
        |req, meta| R::call(app, req, meta),
    )
    .await
}

/// An HTTP function's whole `main`: logging, the cold-start state `R` needs (and nothing
/// else), then the Lambda loop. Every `main` runs on tokio's current-thread runtime: an
/// instance serves one request at a time, so worker threads would only cost init time
/// (about 1.5 ms here, README "Performance").
pub async fn serve_http<R: RouteFn>() -> Result<(), Error> {
    init_tracing();
    let config = Config::from_env()?;
    let store = R::Store::from_env(&config).await;
    let keys = R::Keys::from_env(&config).await?;
    let app = App::new(config).with_store(store).with_keys(keys);
    let app = &app;
    lambda_http::run(service_fn(move |req: Request| async move {
        app.keys.refresh(&app.config).await;
        Ok::<_, Error>(serve_route::<R>(app, req).await)
    }))
    .await
}

/// What a stream record's image says about its item: the id and kind of a mail job.
#[derive(Deserialize)]
pub struct JobRef {
    job_id: String,
    kind: Option<String>,
}

impl JobRef {
    /// The job id, when the item is a mail job (the Lambda handler and the local poll
    /// loop read records through this one filter).
    pub fn mail_job_id(self) -> Option<String> {
        (self.kind.as_deref() == Some(MAIL_JOB_KIND)).then_some(self.job_id)
    }
}

/// One stream record as the mailer sees it: its sequence number and, for an inserted
/// mail job, the job id.
pub struct JobRecord {
    pub sequence_number: Option<String>,
    pub job_id: Option<String>,
}

/// Processes a batch's jobs, up to `MAILER_CONCURRENCY` at once (jobs are independent:
/// each has its own id, links and counters; the send-rate governor paces them); returns
/// the sequence number of the first record that failed, if any (for
/// `ReportBatchItemFailures`: the stream retries the batch from there, and the jobs after
/// it that did finish are gone from the table, so their retry is `already_done`).
pub async fn process_records<S: MailerStore, M: Mailer>(
    app: &MailerApp<S, M>,
    records: Vec<JobRecord>,
) -> Vec<String> {
    use futures_util::stream::{self, StreamExt};
    let jobs = records
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| Some((i, r.job_id?, r.sequence_number)));
    let mut failed: Vec<(usize, Option<String>)> = stream::iter(jobs)
        .map(|(i, job_id, seq)| async move { (i, seq, process_one(app, &job_id).await) })
        .buffer_unordered(app.config.mailer_concurrency.max(1))
        .filter_map(|(i, seq, ok)| async move { (!ok).then_some((i, seq)) })
        .collect()
        .await;
    failed.sort_by_key(|(i, _)| *i);
    // The first failure that has a sequence number (the stream retries from there).
    failed
        .into_iter()
        .find_map(|(_, seq)| seq)
        .into_iter()
        .collect()
}

/// One job with its metrics and log line: whether it finished (sent, parked, nothing…).
async fn process_one<S: MailerStore, M: Mailer>(app: &MailerApp<S, M>, job_id: &str) -> bool {
    // Boxed: the job future is deep (static dispatch all the way down), and boxing it
    // keeps the Lambda loop's future within the compiler's layout depth.
    let started = std::time::Instant::now();
    let (result, mut recorded) = metrics::scope(Box::pin(mailer::process_job(app, job_id))).await;
    recorded.events.push(metrics::Event::MailJob(match &result {
        Ok(outcome) => outcome.as_str(),
        Err(_) => "failed",
    }));
    emit_job_metrics(&app.config, "mailer", started, &recorded);
    match result {
        Ok(_) => true,
        Err(e) => {
            tracing::error!(job_id = %job_id, error = %e, "mail job failed; will be retried");
            false
        }
    }
}

/// A stream record's job id, for an inserted mail job only.
pub fn job_record(rec: &aws_lambda_events::event::dynamodb::EventRecord) -> JobRecord {
    JobRecord {
        sequence_number: rec.change.sequence_number.clone(),
        job_id: inserted_image::<JobRef>(rec).and_then(JobRef::mail_job_id),
    }
}

/// The mailer's Lambda handler for DynamoDB stream events.
pub async fn handle_stream_event<S: MailerStore, M: Mailer>(
    app: &MailerApp<S, M>,
    event: StreamEvent,
) -> DynamoDbEventResponse {
    let records = event.records.iter().map(job_record).collect();
    batch_failures(process_records(app, records).await)
}

/// A stream handler's answer: the records to retry from (`ReportBatchItemFailures`).
fn batch_failures(sequence_numbers: impl IntoIterator<Item = String>) -> DynamoDbEventResponse {
    let mut resp = DynamoDbEventResponse::default();
    resp.batch_item_failures = sequence_numbers
        .into_iter()
        .map(|seq| {
            let mut f = DynamoDbBatchItemFailure::default();
            f.item_identifier = Some(seq);
            f
        })
        .collect();
    resp
}

/// The new image of an inserted item, read as `T` (None for other records and for items
/// that are not a `T`).
fn inserted_image<T: serde::de::DeserializeOwned>(
    rec: &aws_lambda_events::event::dynamodb::EventRecord,
) -> Option<T> {
    (rec.event_name == "INSERT")
        .then(|| serde_dynamo::from_item::<_, T>(rec.change.new_image.clone()).ok())
        .flatten()
}

/// The mailer's `main`: the Lambda loop over DynamoDB stream events. (Locally the stack
/// runs `contact-auth-dev mailer`, which follows the table's stream itself and feeds the
/// same `process_records`; that poll loop and the Streams client are not in this binary.)
pub async fn run_mailer() -> Result<(), Error> {
    init_tracing();
    let config = Config::from_env()?;
    let store = DynamoStore::from_env(&config.table_name).await;
    let keys = KeySet::from_env(&config).await?;
    let app = App::new(config)
        .with_store(store)
        .with_keys(keys)
        .with_mailer(SesMailer::from_env().await);
    let app = &app;
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<StreamEvent>| async move {
        app.keys.refresh(&app.config).await;
        Ok::<_, Error>(handle_stream_event(app, ev.payload).await)
    }))
    .await
}

/// The metrics of one unit of an event function's work (a mail job, an SNS invocation):
/// its latency, its time in DynamoDB and SES, and what it recorded.
fn emit_job_metrics(
    config: &Config,
    function: &str,
    started: std::time::Instant,
    recorded: &metrics::Recorder,
) {
    metrics::emit(&metrics::documents(
        &config.metrics_namespace,
        function,
        metrics::now_ms(),
        metrics::Unit::Job,
        started.elapsed().as_secs_f64() * 1000.0,
        recorded,
    ));
}

/// One SNS invocation of `ses-events` with its metrics (the same documents a mail job
/// writes: latency, DynamoDB time, one `SesEvents{Kind}` per record).
pub async fn handle_ses_events<S: Suppressions, K, M>(
    app: &App<S, K, M>,
    event: ses_events::SnsEvent,
) -> Result<ses_events::Summary, crate::errors::PortError> {
    let started = std::time::Instant::now();
    // Boxed, like a mail job: keeps the Lambda loop's future within the layout depth.
    let (result, recorded) = metrics::scope(Box::pin(ses_events::handle(app, event))).await;
    emit_job_metrics(&app.config, "ses-events", started, &recorded);
    if let Err(e) = &result {
        tracing::error!(error = %e, "ses events not recorded; Lambda retries the invocation");
    }
    result
}

/// The `ses-events` function's `main`: the Lambda loop over SNS events (SES bounces and
/// complaints). The table only: no keys, no mail.
pub async fn run_ses_events() -> Result<(), Error> {
    init_tracing();
    let config = Config::from_env()?;
    let store = DynamoStore::from_env(&config.table_name).await;
    let app = App::new(config).with_store(store);
    let app = &app;
    lambda_runtime::run(service_fn(
        move |ev: LambdaEvent<ses_events::SnsEvent>| async move {
            handle_ses_events(app, ev.payload)
                .await
                .map_err(|e| Error::from(e.to_string()))
        },
    ))
    .await
}

/// An outbox event item as its stream image shows it (`codec::event_item`).
#[derive(Deserialize)]
pub struct EventImage {
    kind: Option<String>,
    event_id: String,
    #[serde(rename = "type")]
    event_type: String,
    at: i64,
    contact_id: String,
    team_id: Option<String>,
    hub_id: Option<String>,
    session_id: Option<String>,
    reason: Option<String>,
    email: Option<String>,
}

impl EventImage {
    /// The event, for an outbox event item of a known type.
    pub fn auth_event(self) -> Option<crate::domain::events::AuthEvent> {
        use crate::domain::ids::{ContactId, TeamId};
        if self.kind.as_deref() != Some(crate::adapters::dynamo::codec::EVENT_KIND) {
            return None;
        }
        Some(crate::domain::events::AuthEvent {
            id: self.event_id,
            event_type: crate::domain::events::EventType::parse(&self.event_type)?,
            at: self.at,
            contact_id: ContactId::from_stored(self.contact_id),
            team_id: self.team_id.map(TeamId::from_stored),
            hub_id: self.hub_id,
            session_id: self.session_id,
            reason: self.reason,
            email: self.email,
        })
    }
}

/// One stream record as the events function sees it: its sequence number and, for an
/// inserted outbox event, the event.
pub struct EventRecord {
    pub sequence_number: Option<String>,
    pub event: Option<crate::domain::events::AuthEvent>,
}

/// A Lambda stream record as an `EventRecord`.
pub fn event_record(rec: &aws_lambda_events::event::dynamodb::EventRecord) -> EventRecord {
    EventRecord {
        sequence_number: rec.change.sequence_number.clone(),
        event: inserted_image::<EventImage>(rec).and_then(EventImage::auth_event),
    }
}

/// Delivers a batch's events in order (one at a time: a team's webhook sees them in the
/// order they were written, per contact); returns the sequence number of the first record
/// that must be retried (`ReportBatchItemFailures`), if any.
pub async fn process_event_records<S, B, W>(
    app: &crate::handlers::events::EventsApp<S, B, W>,
    records: Vec<EventRecord>,
) -> Option<String>
where
    S: crate::ports::EventStore,
    B: crate::ports::EventBus,
    W: crate::ports::WebhookSender,
{
    for r in records {
        let Some(event) = r.event else { continue };
        let started = std::time::Instant::now();
        let (result, mut recorded) = metrics::scope(Box::pin(
            crate::handlers::events::process_event(app, &event),
        ))
        .await;
        let outcome = match &result {
            Ok(w) => w.as_str(),
            Err(_) => "bus_failed",
        };
        recorded.events.push(metrics::Event::AuthEvent(outcome));
        emit_job_metrics(&app.config, "events", started, &recorded);
        if let Err(e) = result {
            tracing::error!(event_id = %event.id, error = %e, "event not delivered; the batch is retried from it");
            return r.sequence_number;
        }
        tracing::info!(event_id = %event.id, event_type = event.event_type.as_str(), webhook = outcome, "event delivered");
    }
    None
}

/// The events function's Lambda handler for DynamoDB stream events.
pub async fn handle_events_stream<S, B, W>(
    app: &crate::handlers::events::EventsApp<S, B, W>,
    event: StreamEvent,
) -> DynamoDbEventResponse
where
    S: crate::ports::EventStore,
    B: crate::ports::EventBus,
    W: crate::ports::WebhookSender,
{
    let records = event.records.iter().map(event_record).collect();
    batch_failures(process_event_records(app, records).await)
}

/// The events function's app from the environment (the Lambda and the local poller).
pub async fn events_app() -> Result<
    crate::handlers::events::EventsApp<
        DynamoStore,
        crate::adapters::eventbridge::EventBridgeBus,
        crate::adapters::webhook::HttpWebhooks,
    >,
    Error,
> {
    let config = Config::from_env()?;
    let store = DynamoStore::from_env(&config.table_name).await;
    Ok(crate::handlers::events::EventsApp {
        config,
        store,
        bus: crate::adapters::eventbridge::EventBridgeBus::from_env(),
        webhooks: crate::adapters::webhook::HttpWebhooks::from_env(),
        retry_delays: vec![
            std::time::Duration::from_secs(1),
            std::time::Duration::from_secs(4),
        ],
        clock: || time::OffsetDateTime::now_utc().unix_timestamp(),
    })
}

/// The events function's `main`: the Lambda loop over the table's stream (filtered to
/// outbox events by the template's FilterCriteria).
pub async fn run_events() -> Result<(), Error> {
    init_tracing();
    let app = events_app().await?;
    let app = &app;
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<StreamEvent>| async move {
        Ok::<_, Error>(handle_events_stream(app, ev.payload).await)
    }))
    .await
}

#[cfg(test)]
mod tests {
    use tracing::Level;
    use tracing_subscriber::filter::LevelFilter;

    #[test]
    fn trace_is_clamped_and_other_crates_stay_at_info() {
        let f = super::log_filter(LevelFilter::TRACE);
        assert!(f.would_enable("contact_auth::handlers::login", &Level::DEBUG));
        assert!(!f.would_enable("contact_auth::handlers::login", &Level::TRACE));
        for other in [
            "aws_smithy_runtime",
            "hyper",
            "lambda_runtime",
            "aws_sdk_dynamodb",
        ] {
            assert!(!f.would_enable(other, &Level::DEBUG), "{other}");
            assert!(f.would_enable(other, &Level::INFO), "{other}");
        }
        let info = super::log_filter(LevelFilter::INFO);
        assert!(!info.would_enable("contact_auth", &Level::DEBUG));
        assert!(info.would_enable("contact_auth", &Level::INFO));
    }
}
