//! Fixture replay: every event under `events/` goes through the real handler
//! (`lambda_http::request::from_str`, then the same code the function's `main` runs)
//! against DynamoDB Local and the SES sink, each in a fresh table created from
//! template.yaml. `make test` starts those servers and sets REPLAY_DYNAMODB_URL and
//! REPLAY_SES_URL; a plain `cargo test` skips these tests (they are `#[ignore]`).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};

use contact_auth::adapters::dynamo::DynamoStore;
use contact_auth::adapters::schema;
use contact_auth::adapters::ses::SesMailer;
use contact_auth::app::App;
use contact_auth::config::Config;
use contact_auth::domain::jwt::KeySet;
use contact_auth::domain::secret::{new_id, new_token};
use contact_auth::fixtures::{self, body_json, consume_event};
use contact_auth::handlers::{self, Route};
use contact_auth::ports::{OffsetClock, Store};
use contact_auth::runtime::handle_stream_event;
use lambda_http::Body;
use serde_json::Value;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
const KEY_DOC: &str = r#"{"signing_secret":"replay-test-signing-secret-0123456789abcdef"}"#;

static INIT: Once = Once::new();

fn init() -> String {
    let ddb = std::env::var("REPLAY_DYNAMODB_URL")
        .expect("REPLAY_DYNAMODB_URL is not set: run these through `make test`");
    let ses = std::env::var("REPLAY_SES_URL").expect("REPLAY_SES_URL is not set");
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
    ses
}

/// Remembers secrets this run used, for the log check in tools/test.mjs.
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

/// A minimal HTTP/1.0 GET (the SES sink's JSON store); no HTTP client crate needed.
fn http_get_json(base: &str, path: &str) -> Value {
    let hostport = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(hostport).expect("connect to the SES sink");
    write!(s, "GET {path} HTTP/1.0\r\nHost: {hostport}\r\n\r\n").unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let body = buf.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    serde_json::from_str(body).expect("SES sink JSON")
}

fn mails_to(ses: &str, to: &str) -> Vec<Value> {
    http_get_json(ses, "/store")["emails"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| {
            m["destination"]["to"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == to))
        })
        .collect()
}

struct Env {
    /// The app under test, on the real clock.
    app: App,
    /// The same ports with the clock `clock_offset` seconds behind: setup happened then.
    setup_app: App,
    store: Arc<DynamoStore>,
}

async fn fresh(config: &Value, clock_offset: i64) -> Env {
    let template = std::fs::read_to_string(format!("{ROOT}/template.yaml")).unwrap();
    let table = format!("replay-{}", new_id());
    let store = Arc::new(DynamoStore::from_env(&table).await);
    schema::create_table(store.client(), &table, &template, false)
        .await
        .expect("create table");
    store.seed_demo().await.expect("seed");
    let mut cfg = Config::for_table(&table);
    if let Some(n) = config.get("ip_per_minute").and_then(Value::as_u64) {
        cfg.ip_per_minute = n as u32;
    }
    let keys = Arc::new(KeySet::from_json(KEY_DOC).unwrap());
    let mailer = Arc::new(SesMailer::from_env().await);
    // A fixture's clock_offset is how long ago its setup happened.
    let setup_app = App::new(cfg.clone())
        .with_store(store.clone())
        .with_keys(keys.clone())
        .with_mailer(mailer.clone())
        .with_clock(Arc::new(OffsetClock(-clock_offset)));
    let app = App::new(cfg)
        .with_store(store.clone())
        .with_keys(keys)
        .with_mailer(mailer);
    Env {
        app,
        setup_app,
        store,
    }
}

/// An app on `env`'s table with `cfg`, its clock `offset` seconds ahead.
fn shifted(env: &Env, cfg: Config, offset: i64) -> App {
    App::new(cfg)
        .with_store(env.store.clone())
        .with_keys(Arc::new(KeySet::from_json(KEY_DOC).unwrap()))
        .with_clock(Arc::new(OffsetClock(offset)))
}

fn request(text: &str) -> lambda_http::Request {
    fixtures::request(text).expect("fixture is a valid API Gateway event")
}

async fn put_link(env: &Env, token: &str, email: &str, slug: &str) {
    fixtures::put_link(&env.setup_app, token, email, slug)
        .await
        .expect("put link");
    record_secret(token);
}

async fn consume(env: &Env, token: &str) -> (u16, Value) {
    let (status, body) = fixtures::consume(&env.app, token)
        .await
        .expect("consume event");
    for k in ["access_token", "refresh_token"] {
        if let Some(t) = body[k].as_str() {
            record_secret(t);
        }
    }
    (status, body)
}

/// Runs the setup steps of an expected file (at the fixture's past time).
async fn setup(env: &Env, steps: &[Value]) -> fixtures::Prepared {
    let prepared = fixtures::setup(&env.setup_app, steps)
        .await
        .unwrap_or_else(|e| panic!("fixture setup: {e}"));
    for s in &prepared.secrets {
        record_secret(s);
    }
    prepared
}

async fn count_jobs(store: &DynamoStore) -> usize {
    let out = store
        .client()
        .scan()
        .table_name(store.table())
        .filter_expression("begins_with(pk, :j)")
        .expression_attribute_values(
            ":j",
            aws_sdk_dynamodb::types::AttributeValue::S("JOB#".into()),
        )
        .send()
        .await
        .unwrap();
    out.items().len()
}

fn fixtures() -> Vec<(String, PathBuf, Value)> {
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
            if !name.ends_with(".json") || name.ends_with(".expected.json") {
                continue;
            }
            let exp_path = f.with_file_name(name.replace(".json", ".expected.json"));
            let expected: Value = serde_json::from_str(
                &std::fs::read_to_string(&exp_path)
                    .unwrap_or_else(|_| panic!("{} has no expected file", f.display())),
            )
            .unwrap();
            out.push((function.clone(), f, expected));
        }
    }
    out
}

async fn replay_http(function: &str, path: &Path, exp: &Value) -> Result<(), String> {
    let route = Route::by_function(function).ok_or(format!("no route for function {function}"))?;
    let env = fresh(&exp["config"], exp["clock_offset"].as_i64().unwrap_or(0)).await;
    let prepared = setup(
        &env,
        exp["setup"].as_array().map(Vec::as_slice).unwrap_or(&[]),
    )
    .await;
    let jobs_before = count_jobs(&env.store).await;
    let text = prepared.resolve(&std::fs::read_to_string(path).unwrap());
    let repeat = exp["repeat"].as_u64().unwrap_or(1);
    let mut last = None;
    for i in 0..repeat {
        let mut t = text.clone();
        if exp["vary_email"].as_bool() == Some(true) {
            t = t.replace("member@example.com", &format!("member{i}@example.com"));
        }
        last = Some(handlers::handle(&env.app, route, request(&t)).await);
    }
    let resp = last.unwrap();
    let body = body_json(&resp);
    let status = resp.status().as_u16();
    let want = exp["status"].as_u64().unwrap() as u16;
    if status != want {
        return Err(format!("status {status}, want {want}; body {body}"));
    }
    let rid = resp
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .ok_or("no X-Request-ID")?
        .to_string();
    if let Some(code) = exp["code"].as_str() {
        let e = &body["errors"][0];
        if e["code"] != code {
            return Err(format!("code {}, want {code}", e["code"]));
        }
        if e["status"].as_str() != Some(want.to_string().as_str()) {
            return Err(format!(
                "errors[0].status {} is not the string {want}",
                e["status"]
            ));
        }
        if e["meta"]["request_id"] != rid.as_str() {
            return Err("meta.request_id differs from X-Request-ID".into());
        }
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok());
        if ct != Some("application/vnd.api+json") {
            return Err(format!("error content-type {ct:?}"));
        }
        if let Some(p) = exp["pointer"].as_str() {
            if e["source"]["pointer"] != p {
                return Err(format!("pointer {}, want {p}", e["source"]["pointer"]));
            }
        }
        // Hostile or refused input changes nothing: no mail job was written by the last call.
        if matches!(route, Route::Register | Route::Magic)
            && repeat == 1
            && count_jobs(&env.store).await != jobs_before
        {
            return Err("a refused request wrote a mail job".into());
        }
    }
    for h in exp["headers"].as_array().into_iter().flatten() {
        let h = h.as_str().unwrap();
        if !resp.headers().contains_key(h) {
            return Err(format!("missing header {h}"));
        }
    }
    // Route-specific checks on success.
    match (route, status) {
        (Route::Register | Route::Magic, 202) => {
            if !matches!(resp.body(), Body::Empty) {
                return Err("202 must have no body".into());
            }
            if count_jobs(&env.store).await != jobs_before + 1 {
                return Err("202 without exactly one mail job written".into());
            }
        }
        (Route::MagicConsume, 200) => {
            let at = body["access_token"].as_str().ok_or("no access_token")?;
            let claims = env
                .app
                .keys
                .as_ref()
                .unwrap()
                .verify(at, &env.app.config.jwt_issuer, &env.app.config.jwt_audience)
                .ok_or("access token does not verify")?;
            if claims.amr != vec!["magic_link".to_string()] || claims.tid != "team_abc123" {
                return Err(format!("unexpected claims {claims:?}"));
            }
            if body["token_type"] != "Bearer"
                || body["expires_in"] != 900
                || body["refresh_expires_in"] != 2_592_000
            {
                return Err(format!("token pair shape {body}"));
            }
            let cookie = resp
                .headers()
                .get("set-cookie")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            for part in [
                "HttpOnly",
                "Secure",
                "SameSite=Strict",
                "Path=/api/v1/contact-auth",
            ] {
                if !cookie.contains(part) {
                    return Err(format!("refresh cookie lacks {part}: {cookie}"));
                }
            }
            // The link is single use.
            let event: Value = serde_json::from_str(&text).unwrap();
            let sent: Value = serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
            let token = sent["data"]["attributes"]["token"]
                .as_str()
                .unwrap()
                .to_string();
            if consume(&env, &token).await.0 != 401 {
                return Err("a second consume of the same link did not answer 401".into());
            }
        }
        (Route::Jwks, 200)
            if body["keys"][0]["kid"] != env.app.keys.as_ref().unwrap().active.kid.as_str() =>
        {
            return Err(format!("jwks {body}"));
        }
        (Route::MeGet, 200)
            if body["data"]["type"] != "contacts"
                || body["data"]["attributes"]["email"] != "member@example.com" =>
        {
            return Err(format!("me {body}"));
        }
        _ => {}
    }
    Ok(())
}

async fn replay_mailer(ses: &str, path: &Path, exp: &Value) -> Result<(), String> {
    let env = fresh(&Value::Null, 0).await;
    setup(
        &env,
        exp["setup"].as_array().map(Vec::as_slice).unwrap_or(&[]),
    )
    .await;
    let to = exp["to"].as_str().unwrap();
    let before = mails_to(ses, to).len();
    let text = std::fs::read_to_string(path).unwrap();
    let event: aws_lambda_events::event::dynamodb::Event =
        serde_json::from_str(&text).map_err(|e| format!("not a DynamoDB stream event: {e}"))?;
    let resp = handle_stream_event(&env.app, event).await;
    if !resp.batch_item_failures.is_empty() {
        return Err(format!(
            "batch item failures: {:?}",
            resp.batch_item_failures
        ));
    }
    let after = mails_to(ses, to);
    let sent = after.len() - before;
    let want = exp["emails"].as_u64().unwrap() as usize;
    if sent != want {
        return Err(format!("{sent} mails sent, want {want}"));
    }
    if let Some(subject) = exp["subject"].as_str() {
        let m = after.last().unwrap();
        if m["subject"] != subject {
            return Err(format!("subject {}", m["subject"]));
        }
        let text = m["body"]["text"].as_str().unwrap_or("");
        let html = m["body"]["html"].as_str().unwrap_or("");
        if !text.contains("/m#token=") || !html.contains("/m#token=") {
            return Err("mail lacks the hosted-page link in both parts".into());
        }
        if let Some(t) = text.split("#token=").nth(1) {
            record_secret(&t[..43.min(t.len())]);
        }
    }
    if count_jobs(&env.store).await != 0 {
        return Err("the job was not retired".into());
    }
    Ok(())
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and the SES sink: run `make test`"]
async fn every_fixture_replays_to_its_expected_result() {
    let ses = init();
    let all = fixtures();
    assert!(
        all.len() >= 50,
        "expected the full fixture set, found {}",
        all.len()
    );
    let mut failures = vec![];
    for (function, path, exp) in &all {
        let result = if function == "mailer" {
            replay_mailer(&ses, path, exp).await
        } else {
            replay_http(function, path, exp).await
        };
        let name = path
            .strip_prefix(ROOT)
            .unwrap_or(path)
            .display()
            .to_string();
        match result {
            Ok(()) => println!("ok   {name}"),
            Err(e) => {
                println!("FAIL {name}: {e}");
                failures.push(name);
            }
        }
    }
    println!("{} fixtures replayed, {} failed", all.len(), failures.len());
    assert!(failures.is_empty(), "failed fixtures: {failures:?}");
}

#[tokio::test]
#[ignore = "needs DynamoDB Local: run `make test`"]
async fn fifty_concurrent_consumes_of_one_link_exactly_one_wins() {
    init();
    let env = Arc::new(fresh(&Value::Null, 0).await);
    let token = new_token().unwrap();
    put_link(&env, &token, "race@example.com", "member-academy").await;
    let mut tasks = vec![];
    for _ in 0..50 {
        let env = env.clone();
        let token = token.clone();
        tasks.push(tokio::spawn(async move { consume(&env, &token).await.0 }));
    }
    let mut statuses = vec![];
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let invalid = statuses.iter().filter(|s| **s == 401).count();
    assert_eq!(ok, 1, "statuses: {statuses:?}");
    assert_eq!(invalid, 49, "statuses: {statuses:?}");
    // Exactly one contact was created for the address.
    assert!(env
        .store
        .contact_id_by_email("race@example.com")
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
#[ignore = "needs DynamoDB Local: run `make test`"]
async fn an_expired_link_is_refused_even_before_ttl_deletion() {
    init();
    let env = fresh(&Value::Null, 0).await;
    let token = new_token().unwrap();
    put_link(&env, &token, "late@example.com", "member-academy").await;
    // The same table and link, read by a handler whose clock is 15 minutes + 1 s ahead.
    let later = shifted(&env, env.app.config.clone(), 901);
    let resp = handlers::handle(&later, Route::MagicConsume, request(&consume_event(&token))).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(body_json(&resp)["errors"][0]["code"], "magic_link_invalid");
    // One second before expiry it still works.
    let almost = shifted(&env, env.app.config.clone(), 899);
    let resp = handlers::handle(
        &almost,
        Route::MagicConsume,
        request(&consume_event(&token)),
    )
    .await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
#[ignore = "needs DynamoDB Local: run `make test`"]
async fn a_session_ends_at_its_absolute_lifetime() {
    init();
    let env = fresh(&Value::Null, 0).await;
    let token = new_token().unwrap();
    put_link(&env, &token, "lifetime@example.com", "member-academy").await;
    record_secret(&token);
    let (status, pair) = fixtures::consume(&env.app, &token).await.unwrap();
    assert_eq!(status, 200);
    let first = pair["refresh_token"].as_str().unwrap().to_string();
    record_secret(&first);
    // The same table, `offset` seconds after the sign-in, with a session lifetime of `max`.
    let at = |offset: i64, max: i64| {
        let mut cfg = env.app.config.clone();
        cfg.session_max = max;
        shifted(&env, cfg, offset)
    };
    let refresh = |app: App, rt: String| async move {
        let resp =
            handlers::handle(&app, Route::Refresh, request(&fixtures::refresh_event(&rt))).await;
        (resp.status().as_u16(), body_json(&resp))
    };
    // 101 s in, with a 100 s lifetime: refused, although this token (made under the
    // 90-day default) is stored as valid for 30 days.
    let (status, body) = refresh(at(101, 100), first.clone()).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["errors"][0]["code"], "refresh_token_invalid");
    // 50 s in, with a 100 s lifetime: rotated, and the new token lives only to the end.
    let (status, body) = refresh(at(50, 100), first).await;
    assert_eq!(status, 200, "{body}");
    let left = body["refresh_expires_in"].as_i64().unwrap();
    assert!((45..=50).contains(&left), "refresh_expires_in {left}");
    let second = body["refresh_token"].as_str().unwrap().to_string();
    record_secret(&second);
    // 101 s in: over for the rotated token too.
    let (status, body) = refresh(at(101, 100), second.clone()).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["errors"][0]["code"], "refresh_token_invalid");
    // The same token under the default 90-day lifetime: the refusal was the lifetime.
    let (status, body) = refresh(at(30, 7_776_000), second).await;
    assert_eq!(status, 200, "{body}");
    if let Some(t) = body["refresh_token"].as_str() {
        record_secret(t);
    }
}
