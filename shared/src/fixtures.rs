//! Fixture setup: the state an `events/` fixture needs before it is sent (a stored
//! magic link, a signed-in session, a password, a rotated refresh token, a mail job),
//! described by the `setup` list of its `.expected.json`. One definition, used by the
//! in-process replay tests (`tests/replay.rs`) and by `make invoke` (through
//! `contact-auth-admin fixture`). Not linked into any function binary.
//!
//! Time: a fixture's `clock_offset` says how long ago its setup happened. The caller
//! passes an `app` whose clock is that far behind (`OffsetClock(-offset)`), and the
//! fixture is then sent at the real time — the same thing a real member sees when they
//! come back to an old link or an old session.

use std::collections::HashMap;

use http::Response;
use lambda_http::Body;
use serde_json::{json, Value};

use crate::app::App;
use crate::domain::model::{JobPurpose, LinkPurpose, MagicLink, MailJob};
use crate::domain::secret::{hash_token, new_id, new_token};
use crate::handlers::{self, Route};

/// What setup made: placeholder values (`{{ACCESS_TOKEN}}`, `{{REFRESH_TOKEN}}`,
/// `{{CONTACT_ID}}`) and every secret it created (for the secrets-in-logs check).
#[derive(Default, Debug)]
pub struct Prepared {
    pub vars: HashMap<String, String>,
    pub secrets: Vec<String>,
}

impl Prepared {
    /// The fixture text with its placeholders filled in.
    pub fn resolve(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (k, v) in &self.vars {
            out = out.replace(&format!("{{{{{k}}}}}"), v);
        }
        out
    }
}

/// An API Gateway (HTTP API, payload 2.0) event text as a request.
pub fn request(text: &str) -> Result<lambda_http::Request, String> {
    lambda_http::request::from_str(text).map_err(|e| format!("not an API Gateway event: {e}"))
}

/// A response body as JSON (`Null` when empty or not JSON).
pub fn body_json(resp: &Response<Body>) -> Value {
    match resp.body() {
        Body::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
        Body::Binary(b) => serde_json::from_slice(b).unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

/// A POST as API Gateway (HTTP API, payload 2.0) delivers it.
pub fn post_event(path: &str, body: Value) -> String {
    json!({
        "version": "2.0", "routeKey": format!("POST {path}"),
        "rawPath": path, "rawQueryString": "",
        "headers": {"content-type": "application/vnd.api+json"},
        "requestContext": {"http": {"method": "POST", "path": path,
            "protocol": "HTTP/1.1", "sourceIp": "198.51.100.7", "userAgent": "fixture-setup"},
            "requestId": new_id(), "routeKey": format!("POST {path}"), "stage": "$default",
            "accountId": "123456789012", "apiId": "abc", "domainName": "x", "domainPrefix": "x",
            "time": "26/Nov/2026:10:00:00 +0000", "timeEpoch": 1795687200000u64},
        "body": body.to_string(),
        "isBase64Encoded": false
    })
    .to_string()
}

pub fn consume_event(token: &str) -> String {
    post_event(
        "/api/v1/contact-auth/magic/consume",
        json!({"data": {"type": "magic_link_consumes", "attributes": {"token": token}}}),
    )
}

pub fn refresh_event(token: &str) -> String {
    post_event(
        "/api/v1/contact-auth/refresh",
        json!({"data": {"type": "refresh_requests", "attributes": {"refresh_token": token}}}),
    )
}

/// A registration link for `email` on hub `slug`, stored as the mailer would, created
/// at `app`'s time.
pub async fn put_link(app: &App, token: &str, email: &str, slug: &str) -> Result<(), String> {
    let store = app.store().map_err(|e| e.to_string())?;
    let hub = store
        .hub_by_slug(slug)
        .await
        .map_err(|e| e.to_string())?
        .ok_or(format!("no hub {slug}"))?;
    let now = app.now();
    let link = MagicLink {
        token_hash: hash_token(token),
        purpose: LinkPurpose::Register,
        team_id: hub.team_id,
        hub_id: Some(hub.hub_id),
        email: email.into(),
        email_key: email.to_lowercase(),
        contact_id: None,
        redirect_url: None,
        created_at: now,
        expires_at: now + app.config.magic_ttl,
        used_at: None,
        change_id: None,
        pw_version: None,
    };
    store
        .put_magic_link(&link, None)
        .await
        .map_err(|e| e.to_string())?;
    store.make_newest(&link).await.map_err(|e| e.to_string())
}

/// POST /magic/consume through the real handler: status and body.
pub async fn consume(app: &App, token: &str) -> Result<(u16, Value), String> {
    let resp = handlers::handle(app, Route::MagicConsume, request(&consume_event(token))?).await;
    Ok((resp.status().as_u16(), body_json(&resp)))
}

fn text(step: &Value, key: &str) -> Result<String, String> {
    step[key]
        .as_str()
        .map(str::to_string)
        .ok_or(format!("setup step {step} lacks \"{key}\""))
}

/// Runs the `setup` steps of an expected file with `app` (see the module comment on time).
pub async fn setup(app: &App, steps: &[Value]) -> Result<Prepared, String> {
    let mut out = Prepared::default();
    let store = app.store().map_err(|e| e.to_string())?;
    for step in steps {
        match step["op"].as_str() {
            Some("magic_link") => {
                let token = text(step, "token")?;
                put_link(app, &token, &text(step, "email")?, &text(step, "slug")?).await?;
                out.secrets.push(token.clone());
                if step["used"].as_bool() == Some(true) {
                    let (status, _) = consume(app, &token).await?;
                    if status != 200 {
                        return Err(format!("setup: first consume answered {status}"));
                    }
                }
            }
            Some("session") => {
                let email = text(step, "email")?;
                let token = new_token().map_err(|e| e.to_string())?;
                put_link(app, &token, &email, "member-academy").await?;
                out.secrets.push(token.clone());
                let (status, body) = consume(app, &token).await?;
                if status != 200 {
                    return Err(format!("setup: session consume answered {status}: {body}"));
                }
                for (var, key) in [
                    ("ACCESS_TOKEN", "access_token"),
                    ("REFRESH_TOKEN", "refresh_token"),
                ] {
                    let v = body[key].as_str().ok_or("setup: no token pair")?;
                    out.secrets.push(v.to_string());
                    out.vars.insert(var.into(), v.into());
                }
                let contact = store
                    .contact_id_by_email(&email.to_lowercase())
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or("setup: the session made no contact")?;
                out.vars.insert("CONTACT_ID".into(), contact);
            }
            Some("password") => {
                let password = text(step, "password")?;
                let contact = out
                    .vars
                    .get("CONTACT_ID")
                    .ok_or("setup: password needs a session first")?;
                let hash = crate::domain::password::hash(&password)?;
                out.secrets.push(password);
                let notice = MailJob {
                    job_id: new_id(),
                    purpose: JobPurpose::PasswordSetNotice,
                    slug: None,
                    team_id: None,
                    email: String::new(),
                    email_key: String::new(),
                    redirect_url: None,
                    created_at: app.now(),
                    contact_id: Some(contact.clone()),
                    change_id: None,
                    pw_version: None,
                };
                if !store
                    .set_first_password(contact, &hash, app.now(), &notice)
                    .await
                    .map_err(|e| e.to_string())?
                {
                    return Err("setup: the contact already had a password".into());
                }
            }
            Some("rotate") => {
                // Rotates the session's refresh token; the fixture presents the old one.
                let old = out
                    .vars
                    .get("REFRESH_TOKEN")
                    .ok_or("setup: rotate needs a session first")?;
                let resp =
                    handlers::handle(app, Route::Refresh, request(&refresh_event(old))?).await;
                if resp.status() != 200 {
                    return Err(format!("setup: rotate answered {}", resp.status()));
                }
                if let Some(t) = body_json(&resp)["refresh_token"].as_str() {
                    out.secrets.push(t.to_string());
                }
            }
            Some("job") => {
                let email = text(step, "email")?;
                let now = app.now();
                let purpose = match step["purpose"].as_str() {
                    Some("magic") => JobPurpose::Magic,
                    _ => JobPurpose::Register,
                };
                let job = MailJob {
                    job_id: text(step, "job_id")?,
                    purpose,
                    slug: step["slug"].as_str().map(str::to_string),
                    team_id: step["team_id"].as_str().map(str::to_string),
                    email_key: email.to_lowercase(),
                    email,
                    redirect_url: None,
                    created_at: now,
                    contact_id: None,
                    change_id: None,
                    pw_version: None,
                };
                store
                    .enqueue_job(&job, &[], now)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            other => return Err(format!("unknown setup op {other:?}")),
        }
    }
    Ok(out)
}
