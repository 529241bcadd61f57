//! Issue 18, the flash crowd: per-IP budgets that fit a shared IP, trusted networks, the
//! instance's memory of ceilings, the mailer under SES limits, DynamoDB under pressure.
//! Real handlers, DynamoDB Local and the SES sink (through `tools/ses-gate.mjs` where SES's
//! limits matter), stopped clocks.

use contact_auth::handlers::mailer::{process_job, Outcome};
use contact_auth::routes::Route;
use serde_json::{json, Value};
use testkit::app::TestApp;
use testkit::fixtures::{self, request};

use crate::{ensure, fresh, job_ids, record_secret};

/// `event` as if it came from `ip`.
pub fn from_ip(event: &str, ip: &str) -> Result<String, String> {
    let mut v: Value = serde_json::from_str(event).map_err(|e| e.to_string())?;
    v["requestContext"]["http"]["sourceIp"] = json!(ip);
    Ok(v.to_string())
}

/// A link request (`register` or `magic`) for `email` on member-academy from `ip`.
pub fn link_request(route: Route, email: &str, ip: &str) -> Result<String, String> {
    let kind = match route {
        Route::Register => "register_requests",
        _ => "magic_link_requests",
    };
    from_ip(
        &fixtures::post_event(
            route.path(),
            json!({"data": {"type": kind,
                "attributes": {"email": email, "slug": "member-academy"}}}),
        ),
        ip,
    )
}

/// Status and `Retry-After` of one request.
pub async fn call(app: &TestApp, route: Route, event: &str) -> Result<(u16, Option<i64>), String> {
    let resp = app.handle(route, request(event)?).await;
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    Ok((resp.status().as_u16(), retry))
}

/// `n` registrations of fresh addresses (`<prefix>-<i>-<id>@example.com`) on
/// member-academy from `ip`, one after another: each one's status and `Retry-After`.
async fn registrations(
    app: &TestApp,
    prefix: &str,
    n: usize,
    ip: &str,
) -> Result<Vec<(u16, Option<i64>)>, String> {
    let mut out = vec![];
    for i in 0..n {
        let email = format!(
            "{prefix}-{i}-{}@example.com",
            contact_auth::domain::secret::new_id()
        );
        record_secret(&email);
        out.push(
            call(
                app,
                Route::Register,
                &link_request(Route::Register, &email, ip)?,
            )
            .await?,
        );
    }
    Ok(out)
}

fn statuses(r: &[(u16, Option<i64>)]) -> Vec<u16> {
    r.iter().map(|(s, _)| *s).collect()
}

/// Every job in the table through the mailer at `app`'s time: how each ended.
pub async fn mail_outcomes(app: &TestApp) -> Result<Vec<Outcome>, String> {
    let mailer = app.mailer_app(contact_auth::adapters::ses::SesMailer::from_env().await);
    let mut out = vec![];
    for id in job_ids(&app.store).await {
        out.push(process_job(&mailer, &id).await.map_err(|e| e.to_string())?);
    }
    Ok(out)
}

fn count(outcomes: &[Outcome], want: Outcome) -> usize {
    outcomes.iter().filter(|o| **o == want).count()
}

/// `n` members of member-academy (`<prefix>-<i>@example.com`).
async fn members(app: &TestApp, prefix: &str, n: usize) -> Result<Vec<String>, String> {
    let emails: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "{prefix}-{i}-{}@example.com",
                contact_auth::domain::secret::new_id()
            )
        })
        .collect();
    let steps: Vec<Value> = emails
        .iter()
        .map(|e| json!({"op": "session", "email": e}))
        .collect();
    let steps = fixtures::parse_steps(&Value::Array(steps))?;
    for s in fixtures::setup(app, &steps).await?.secrets {
        record_secret(&s);
    }
    Ok(emails)
}

/// A minute window's start, well ahead of now (stopped clocks run there).
fn fresh_minute(app: &TestApp) -> i64 {
    contact_auth::domain::rate::window_start(app.now(), 3600) + 7200
}

/// Issue 18 item 1: one office NAT. Sign-ins of existing members from one IP are not held
/// to the strict budget (their per-email limits govern them); mail to *new* addresses
/// from it is; the ceiling answers 429 with `Retry-After` to its window's end, on both
/// sides of its limit; login has its own budget, on both sides; and an instance that saw
/// the ceiling refused answers 429 without asking the table.
pub async fn shared_ip_budgets() -> Result<(), String> {
    let base = fresh(&Value::Null).await;
    let mut cfg = base.config.clone();
    cfg.ip_per_minute = 25;
    cfg.ip_new_address_mail_per_minute = 3;
    cfg.ip_sign_in_mail_per_minute = 100;
    cfg.ip_login_per_minute = 4;
    let base = base.with_config(cfg);
    let nat = "203.0.113.10";
    let known = members(&base, "nat-member", 10).await?;
    let t0 = fresh_minute(&base);
    let app = base.at(t0 + 1);

    // 10 new addresses register from the NAT, then 10 members sign in from it: 20
    // requests, all 202 under the ceiling of 25. Every sign-in job counts on the NAT's
    // one mail counter; a registration is mailed while the count is within 3, a member's
    // sign-in within 100: 3 of the 10 new addresses, then all 10 members (counts 11-20).
    let sent = |outcomes: &[Outcome], purpose| count(outcomes, Outcome::Sent(purpose));
    use contact_auth::domain::model::LinkPurpose::{Register, SignIn};
    let regs = registrations(&app, "nat-new", 10, nat).await?;
    ensure(statuses(&regs) == vec![202; 10], || {
        format!("registrations from the NAT: {regs:?}")
    })?;
    let outcomes = mail_outcomes(&app).await?;
    ensure(
        sent(&outcomes, Register) == 3 && count(&outcomes, Outcome::Limited) == 7,
        || format!("mail to 10 new addresses from one NAT: {outcomes:?}"),
    )?;
    for email in &known {
        let (status, _) =
            call(&app, Route::Magic, &link_request(Route::Magic, email, nat)?).await?;
        ensure(status == 202, || {
            format!("member sign-in from the NAT: {status}")
        })?;
    }
    let outcomes = mail_outcomes(&app).await?;
    ensure(sent(&outcomes, SignIn) == 10, || {
        format!("mail to 10 members from one NAT (counts 11 to 20): {outcomes:?}")
    })?;

    // The ceiling: 5 more requests are allowed (the 25th is), the 26th is refused until
    // the window ends, with Retry-After to that end. (New addresses: a request a
    // per-email limit refuses writes nothing, so it does not count into the ceiling.)
    let regs = registrations(&app, "nat-more", 5, nat).await?;
    ensure(statuses(&regs) == vec![202; 5], || {
        format!("requests 21 to 25 from the NAT: {regs:?}")
    })?;
    let regs = registrations(&app, "nat-26th", 1, nat).await?;
    ensure(regs == vec![(429, Some(59))], || {
        format!("26th request from the NAT: {regs:?} (want 429, 59)")
    })?;
    // Another IP is unaffected.
    let regs = registrations(&app, "other-ip", 1, "203.0.113.11").await?;
    ensure(statuses(&regs) == vec![202], || {
        format!("another IP: {regs:?}")
    })?;

    // This instance remembers the ceiling: with the counter gone from the table, it still
    // answers 429 (so it did not ask the table); another instance asks and gets 202.
    let ceiling = contact_auth::domain::rate::ip_counter(nat, t0 + 1);
    delete_rate_item(&app, &ceiling.key).await?;
    let regs = registrations(&app.at(t0 + 30), "remembered", 1, nat).await?;
    ensure(regs == vec![(429, Some(30))], || {
        format!("remembered ceiling: {regs:?} (want 429, 30)")
    })?;
    let other_instance = TestApp::new(
        app.config.clone(),
        app.store.clone(),
        &testkit::test_key_doc(),
    )
    .at(t0 + 30);
    let regs = registrations(&other_instance, "other-instance", 1, nat).await?;
    ensure(statuses(&regs) == vec![202], || {
        format!("another instance, the counter gone: {regs:?}")
    })?;
    // The next window: the same instance asks the table again.
    let regs = registrations(&app.at(t0 + 60), "next-window", 1, nat).await?;
    ensure(statuses(&regs) == vec![202], || {
        format!("the next window: {regs:?}")
    })?;

    // Login's own budget (4 a minute) from a fresh IP: four wrong passwords answer 401,
    // the fifth 429 until the window ends.
    let office = "203.0.113.99";
    let login = |email: &str| {
        from_ip(
            &crate::login_event(email, "not-the-password-1", "member-academy"),
            office,
        )
    };
    let app = base.at(t0 + 61);
    for (i, email) in known.iter().take(4).enumerate() {
        let (status, _) = call(&app, Route::Login, &login(email)?).await?;
        ensure(status == 401, || {
            format!("login {} from the office: {status}", i + 1)
        })?;
    }
    let (status, retry) = call(&app, Route::Login, &login(&known[4])?).await?;
    ensure(status == 429 && retry == Some(59), || {
        format!("5th login from the office: {status}, Retry-After {retry:?} (want 429, 59)")
    })
}

/// Deletes a counter item (`RATE#<key>`) straight from the table.
async fn delete_rate_item(app: &TestApp, key: &str) -> Result<(), String> {
    let k = contact_auth::adapters::dynamo::keys::key_map(
        contact_auth::adapters::dynamo::keys::rate(key),
    );
    app.store
        .client()
        .delete_item()
        .table_name(app.store.table())
        .set_key(Some(k))
        .send()
        .await
        .map_err(|e| format!("delete {key}: {e}"))?;
    Ok(())
}

/// Issue 18 item 1: a hub's trusted egress network skips every per-IP budget (the
/// ceiling, login, and the mailer's new-address budget); per-email limits still hold; an
/// address outside the network is held to them.
pub async fn trusted_network() -> Result<(), String> {
    use contact_auth::ports::Directory;
    let base = fresh(&Value::Null).await;
    let mut cfg = base.config.clone();
    cfg.ip_per_minute = 3;
    cfg.ip_new_address_mail_per_minute = 1;
    let base = base.with_config(cfg);
    let mut hub = base
        .store
        .hub_by_slug("member-academy")
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no demo hub")?;
    hub.trusted_cidrs = vec![contact_auth::domain::rate::trusted_cidr("198.51.100.0/24")?];
    ensure(
        base.store.put_hub(&hub).await.map_err(|e| e.to_string())?,
        || "hub not saved".into(),
    )?;
    let t0 = fresh_minute(&base);
    let app = base.at(t0 + 1);
    let inside = "198.51.100.23";
    let outside = "198.51.101.23";
    let statuses = self::statuses(&registrations(&app, "trusted", 5, inside).await?);
    ensure(statuses == vec![202; 5], || {
        format!("inside the trusted network: {statuses:?}")
    })?;
    let outcomes = mail_outcomes(&app).await?;
    let sent = count(
        &outcomes,
        Outcome::Sent(contact_auth::domain::model::LinkPurpose::Register),
    );
    ensure(sent == 5, || {
        format!("mail to new addresses from the trusted network: {outcomes:?}")
    })?;
    // Per-email limits still hold inside: the same address again within the cooldown.
    let again = format!(
        "trusted-again-{}@example.com",
        contact_auth::domain::secret::new_id()
    );
    record_secret(&again);
    let first = call(
        &app,
        Route::Register,
        &link_request(Route::Register, &again, inside)?,
    )
    .await?
    .0;
    let second = call(
        &app,
        Route::Register,
        &link_request(Route::Register, &again, inside)?,
    )
    .await?
    .0;
    ensure(first == 202 && second == 429, || {
        format!("per-email cooldown inside: {first}, {second}")
    })?;
    // Outside: the ceiling (3) and the new-address budget (1) apply.
    let statuses = self::statuses(&registrations(&app, "untrusted", 4, outside).await?);
    ensure(statuses == vec![202, 202, 202, 429], || {
        format!("outside the trusted network: {statuses:?}")
    })?;
    let outcomes = mail_outcomes(&app).await?;
    let sent = count(
        &outcomes,
        Outcome::Sent(contact_auth::domain::model::LinkPurpose::Register),
    );
    let limited = count(&outcomes, Outcome::Limited);
    ensure(sent == 2 && limited == 2, || {
        format!("mail from outside (1 budget + 1 from inside's again): {outcomes:?}")
    })
}

/// A stand-in DynamoDB endpoint that answers every request with `status` and `body` (the
/// JSON protocol's error shape) and counts the requests: what a throttled table or a
/// throttled transaction item looks like to the SDK, which DynamoDB Local cannot produce.
async fn refusing_endpoint(
    status: u16,
    body: Value,
) -> Result<(String, std::sync::Arc<std::sync::atomic::AtomicUsize>), String> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let url = format!(
        "http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    let seen = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let body = body.to_string();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let counter = counter.clone();
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 1 << 16];
                let mut got = vec![];
                // One request per connection: headers, then Content-Length bytes.
                loop {
                    let Ok(n) = sock.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    got.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&got).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if got.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let resp = format!(
                    "HTTP/1.1 {status} Bad Request\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    Ok((url, seen))
}

/// Issue 18 item 5: a throttled table, and a transaction cancelled by a throttled item,
/// answer 503 `unavailable` with `Retry-After` after a bounded number of jittered retries
/// (the SDK's 3 attempts; the store's own retries of a cancelled transaction), with no
/// internals in the body.
pub async fn throttled_table() -> Result<(), String> {
    use std::sync::atomic::Ordering;
    let base = fresh(&Value::Null).await;
    let cases = [
        (
            "a throttled call",
            json!({"__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                "message": "The level of configured provisioned throughput for the table was exceeded."}),
            3,
        ),
        (
            "a transaction with a throttled item",
            json!({"__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                "message": "Transaction cancelled, please refer cancellation reasons for specific reasons [None, None, None, ThrottlingError]",
                "CancellationReasons": [{"Code": "None"}, {"Code": "None"}, {"Code": "None"},
                    {"Code": "ThrottlingError", "Message": "Throughput exceeds the current capacity for one or more global secondary indexes."}]}),
            1 + contact_auth::adapters::dynamo::TX_RETRIES as usize,
        ),
    ];
    for (what, body, want_calls) in cases {
        let (url, seen) = refusing_endpoint(400, body).await?;
        let client = aws_sdk_dynamodb::Client::from_conf(
            base.store
                .client()
                .config()
                .to_builder()
                .endpoint_url(&url)
                .build(),
        );
        let app = TestApp::new(
            base.config.clone(),
            contact_auth::adapters::dynamo::DynamoStore::new(client, base.store.table()),
            &testkit::test_key_doc(),
        );
        // By team id: no hub read, so the first call is the enqueue transaction.
        let event = from_ip(
            &fixtures::post_event(
                Route::Magic.path(),
                json!({"data": {"type": "magic_link_requests",
                    "attributes": {"email": "throttled@example.com", "team_id": "team_abc123"}}}),
            ),
            "203.0.113.50",
        )?;
        let resp = app.handle(Route::Magic, request(&event)?).await;
        let status = resp.status().as_u16();
        let retry = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = fixtures::body_json(&resp);
        let calls = seen.load(Ordering::SeqCst);
        ensure(
            status == 503
                && body["errors"][0]["code"] == "unavailable"
                && retry
                    .as_deref()
                    .is_some_and(|r| r.parse::<u64>().is_ok_and(|s| s >= 1))
                && !body.to_string().contains("hroughput")
                && !body.to_string().contains("Cancel"),
            || format!("{what}: {status}, Retry-After {retry:?}, {body}"),
        )?;
        ensure(calls == want_calls, || {
            format!("{what}: {calls} calls to DynamoDB, want {want_calls} (bounded retries)")
        })?;
    }
    Ok(())
}

fn gate_url() -> Result<String, String> {
    std::env::var("REPLAY_SES_GATE_URL")
        .map_err(|_| "REPLAY_SES_GATE_URL is not set: run the replay through make test".into())
}

/// Sets the SES gate (`{"rate", "mode", "reset"}`) and returns its state and counts.
fn gate(set: Value) -> Result<Value, String> {
    use std::io::{Read, Write};
    let url = gate_url()?;
    let hostport = url.trim_start_matches("http://");
    let body = set.to_string();
    let mut s = std::net::TcpStream::connect(hostport).map_err(|e| e.to_string())?;
    write!(
        s,
        "POST /__gate HTTP/1.0\r\nHost: {hostport}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).map_err(|e| e.to_string())?;
    let body = buf.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    serde_json::from_str(body).map_err(|e| format!("gate JSON: {e}"))
}

/// `n` registration jobs (new addresses) written straight to the table at `app`'s time.
async fn jobs(app: &TestApp, prefix: &str, n: usize) -> Result<Vec<String>, String> {
    let mut ids = vec![];
    for i in 0..n {
        let id = format!("{prefix}-{i}-{}", contact_auth::domain::secret::new_id());
        let email = format!("{id}@example.com");
        record_secret(&email);
        let steps = fixtures::parse_steps(&json!([{"op": "job", "job_id": id, "email": email,
            "slug": "member-academy", "purpose": "register"}]))?;
        fixtures::setup(app, &steps).await?;
        ids.push(id);
    }
    Ok(ids)
}

/// The jobs as one stream batch through the mailer (concurrently, as deployed): the
/// sequence numbers it reports failed.
async fn batch(app: &TestApp, ids: &[String]) -> Result<Vec<String>, String> {
    use contact_auth::runtime::{process_records, JobRecord};
    let mailer = app.mailer_app(contact_auth::adapters::ses::SesMailer::for_endpoint(
        &gate_url()?,
    ));
    let records = ids
        .iter()
        .enumerate()
        .map(|(i, id)| JobRecord {
            sequence_number: Some(format!("{i:04}")),
            job_id: Some(id.clone()),
        })
        .collect();
    Ok(process_records(&mailer, records).await)
}

fn per_second(state: &Value) -> Vec<u64> {
    state["perSecond"]
        .as_object()
        .map(|m| m.values().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

/// Six registration jobs as one concurrent batch, the mailer's governor at
/// `governor` mails a second (0: off), SES (the gate) at `ses` a second: the failed
/// records, and the gate's state after (its rate opened again). Every job must be gone.
async fn six_jobs_at(
    prefix: &str,
    governor: u32,
    ses: u32,
) -> Result<(Vec<String>, Value), String> {
    let base = fresh(&Value::Null).await;
    let mut cfg = base.config.clone();
    cfg.ses_max_send_rate = governor;
    cfg.mailer_concurrency = 10;
    let app = base.with_config(cfg);
    let ids = jobs(&app, prefix, 6).await?;
    gate(json!({"rate": ses, "mode": "ok", "reset": true}))?;
    let failed = batch(&app, &ids).await?;
    let state = gate(json!({"rate": 1_000_000}))?;
    ensure(job_ids(&app.store).await.is_empty(), || {
        format!("{prefix}: jobs left")
    })?;
    Ok((failed, state))
}

/// Issue 18 item 3: the send-rate governor (2 a second, shared through the table) keeps a
/// concurrent batch under SES's rate (3 a second at the gate): nothing throttled, no
/// second over, all sent, spread over at least 3 seconds.
pub async fn governor() -> Result<(), String> {
    let (failed, state) = six_jobs_at("governed", 2, 3).await?;
    let seconds = per_second(&state);
    ensure(
        failed.is_empty()
            && state["accepted"] == 6
            && state["throttled"] == 0
            && seconds.iter().all(|n| *n <= 3)
            && seconds.len() >= 3,
        || format!("governed batch: failed {failed:?}, gate {state}"),
    )
}

/// Issue 18 item 3: without the governor, sends SES throttles wait and go out: the gate
/// throttled some, all 6 were accepted, no job failed.
pub async fn throttled_sends_wait() -> Result<(), String> {
    let (failed, state) = six_jobs_at("throttled", 0, 2).await?;
    ensure(
        failed.is_empty()
            && state["accepted"] == 6
            && state["throttled"].as_u64().is_some_and(|n| n > 0),
        || format!("throttled batch: failed {failed:?}, gate {state}"),
    )
}

/// Issue 18 item 3: SES says the daily quota is spent: the batch does not fail (nothing
/// goes to the dead-letter queue), every job is kept, parked with the reason, after one
/// call to SES (the instance stops calling); a dry redrive after the link lifetime would
/// delete them; once SES sends again, `redrive` sends each through the mailer.
pub async fn quota_parks_and_redrive_sends() -> Result<(), String> {
    let base = fresh(&Value::Null).await;
    let mut cfg = base.config.clone();
    cfg.mailer_concurrency = 1;
    let app = base.with_config(cfg);
    let ids = jobs(&app, "parked", 3).await?;
    gate(json!({"mode": "quota", "reset": true}))?;
    let failed = batch(&app, &ids).await?;
    let state = gate(json!({}))?;
    gate(json!({"mode": "ok", "reset": true}))?;
    let pending = app.store.pending_jobs().await.map_err(|e| e.to_string())?;
    let parked = pending.iter().filter(|p| p.parked_at.is_some()).count();
    let said_quota = pending.iter().any(|p| {
        p.parked_reason
            .as_deref()
            .is_some_and(|r| r.contains("TooManyRequests"))
    });
    ensure(
        failed.is_empty() && parked == 3 && said_quota && state["refused"] == 1,
        || {
            format!(
                "quota: failed {failed:?}, parked {parked} of {}, gate {state}",
                pending.len()
            )
        },
    )?;
    let now = app.now();
    let ttl = app.config.magic_ttl;
    let late = app
        .store
        .redrive_pending(ttl, 900, now + ttl, true)
        .await
        .map_err(|e| e.to_string())?;
    ensure(late.expired == 3 && late.redriven == 0, || {
        format!("dry redrive after the link lifetime: {late:?}")
    })?;
    let report = app
        .store
        .redrive_pending(ttl, 900, now, false)
        .await
        .map_err(|e| e.to_string())?;
    let new_ids = job_ids(&app.store).await;
    ensure(
        report.redriven == 3 && new_ids.len() == 3 && new_ids.iter().all(|id| !ids.contains(id)),
        || format!("redrive: {report:?}, jobs now {new_ids:?}"),
    )?;
    // A new instance (the paused one stops calling SES for a minute).
    let failed = batch(&app, &new_ids).await?;
    let state = gate(json!({}))?;
    ensure(failed.is_empty() && state["accepted"] == 3, || {
        format!("after the redrive: failed {failed:?}, gate {state}")
    })?;
    ensure(job_ids(&app.store).await.is_empty(), || {
        "jobs left after the redrive".into()
    })
}

/// Issue 18 item 2: a sign-in job whose link lifetime has passed since the request is
/// dropped, not sent (at exactly the lifetime); a second younger, it is sent.
pub async fn old_sign_in_jobs_are_dropped() -> Result<(), String> {
    let base = fresh(&Value::Null).await;
    let t0 = base.now();
    let ttl = base.config.magic_ttl;
    for (age, want) in [
        (ttl, Outcome::Expired),
        (
            ttl - 1,
            Outcome::Sent(contact_auth::domain::model::LinkPurpose::Register),
        ),
    ] {
        let ids = jobs(&base.at(t0 - age), "aged", 1).await?;
        let mailer = base
            .at(t0)
            .mailer_app(contact_auth::adapters::ses::SesMailer::for_endpoint(
                &gate_url()?,
            ));
        let out = process_job(&mailer, &ids[0])
            .await
            .map_err(|e| e.to_string())?;
        ensure(out == want, || {
            format!("a job {age} s old: {out:?}, want {want:?}")
        })?;
    }
    ensure(job_ids(&base.store).await.is_empty(), || "jobs left".into())
}

/// Issue 18 review: the mail budgets tell nobody whether an address has an account. From
/// one IP, a registration for the victim and then 3 for the attacker's own new addresses,
/// under a budget of 3: the attacker's addresses get the same 2 mails whether the victim
/// is a member or unknown (every job counts the same, whatever it finds).
pub async fn mail_budgets_do_not_enumerate() -> Result<(), String> {
    use contact_auth::domain::model::LinkPurpose::Register;
    let base = fresh(&Value::Null).await;
    let mut cfg = base.config.clone();
    cfg.ip_new_address_mail_per_minute = 3;
    let base = base.with_config(cfg);
    let member = members(&base, "victim", 1).await?.remove(0);
    let unknown = format!(
        "nobody-{}@example.com",
        contact_auth::domain::secret::new_id()
    );
    record_secret(&unknown);
    let app = base.at(fresh_minute(&base) + 1);
    let mut mailed_to_own = vec![];
    for (victim, ip) in [(&member, "192.0.2.10"), (&unknown, "192.0.2.20")] {
        let (status, _) = call(
            &app,
            Route::Register,
            &link_request(Route::Register, victim, ip)?,
        )
        .await?;
        ensure(status == 202, || format!("the victim's request: {status}"))?;
        mail_outcomes(&app).await?;
        let regs = registrations(&app, "attacker", 3, ip).await?;
        ensure(statuses(&regs) == vec![202; 3], || format!("{regs:?}"))?;
        mailed_to_own.push(count(&mail_outcomes(&app).await?, Outcome::Sent(Register)));
    }
    ensure(mailed_to_own == vec![2, 2], || {
        format!("the attacker's own mails after a member / an unknown victim: {mailed_to_own:?} (must be equal)")
    })
}
