//! What every `main.rs` calls: logging, the cold-start state, and the Lambda loop.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use lambda_http::{service_fn, Error, Request};
use lambda_runtime::LambdaEvent;
use serde::Deserialize;

use crate::adapters::dynamo::DynamoStore;
use crate::adapters::keys::load_keys;
use crate::adapters::ses::SesMailer;
use crate::app::App;
use crate::config::Config;
use crate::handlers::{self, mailer, RouteFn};

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

/// The cold-start state of a function: its config and only the ports it uses. Each
/// piece is a separate step (no branching on the route), so a function binary links only
/// the SDK clients it calls.
pub async fn base_app() -> Result<App, Error> {
    Ok(App::new(Config::from_env()?))
}

pub async fn with_store(app: App) -> App {
    let store = DynamoStore::from_env(&app.config.table_name).await;
    app.with_store(Arc::new(store))
}

pub async fn with_keys(app: App) -> Result<App, Error> {
    Ok(app.with_keys(Arc::new(load_keys().await?)))
}

/// The rest of an HTTP function's `main`: logging, then the Lambda loop over `H`.
pub async fn serve_http<H: RouteFn>(app: App) -> Result<(), Error> {
    let app = &app;
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(handlers::handle_route::<H>(app, req).await)
    }))
    .await
}

#[derive(Deserialize)]
struct JobRef {
    job_id: String,
    kind: Option<String>,
}

/// One stream record as the mailer sees it: its sequence number and, for an inserted
/// mail job, the job id.
pub struct JobRecord {
    pub sequence_number: Option<String>,
    pub job_id: Option<String>,
}

/// Processes records in order; returns the sequence numbers that failed (for
/// `ReportBatchItemFailures`: the stream retries from the first failure).
pub async fn process_records(app: &App, records: Vec<JobRecord>) -> Vec<String> {
    let mut failures = Vec::new();
    for r in records {
        let Some(job_id) = r.job_id else { continue };
        if let Err(e) = mailer::process_job(app, &job_id).await {
            tracing::error!(job_id = %job_id, error = %e, "mail job failed; will be retried");
            if let Some(seq) = r.sequence_number {
                failures.push(seq);
            }
            // Later records must wait for this one (ordering of the shard).
            break;
        }
    }
    failures
}

fn job_ref_lambda(rec: &aws_lambda_events::event::dynamodb::EventRecord) -> JobRecord {
    let job_id = if rec.event_name == "INSERT" {
        serde_dynamo::from_item::<_, JobRef>(rec.change.new_image.clone())
            .ok()
            .filter(|j| j.kind.as_deref() == Some("mail_job"))
            .map(|j| j.job_id)
    } else {
        None
    };
    JobRecord {
        sequence_number: rec.change.sequence_number.clone(),
        job_id,
    }
}

/// The mailer's Lambda handler for DynamoDB stream events.
pub async fn handle_stream_event(app: &App, event: StreamEvent) -> DynamoDbEventResponse {
    let records = event.records.iter().map(job_ref_lambda).collect();
    let failures = process_records(app, records).await;
    let mut resp = DynamoDbEventResponse::default();
    resp.batch_item_failures = failures
        .into_iter()
        .map(|seq| {
            let mut f = DynamoDbBatchItemFailure::default();
            f.item_identifier = Some(seq);
            f
        })
        .collect();
    resp
}

pub async fn mailer_app() -> Result<App, Error> {
    let app = with_store(base_app().await?).await;
    Ok(app.with_mailer(Arc::new(SesMailer::from_env().await)))
}

/// The mailer's `main`: the Lambda loop, or `--poll` to read the table's stream
/// directly (DynamoDB Local has no stream trigger).
pub async fn run_mailer() -> Result<(), Error> {
    init_tracing();
    let app = mailer_app().await?;
    if std::env::args().any(|a| a == "--poll") {
        return poll_stream(&app).await;
    }
    let app = &app;
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<StreamEvent>| async move {
        Ok::<_, Error>(handle_stream_event(app, ev.payload).await)
    }))
    .await
}

/// Local poll mode: follows every shard of the table's stream from its start and feeds
/// inserted jobs to the same code the Lambda handler runs.
pub async fn poll_stream(app: &App) -> Result<(), Error> {
    use crate::adapters::aws::{sdk_config, Service};
    use aws_sdk_dynamodbstreams::types::ShardIteratorType;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk_config(Service::DynamoDb));
    let streams = aws_sdk_dynamodbstreams::Client::new(&sdk_config(Service::DynamoDbStreams));
    let table = app.config.table_name.clone();
    let stream_arn = ddb
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .map_err(|e| {
            format!(
                "describe_table failed: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(e)
            )
        })?
        .table
        .and_then(|t| t.latest_stream_arn)
        .ok_or("the table has no stream")?;
    tracing::info!(table = %table, "mailer polling the table stream");
    let mut iterators: std::collections::HashMap<String, Option<String>> = Default::default();
    let mut last_describe = std::time::Instant::now() - Duration::from_secs(60);
    loop {
        if last_describe.elapsed() > Duration::from_secs(2) {
            last_describe = std::time::Instant::now();
            match streams
                .describe_stream()
                .stream_arn(&stream_arn)
                .send()
                .await
            {
                Err(e) => {
                    tracing::warn!(error = %aws_sdk_dynamodbstreams::error::DisplayErrorContext(e), "describe_stream failed")
                }
                Ok(desc) => {
                    for shard in desc
                        .stream_description
                        .map(|d| d.shards.unwrap_or_default())
                        .unwrap_or_default()
                    {
                        let Some(id) = shard.shard_id else { continue };
                        if iterators.contains_key(&id) {
                            continue;
                        }
                        let it = streams
                            .get_shard_iterator()
                            .stream_arn(&stream_arn)
                            .shard_id(&id)
                            .shard_iterator_type(ShardIteratorType::TrimHorizon)
                            .send()
                            .await
                            .ok()
                            .and_then(|o| o.shard_iterator);
                        iterators.insert(id, it);
                    }
                }
            }
        }
        let mut busy = false;
        for it in iterators.values_mut() {
            let Some(current) = it.clone() else { continue };
            let out = match streams.get_records().shard_iterator(&current).send().await {
                Ok(o) => o,
                Err(e) => {
                    tracing::warn!(error = %aws_sdk_dynamodbstreams::error::DisplayErrorContext(e), "get_records failed");
                    continue;
                }
            };
            let records: Vec<JobRecord> = out
                .records()
                .iter()
                .map(|r| {
                    let insert = r.event_name().map(|n| n.as_str()) == Some("INSERT");
                    let image = r.dynamodb().and_then(|d| d.new_image()).cloned();
                    let job_id = match (insert, image) {
                        (true, Some(img)) => {
                            serde_dynamo::aws_sdk_dynamodbstreams_1::from_item::<JobRef>(img)
                                .ok()
                                .filter(|j| j.kind.as_deref() == Some("mail_job"))
                                .map(|j| j.job_id)
                        }
                        _ => None,
                    };
                    JobRecord {
                        sequence_number: r
                            .dynamodb()
                            .and_then(|d| d.sequence_number())
                            .map(str::to_string),
                        job_id,
                    }
                })
                .collect();
            busy |= !records.is_empty();
            let failed = !process_records(app, records).await.is_empty();
            if failed {
                // Keep the iterator: retry the same batch after a pause.
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            *it = out.next_shard_iterator;
        }
        if !busy {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
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
