//! Issue 19, events: each change's outbox item is written in its transaction (and only
//! then); the events function delivers each to the bus and the team's webhook once per
//! event even when the stream redelivers the batch, retries a failing webhook with
//! backoff, gives up on a 4xx, and refuses webhook targets on private addresses — real
//! handlers, DynamoDB Local, the stack's EventBridge stand-in, a real HTTP receiver.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use contact_auth::domain::events::{AuthEvent, EventType};
use contact_auth::domain::ids::{ContactId, TeamId};
use contact_auth::ports::EventSettings;
use contact_auth::routes::Route;
use contact_auth::runtime::{process_event_records, EventRecord};
use serde_json::Value;
use testkit::app::TestApp;
use testkit::fixtures::{self, request};
use testkit::verdict::Expected;

use crate::{ensure, events_app, fresh, init};

/// The outbox events in the table, as (type, contact, session, reason).
async fn outbox(app: &TestApp) -> Result<Vec<(String, String, String, String)>, String> {
    let out = app
        .store
        .client()
        .scan()
        .table_name(app.store.table())
        .filter_expression("kind = :k")
        .expression_attribute_values(":k", AttributeValue::S("auth_event".into()))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let s = |i: &std::collections::HashMap<String, AttributeValue>, k: &str| {
        i.get(k)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    Ok(out
        .items()
        .iter()
        .map(|i| {
            (
                s(i, "type"),
                s(i, "contact_id"),
                s(i, "session_id"),
                s(i, "reason"),
            )
        })
        .collect())
}

/// Every entry the EventBridge stand-in holds, oldest first.
async fn bus_entries() -> Result<Vec<Value>, String> {
    let sink = std::env::var("REPLAY_EVENTS_URL").map_err(|_| "REPLAY_EVENTS_URL")?;
    let text = reqwest::get(format!("{sink}/events"))
        .await
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    let body: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    Ok(body["events"].as_array().cloned().unwrap_or_default())
}

/// The entries the EventBridge stand-in holds for these event ids.
async fn bus_count(ids: &[String]) -> Result<usize, String> {
    Ok(bus_entries()
        .await?
        .iter()
        .filter(|e| {
            let detail = serde_json::from_str::<Value>(e["detail"].as_str().unwrap_or("{}"))
                .unwrap_or_default();
            ids.iter().any(|id| detail["id"] == id.as_str())
        })
        .count())
}

/// A fixture of the events function: a stream batch through the Lambda handler; its answer
/// and what the bus got.
pub async fn replay_events_fixture(path: &std::path::Path, exp: &Expected) -> Result<(), String> {
    let app = fresh(&exp.config).await;
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let raw: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let images: Vec<Value> = raw["Records"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r["dynamodb"]["NewImage"].clone())
        .collect();
    let event: aws_lambda_events::event::dynamodb::Event =
        serde_json::from_str(&text).map_err(|e| format!("not a stream event: {e}"))?;
    // Every entry the bus gets while this runs (the replay runs one test at a time).
    let before = bus_entries().await?.len();
    let events = events_app(&app, vec![])?;
    let resp = contact_auth::runtime::handle_events_stream(&events, event).await;
    let out = serde_json::to_value(&resp).map_err(|e| e.to_string())?;
    let problems = testkit::verdict::check_event(exp, &out);
    ensure(problems.is_empty(), || problems.join("; "))?;
    let new: Vec<Value> = bus_entries().await?.split_off(before);
    let want = exp.bus_events.unwrap_or(0);
    ensure(new.len() == want, || {
        format!("the bus got {} entries, want {want}", new.len())
    })?;
    // Each entry is its record's event: the type as detail-type, the ids and the reason.
    for (entry, image) in new.iter().zip(&images) {
        let detail: Value = serde_json::from_str(entry["detail"].as_str().unwrap_or("{}"))
            .map_err(|e| e.to_string())?;
        let s = |k: &str| image[k]["S"].as_str().map(str::to_string);
        let d = |k: &str| detail[k].as_str().map(str::to_string);
        ensure(
            entry["source"] == "contact-auth"
                && entry["detail_type"].as_str().map(str::to_string) == s("type")
                && d("id") == s("event_id")
                && d("session_id") == s("session_id")
                && d("reason") == s("reason"),
            || format!("bus entry {entry} for {image}"),
        )?;
    }
    Ok(())
}

/// Each change writes its events with it: a registration (contact, membership, session), a
/// logout (session.ended, logout), a detected reuse (session.ended and reuse_detected); a
/// refused consume (the same link again) writes none.
pub async fn events_are_written_with_their_changes() -> Result<(), String> {
    init()?;
    let app = fresh(&Value::Null).await;
    let t0 = app.now();
    let email = format!(
        "outbox-{}@example.com",
        contact_auth::domain::secret::new_id()
    );
    let token = crate::put_link(&app.at(t0), &email).await?;
    let (status, body) = fixtures::consume(&app.at(t0), &token).await?;
    ensure(status == 200, || format!("consume {status}"))?;
    let refresh = body["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    crate::record_secret(&refresh);
    let mut types: Vec<String> = outbox(&app).await?.into_iter().map(|e| e.0).collect();
    types.sort();
    ensure(
        types == ["contact.created", "membership.created", "session.created"],
        || format!("after a registration: {types:?}"),
    )?;
    // The same link again: refused, no event.
    let (status, _) = fixtures::consume(&app.at(t0 + 1), &token).await?;
    ensure(status == 401 && outbox(&app).await?.len() == 3, || {
        format!("a refused consume: {status}, events {:?}", types)
    })?;
    // Reuse of a rotated-out token: the family ends, two events.
    let (status, rotated) = crate::refresh_with(&app.at(t0 + 10), &refresh).await?;
    ensure(status == 200, || format!("refresh {status}"))?;
    crate::record_secret(rotated["refresh_token"].as_str().unwrap_or_default());
    let (status, _) = crate::refresh_with(&app.at(t0 + 100), &refresh).await?;
    ensure(status == 401, || format!("reuse {status}"))?;
    // The same rotated-out token again (and a logout with it): the family was revoked
    // already; no new events (a replayed token cannot mint them).
    let (status, _) = crate::refresh_with(&app.at(t0 + 110), &refresh).await?;
    ensure(status == 401, || format!("reuse again {status}"))?;
    let logout = serde_json::json!({"data": {"type": "refresh_requests", "attributes": {"refresh_token": refresh}}});
    let resp = app
        .at(t0 + 120)
        .handle(
            Route::Logout,
            request(&fixtures::post_event(Route::Logout.path(), logout))?,
        )
        .await;
    ensure(resp.status() == 204, || format!("logout {}", resp.status()))?;
    let all = outbox(&app).await?;
    let ended: Vec<_> = all.iter().filter(|e| e.0 == "session.ended").collect();
    ensure(
        ended.len() == 1
            && ended[0].3 == "reuse"
            && all
                .iter()
                .filter(|e| e.0 == "session.reuse_detected")
                .count()
                == 1,
        || format!("after a reuse: {all:?}"),
    )?;
    // Logout everywhere: one session.ended for all of them.
    let (access, _, _) = crate::sessions::sign_in(&app.at(t0 + 200), &email).await?;
    let resp = app
        .at(t0 + 201)
        .handle(
            Route::LogoutEverywhere,
            request(&crate::authed_event(
                "POST",
                Route::LogoutEverywhere,
                &access,
                Value::Null,
            ))?,
        )
        .await;
    ensure(resp.status() == 204, || {
        format!("logout everywhere {}", resp.status())
    })?;
    let all = outbox(&app).await?;
    ensure(
        all.iter()
            .any(|e| e.0 == "session.ended" && e.3 == "logout_everywhere" && e.2.is_empty()),
        || format!("after logout everywhere: {all:?}"),
    )
}

/// A scripted HTTP receiver on 127.0.0.1: answers each request with the next status of
/// `script` (the last one repeats), records (webhook-id, body).
struct Receiver {
    url: String,
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

async fn receiver(script: Vec<u16>) -> Result<Receiver, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let url = format!(
        "http://{}/hook",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Read the head, then the body by its Content-Length.
            let (head, body_start) = loop {
                let Ok(n) = sock.read(&mut chunk).await else {
                    break (String::new(), 0);
                };
                if n == 0 {
                    break (String::new(), 0);
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break (String::from_utf8_lossy(&buf[..i]).to_string(), i + 4);
                }
            };
            let header = |name: &str| {
                head.lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.trim()
                            .eq_ignore_ascii_case(name)
                            .then(|| v.trim().to_string())
                    })
                    .unwrap_or_default()
            };
            let len: usize = header("content-length").parse().unwrap_or(0);
            while buf.len() < body_start + len {
                let Ok(n) = sock.read(&mut chunk).await else {
                    break;
                };
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = String::from_utf8_lossy(&buf[body_start.min(buf.len())..]).to_string();
            let n = {
                let mut l = log.lock().unwrap_or_else(|p| p.into_inner());
                l.push((header("webhook-id"), body));
                l.len()
            };
            let status = script.get(n - 1).or(script.last()).copied().unwrap_or(204);
            let _ = sock
                .write_all(
                    format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    )
                    .as_bytes(),
                )
                .await;
        }
    });
    Ok(Receiver { url, seen })
}

impl Receiver {
    fn count(&self) -> usize {
        self.seen.lock().map(|l| l.len()).unwrap_or(0)
    }
}

/// An event of now (an outbox item dated in the past would be expired by its TTL, which
/// DynamoDB Local enforces too).
fn event_for(team: &TeamId) -> AuthEvent {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    AuthEvent::new(EventType::SessionCreated, now, &ContactId::generate())
        .team(Some(team))
        .session(&contact_auth::domain::secret::new_id())
}

/// Writes `event`'s outbox item as a change would (its marks go on it).
async fn put_outbox(app: &TestApp, event: &AuthEvent) -> Result<(), String> {
    let item = contact_auth::adapters::dynamo::codec::event_item(event);
    app.store
        .client()
        .put_item()
        .table_name(app.store.table())
        .set_item(Some(item))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

async fn webhook_outcome(app: &TestApp, id: &str) -> Result<String, String> {
    let (pk, sk) = contact_auth::adapters::dynamo::keys::event(id);
    let out = app
        .store
        .client()
        .get_item()
        .table_name(app.store.table())
        .key("pk", AttributeValue::S(pk))
        .key("sk", AttributeValue::S(sk))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    Ok(out
        .item()
        .and_then(|i| i.get("webhook_outcome"))
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default())
}

/// A redelivered batch delivers nothing twice; a failing receiver is retried with backoff
/// (3 attempts, the same webhook-id) and then given up on without holding the batch; a
/// 4xx is not retried; private targets are refused, by literal or by what a name resolves
/// to.
pub async fn webhooks_are_delivered_once_retried_and_refused_where_private() -> Result<(), String> {
    init()?;
    let app = fresh(&Value::Null).await;
    let team = TeamId::from_stored(format!(
        "team_hooks_{}",
        contact_auth::domain::secret::new_id()
    ));
    let set = |url: &str| EventSettings {
        webhook_url: Some(url.to_string()),
        webhook_secret: Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()),
        include_email: false,
        paused_until: None,
    };
    let events = events_app(
        &app,
        vec![Duration::from_millis(50), Duration::from_millis(100)],
    )?;
    let run = |list: Vec<AuthEvent>| {
        let records = list
            .into_iter()
            .enumerate()
            .map(|(i, e)| EventRecord {
                sequence_number: Some(format!("{i}")),
                event: Some(e),
            })
            .collect();
        process_event_records(&events, records)
    };

    // Delivered once, bus and webhook, though the batch comes twice.
    let ok = receiver(vec![204]).await?;
    app.store
        .put_event_settings(&team, Some(&set(&ok.url)))
        .await
        .map_err(|e| e.to_string())?;
    let batch: Vec<AuthEvent> = (0..3).map(|_| event_for(&team)).collect();
    for e in &batch {
        put_outbox(&app, e).await?;
    }
    let ids: Vec<String> = batch.iter().map(|e| e.id.clone()).collect();
    ensure(run(batch.clone()).await.is_none(), || {
        "first delivery failed".into()
    })?;
    ensure(run(batch.clone()).await.is_none(), || {
        "redelivery failed".into()
    })?;
    ensure(ok.count() == 3, || {
        format!("the receiver got {} requests for 3 events", ok.count())
    })?;
    ensure(bus_count(&ids).await? == 3, || {
        "the bus got a duplicate or missed one".into()
    })?;
    let seen_ids: Vec<String> = ok
        .seen
        .lock()
        .map(|l| l.iter().map(|s| s.0.clone()).collect())
        .unwrap_or_default();
    ensure(ids.iter().all(|i| seen_ids.contains(i)), || {
        format!("{seen_ids:?} vs {ids:?}")
    })?;

    // 503, 503, then 204: three attempts with the same id, delivered.
    let flaky = receiver(vec![503, 503, 204]).await?;
    app.store
        .put_event_settings(&team, Some(&set(&flaky.url)))
        .await
        .map_err(|e| e.to_string())?;
    let e = event_for(&team);
    put_outbox(&app, &e).await?;
    ensure(run(vec![e.clone()]).await.is_none(), || "flaky".into())?;
    let attempts: Vec<String> = flaky
        .seen
        .lock()
        .map(|l| l.iter().map(|s| s.0.clone()).collect())
        .unwrap_or_default();
    ensure(
        attempts.len() == 3 && attempts.iter().all(|i| *i == e.id),
        || format!("{attempts:?}"),
    )?;
    ensure(webhook_outcome(&app, &e.id).await? == "delivered", || {
        "not marked delivered".into()
    })?;

    // Always 500: three attempts, marked failed, the batch is not held (no failure reported).
    let down = receiver(vec![500]).await?;
    app.store
        .put_event_settings(&team, Some(&set(&down.url)))
        .await
        .map_err(|e| e.to_string())?;
    let e = event_for(&team);
    put_outbox(&app, &e).await?;
    ensure(run(vec![e.clone()]).await.is_none(), || {
        "a failing webhook held the batch".into()
    })?;
    ensure(down.count() == 3, || {
        format!("{} attempts at a failing receiver", down.count())
    })?;
    let outcome = webhook_outcome(&app, &e.id).await?;
    ensure(outcome == "failed", || {
        format!("not marked failed: {outcome:?}")
    })?;
    // The dead receiver is paused: the team's next event is not attempted (the stream,
    // shared by every team, does not wait on it again), marked paused, still on the bus.
    let next = event_for(&team);
    put_outbox(&app, &next).await?;
    ensure(run(vec![next.clone()]).await.is_none(), || "paused".into())?;
    let outcome = webhook_outcome(&app, &next.id).await?;
    ensure(outcome == "paused" && down.count() == 3, || {
        format!(
            "after a failed event: {outcome:?}, {} attempts",
            down.count()
        )
    })?;
    ensure(
        bus_count(std::slice::from_ref(&next.id)).await? == 1,
        || "a paused webhook's event missed the bus".into(),
    )?;

    // 410: one attempt, rejected.
    let gone = receiver(vec![410]).await?;
    app.store
        .put_event_settings(&team, Some(&set(&gone.url)))
        .await
        .map_err(|e| e.to_string())?;
    let e = event_for(&team);
    put_outbox(&app, &e).await?;
    ensure(run(vec![e.clone()]).await.is_none(), || "gone".into())?;
    ensure(gone.count() == 1, || {
        format!("{} attempts at a 410", gone.count())
    })?;
    ensure(webhook_outcome(&app, &e.id).await? == "rejected", || {
        "not marked rejected".into()
    })?;

    // SSRF: the metadata service and a private address by literal, a 6to4 form of the
    // metadata service; refused as private addresses, nothing sent, the bus still served.
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://[2002:a9fe:a9fe::1]/",
    ] {
        app.store
            .put_event_settings(&team, Some(&set(url)))
            .await
            .map_err(|e| e.to_string())?;
        let e = event_for(&team);
        put_outbox(&app, &e).await?;
        let r = contact_auth::handlers::events::process_event(&events, &e)
            .await
            .map_err(|e| e.to_string())?;
        ensure(
            r == contact_auth::handlers::events::WebhookResult::Refused("private_address"),
            || format!("{url}: {r:?}"),
        )?;
        ensure(webhook_outcome(&app, &e.id).await? == "refused", || {
            format!("{url} not marked refused")
        })?;
        ensure(bus_count(std::slice::from_ref(&e.id)).await? == 1, || {
            "the bus missed it".into()
        })?;
    }
    let strict = contact_auth::handlers::events::EventsApp {
        webhooks: contact_auth::adapters::webhook::HttpWebhooks::new(false),
        ..events_app(&app, vec![])?
    };
    let port = ok
        .url
        .split(':')
        .nth(2)
        .and_then(|p| p.split('/').next())
        .unwrap_or("80")
        .to_string();
    app.store
        .put_event_settings(&team, Some(&set(&format!("https://localhost:{port}/hook"))))
        .await
        .map_err(|e| e.to_string())?;
    let e = event_for(&team);
    put_outbox(&app, &e).await?;
    let before = ok.count();
    let r = contact_auth::handlers::events::process_event(&strict, &e)
        .await
        .map_err(|e| e.to_string())?;
    ensure(
        r == contact_auth::handlers::events::WebhookResult::Refused("private_address")
            && ok.count() == before,
        || format!("a name resolving to loopback: {r:?}"),
    )?;
    Ok(())
}
