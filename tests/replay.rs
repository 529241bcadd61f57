//! Fixture replay: every event under `events/` goes through the real handler
//! (`lambda_http::request::from_str`, then the route's own `RouteFn` types, as its
//! function binary runs them) against DynamoDB Local and the SES sink, each in a fresh
//! table created from template.yaml, and is judged by `testkit::verdict` (the comparator
//! `make invoke` uses too). One test per fixture, named `events/<function>/<case>`
//! (`cargo test --test replay -- --include-ignored events/login/`), plus the scenarios
//! below (50 concurrent consumes, supersede: tests/e2e/magic-link.test.mjs, over HTTP
//! against four instances per function). `make test` starts the servers and sets REPLAY_DYNAMODB_URL and
//! REPLAY_SES_URL; a plain `cargo test` lists these tests as ignored.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Once;

use aws_sdk_dynamodb::types::AttributeValue;
use contact_auth::adapters::dynamo::{keys, DynamoStore};
use contact_auth::adapters::ses::SesMailer;
use contact_auth::domain::ids::{ContactId, TeamId};
use contact_auth::domain::secret::{new_id, RawToken};
use contact_auth::ports::Contacts;
use contact_auth::routes::Route;
use contact_auth::runtime::handle_stream_event;
use libtest_mimic::{Arguments, Failed, Trial};

mod bounces;
mod crowd;
mod events;
mod sessions;
use serde_json::Value;
use testkit::app::TestApp;
use testkit::capacity::{thread_cpu_ms, CapacityMeter};
use testkit::fixtures::{self, body_json, consume_event, request};
use testkit::verdict::{
    check_http, check_mail, missing_writes, tokens_in_mail, Expected, MailObserved, Observed,
    Snapshot,
};
use testkit::{config_for_table, schema, seed};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

static INIT: Once = Once::new();

fn init() -> Result<String, String> {
    let ddb = std::env::var("REPLAY_DYNAMODB_URL")
        .map_err(|_| "REPLAY_DYNAMODB_URL is not set: run these through `make test`")?;
    let ses = std::env::var("REPLAY_SES_URL").map_err(|_| "REPLAY_SES_URL is not set")?;
    INIT.call_once(|| {
        // Edition 2021: set_var is safe; these run before any SDK client is built.
        std::env::set_var("AWS_ENDPOINT_URL_DYNAMODB", &ddb);
        std::env::set_var("AWS_ENDPOINT_URL_SESV2", &ses);
        std::env::set_var("AWS_REGION", "us-east-1");
        std::env::set_var("AWS_ACCESS_KEY_ID", "local");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "local");
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        // Handler logs go to a file that make test checks for secrets.
        if let Ok(path) = std::env::var("REPLAY_LOG") {
            if let Ok(file) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                let _ = tracing_subscriber::fmt()
                    .json()
                    .with_writer(std::sync::Mutex::new(file))
                    .try_init();
            }
        }
    });
    Ok(ses)
}

/// Remembers a secret this run used, for the log check in tools/test.mjs.
fn record_secret(s: &str) {
    if let Ok(dir) = std::env::var("E2E_LOG_DIR") {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(Path::new(&dir).join("secrets.txt"))
        {
            let _ = writeln!(f, "{s}");
        }
    }
}

/// Every string attribute of a request body that is a secret or personal: emails,
/// passwords, tokens (what the fixture sent must not reach a log either).
fn record_sent_secrets(event_text: &str) {
    let Ok(event) = serde_json::from_str::<Value>(event_text) else {
        return;
    };
    let body = event["body"].as_str().unwrap_or("");
    let Ok(doc) = serde_json::from_str::<Value>(body) else {
        return;
    };
    for (k, v) in doc["data"]["attributes"].as_object().into_iter().flatten() {
        if matches!(
            k.as_str(),
            "email" | "password" | "current_password" | "new_password" | "token" | "refresh_token"
        ) {
            if let Some(s) = v.as_str() {
                record_secret(s);
            }
        }
    }
}

/// A minimal HTTP/1.0 GET (the SES sink's JSON store); no HTTP client crate needed.
fn http_get_json(base: &str, path: &str) -> Result<Value, String> {
    let hostport = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(hostport).map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {hostport}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).map_err(|e| e.to_string())?;
    let body = buf.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    serde_json::from_str(body).map_err(|e| format!("SES sink JSON: {e}"))
}

/// Every mail the SES sink holds.
fn all_mails(ses: &str) -> Result<Vec<Value>, String> {
    Ok(http_get_json(ses, "/store")?["emails"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

fn mails_to(ses: &str, to: &str) -> Result<Vec<Value>, String> {
    Ok(all_mails(ses)?
        .into_iter()
        .filter(|m| {
            m["destination"]["to"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == to))
        })
        .collect())
}

/// `make cost` (tools/cost.mjs): with `REPLAY_COST_OUT` set, the table client of every
/// fixture asks DynamoDB for the capacity each call consumes, and the fixture's request
/// (the last one of a repeated fixture) is measured: its capacity, the CPU time of this
/// thread and the bytes the handler logged, one JSON line per fixture in that file.
static COST: std::sync::OnceLock<Option<CapacityMeter>> = std::sync::OnceLock::new();

struct CostProbe(Option<(CapacityMeter, f64, u64)>);

impl CostProbe {
    fn meter() -> Option<CapacityMeter> {
        std::env::var("REPLAY_COST_OUT")
            .is_ok()
            .then(CapacityMeter::default)
    }

    fn log_size() -> u64 {
        std::env::var("REPLAY_LOG")
            .ok()
            .and_then(|p| std::fs::metadata(p).ok())
            .map_or(0, |m| m.len())
    }

    fn start() -> CostProbe {
        CostProbe(COST.get().cloned().flatten().and_then(|meter| {
            meter.take(); // the setup's calls
            thread_cpu_ms().map(|cpu| (meter, cpu, CostProbe::log_size()))
        }))
    }

    fn finish(self, fixture: &Path, function: &str, status: u16) {
        let Some((meter, cpu0, log0)) = self.0 else {
            return;
        };
        let cpu_ms = thread_cpu_ms().unwrap_or(cpu0) - cpu0;
        let capacity = meter.take();
        let case = fixture.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
        let line = serde_json::json!({
            "fixture": format!("{function}/{case}"),
            "function": function,
            "status": status,
            "cpu_ms": cpu_ms,
            "read_units": capacity.read_units,
            "write_units": capacity.write_units,
            "calls": capacity.calls,
            "log_bytes": CostProbe::log_size().saturating_sub(log0),
        });
        if let Ok(path) = std::env::var("REPLAY_COST_OUT") {
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                let _ = writeln!(f, "{line}");
            }
        }
    }
}

/// A fresh table, seeded; the app on the real clock.
async fn fresh(config: &Value) -> TestApp {
    let template = std::fs::read_to_string(format!("{ROOT}/template.yaml")).unwrap();
    let table = format!("replay-{}", new_id());
    let store = DynamoStore::from_env(&table).await;
    schema::create_table(store.client(), &table, &template, false)
        .await
        .expect("create table");
    seed::seed_demo(&store).await.expect("seed");
    let store = match COST.get_or_init(CostProbe::meter) {
        Some(meter) => DynamoStore::new(
            aws_sdk_dynamodb::Client::from_conf(
                store
                    .client()
                    .config()
                    .to_builder()
                    .interceptor(meter.clone())
                    .build(),
            ),
            store.table(),
        ),
        None => store,
    };
    let mut cfg = config_for_table(&table);
    if let Some(n) = config.get("ip_per_minute").and_then(Value::as_u64) {
        cfg.ip_per_minute = n as u32;
    }
    if let Some(n) = config
        .get("code_attempts_per_ip_hour")
        .and_then(Value::as_u64)
    {
        cfg.code_attempts_per_ip_hour = n as u32;
    }
    if let Some(b) = config.get("partitioned_cookie").and_then(Value::as_bool) {
        cfg.partitioned_cookie = b;
    }
    TestApp::new(cfg, store, &testkit::test_key_doc())
}

/// Repeated requests count into fixed windows (per IP: 60 s; failed logins: 15 min): a
/// fixture that straddled a window's end would start counting again and miss its limit.
/// Waits until at least 10 s are left in both.
async fn wait_for_fresh_windows() {
    loop {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let left = |w: i64| w - now.rem_euclid(w);
        if left(60) >= 10 && left(900) >= 10 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// The token of the fixtures' main link (tools/gen-events.mjs `TOKEN_A`).
const FIXTURE_TOKEN_A: &str = "fixtureTokenAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// Every item of the table, keyed by (pk, sk), attributes as debug text.
async fn snapshot(store: &DynamoStore) -> Snapshot {
    let mut out = BTreeMap::new();
    let mut start = None;
    loop {
        let page = store
            .client()
            .scan()
            .table_name(store.table())
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan");
        for item in page.items() {
            let key = |k: &str| match item.get(k) {
                Some(AttributeValue::S(s)) => s.clone(),
                _ => String::new(),
            };
            let sorted: BTreeMap<_, _> = item
                .iter()
                .map(|(k, v)| (k.clone(), format!("{v:?}")))
                .collect();
            out.insert((key("pk"), key("sk")), sorted);
        }
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            break;
        }
    }
    out
}

/// The items a refusal changed that it may change: attempt counters where counting the
/// attempt is the point (a wrong password), and a revoked family (and its session record,
/// ended as "reuse", with its two events) on refresh reuse.
/// `by_code`: a consume by sign-in code, which counts its attempt (per email and IP, and
/// on the link it names) before comparing the code.
fn refusal_may_write(
    route: Route,
    code: Option<&str>,
    (pk, sk): &(String, String),
    by_code: bool,
) -> bool {
    let attempt = matches!(route, Route::Login | Route::MePatch | Route::PasswordChange) || by_code;
    (attempt && pk.starts_with("RATE#"))
        || (by_code && pk.starts_with("MAGIC#"))
        || (code == Some("refresh_token_reused")
            && (pk.starts_with("RTFAMILY#")
                || pk.starts_with("RT#")
                || pk.starts_with(keys::EVENT_PREFIX)
                || sk.starts_with(keys::SESSION_PREFIX)))
}

async fn replay_http(function: &str, path: &Path, exp: &Expected) -> Result<(), String> {
    let route = Route::by_function(function).ok_or(format!("no route for function {function}"))?;
    // Stopped clocks: a fixture's clock_offset is exactly how long ago its setup happened
    // (on the real clock, a slow setup made `email-change-recent`'s 599 s into 601 s).
    let app = fresh(&exp.config).await;
    let t0 = app.now();
    let app = app.at(t0);
    let setup_app = app.at(t0 - exp.clock_offset);
    let steps = fixtures::parse_steps(&exp.setup)?;
    let prepared = fixtures::setup(&setup_app, &steps)
        .await
        .map_err(|e| format!("fixture setup: {e}"))?;
    for s in &prepared.secrets {
        record_secret(s);
    }
    let text = prepared.resolve(&std::fs::read_to_string(path).unwrap());
    let repeat = exp.repeat.unwrap_or(1);
    if repeat > 1 {
        wait_for_fresh_windows().await;
    }
    let mut last = None;
    let mut before = BTreeMap::new();
    for i in 0..repeat {
        let mut t = text.clone();
        if exp.vary_email {
            t = t.replace("member@example.com", &format!("member{i}@example.com"));
        }
        record_sent_secrets(&t);
        if i + 1 == repeat {
            before = snapshot(&app.store).await;
        }
        let probe = if i + 1 == repeat {
            CostProbe::start()
        } else {
            CostProbe(None)
        };
        let resp = app.handle(route, request(&t)?).await;
        probe.finish(path, function, resp.status().as_u16());
        last = Some(resp);
    }
    let resp = last.ok_or("repeat must be at least 1")?;
    let body = body_json(&resp);
    for k in ["access_token", "refresh_token"] {
        if let Some(t) = body[k].as_str() {
            record_secret(t);
        }
    }
    let problems = check_http(exp, &Observed::from_response(&resp));
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    let after = snapshot(&app.store).await;
    // What the request must have written (a revocation, a version bump), not only may.
    let missing = missing_writes(&exp.writes, &before, &after);
    if !missing.is_empty() {
        return Err(missing.join("; "));
    }
    let status = resp.status().as_u16();
    if status >= 400 {
        // A refused request changes nothing (whole table, the last request only).
        let by_code = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|e| e["body"].as_str().map(str::to_string))
            .and_then(|b| serde_json::from_str::<Value>(&b).ok())
            .is_some_and(|b| b["data"]["attributes"].get("code").is_some());
        let changed: Vec<_> = before
            .keys()
            .chain(after.keys())
            .filter(|k| before.get(*k) != after.get(*k))
            .filter(|k| !refusal_may_write(route, exp.code.as_deref(), k, by_code))
            .collect();
        if !changed.is_empty() {
            return Err(format!("a refused request wrote {changed:?}"));
        }
    }
    // Route-specific checks on success, beyond the expected file.
    match (route, status) {
        (Route::Register | Route::Magic, 202) => {
            let jobs = |m: &Snapshot| {
                m.keys()
                    .filter(|(pk, _)| pk.starts_with(keys::JOB_PREFIX))
                    .count()
            };
            if jobs(&after) != jobs(&before) + 1 {
                return Err("202 without exactly one mail job written".into());
            }
        }
        (Route::MagicConsume, 200) => {
            let at = body["access_token"].as_str().ok_or("no access_token")?;
            let claims = app
                .keys()
                .verify(at, &app.config.jwt_issuer, &app.config.jwt_audience)
                .ok_or("access token does not verify")?;
            let event: Value = serde_json::from_str(&text).unwrap();
            let sent: Value = serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
            let attributes = &sent["data"]["attributes"];
            // By code the session's method is "otp", by token "magic_link".
            let method = if attributes.get("code").is_some() {
                "otp"
            } else {
                "magic_link"
            };
            if claims.amr != vec![method.to_string()] || claims.tid.as_str() != "team_abc123" {
                return Err(format!("unexpected claims {claims:?}"));
            }
            // The link is single use, and the same request again is refused.
            let again = app
                .handle(Route::MagicConsume, fixtures::request(&text)?)
                .await;
            if again.status() != 401 {
                return Err("a second consume of the same link did not answer 401".into());
            }
            // A code and its link die together: the setup link's token is used up too.
            if method == "otp" && fixtures::consume(&app, FIXTURE_TOKEN_A).await?.0 != 401 {
                return Err("the link still worked after its code signed in".into());
            }
        }
        // The session marked current is the one the access token names.
        (Route::MeSessions, 200) => {
            let sid = prepared.vars.get("SESSION_ID").ok_or("no SESSION_ID")?;
            let current: Vec<&Value> = body["data"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|s| s["attributes"]["current"] == true)
                .collect();
            if current.len() != 1 || current[0]["id"] != sid.as_str() {
                return Err(format!(
                    "the current session is not the token's {sid}: {body}"
                ));
            }
        }
        // The one other session ended, with its reason; the caller's own did not.
        (Route::LogoutOthers, 200) => {
            let ended: Vec<_> = after
                .iter()
                .filter(|((_, sk), item)| {
                    sk.starts_with(keys::SESSION_PREFIX)
                        && item
                            .get("ended_reason")
                            .is_some_and(|r| r.contains("logout_others"))
                })
                .map(|((_, sk), _)| sk.clone())
                .collect();
            let sid = prepared.vars.get("SESSION_ID").ok_or("no SESSION_ID")?;
            if ended.len() != 1 || ended[0].ends_with(sid.as_str()) {
                return Err(format!(
                    "sessions ended by logout-others: {ended:?} (own {sid})"
                ));
            }
        }
        (Route::Jwks, 200)
            if body["keys"][0]["kid"] != app.keys().current().active.kid.as_str() =>
        {
            return Err(format!("jwks {body}"));
        }
        _ => {}
    }
    Ok(())
}

async fn replay_mailer(ses: &str, path: &Path, exp: &Expected) -> Result<(), String> {
    let app = fresh(&Value::Null).await;
    let steps = fixtures::parse_steps(&exp.setup)?;
    let prepared = fixtures::setup(&app, &steps).await?;
    for s in &prepared.secrets {
        record_secret(s);
    }
    let to = exp.to.as_deref().ok_or("a mailer fixture names `to`")?;
    let before = mails_to(ses, to)?.len();
    let all_before = all_mails(ses)?.len();
    let text = std::fs::read_to_string(path).unwrap();
    let event: aws_lambda_events::event::dynamodb::Event =
        serde_json::from_str(&text).map_err(|e| format!("not a DynamoDB stream event: {e}"))?;
    let mailer = app.mailer_app(SesMailer::from_env().await);
    let probe = CostProbe::start();
    let resp = handle_stream_event(&mailer, event).await;
    probe.finish(path, "mailer", resp.batch_item_failures.len() as u16);
    let new_mails: Vec<Value> = mails_to(ses, to)?.into_iter().skip(before).collect();
    for m in &new_mails {
        for t in tokens_in_mail(m) {
            record_secret(&t);
        }
    }
    let problems = check_mail(
        exp,
        &MailObserved {
            batch_item_failures: resp.batch_item_failures.len(),
            new_mails,
            mails_to_anyone: Some(all_mails(ses)?.len().saturating_sub(all_before)),
        },
    );
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    let jobs_left = snapshot(&app.store)
        .await
        .keys()
        .filter(|(pk, _)| pk.starts_with(keys::JOB_PREFIX))
        .count();
    // A processed job is retired; a record the mailer must ignore leaves its job alone.
    let want_left = exp.jobs_left.unwrap_or(0);
    if jobs_left != want_left {
        return Err(format!("{jobs_left} jobs left, want {want_left}"));
    }
    Ok(())
}

/// A ses-events fixture (an SNS event of SES sending events) through the handler: its
/// result (the summary), and the items it must have written — or, naming none, that the
/// table is unchanged.
async fn replay_ses_events(path: &Path, exp: &Expected) -> Result<(), String> {
    let app = fresh(&exp.config).await;
    let steps = fixtures::parse_steps(&exp.setup)?;
    fixtures::setup(&app, &steps)
        .await
        .map_err(|e| format!("fixture setup: {e}"))?;
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let event: contact_auth::handlers::ses_events::SnsEvent =
        serde_json::from_str(&text).map_err(|e| format!("not an SNS event: {e}"))?;
    let before = snapshot(&app.store).await;
    let summary = contact_auth::runtime::handle_ses_events(&app.store_app(), event)
        .await
        .map_err(|e| e.to_string())?;
    let out = serde_json::to_value(&summary).map_err(|e| e.to_string())?;
    let problems = testkit::verdict::check_event(exp, &out);
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    let after = snapshot(&app.store).await;
    if exp.writes.is_empty() {
        let changed: Vec<_> = before
            .keys()
            .chain(after.keys())
            .filter(|k| before.get(*k) != after.get(*k))
            .collect();
        if !changed.is_empty() {
            return Err(format!("the event changed {changed:?}, want nothing"));
        }
    }
    let missing = missing_writes(&exp.writes, &before, &after);
    if !missing.is_empty() {
        return Err(missing.join("; "));
    }
    Ok(())
}

/// The events function's app for the replay: this test table, the stack's EventBridge
/// stand-in as the bus, real webhooks (loopback allowed), short backoff.
pub(crate) fn events_app(
    app: &TestApp,
    retry_delays: Vec<std::time::Duration>,
) -> Result<
    contact_auth::handlers::events::EventsApp<
        DynamoStore,
        contact_auth::adapters::eventbridge::EventBridgeBus,
        contact_auth::adapters::webhook::HttpWebhooks,
    >,
    String,
> {
    let sink = std::env::var("REPLAY_EVENTS_URL").map_err(|_| "REPLAY_EVENTS_URL is not set")?;
    std::env::set_var("EVENTS_WEBHOOK_DEV", "1");
    Ok(contact_auth::handlers::events::EventsApp {
        config: app.config.clone(),
        store: app.store.clone(),
        bus: contact_auth::adapters::eventbridge::EventBridgeBus::for_endpoint(&sink),
        webhooks: contact_auth::adapters::webhook::HttpWebhooks::from_env(),
        retry_delays,
        clock: || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0)
        },
    })
}

fn fixtures_on_disk() -> Vec<(String, String, PathBuf)> {
    let mut out = vec![];
    let mut dirs: Vec<_> = std::fs::read_dir(format!("{ROOT}/events"))
        .unwrap()
        .flatten()
        .collect();
    dirs.sort_by_key(|d| d.path());
    for dir in dirs {
        let function = dir.file_name().to_string_lossy().to_string();
        let mut files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        files.sort();
        for f in files {
            let name = f.file_name().unwrap().to_string_lossy().to_string();
            let Some(case) = name.strip_suffix(".json") else {
                continue;
            };
            if case.ends_with(".expected") {
                continue;
            }
            out.push((function.clone(), case.to_string(), f));
        }
    }
    out
}

fn block_on<F: Future<Output = Result<(), String>>>(f: F) -> Result<(), Failed> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failed::from(e.to_string()))?;
    rt.block_on(f).map_err(Failed::from)
}

fn fixture_trial(function: String, case: String, path: PathBuf) -> Trial {
    Trial::test(format!("events/{function}/{case}"), move || {
        let ses = init()?;
        let exp_path = path.with_file_name(format!("{case}.expected.json"));
        let text = std::fs::read_to_string(&exp_path)
            .map_err(|_| format!("{} has no expected file", path.display()))?;
        let exp = Expected::parse(&text)?;
        block_on(async move {
            if function == "mailer" {
                replay_mailer(&ses, &path, &exp).await
            } else if function == "ses-events" {
                replay_ses_events(&path, &exp).await
            } else if function == "events" {
                events::replay_events_fixture(&path, &exp).await
            } else {
                replay_http(&function, &path, &exp).await
            }
        })
    })
    .with_ignored_flag(true)
}

fn scenario(name: &str, f: fn() -> Result<(), Failed>) -> Trial {
    Trial::test(format!("scenario/{name}"), move || {
        init()?;
        f()
    })
    .with_ignored_flag(true)
}

fn main() {
    let args = Arguments::from_args();
    let mut trials: Vec<Trial> = fixtures_on_disk()
        .into_iter()
        .map(|(function, case, path)| fixture_trial(function, case, path))
        .collect();
    // Every function has fixtures, and the set is the full one.
    let functions: std::collections::BTreeSet<_> =
        fixtures_on_disk().into_iter().map(|(f, _, _)| f).collect();
    let every = Route::ALL
        .iter()
        .map(|r| r.function())
        .chain(contact_auth::routes::EVENT_FUNCTIONS.iter().copied());
    for f in every {
        assert!(functions.contains(f), "no fixtures for {f}");
    }
    assert!(
        trials.len() >= 100,
        "expected the full fixture set, found {}",
        trials.len()
    );
    trials.push(scenario(
        "an_expired_link_is_refused_even_before_ttl_deletion",
        || block_on(expired_link()),
    ));
    trials.push(scenario("a_session_ends_at_its_absolute_lifetime", || {
        block_on(absolute_lifetime())
    }));
    trials.push(scenario(
        "every_login_does_one_argon2_verification_whatever_fails",
        || on_this_thread(login_work()),
    ));
    trials.push(scenario("a_weak_hash_is_rehashed_on_login", || {
        block_on(weak_hash_rehashed())
    }));
    trials.push(scenario(
        "a_retried_mail_job_resends_the_same_link_and_code",
        || block_on(retried_job()),
    ));
    trials.push(scenario(
        "a_code_without_a_link_costs_what_a_wrong_code_costs",
        || on_this_thread(code_work()),
    ));
    trials.push(scenario(
        "an_undo_link_works_for_7_days_and_restores_the_chain_origin",
        || block_on(undo_window()),
    ));
    trials.push(scenario(
        "an_undo_removes_a_password_younger_than_7_days_before_the_chain",
        || block_on(undo_password_age()),
    ));
    trials.push(scenario(
        "a_link_dies_with_its_revoked_key_and_survives_a_rotation",
        || block_on(revoked_key_links()),
    ));
    trials.push(scenario(
        "every_rate_window_on_both_sides_with_retry_after_to_its_end",
        || block_on(rate_windows()),
    ));
    trials.push(scenario(
        "every_conditional_write_refuses_a_stale_read",
        || block_on(stale_reads()),
    ));
    trials.push(scenario(
        "a_reuse_logout_everywhere_or_ban_ends_every_earlier_refresh_token",
        || block_on(refresh_after_revocations()),
    ));
    trials.push(scenario(
        "per_ip_budgets_fit_a_shared_ip_and_an_instance_remembers_its_ceiling",
        || block_on(crowd::shared_ip_budgets()),
    ));
    trials.push(scenario(
        "a_trusted_network_skips_every_per_ip_budget_but_not_per_email_limits",
        || block_on(crowd::trusted_network()),
    ));
    trials.push(scenario(
        "a_throttled_table_answers_503_with_retry_after_after_bounded_retries",
        || block_on(crowd::throttled_table()),
    ));
    trials.push(scenario(
        "the_send_rate_governor_keeps_a_concurrent_batch_under_ses_rate",
        || block_on(crowd::governor()),
    ));
    trials.push(scenario("sends_ses_throttles_wait_and_go_out", || {
        block_on(crowd::throttled_sends_wait())
    }));
    trials.push(scenario(
        "a_spent_ses_quota_parks_jobs_and_a_redrive_sends_them",
        || block_on(crowd::quota_parks_and_redrive_sends()),
    ));
    trials.push(scenario(
        "a_sign_in_job_older_than_the_link_lifetime_is_dropped",
        || block_on(crowd::old_sign_in_jobs_are_dropped()),
    ));
    trials.push(scenario(
        "the_mail_budgets_do_not_tell_whether_an_address_has_an_account",
        || block_on(crowd::mail_budgets_do_not_enumerate()),
    ));
    trials.push(scenario(
        "bounced_addresses_get_no_mail_until_a_password_login",
        || block_on(bounces::bounced_addresses_get_no_mail_until_a_password_login()),
    ));
    trials.push(scenario(
        "security_notices_reach_a_complainer_but_not_a_bounced_address",
        || block_on(bounces::security_notices_reach_a_complainer_not_a_bounced_address()),
    ));
    trials.push(scenario("suppression_writes_refuse_a_stale_read", || {
        block_on(bounces::suppression_writes_refuse_a_stale_read())
    }));
    trials.push(scenario(
        "sessions_are_recorded_touched_and_ended_and_their_tokens_with_them",
        || block_on(sessions::sessions_are_recorded_touched_and_ended()),
    ));
    trials.push(scenario("events_are_written_with_their_changes", || {
        block_on(events::events_are_written_with_their_changes())
    }));
    trials.push(scenario(
        "webhooks_are_delivered_once_retried_and_refused_where_private",
        || block_on(events::webhooks_are_delivered_once_retried_and_refused_where_private()),
    ));
    trials.push(scenario(
        "a_new_device_gets_a_notice_whose_link_ends_that_session_and_later_ones",
        || {
            block_on(
                sessions::a_new_device_gets_a_notice_whose_link_ends_that_session_and_later_ones(),
            )
        },
    ));
    trials.push(scenario("members_list_their_active_sessions", || {
        block_on(sessions::members_list_their_active_sessions())
    }));
    trials.push(scenario("members_end_one_session", || {
        block_on(sessions::members_end_one_session())
    }));
    trials.push(scenario(
        "logout_others_ends_every_other_session_once",
        || block_on(sessions::logout_others_ends_every_other_session_once()),
    ));
    trials.push(scenario(
        "a_legacy_family_gets_its_session_at_its_next_rotation",
        || block_on(sessions::a_legacy_family_gets_its_session_at_its_next_rotation()),
    ));
    libtest_mimic::run(&args, trials).exit();
}

/// Runs `f` on this thread only (a current-thread runtime): per-thread counters see all
/// of its work.
fn on_this_thread<F: Future<Output = Result<(), String>>>(f: F) -> Result<(), Failed> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failed::from(e.to_string()))?
        .block_on(f)
        .map_err(Failed::from)
}

fn ensure(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(what())
    }
}

async fn put_link(app: &TestApp, email: &str) -> Result<String, String> {
    let token = RawToken::generate().map_err(|e| e.to_string())?;
    fixtures::put_link(app, token.expose(), email, "member-academy").await?;
    record_secret(token.expose());
    record_secret(email);
    Ok(token.expose().to_string())
}

async fn expired_link() -> Result<(), String> {
    // Stopped clocks: the link is made at t0 and expires at t0 + 900 exactly.
    let app = fresh(&Value::Null).await;
    let t0 = app.now();
    let token = put_link(&app.at(t0), "late@example.com").await?;
    // The same table and link, read by a handler whose clock is 15 minutes + 1 s later.
    let resp = app
        .at(t0 + 901)
        .handle(Route::MagicConsume, request(&consume_event(&token))?)
        .await;
    ensure(resp.status() == 401, || format!("status {}", resp.status()))?;
    ensure(
        body_json(&resp)["errors"][0]["code"] == "magic_link_invalid",
        || format!("{}", body_json(&resp)),
    )?;
    // One second before expiry it still works.
    let resp = app
        .at(t0 + 899)
        .handle(Route::MagicConsume, request(&consume_event(&token))?)
        .await;
    if let Some(t) = body_json(&resp)["refresh_token"].as_str() {
        record_secret(t);
    }
    ensure(resp.status() == 200, || format!("status {}", resp.status()))
}

/// POST /refresh with `rt` in the body: the status and the body (its new token recorded
/// as a secret).
async fn refresh_with(app: &TestApp, rt: &str) -> Result<(u16, Value), String> {
    let resp = app
        .handle(Route::Refresh, request(&fixtures::refresh_event(rt))?)
        .await;
    let body = body_json(&resp);
    if let Some(t) = body["refresh_token"].as_str() {
        record_secret(t);
    }
    Ok((resp.status().as_u16(), body))
}

async fn absolute_lifetime() -> Result<(), String> {
    let app = fresh(&Value::Null).await;
    let token = put_link(&app, "lifetime@example.com").await?;
    let (status, pair) = fixtures::consume(&app, &token).await?;
    ensure(status == 200, || format!("status {status}"))?;
    let first = pair["refresh_token"].as_str().unwrap_or("").to_string();
    record_secret(&first);
    // The same table, `offset` seconds after the sign-in, with a session lifetime of `max`.
    let at = |offset: i64, max: i64| {
        let mut cfg = app.config.clone();
        cfg.session_max = max;
        app.with_config(cfg).shifted(offset)
    };
    let refresh = |app: TestApp, rt: String| async move { refresh_with(&app, &rt).await };
    // 101 s in, with a 100 s lifetime: refused, although this token (made under the
    // 90-day default) is stored as valid for 30 days.
    let (status, body) = refresh(at(101, 100), first.clone()).await?;
    ensure(
        status == 401 && body["errors"][0]["code"] == "refresh_token_invalid",
        || format!("{status} {body}"),
    )?;
    // 50 s in, with a 100 s lifetime: rotated, and the new token lives only to the end.
    let (status, body) = refresh(at(50, 100), first).await?;
    ensure(status == 200, || format!("{status} {body}"))?;
    let left = body["refresh_expires_in"].as_i64().unwrap_or(-1);
    ensure((45..=50).contains(&left), || {
        format!("refresh_expires_in {left}")
    })?;
    let second = body["refresh_token"].as_str().unwrap_or("").to_string();
    // 101 s in: over for the rotated token too.
    let (status, body) = refresh(at(101, 100), second.clone()).await?;
    ensure(
        status == 401 && body["errors"][0]["code"] == "refresh_token_invalid",
        || format!("{status} {body}"),
    )?;
    // The same token under the default 90-day lifetime: the refusal was the lifetime.
    let (status, body) = refresh(at(30, 7_776_000), second).await?;
    ensure(status == 200, || format!("{status} {body}"))
}

fn login_event(email: &str, password: &str, slug: &str) -> String {
    fixtures::post_event(
        Route::Login.path(),
        serde_json::json!({"data": {"type": "login_requests",
            "attributes": {"email": email, "password": password, "slug": slug}}}),
    )
}

/// A member with a password and one without, signed up on member-academy.
async fn members(app: &TestApp, password: &str) -> Result<(), String> {
    let steps = fixtures::parse_steps(&serde_json::json!([
        {"op": "session", "email": "with-password@example.com"},
        {"op": "password", "password": password},
        {"op": "session", "email": "no-password@example.com"},
    ]))?;
    for s in fixtures::setup(app, &steps).await?.secrets {
        record_secret(&s);
    }
    Ok(())
}

/// The claim behind "every failure is the same 401 after the same work": each login runs
/// exactly one argon2 verification (the dummy hash when there is no real one) and, for
/// all six failure kinds — unknown hub, unknown email, no password, wrong password, not a
/// member of the hub's team, banned — the same DynamoDB operations in the same order, so
/// neither timing nor load tells them apart. Counted (argon2 on this thread, operations
/// by an SDK interceptor), not timed.
async fn login_work() -> Result<(), String> {
    use contact_auth::domain::ids::{HubId, TeamId};
    use contact_auth::domain::model::{Hub, Team};
    use contact_auth::domain::password::argon2_verifications_on_this_thread as count;
    let base = fresh(&Value::Null).await;
    let (app, log) = with_operation_log(&base);
    let pw = "violet-kettle-harbour-42";
    members(&app, pw).await?;
    // A hub of another team (nobody here is a member) and a banned member with a password.
    let other = TeamId::from_stored("team_elsewhere");
    app.store
        .put_team(&Team {
            team_id: other.clone(),
            name: "Elsewhere".into(),
            primary_hub_id: None,
            sender_address: None,
        })
        .await
        .map_err(|e| e.to_string())?;
    app.store
        .put_hub(&Hub {
            hub_id: HubId::from_stored("hub_elsewhere"),
            slug: "elsewhere".into(),
            team_id: other,
            title: "Elsewhere".into(),
            allowed_redirect_origins: vec![],
            registration_enabled: true,
            trusted_cidrs: vec![],
            branding: Default::default(),
        })
        .await
        .map_err(|e| e.to_string())?;
    let banned = fixtures::parse_steps(&serde_json::json!([
        {"op": "session", "email": "banned@example.com"},
        {"op": "password", "password": pw},
        {"op": "ban"},
    ]))?;
    for s in fixtures::setup(&app, &banned).await?.secrets {
        record_secret(&s);
    }
    let failures = [
        (
            "unknown hub",
            "with-password@example.com",
            pw,
            "no-such-hub",
        ),
        (
            "unknown email",
            "nobody-here@example.com",
            pw,
            "member-academy",
        ),
        (
            "no password set",
            "no-password@example.com",
            pw,
            "member-academy",
        ),
        (
            "wrong password",
            "with-password@example.com",
            "wrong-password-1",
            "member-academy",
        ),
        ("not a member", "with-password@example.com", pw, "elsewhere"),
        ("banned", "banned@example.com", pw, "member-academy"),
    ];
    let cases = failures
        .iter()
        .map(|&(what, email, password, slug)| (what, email, password, slug, 401))
        .chain([(
            "success",
            "with-password@example.com",
            pw,
            "member-academy",
            200,
        )]);
    let mut first_ops: Option<(&str, Vec<String>)> = None;
    for (what, email, password, slug, want) in cases {
        record_secret(password);
        log.take();
        let before = count();
        let resp = app
            .handle(Route::Login, request(&login_event(email, password, slug))?)
            .await;
        let ran = count() - before;
        let ops = log.take();
        if let Some(t) = body_json(&resp)["refresh_token"].as_str() {
            record_secret(t);
        }
        ensure(resp.status().as_u16() == want, || {
            format!("{what}: status {}, want {want}", resp.status())
        })?;
        ensure(ran == 1, || {
            format!("{what}: {ran} argon2 verifications, want 1")
        })?;
        if want != 401 {
            continue;
        }
        match &first_ops {
            None => first_ops = Some((what, ops)),
            Some((first, expected)) => ensure(&ops == expected, || {
                format!("DynamoDB operations differ: {first} {expected:?} vs {what} {ops:?}")
            })?,
        }
    }
    // Issue 18: an unknown email reads its own placeholder contact (spread by the email,
    // not one hot `CONTACT#none` for the platform), and still reads it.
    let mut placeholders = vec![];
    for email in ["nobody-one@example.com", "nobody-two@example.com"] {
        log.take_keys();
        app.handle(
            Route::Login,
            request(&login_event(email, pw, "member-academy"))?,
        )
        .await;
        let read: Vec<String> = log
            .take_keys()
            .into_iter()
            .filter(|k| k.starts_with("CONTACT#"))
            .collect();
        ensure(
            !read.is_empty() && read.iter().all(|k| k.starts_with("CONTACT#none-")),
            || format!("{email}: the login read {read:?}"),
        )?;
        placeholders.push(read[0].clone());
    }
    ensure(placeholders[0] != placeholders[1], || {
        format!("one placeholder contact for two emails: {placeholders:?}")
    })
}

/// "Weak hashes are rehashed on login": a stored hash with weaker argon2 parameters than
/// today's is replaced by one with today's parameters on the next successful login.
async fn weak_hash_rehashed() -> Result<(), String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    use contact_auth::domain::password::needs_rehash;
    let app = fresh(&Value::Null).await;
    let pw = "violet-kettle-harbour-42";
    let steps = fixtures::parse_steps(&serde_json::json!([
        {"op": "session", "email": "weak@example.com"}
    ]))?;
    let prepared = fixtures::setup(&app, &steps).await?;
    let contact_id = ContactId::from_stored(prepared.vars["CONTACT_ID"].as_str());
    let weak = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(1024, 1, 1, None).map_err(|e| e.to_string())?,
    )
    .hash_password(
        pw.as_bytes(),
        &SaltString::from_b64("c2FsdHNhbHRzYWx0").map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?
    .to_string();
    ensure(needs_rehash(&weak), || {
        "the planted hash is not weak".into()
    })?;
    app.store
        .client()
        .update_item()
        .table_name(app.store.table())
        .set_key(Some(keys::key_map(keys::profile(&contact_id))))
        .update_expression("SET password_hash = :h")
        .expression_attribute_values(":h", AttributeValue::S(weak.clone()))
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    record_secret(pw);
    let resp = app
        .handle(
            Route::Login,
            request(&login_event("weak@example.com", pw, "member-academy"))?,
        )
        .await;
    if let Some(t) = body_json(&resp)["refresh_token"].as_str() {
        record_secret(t);
    }
    ensure(resp.status() == 200, || format!("login {}", resp.status()))?;
    let stored = app
        .store
        .contact(&contact_id)
        .await
        .map_err(|e| e.to_string())?
        .and_then(|c| c.password_hash)
        .ok_or("no password after login")?;
    ensure(stored != weak && !needs_rehash(&stored), || {
        "the weak hash was not replaced by one with today's parameters".into()
    })?;
    // The new hash verifies the same password.
    let again = app
        .handle(
            Route::Login,
            request(&login_event("weak@example.com", pw, "member-academy"))?,
        )
        .await;
    if let Some(t) = body_json(&again)["refresh_token"].as_str() {
        record_secret(t);
    }
    ensure(again.status() == 200, || {
        format!("second login {}", again.status())
    })
}

/// Records the name of every DynamoDB operation a client sends, and the partition keys
/// (`pk`) its request names.
#[derive(Debug, Clone, Default)]
struct OperationLog(
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
);

/// Every `"pk": {"S": …}` value in a request body.
fn partition_keys(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match x["S"].as_str() {
                    Some(pk) if k == "pk" => out.push(pk.to_string()),
                    _ => partition_keys(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| partition_keys(x, out)),
        _ => {}
    }
}

impl aws_smithy_runtime_api::client::interceptors::Intercept for OperationLog {
    fn name(&self) -> &'static str {
        "OperationLog"
    }
    fn read_before_transmit(
        &self,
        ctx: &aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef<'_>,
        _rc: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        _cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        // DynamoDB's JSON protocol names the operation in `X-Amz-Target`
        // (`DynamoDB_20120810.GetItem`); a retried request is logged again.
        let name = ctx
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or("?")
            .to_string();
        if let Ok(mut log) = self.0.lock() {
            log.push(name);
        }
        let body = ctx
            .request()
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok());
        if let (Some(body), Ok(mut keys)) = (body, self.1.lock()) {
            partition_keys(&body, &mut keys);
        }
        Ok(())
    }
}

/// `base` with a table client that logs every DynamoDB operation it sends.
fn with_operation_log(base: &TestApp) -> (TestApp, OperationLog) {
    let log = OperationLog::default();
    let client = aws_sdk_dynamodb::Client::from_conf(
        base.store
            .client()
            .config()
            .to_builder()
            .interceptor(log.clone())
            .build(),
    );
    let app = TestApp::new(
        base.config.clone(),
        DynamoStore::new(client, base.store.table()),
        &testkit::test_key_doc(),
    );
    (app, log)
}

impl OperationLog {
    /// The partition keys named since the last call.
    fn take_keys(&self) -> Vec<String> {
        self.1
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default()
    }

    fn take(&self) -> Vec<String> {
        self.0
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default()
    }
}

/// The equal-work rule of sign-in codes: a code for an email with no pending link and a
/// wrong code for a real pending link make the same DynamoDB operations, in the same
/// order, and the same constant-time code comparisons, and get the same answer (counted,
/// not timed).
async fn code_work() -> Result<(), String> {
    use contact_auth::domain::code::code_comparisons_on_this_thread;
    let base = fresh(&Value::Null).await;
    let (app, log) = with_operation_log(&base);
    let steps = fixtures::parse_steps(&serde_json::json!([
        {"op": "magic_link", "token": "fixtureTokenAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
         "email": "pending@example.com", "slug": "member-academy", "code": "123456"}
    ]))?;
    fixtures::setup(&app, &steps).await?;
    let attempt = |email: &str, code: &str| {
        fixtures::post_event(
            Route::MagicConsume.path(),
            serde_json::json!({"data": {"type": "magic_link_consumes",
                "attributes": {"email": email, "code": code, "slug": "member-academy"}}}),
        )
    };
    let mut seen = vec![];
    // Issue 18: the placeholder keys of two emails without a link differ (spread, not one
    // hot item); each is read and written like a real link (equal work still counted).
    let mut placeholders = vec![];
    for email in ["nobody@example.com", "nobody-else@example.com"] {
        log.take_keys();
        app.handle(Route::MagicConsume, request(&attempt(email, "123456"))?)
            .await;
        let magic: Vec<String> = log
            .take_keys()
            .into_iter()
            .filter(|k| k.starts_with("MAGIC#") && !k.starts_with("MAGICLATEST#"))
            .collect();
        ensure(
            magic.len() == 2 && magic[0] == magic[1] && magic[0].starts_with("MAGIC#none-"),
            || format!("the placeholder link of {email}: read and reserve {magic:?}"),
        )?;
        placeholders.push(magic[0].clone());
    }
    ensure(placeholders[0] != placeholders[1], || {
        format!("one placeholder for two emails: {placeholders:?}")
    })?;
    for (email, code) in [
        ("nobody@example.com", "123456"),
        ("pending@example.com", "654321"),
    ] {
        log.take();
        let before = code_comparisons_on_this_thread();
        let resp = app
            .handle(Route::MagicConsume, request(&attempt(email, code))?)
            .await;
        let mut body = body_json(&resp);
        body["errors"][0]["meta"]["request_id"] = Value::Null;
        seen.push((
            resp.status().as_u16(),
            body,
            log.take(),
            code_comparisons_on_this_thread() - before,
        ));
    }
    let (no_link, wrong) = (&seen[0], &seen[1]);
    ensure(
        no_link.0 == 401 && no_link.1["errors"][0]["meta"]["reason"] == "invalid",
        || format!("no link answered {} {}", no_link.0, no_link.1),
    )?;
    ensure(no_link.0 == wrong.0 && no_link.1 == wrong.1, || {
        format!("answers differ: {:?} vs {:?}", no_link.1, wrong.1)
    })?;
    ensure(no_link.2 == wrong.2 && no_link.2.len() >= 4, || {
        format!(
            "DynamoDB operations differ: {:?} vs {:?}",
            no_link.2, wrong.2
        )
    })?;
    ensure(no_link.3 == wrong.3 && no_link.3 >= 1, || {
        format!("code comparisons differ: {} vs {}", no_link.3, wrong.3)
    })
}

/// CONTRACT §3: "a retry resends the same ones". A job processed again (its stream record
/// redelivered after the mail went out but before the job was retired) mails the same
/// link and code, and the link stays the newest; once the link is used, a retry sends
/// nothing.
async fn retried_job() -> Result<(), String> {
    use contact_auth::handlers::mailer::{process_job, Outcome};
    let ses = init()?;
    let app = fresh(&Value::Null).await;
    let mailer = app.mailer_app(SesMailer::from_env().await);
    let email = format!("retry-{}@example.com", new_id());
    record_secret(&email);
    let job = serde_json::json!([{"op": "job", "job_id": "job-retry", "email": email,
        "slug": "member-academy", "purpose": "register"}]);
    let steps = fixtures::parse_steps(&job)?;
    let mut sent = vec![];
    for round in 0..2 {
        fixtures::setup(&app, &steps).await?;
        let outcome = process_job(&mailer, "job-retry")
            .await
            .map_err(|e| e.to_string())?;
        ensure(matches!(outcome, Outcome::Sent(_)), || {
            format!("round {round}: {outcome:?}")
        })?;
        let mails = mails_to(&ses, &email)?;
        let text = mails
            .last()
            .and_then(|m| m["body"]["text"].as_str())
            .ok_or("no mail")?
            .to_string();
        let token = tokens_in_mail(mails.last().ok_or("no mail")?)
            .into_iter()
            .next()
            .ok_or("no token in the mail")?;
        record_secret(&token);
        let code = text
            .split("sign in: ")
            .nth(1)
            .map(|t| t.chars().take(7).collect::<String>())
            .ok_or("no code in the mail")?;
        sent.push((mails.len(), token, code));
    }
    ensure(sent[1].0 == sent[0].0 + 1, || {
        "the retry sent no second mail".into()
    })?;
    ensure(sent[0].1 == sent[1].1 && sent[0].2 == sent[1].2, || {
        "the retry mailed another link or code".into()
    })?;
    // The first mail's link still signs in (the retry did not supersede it).
    let (status, _) = fixtures::consume(&app, &sent[0].1).await?;
    ensure(status == 200, || {
        format!("consume after the retry: {status}")
    })?;
    // A retry after the link was used sends nothing.
    fixtures::setup(&app, &steps).await?;
    let outcome = process_job(&mailer, "job-retry")
        .await
        .map_err(|e| e.to_string())?;
    ensure(outcome == Outcome::Nothing, || {
        format!("retry after use: {outcome:?}")
    })?;
    ensure(mails_to(&ses, &email)?.len() == sent[1].0, || {
        "a used link was mailed again".into()
    })
}

/// A request with a Bearer token (`post_event` with a method and an Authorization header).
fn authed_event(method: &str, route: Route, access: &str, body: Value) -> String {
    let mut event: Value =
        serde_json::from_str(&fixtures::post_event(route.path(), body)).unwrap_or_default();
    event["headers"]["authorization"] = Value::String(format!("Bearer {access}"));
    event["requestContext"]["http"]["method"] = Value::String(method.into());
    event["routeKey"] = Value::String(format!("{method} {}", route.path()));
    event["requestContext"]["routeKey"] = event["routeKey"].clone();
    event.to_string()
}

/// The ids of the mail jobs in the table.
async fn job_ids(store: &DynamoStore) -> Vec<String> {
    snapshot(store)
        .await
        .into_keys()
        .filter_map(|(pk, _)| pk.strip_prefix(keys::JOB_PREFIX).map(str::to_string))
        .collect()
}

/// Runs every job in the table through the mailer at `app`'s time.
async fn run_jobs(app: &TestApp) -> Result<(), String> {
    let mailer = app.mailer_app(SesMailer::from_env().await);
    for id in job_ids(&app.store).await {
        contact_auth::handlers::mailer::process_job(&mailer, &id)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The one link of the newest mail to `to` whose subject contains `subject`.
fn link_in_mail(ses: &str, to: &str, subject: &str) -> Result<String, String> {
    let mails = mails_to(ses, to)?;
    let mail = mails
        .iter()
        .rev()
        .find(|m| m["subject"].as_str().is_some_and(|s| s.contains(subject)))
        .ok_or(format!("no mail \"{subject}\""))?;
    let token = tokens_in_mail(mail)
        .into_iter()
        .next()
        .ok_or("no link in the mail")?;
    record_secret(&token);
    Ok(token)
}

/// Issue 17: an undo link works until 7 days after its mail (injected clocks, both sides
/// of the end), restores the address the chain started from, reports whether it removed
/// a password, and works once.
async fn undo_window() -> Result<(), String> {
    let ses = init()?;
    let base = fresh(&Value::Null).await;
    let t0 = base.now();
    let app = base.at(t0);
    let owner = format!("undo-{}@example.com", new_id());
    let moved = format!("moved-{}@example.com", new_id());
    record_secret(&owner);
    record_secret(&moved);
    let (status, pair) = fixtures::consume(&app, &put_link(&app, &owner).await?).await?;
    ensure(status == 200, || format!("sign-in {status}"))?;
    let access = pair["access_token"].as_str().unwrap_or("").to_string();
    record_secret(&access);
    record_secret(pair["refresh_token"].as_str().unwrap_or(""));
    let patch = serde_json::json!({"data": {"type": "contacts", "attributes": {"email": moved}}});
    let resp = app
        .handle(
            Route::MePatch,
            request(&authed_event("PATCH", Route::MePatch, &access, patch))?,
        )
        .await;
    ensure(resp.status() == 200, || {
        format!("PATCH {}", body_json(&resp))
    })?;
    run_jobs(&app).await?;
    let undo = link_in_mail(&ses, &owner, "being changed")?;
    let confirm = link_in_mail(&ses, &moved, "")?;
    let (status, _) = fixtures::consume(&app.at(t0 + 60), &confirm).await?;
    ensure(status == 200, || format!("confirm {status}"))?;
    let ttl = app.config.undo_ttl;
    // One second past the 7 days: refused as expired, and nothing moved.
    let late = app
        .at(t0 + ttl + 1)
        .handle(Route::MagicConsume, request(&consume_event(&undo))?)
        .await;
    let body = body_json(&late);
    ensure(
        late.status() == 401 && body["errors"][0]["meta"]["reason"] == "expired",
        || format!("undo after 7 days: {} {body}", late.status()),
    )?;
    // One second before the end: restored to the origin, no password to remove.
    let ok = app
        .at(t0 + ttl - 1)
        .handle(Route::MagicConsume, request(&consume_event(&undo))?)
        .await;
    let body = body_json(&ok);
    ensure(
        ok.status() == 200 && body["undone"] == "email_change" && body["password_removed"] == false,
        || format!("undo within 7 days: {} {body}", ok.status()),
    )?;
    let contact = app
        .store
        .contact_id_by_email(
            &contact_auth::domain::email::parse_email(&owner)
                .map_err(|e| e.detail())?
                .key,
        )
        .await
        .map_err(|e| e.to_string())?;
    ensure(contact.is_some(), || {
        "the origin address is not back".into()
    })?;
    // Twice: refused (the chain ended with the first undo).
    let again = app
        .at(t0 + ttl - 1)
        .handle(Route::MagicConsume, request(&consume_event(&undo))?)
        .await;
    ensure(again.status() == 401, || {
        format!("second undo {}", again.status())
    })
}

/// Issue 17 item 4: a link made under a key works after one plain rotation (its key is
/// the previous one) and dies once the key is revoked (`rotate-key --revoke` leaves no
/// previous key); the code is refused with it.
async fn revoked_key_links() -> Result<(), String> {
    let app = fresh(&Value::Null).await;
    let rsa1 = include_str!("../shared/src/domain/testdata/test-only-rsa-1.pem");
    let rsa2 = include_str!("../shared/src/domain/testdata/test-only-rsa-2.pem");
    let old: Value = serde_json::from_str(&testkit::test_key_doc()).map_err(|e| e.to_string())?;
    let rotated = serde_json::json!({
        "signing_secret": old["next_signing_secret"], "signing_key": rsa2,
        "previous_signing_secret": old["signing_secret"], "previous_signing_key": rsa1,
        "next_signing_secret": "replay-test-third-signing-secret-012345678", "next_signing_key": rsa1,
    })
    .to_string();
    let revoked = serde_json::json!({
        "signing_secret": "replay-test-revoke-signing-secret-01234567", "signing_key": rsa1,
        "next_signing_secret": "replay-test-revoke-next-signing-secret-0123", "next_signing_key": rsa2,
    })
    .to_string();
    let under = |doc: &str| TestApp::new(app.config.clone(), app.store.clone(), doc);
    let consume_under = |doc: String, token: String| {
        let a = under(&doc);
        async move {
            let resp = a
                .handle(Route::MagicConsume, request(&consume_event(&token))?)
                .await;
            let body = body_json(&resp);
            if let Some(t) = body["refresh_token"].as_str() {
                record_secret(t);
            }
            Ok::<_, String>((resp.status().as_u16(), body))
        }
    };
    let a = put_link(&app, &format!("rot-{}@example.com", new_id())).await?;
    let (status, body) = consume_under(rotated, a).await?;
    ensure(status == 200, || {
        format!("after a rotation: {status} {body}")
    })?;
    let b = put_link(&app, &format!("rev-{}@example.com", new_id())).await?;
    let (status, body) = consume_under(revoked, b.clone()).await?;
    ensure(
        status == 401 && body["errors"][0]["meta"]["reason"] == "expired",
        || format!("after a revoke: {status} {body}"),
    )?;
    // The refusal changed nothing: the same link still works under the old document.
    let (status, body) = consume_under(testkit::test_key_doc(), b).await?;
    ensure(status == 200, || {
        format!("under the old keys: {status} {body}")
    })
}

/// Issue 17: every send and attempt window, tested on both sides of its end with stopped
/// clocks, and `Retry-After` equal to the time left: the send cooldown (60 s), sends per
/// team and email (5 an hour), failed logins (10 per 15 minutes), sign-in codes per email
/// (10 an hour). (Recent authentication, 590/601 s, and the refresh grace, 5/11 s, are
/// fixtures: events/me-patch/email-change-recent|not-recent, events/refresh/reused-*;
/// their exact edges are unit tests and the session scenarios.)
async fn rate_windows() -> Result<(), String> {
    let base = fresh(&Value::Null).await;
    let mut cfg = base.config.clone();
    cfg.ip_per_minute = 100_000;
    cfg.ip_login_per_minute = 100_000;
    cfg.code_attempts_per_ip_hour = 100_000;
    let base = base.with_config(cfg);
    let pw = "violet-kettle-harbour-42";
    members(&base, pw).await?;
    // Starts of fresh hour windows (also 15-minute and minute windows), well ahead.
    let hour = |n: i64| contact_auth::domain::rate::window_start(base.now(), 3600) + n * 3600;
    let call = |t: i64, route: Route, event: String| {
        let app = base.at(t);
        async move {
            let resp = app.handle(route, request(&event)?).await;
            let retry = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<i64>().ok());
            let body = body_json(&resp);
            if let Some(t) = body["refresh_token"].as_str() {
                record_secret(t);
            }
            Ok::<_, String>((resp.status().as_u16(), retry))
        }
    };
    let magic = |email: &str| {
        fixtures::post_event(
            Route::Magic.path(),
            serde_json::json!({"data": {"type": "magic_link_requests",
                "attributes": {"email": email, "slug": "member-academy"}}}),
        )
    };
    let want = |what: &str, got: (u16, Option<i64>), status: u16, retry: Option<i64>| {
        ensure(got == (status, retry), || {
            format!("{what}: got {got:?}, want ({status}, {retry:?})")
        })
    };

    // The send cooldown: 60 s after a send, not 59.
    let t = hour(2) + 100;
    let m = magic("cooldown@example.com");
    want(
        "first send",
        call(t, Route::Magic, m.clone()).await?,
        202,
        None,
    )?;
    want(
        "59 s later",
        call(t + 59, Route::Magic, m.clone()).await?,
        429,
        Some(1),
    )?;
    want(
        "20 s later",
        call(t + 20, Route::Magic, m.clone()).await?,
        429,
        Some(40),
    )?;
    want(
        "60 s later",
        call(t + 60, Route::Magic, m.clone()).await?,
        202,
        None,
    )?;

    // Five sends an hour (a minute apart); the sixth waits for the window's end, and the
    // next window takes it.
    let t = hour(4);
    let m = magic("hourly@example.com");
    for i in 0..5 {
        want(
            "send",
            call(t + i * 60, Route::Magic, m.clone()).await?,
            202,
            None,
        )?;
    }
    want(
        "sixth",
        call(t + 300, Route::Magic, m.clone()).await?,
        429,
        Some(3300),
    )?;
    want(
        "last second",
        call(t + 3599, Route::Magic, m.clone()).await?,
        429,
        Some(1),
    )?;
    want(
        "next window",
        call(t + 3600, Route::Magic, m.clone()).await?,
        202,
        None,
    )?;

    // Ten failed logins per 15 minutes; the eleventh attempt waits for the window's end.
    let t = hour(6);
    let wrong = login_event(
        "with-password@example.com",
        "wrong-password-1",
        "member-academy",
    );
    record_secret("wrong-password-1");
    for i in 0..10 {
        want(
            "wrong password",
            call(t + i, Route::Login, wrong.clone()).await?,
            401,
            None,
        )?;
    }
    want(
        "eleventh",
        call(t + 100, Route::Login, wrong.clone()).await?,
        429,
        Some(800),
    )?;
    let right = login_event("with-password@example.com", pw, "member-academy");
    want(
        "right, same window",
        call(t + 899, Route::Login, right.clone()).await?,
        429,
        Some(1),
    )?;
    want(
        "right, next window",
        call(t + 900, Route::Login, right).await?,
        200,
        None,
    )?;

    // Ten code attempts per email an hour, across teams.
    let t = hour(8);
    let code = |slug: &str| {
        fixtures::post_event(
            Route::MagicConsume.path(),
            serde_json::json!({"data": {"type": "magic_link_consumes",
                "attributes": {"email": "coded@example.com", "code": "000000", "slug": slug}}}),
        )
    };
    for i in 0..10 {
        let slug = if i % 2 == 0 {
            "member-academy"
        } else {
            "my-hub"
        };
        want(
            "wrong code",
            call(t + i, Route::MagicConsume, code(slug)).await?,
            401,
            None,
        )?;
    }
    want(
        "eleventh code",
        call(t + 600, Route::MagicConsume, code("member-academy")).await?,
        429,
        Some(3000),
    )?;
    want(
        "next hour",
        call(t + 3600, Route::MagicConsume, code("member-academy")).await?,
        401,
        None,
    )
}

/// Issue 17 item 2 (and the review after it): an undo removes a password set or changed
/// less than 7 days (the undo lifetime) before the chain began — the earlier of the first
/// request and the asking session's sign-in — so a password a stolen session set and then
/// logged in with does not survive; one set earlier is kept. Both sides of the boundary,
/// with stopped clocks: set at t0 − 7 d − 1 s (kept) and at t0 − 7 d (removed), where t0
/// is the sign-in of the session that asks.
async fn undo_password_age() -> Result<(), String> {
    let ses = init()?;
    let base = fresh(&Value::Null).await;
    let t0 = base.now();
    let ttl = base.config.undo_ttl;
    let pw = "orchid-lantern-meadow-58";
    record_secret(pw);
    for (set_at, removed) in [(t0 - ttl - 1, false), (t0 - ttl, true)] {
        let owner = format!("aged-{}@example.com", new_id());
        let moved = format!("aged-moved-{}@example.com", new_id());
        record_secret(&owner);
        record_secret(&moved);
        // Signed in at `set_at`, sets the password then (the setup steps write it at the
        // setup app's stopped clock; an access token from then would be expired now).
        let steps = fixtures::parse_steps(&serde_json::json!([
            {"op": "session", "email": owner},
            {"op": "password", "password": pw},
        ]))?;
        for secret in fixtures::setup(&base.at(set_at), &steps).await?.secrets {
            record_secret(&secret);
        }
        // A new sign-in at t0 asks for the change.
        let now = base.at(t0);
        let (status, pair) = fixtures::consume(&now, &put_link(&now, &owner).await?).await?;
        ensure(status == 200, || format!("second sign-in {status} {pair}"))?;
        let access = pair["access_token"].as_str().unwrap_or("").to_string();
        record_secret(&access);
        record_secret(pair["refresh_token"].as_str().unwrap_or(""));
        let patch =
            serde_json::json!({"data": {"type": "contacts", "attributes": {"email": moved}}});
        let later = base.at(t0 + 10);
        let resp = later
            .handle(
                Route::MePatch,
                request(&authed_event("PATCH", Route::MePatch, &access, patch))?,
            )
            .await;
        ensure(resp.status() == 200, || {
            format!("PATCH {}", body_json(&resp))
        })?;
        run_jobs(&later).await?;
        let undo = link_in_mail(&ses, &owner, "being changed")?;
        let (status, _) =
            fixtures::consume(&base.at(t0 + 20), &link_in_mail(&ses, &moved, "")?).await?;
        ensure(status == 200, || format!("confirm {status}"))?;
        let undo = if removed {
            undo
        } else {
            // A password from before the chain may move the account on (X1 -> X2) while
            // the chain is open, and the undo link of that change goes to the origin.
            let login = base
                .at(t0 + 25)
                .handle(
                    Route::Login,
                    request(&login_event(&moved, pw, "member-academy"))?,
                )
                .await;
            let login = body_json(&login);
            let access = login["access_token"].as_str().unwrap_or("").to_string();
            record_secret(&access);
            record_secret(login["refresh_token"].as_str().unwrap_or(""));
            let moved2 = format!("aged-moved2-{}@example.com", new_id());
            record_secret(&moved2);
            let patch =
                serde_json::json!({"data": {"type": "contacts", "attributes": {"email": moved2}}});
            let resp = base
                .at(t0 + 26)
                .handle(
                    Route::MePatch,
                    request(&authed_event("PATCH", Route::MePatch, &access, patch))?,
                )
                .await;
            ensure(resp.status() == 200, || {
                format!("X1 -> X2 {}", body_json(&resp))
            })?;
            run_jobs(&base.at(t0 + 26)).await?;
            let undo_mails = |to: &str| -> Result<usize, String> {
                Ok(mails_to(&ses, to)?
                    .iter()
                    .filter(|m| {
                        m["subject"]
                            .as_str()
                            .is_some_and(|s| s.contains("being changed"))
                    })
                    .count())
            };
            let (to_origin, to_x1) = (undo_mails(&owner)?, undo_mails(&moved)?);
            ensure(to_origin == 2 && to_x1 == 0, || {
                format!("undo mails: {to_origin} to the origin, {to_x1} to X1")
            })?;
            link_in_mail(&ses, &owner, "being changed")?
        };
        let (status, body) = fixtures::consume(&base.at(t0 + 30), &undo).await?;
        ensure(status == 200 && body["password_removed"] == removed, || {
            format!(
                "password set {} s before the sign-in: {status} {body}",
                t0 - set_at
            )
        })?;
        let key = contact_auth::domain::email::parse_email(&owner)
            .map_err(|e| e.detail())?
            .key;
        let back = base
            .store
            .contact_id_by_email(&key)
            .await
            .map_err(|e| e.to_string())?;
        ensure(back.is_some(), || {
            "the undo did not restore the origin".into()
        })?;
    }
    Ok(())
}

/// A new refresh record for `contact` in `hub` (not stored), made at `now`.
fn new_record(
    contact: &contact_auth::domain::model::Contact,
    hub: &contact_auth::domain::model::Hub,
    now: i64,
) -> Result<contact_auth::domain::model::RefreshRecord, String> {
    Ok(contact_auth::domain::model::RefreshRecord {
        token_hash: RawToken::generate().map_err(|e| e.to_string())?.hash(),
        contact_id: contact.contact_id.clone(),
        team_id: hub.team_id.clone(),
        hub_id: Some(hub.hub_id.clone()),
        family_id: new_id(),
        token_version: contact.token_version,
        amr: vec!["pwd".into()],
        auth_time: now,
        created_at: now,
        expires_at: now + 3600,
        start: None,
        sign_in_notice: None,
    })
}

/// The stored session of `hash`.
async fn session(
    store: &DynamoStore,
    hash: &contact_auth::domain::secret::TokenHash,
) -> Result<contact_auth::ports::RefreshState, String> {
    use contact_auth::ports::Sessions;
    store
        .refresh_state(hash)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no session".into())
}

/// Rotates `old` into a new record for `contact` at `at`: the outcome, the new record,
/// and whether it is stored.
async fn rotate(
    store: &DynamoStore,
    old: &contact_auth::ports::RefreshState,
    contact: &contact_auth::domain::model::Contact,
    hub: &contact_auth::domain::model::Hub,
    at: i64,
    grace_since: Option<i64>,
) -> Result<
    (
        contact_auth::ports::Rotation,
        contact_auth::domain::model::RefreshRecord,
        bool,
    ),
    String,
> {
    use contact_auth::ports::Sessions;
    let next = new_record(contact, hub, at)?;
    let out = store
        .rotate_refresh(old, &next, at, grace_since)
        .await
        .map_err(|e| e.to_string())?;
    let kept = store
        .refresh_state(&next.token_hash)
        .await
        .map_err(|e| e.to_string())?
        .is_some();
    Ok((out, next, kept))
}

/// A link of `purpose` to `email` for `contact`, stored as the mailer stores it (and, for
/// the sign-in purposes, made the newest for its team and address).
async fn stored_link(
    store: &DynamoStore,
    purpose: contact_auth::domain::model::LinkPurpose,
    team_id: &contact_auth::domain::ids::TeamId,
    email: &str,
    contact: &contact_auth::domain::model::Contact,
    change_id: Option<&str>,
    now: i64,
) -> Result<contact_auth::domain::model::MagicLink, String> {
    use contact_auth::ports::MagicLinks;
    let e = |e: contact_auth::errors::PortError| e.to_string();
    let link = contact_auth::domain::model::MagicLink {
        token_hash: RawToken::generate().map_err(|e| e.to_string())?.hash(),
        purpose,
        team_id: team_id.clone(),
        hub_id: None,
        email: email.into(),
        email_key: contact_auth::domain::email::parse_email(email)
            .map_err(|e| e.detail())?
            .key,
        contact_id: Some(contact.contact_id.clone()),
        redirect_url: None,
        created_at: now,
        expires_at: now + 900,
        used_at: None,
        change_id: change_id.map(str::to_string),
        pw_version: None,
        chain_id: contact.undo_chain.as_ref().map(|c| c.chain_id.clone()),
        key_id: None,
        code_hash: None,
        code_attempts: 0,
        code_challenge: None,
        locale: None,
    };
    let put = store
        .put_magic_link(&link, Some(contact.token_version))
        .await
        .map_err(e)?;
    ensure(put, || "the link was not stored".into())?;
    if purpose.supersedes() {
        store.make_newest(&link).await.map_err(e)?;
    }
    Ok(link)
}

/// Issue 17, `make mutants-conditions`: every conditional write, called as the losing one
/// of two requests at once would call it — with what it read before the other one wrote
/// — refuses and writes nothing, next to a control that the same call on a fresh read
/// succeeds. The handlers check most of these states before they write; under a race only
/// the conditions hold, so only this scenario judges them.
async fn stale_reads() -> Result<(), String> {
    use contact_auth::domain::email_change::UndoChain;
    use contact_auth::domain::model::{Contact, JobPurpose, LinkRefusal, MailJob};
    use contact_auth::domain::model::{LinkPurpose, MembershipStatus};
    use contact_auth::flows::account::notice_job;
    use contact_auth::ports::{
        ConsumeAs, Consumed, Counter, Directory, Enqueued, MagicLinks, MailJobs, PendingChange,
        ProfileChanges, Rotation, Sessions, UndoEmailChange,
    };
    init()?;
    let app = fresh(&Value::Null).await;
    let store = &app.store;
    let now = app.now();
    let e = |e: contact_auth::errors::PortError| e.to_string();
    let hub = store
        .hub_by_slug("member-academy")
        .await
        .map_err(e)?
        .ok_or("no demo hub")?;
    // A member, signed in by link.
    let email = format!("stale-{}@example.com", new_id());
    record_secret(&email);
    let token = put_link(&app, &email).await?;
    let (status, pair) = fixtures::consume(&app, &token).await?;
    ensure(status == 200, || format!("sign-in {status} {pair}"))?;
    let rt = pair["refresh_token"].as_str().unwrap_or("").to_string();
    record_secret(&rt);
    record_secret(pair["access_token"].as_str().unwrap_or(""));
    let key = contact_auth::domain::email::parse_email(&email)
        .map_err(|e| e.detail())?
        .key;
    let cid = store
        .contact_id_by_email(&key)
        .await
        .map_err(e)?
        .ok_or("no contact")?;
    let read = || async {
        store
            .contact(&cid)
            .await
            .map_err(e)?
            .ok_or("no profile".to_string())
    };
    let stored = |hash: contact_auth::domain::secret::TokenHash| async move {
        Ok::<bool, String>(store.refresh_state(&hash).await.map_err(e)?.is_some())
    };
    let contact = read().await?;
    let link_of = |token: &str| {
        let hash = RawToken::parse(token).map(|t| t.hash());
        async move {
            let hash = hash.ok_or("not a token")?;
            let found = store.magic_link(&hash).await.map_err(e)?;
            found.ok_or("no link".to_string())
        }
    };

    // Links: the same link consumed twice (read before the first consume wrote).
    let (mut link, _) = link_of(&token).await?;
    ensure(link.used_at.is_some(), || {
        "consume left the link unused".into()
    })?;
    link.used_at = None;
    let who = ConsumeAs::Existing {
        contact_id: cid.clone(),
        token_version: contact.token_version,
        join: false,
    };
    let r = new_record(&contact, &hub, now)?;
    let out = store
        .consume_magic_link(&link, &who, &r, now)
        .await
        .map_err(e)?;
    ensure(out == Consumed::Refused(LinkRefusal::Used), || {
        format!("a used link consumed again: {out:?}")
    })?;
    ensure(!stored(r.token_hash.clone()).await?, || {
        "a used link stored a session".into()
    })?;
    // A link at its expiry (read before it expired) is refused; a second before, it works.
    let token2 = put_link(&app, &email).await?;
    let (link2, _) = link_of(&token2).await?;
    for (at, done) in [(link2.expires_at, false), (link2.expires_at - 1, true)] {
        let r = new_record(&contact, &hub, at)?;
        let out = store
            .consume_magic_link(&link2, &who, &r, at)
            .await
            .map_err(e)?;
        let want = if done {
            Consumed::Done
        } else {
            Consumed::Refused(LinkRefusal::Expired)
        };
        ensure(out == want, || {
            format!(
                "link consumed {} s before its expiry: {out:?}",
                link2.expires_at - at
            )
        })?;
        ensure(stored(r.token_hash.clone()).await? == done, || {
            format!("session stored: {}", !done)
        })?;
    }

    // A sign-in link to an address the profile has left (read before an email change).
    let elsewhere = format!("stale-left-{}@example.com", new_id());
    record_secret(&elsewhere);
    let token3 = put_link(&app, &elsewhere).await?;
    let (link3, _) = link_of(&token3).await?;
    let r = new_record(&contact, &hub, now)?;
    let out = store
        .consume_magic_link(&link3, &who, &r, now)
        .await
        .map_err(e)?;
    ensure(
        matches!(out, Consumed::Refused(_)) && !stored(r.token_hash.clone()).await?,
        || format!("a link to an address the account left: {out:?}"),
    )?;

    // Sessions: one token rotated twice from the same read. (The port says `OldChanged`
    // when the token's own condition fails: the handler reads it again, refuses it then.)
    let hash = RawToken::parse(&rt).ok_or("refresh token")?.hash();
    let state = session(store, &hash).await?;
    let (out, first, _) = rotate(store, &state, &contact, &hub, now, None).await?;
    ensure(out == Rotation::Done, || format!("rotation: {out:?}"))?;
    let (out, _, kept) = rotate(store, &state, &contact, &hub, now, None).await?;
    ensure(out != Rotation::Done && !kept, || {
        format!("one token rotated twice: {out:?}")
    })?;
    // A second tab's refresh inside the grace: only if the token was rotated since then.
    let rotated = session(store, &hash).await?;
    let at = rotated.rotated_at.ok_or("not rotated")?;
    for (since, done) in [(at + 1, false), (at, true)] {
        let (out, _, kept) = rotate(store, &rotated, &contact, &hub, now, Some(since)).await?;
        ensure((out == Rotation::Done) == done && kept == done, || {
            format!("grace since {} s after the rotation: {out:?}", since - at)
        })?;
    }
    // A token at its expiry (read before), also inside a grace; a second before, it rotates.
    let live = session(store, &first.token_hash).await?;
    let end = live.record.expires_at;
    let (out, _, kept) = rotate(store, &live, &contact, &hub, end, None).await?;
    ensure(out != Rotation::Done && !kept, || {
        format!("rotated at its expiry: {out:?}")
    })?;
    let (out, _, _) = rotate(store, &live, &contact, &hub, end - 1, None).await?;
    ensure(out == Rotation::Done, || {
        format!("rotated a second before its expiry: {out:?}")
    })?;
    let live = session(store, &first.token_hash).await?;
    let (out, _, kept) = rotate(store, &live, &contact, &hub, end, Some(end - 5)).await?;
    ensure(out != Rotation::Done && !kept, || {
        format!("grace rotation at its expiry: {out:?}")
    })?;
    // A token that was never stored rotates nothing and leaves no item.
    let ghost_token = new_record(&contact, &hub, now)?;
    let ghost_state = contact_auth::ports::RefreshState {
        record: ghost_token.clone(),
        rotated_at: None,
        revoked_at: None,
    };
    let (out, _, kept) = rotate(store, &ghost_state, &contact, &hub, now, None).await?;
    ensure(out != Rotation::Done && !kept, || {
        format!("an unknown token rotated: {out:?}")
    })?;
    // Revoking a family with a token that is gone writes no item for the token.
    store
        .revoke_family(
            &ghost_token,
            Some(&ghost_token.token_hash),
            contact_auth::domain::session::EndReason::Logout,
            now,
            now + 60,
        )
        .await
        .map_err(e)?;
    let items = snapshot(store).await;
    ensure(
        !items.contains_key(&keys::refresh(&ghost_token.token_hash)),
        || "revoking a vanished token wrote it back".into(),
    )?;
    // …but the family is revoked and its session ended all the same.
    ensure(
        items.contains_key(&keys::family(&ghost_token.family_id)),
        || "revoking with a vanished token left the family unrevoked".into(),
    )?;
    let ended = items
        .get(&keys::session(
            &ghost_token.contact_id,
            &ghost_token.team_id,
            &ghost_token.family_id,
        ))
        .is_some_and(|i| i.contains_key("ended_at"));
    ensure(ended, || {
        "revoking with a vanished token left the session open".into()
    })?;

    // Login: a rehash from a read before the password changed keeps the new password.
    let pw_before = job_ids(store).await.len();
    // A first password, then a second one from a read before the first was set.
    for (hash, want) in [("hash-one", true), ("hash-two", false)] {
        let set = store
            .set_first_password(
                &cid,
                hash,
                now,
                &notice_job(
                    JobPurpose::PasswordSetNotice,
                    &hub.team_id,
                    &contact,
                    None,
                    now,
                ),
            )
            .await
            .map_err(e)?;
        ensure(set == want, || format!("first password {hash}: set {set}"))?;
    }
    let c = read().await?;
    ensure(c.password_hash.as_deref() == Some("hash-one"), || {
        format!("the first password was replaced: {:?}", c.password_hash)
    })?;
    ensure(job_ids(store).await.len() == pw_before + 1, || {
        "the refused first password queued a notice".into()
    })?;
    let failures = Counter::window("login-fail-stale", now, 900);
    for (old, kept) in [("hash-zero", true), ("hash-one", false)] {
        let r = new_record(&c, &hub, now)?;
        store
            .record_login_success(&r, &failures, Some((old, "hash-rehashed")))
            .await
            .map_err(e)?;
        let after = read().await?.password_hash;
        ensure(stored(r.token_hash.clone()).await?, || {
            "the login stored no session".into()
        })?;
        ensure((after.as_deref() == Some("hash-one")) == kept, || {
            format!("rehash from {old}: the hash is now {after:?}")
        })?;
    }
    // Password change from a read before another change (the hash moved), or before
    // logout-everywhere (the token version moved): refused, nothing written.
    let before_logout = read().await?;
    store
        .end_all_sessions(&cid, &TeamId::from_stored(testkit::seed::DEMO_TEAM), 0)
        .await
        .map_err(e)?;
    // A sign-in link consumed from a read before logout-everywhere (the token version
    // moved): refused, the link stays unused and the session it would mint is not stored.
    let token5 = put_link(&app, &email).await?;
    let (link5, _) = link_of(&token5).await?;
    let stale_who = ConsumeAs::Existing {
        contact_id: cid.clone(),
        token_version: before_logout.token_version,
        join: false,
    };
    let r = new_record(&before_logout, &hub, now)?;
    let out = store
        .consume_magic_link(&link5, &stale_who, &r, now)
        .await
        .map_err(e)?;
    let unused = link_of(&token5).await?.0.used_at.is_none();
    ensure(
        out == Consumed::VersionChanged && unused && !stored(r.token_hash.clone()).await?,
        || format!("a link consumed over a moved token version: {out:?}, unused {unused}"),
    )?;
    let before_rehash = Contact {
        password_hash: Some("hash-one".into()),
        ..read().await?
    };
    for (stale, what) in [(&before_rehash, "hash"), (&before_logout, "token version")] {
        let jobs = job_ids(store).await.len();
        let r = new_record(stale, &hub, now)?;
        let ok = store
            .change_password(
                stale,
                "hash-new",
                &r,
                now,
                &notice_job(
                    JobPurpose::PasswordChangeNotice,
                    &hub.team_id,
                    stale,
                    None,
                    now,
                ),
            )
            .await
            .map_err(e)?;
        let after = read().await?;
        ensure(
            !ok && after.password_hash.as_deref() == Some("hash-rehashed"),
            || format!("a password change over a moved {what}: {ok}"),
        )?;
        ensure(
            !stored(r.token_hash.clone()).await? && job_ids(store).await.len() == jobs,
            || format!("a refused password change over a moved {what} wrote"),
        )?;
    }
    let current = read().await?;
    let r = new_record(&current, &hub, now)?;
    let ok = store
        .change_password(
            &current,
            "hash-new",
            &r,
            now,
            &notice_job(
                JobPurpose::PasswordChangeNotice,
                &hub.team_id,
                &current,
                None,
                now,
            ),
        )
        .await
        .map_err(e)?;
    ensure(ok, || "the control password change failed".into())?;

    // Email change: two requests at once cannot both start a chain.
    let current = read().await?;
    let chain = |id: &str| PendingChange {
        pending_email: format!("stale-next-{id}@example.com"),
        chain: UndoChain {
            chain_id: id.into(),
            origin_email: current.email.clone(),
            origin_key: current.email_key.clone(),
            boundary: now - app.config.undo_ttl,
            switched_at: None,
            until: now + app.config.undo_ttl,
        },
        token_version: current.token_version,
    };
    let mut outcomes = vec![];
    for id in ["chain-a", "chain-b"] {
        let change = chain(id);
        let job = MailJob {
            change_id: Some(new_id()),
            email: change.pending_email.clone(),
            ..notice_job(JobPurpose::EmailChange, &hub.team_id, &current, None, now)
        };
        let out = store
            .request_email_change(&job, &[], &change, now)
            .await
            .map_err(e)?;
        let queued = store.job(&job.job_id).await.map_err(e)?.is_some();
        outcomes.push((out, queued));
    }
    let on_profile = read().await?.undo_chain.map(|c| c.chain_id);
    ensure(
        outcomes == [(Enqueued::Queued, true), (Enqueued::Stale, false)]
            && on_profile.as_deref() == Some("chain-a"),
        || format!("two chains at once: {outcomes:?}, profile {on_profile:?}"),
    )?;
    // A request from a read before logout-everywhere (the token version moved) is stale
    // too, even for the chain the profile carries: nothing queued, the change id stays.
    let pending_before = read().await?.email_change_id;
    let stale_change = PendingChange {
        token_version: before_logout.token_version,
        ..chain("chain-a")
    };
    let job = MailJob {
        change_id: Some(new_id()),
        email: stale_change.pending_email.clone(),
        ..notice_job(JobPurpose::EmailChange, &hub.team_id, &current, None, now)
    };
    let out = store
        .request_email_change(&job, &[], &stale_change, now)
        .await
        .map_err(e)?;
    let queued = store.job(&job.job_id).await.map_err(e)?.is_some();
    let pending_after = read().await?.email_change_id;
    ensure(
        out == Enqueued::Stale && !queued && pending_after == pending_before,
        || format!("a change requested over a moved token version: {out:?}, queued {queued}"),
    )?;

    // A sign-in link read while the member was active, consumed after a ban.
    let token4 = put_link(&app, &email).await?;
    let (link4, _) = link_of(&token4).await?;
    let current = read().await?;
    let who_now = ConsumeAs::Existing {
        contact_id: cid.clone(),
        token_version: current.token_version,
        join: false,
    };
    ensure(
        store
            .set_banned(&cid, &hub.team_id, true, now - 1)
            .await
            .map_err(e)?,
        || "the ban found no membership".into(),
    )?;
    let r = new_record(&current, &hub, now)?;
    let out = store
        .consume_magic_link(&link4, &who_now, &r, now)
        .await
        .map_err(e)?;
    ensure(
        out != Consumed::Done && !stored(r.token_hash.clone()).await?,
        || format!("a banned member's link signed in: {out:?}"),
    )?;

    ensure(
        store
            .set_banned(&cid, &hub.team_id, false, now)
            .await
            .map_err(e)?,
        || "the unban found no membership".into(),
    )?;

    // Joining a second team: the membership is created where there is none (the
    // control); a join link read before a ban in that team signs nobody in.
    let team_b = contact_auth::domain::ids::TeamId::from_stored(format!("team-stale-{}", new_id()));
    store
        .put_team(&contact_auth::domain::model::Team {
            team_id: team_b.clone(),
            name: "Stale B".into(),
            primary_hub_id: None,
            sender_address: None,
        })
        .await
        .map_err(e)?;
    for banned in [false, true] {
        let current = read().await?;
        if banned {
            store
                .set_banned(&cid, &team_b, true, now)
                .await
                .map_err(e)?;
        }
        let join = stored_link(
            store,
            LinkPurpose::Join,
            &team_b,
            &current.email,
            &current,
            None,
            now,
        )
        .await?;
        let join_as = ConsumeAs::Existing {
            contact_id: cid.clone(),
            token_version: current.token_version,
            join: true,
        };
        let r = new_record(&current, &hub, now)?;
        let out = store
            .consume_magic_link(&join, &join_as, &r, now)
            .await
            .map_err(e)?;
        let status = store
            .membership(&cid, &team_b)
            .await
            .map_err(e)?
            .map(|m| m.status);
        let want = if banned {
            Some(MembershipStatus::Banned)
        } else {
            Some(MembershipStatus::Active)
        };
        ensure(
            (out == Consumed::Done) != banned
                && stored(r.token_hash.clone()).await? != banned
                && status == want,
            || format!("join (banned {banned}): {out:?}, membership {status:?}"),
        )?;
    }

    // The confirm link of chain-a's change, from a read before another request replaced
    // the change: refused, nothing written; the control confirms it.
    let current = read().await?;
    let change_id = current.email_change_id.clone().ok_or("no pending change")?;
    let new_email = current.pending_email.clone().ok_or("no pending address")?;
    record_secret(&new_email);
    let confirm = stored_link(
        store,
        LinkPurpose::EmailChange,
        &hub.team_id,
        &new_email,
        &current,
        Some(&change_id),
        now,
    )
    .await?;
    for (change, done) in [("change-replaced", false), (change_id.as_str(), true)] {
        let jobs = job_ids(store).await.len();
        let as_change = ConsumeAs::ChangeEmail {
            contact_id: cid.clone(),
            token_version: current.token_version,
            old_email_key: current.email_key.clone(),
            change_id: change.into(),
            notice: Box::new(notice_job(
                JobPurpose::EmailChangedNotice,
                &hub.team_id,
                &current,
                None,
                now,
            )),
        };
        let r = new_record(&current, &hub, now)?;
        let out = store
            .consume_magic_link(&confirm, &as_change, &r, now)
            .await
            .map_err(e)?;
        let moved = read().await?.email == new_email;
        let queued = job_ids(store).await.len() == jobs + 1;
        ensure(
            (out == Consumed::Done) == done
                && moved == done
                && queued == done
                && stored(r.token_hash.clone()).await? == done,
            || format!("confirm with change id {change}: {out:?}, moved {moved}, notice {queued}"),
        )?;
    }

    // An undo of chain-a from reads before the chain was replaced, before a password
    // change (it decides whether the password goes), or before logout-everywhere (the
    // undo must end every session, including newer ones): each refused, the address
    // stays; the control restores the origin.
    let current = read().await?;
    let chain_a = current.undo_chain.clone().ok_or("no chain")?;
    let undo_link = stored_link(
        store,
        LinkPurpose::EmailChangeUndo,
        &hub.team_id,
        &chain_a.origin_email,
        &current,
        Some(&change_id),
        now,
    )
    .await?;
    let undo = UndoEmailChange {
        contact_id: cid.clone(),
        token_version: current.token_version,
        current_email_key: current.email_key.clone(),
        origin_email: chain_a.origin_email.clone(),
        origin_key: chain_a.origin_key.clone(),
        chain_id: Some(chain_a.chain_id.clone()),
        password_version: current.password_version,
        remove_password: false,
    };
    let stale_pv = current
        .password_version
        .checked_sub(1)
        .ok_or("no password version")?;
    let stale_tv = current
        .token_version
        .checked_sub(1)
        .ok_or("no token version")?;
    let cases = [
        (
            UndoEmailChange {
                chain_id: Some("chain-ended".into()),
                ..undo.clone()
            },
            "chain",
        ),
        (
            UndoEmailChange {
                password_version: stale_pv,
                ..undo.clone()
            },
            "password version",
        ),
        (
            UndoEmailChange {
                token_version: stale_tv,
                ..undo.clone()
            },
            "token version",
        ),
        (undo.clone(), "nothing (the control)"),
    ];
    for (u, moved) in cases {
        let done = moved.starts_with("nothing");
        let out = store
            .undo_email_change(&undo_link, &u, now)
            .await
            .map_err(e)?;
        let after = read().await?;
        let restored = after.email_key == chain_a.origin_key;
        ensure(
            (out == Consumed::Done) == done
                && restored == done
                && (after.token_version == current.token_version + 1) == done,
            || format!("an undo over a moved {moved}: {out:?}, restored {restored}"),
        )?;
    }

    // Admin: the same hub written again is fine.
    ensure(store.put_hub(&hub).await.map_err(e)?, || {
        "the hub could not be written again".into()
    })?;

    // Mail jobs: parking a job the mailer already retired (a redelivered record) writes
    // nothing; a redrive from a read before another redrive moved the job sends it once.
    store
        .park_job("stale-vanished-job", "TooManyRequestsException", now)
        .await
        .map_err(e)?;
    ensure(
        !snapshot(store)
            .await
            .contains_key(&keys::job("stale-vanished-job")),
        || "parking a retired job wrote it back".into(),
    )?;
    let parked_job = MailJob {
        job_id: format!("stale-parked-{}", new_id()),
        ..notice_job(
            JobPurpose::PasswordSetNotice,
            &hub.team_id,
            &contact,
            None,
            now,
        )
    };
    ensure(
        store.enqueue_job(&parked_job, &[], now).await.map_err(e)? == Enqueued::Queued,
        || "the job was not queued".into(),
    )?;
    let moves: Vec<(String, bool)> = {
        let mut out = vec![];
        for _ in 0..2 {
            let id = format!("stale-redriven-{}", new_id());
            let moved = store.redrive_job(&parked_job, &id, now).await.map_err(e)?;
            out.push((id, moved));
        }
        out
    };
    let jobs_now = job_ids(store).await;
    ensure(
        moves[0].1
            && !moves[1].1
            && jobs_now.contains(&moves[0].0)
            && !jobs_now.contains(&moves[1].0)
            && !jobs_now.contains(&parked_job.job_id),
        || format!("two redrives of one job: {moves:?}, jobs {jobs_now:?}"),
    )?;

    // A contact that does not exist (deleted meanwhile): nothing writes an item for it.
    let ghost = ContactId::generate();
    let _ = store
        .end_all_sessions(&ghost, &TeamId::from_stored(testkit::seed::DEMO_TEAM), 0)
        .await;
    let tos = ProfileChanges {
        tos_version: Some(Some("v9".into())),
        ..ProfileChanges::default()
    };
    let _ = store.update_profile(&ghost, &tos).await;
    let ghost_contact = Contact {
        contact_id: ghost.clone(),
        ..current.clone()
    };
    let set = store
        .set_first_password(
            &ghost,
            "hash-ghost",
            now,
            &notice_job(
                JobPurpose::PasswordSetNotice,
                &hub.team_id,
                &ghost_contact,
                None,
                now,
            ),
        )
        .await;
    let banned = store
        .set_banned(&ghost, &hub.team_id, true, now)
        .await
        .map_err(e)?;
    let left: Vec<_> = snapshot(store)
        .await
        .into_keys()
        .filter(|(pk, _)| pk.contains(ghost.as_str()))
        .collect();
    ensure(
        left.is_empty() && !banned && !matches!(set, Ok(true)),
        || {
            format!("writes for a contact that does not exist: {left:?}, banned {banned}, password {set:?}")
        },
    )
}

/// Issue 17: once a reuse is detected, the family's newest token (whoever holds it, the
/// member or the thief) is refused too; after logout-everywhere, every refresh token from
/// before is refused. The refresh handler reads only the presented token, so the rotation
/// transaction's family and token-version conditions decide both.
async fn refresh_after_revocations() -> Result<(), String> {
    init()?;
    let app = fresh(&Value::Null).await;
    let t0 = app.now();
    let grace = app.config.refresh_grace;
    let email = format!("revoked-{}@example.com", new_id());
    record_secret(&email);
    let refresh = |at: i64, rt: String| {
        let app = app.at(at);
        async move { refresh_with(&app, &rt).await }
    };
    let sign_in = |app: TestApp| {
        let email = email.clone();
        async move {
            let (status, pair) = fixtures::consume(&app, &put_link(&app, &email).await?).await?;
            ensure(status == 200, || format!("sign-in {status} {pair}"))?;
            let rt = pair["refresh_token"].as_str().unwrap_or("").to_string();
            let access = pair["access_token"].as_str().unwrap_or("").to_string();
            record_secret(&rt);
            record_secret(&access);
            Ok::<_, String>((rt, access))
        }
    };
    let code = |body: &Value| body["errors"][0]["code"].as_str().unwrap_or("").to_string();
    let (rt0, _) = sign_in(app.clone()).await?;
    let (status, body) = refresh(t0 + 1, rt0.clone()).await?;
    ensure(status == 200, || format!("rotation {status} {body}"))?;
    let rt1 = body["refresh_token"].as_str().unwrap_or("").to_string();
    let (status, body) = refresh(t0 + 2 + grace, rt0).await?;
    ensure(
        status == 401 && code(&body) == "refresh_token_reused",
        || format!("reuse {status} {body}"),
    )?;
    let (status, body) = refresh(t0 + 3 + grace, rt1).await?;
    ensure(
        status == 401 && code(&body) == "refresh_token_invalid",
        || format!("the newest token after a reuse: {status} {body}"),
    )?;

    let (rt2, access) = sign_in(app.clone()).await?;
    let resp = app
        .handle(
            Route::LogoutEverywhere,
            request(&authed_event(
                "POST",
                Route::LogoutEverywhere,
                &access,
                serde_json::json!({}),
            ))?,
        )
        .await;
    ensure(resp.status() == 204, || {
        format!("logout-everywhere {} {}", resp.status(), body_json(&resp))
    })?;
    let (status, body) = refresh(t0 + 4 + grace, rt2).await?;
    ensure(
        status == 401 && code(&body) == "refresh_token_invalid",
        || format!("a token from before logout-everywhere: {status} {body}"),
    )?;
    // A ban, then an unban: the sessions from before the ban stay ended.
    use contact_auth::ports::Directory;
    let (rt_banned, _) = sign_in(app.clone()).await?;
    let hub = app
        .store
        .hub_by_slug("member-academy")
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no demo hub")?;
    let key = contact_auth::domain::email::parse_email(&email)
        .map_err(|e| e.detail())?
        .key;
    let cid = app
        .store
        .contact_id_by_email(&key)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no contact")?;
    for banned in [true, false] {
        app.store
            .set_banned(&cid, &hub.team_id, banned, app.now())
            .await
            .map_err(|e| e.to_string())?;
    }
    let (status, body) = refresh(t0 + 4 + grace, rt_banned).await?;
    ensure(
        status == 401 && code(&body) == "refresh_token_invalid",
        || format!("a token from before a ban, after the unban: {status} {body}"),
    )?;
    // The control: a sign-in after it (a second later than the ban) refreshes.
    let (rt3, _) = sign_in(app.shifted(1)).await?;
    let (status, body) = refresh(t0 + 5 + grace, rt3).await?;
    ensure(status == 200, || format!("a new session: {status} {body}"))
}
