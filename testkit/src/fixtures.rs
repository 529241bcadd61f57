//! Fixture setup: the state an `events/` fixture needs before it is sent (a stored
//! magic link, a signed-in session, a password, a rotated refresh token, a mail job),
//! described by the `setup` list of its `.expected.json` and parsed into typed steps.
//! One definition, used by the replay tests and by `make invoke` (through
//! `contact-auth-admin fixture`).
//!
//! Time: a fixture's `clock_offset` says how long ago its setup happened. The caller
//! passes a `TestApp` whose clock is that far behind, and the fixture is then sent at the
//! real time — what a member sees coming back to an old link or session.

use std::collections::HashMap;

use contact_auth::domain::code::{code_hash, SignInCode};
use contact_auth::domain::email::{parse_email, EmailKey};
use contact_auth::domain::i18n::Locale;
use contact_auth::domain::ids::{ContactId, TeamId};
use contact_auth::domain::model::{JobPurpose, LinkPurpose, MagicLink, MailJob};
use contact_auth::domain::password;
use contact_auth::domain::secret::{new_id, RawToken};
use contact_auth::domain::suppression::Reason;
use contact_auth::ports::{Contacts, Directory, MagicLinks, MailJobs, Suppressions};
use contact_auth::routes::Route;
use http::Response;
use lambda_http::Body;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::app::TestApp;

/// One `setup` step.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum SetupStep {
    /// A registration link with this token for `email` on hub `slug`, made the newest;
    /// `used`: consumed once. With `code` (6 digits) it carries that sign-in code, with
    /// `code_attempts` wrong guesses already counted; with `code_challenge` it is bound to
    /// that PKCE challenge.
    MagicLink {
        token: String,
        email: String,
        slug: String,
        #[serde(default)]
        used: bool,
        #[serde(default)]
        code: Option<String>,
        #[serde(default)]
        code_attempts: u32,
        #[serde(default)]
        code_challenge: Option<String>,
    },
    /// Signs in by code (through the real handler, so the link is used).
    CodeSignIn {
        email: String,
        code: String,
        slug: String,
    },
    /// `email` signs in (member-academy): `{{ACCESS_TOKEN}}`, `{{REFRESH_TOKEN}}`,
    /// `{{CONTACT_ID}}`, `{{SESSION_ID}}` (the access token's `sid`).
    Session { email: String },
    /// The session's contact sets this first password.
    Password { password: String },
    /// The session's refresh token is rotated once (the fixture presents the old one).
    Rotate,
    /// The session's contact is banned from the demo team (`contact-auth-admin ban`).
    Ban,
    /// A mail job written straight to the table (no rate counters).
    Job {
        job_id: String,
        email: String,
        #[serde(default)]
        purpose: Option<JobPurposeName>,
        #[serde(default)]
        slug: Option<String>,
        #[serde(default)]
        team_id: Option<String>,
        /// The request's source IP (the mailer's per-IP mail budgets).
        #[serde(default)]
        source_ip: Option<String>,
        /// The request's `locale` attribute (a supported tag) and `Accept-Language`.
        #[serde(default)]
        locale: Option<String>,
        #[serde(default)]
        accept_language: Option<String>,
    },
    /// SES reported `email` undeliverable (`reason`: `bounce` or `complaint`), as the
    /// ses-events function records it (the profile of its contact flagged too).
    Suppress { email: String, reason: String },
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobPurposeName {
    Register,
    Magic,
}

/// What setup made: placeholder values and every secret it created or sent (for the
/// secrets-in-logs check).
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
        Route::MagicConsume.path(),
        json!({"data": {"type": "magic_link_consumes", "attributes": {"token": token}}}),
    )
}

pub fn refresh_event(token: &str) -> String {
    post_event(
        Route::Refresh.path(),
        json!({"data": {"type": "refresh_requests", "attributes": {"refresh_token": token}}}),
    )
}

/// What a fixture link carries besides its token (see `SetupStep::MagicLink`).
#[derive(Debug, Clone, Default)]
pub struct LinkExtras {
    pub code: Option<String>,
    pub code_attempts: u32,
    pub code_challenge: Option<String>,
}

/// A registration link for `email` on hub `slug`, stored as the mailer would, created
/// at `app`'s time.
pub async fn put_link(app: &TestApp, token: &str, email: &str, slug: &str) -> Result<(), String> {
    put_link_with(app, token, email, slug, &LinkExtras::default()).await
}

/// `put_link` with a sign-in code (hashed with the test keys, as the mailer does) and a
/// same-device binding.
pub async fn put_link_with(
    app: &TestApp,
    token: &str,
    email: &str,
    slug: &str,
    extra: &LinkExtras,
) -> Result<(), String> {
    let store = &app.store;
    let hub = store
        .hub_by_slug(slug)
        .await
        .map_err(|e| e.to_string())?
        .ok_or(format!("no hub {slug}"))?;
    let token = RawToken::parse(token).ok_or("setup: not a token")?;
    let key = email_key(email)?;
    let now = app.now();
    let link = MagicLink {
        token_hash: token.hash(),
        purpose: LinkPurpose::Register,
        team_id: hub.team_id,
        hub_id: Some(hub.hub_id),
        email: email.into(),
        email_key: key,
        contact_id: None,
        redirect_url: None,
        created_at: now,
        expires_at: now + app.config.magic_ttl,
        used_at: None,
        change_id: None,
        pw_version: None,
        chain_id: None,
        key_id: Some(app.keys().link().active.id()),
        code_hash: None,
        code_attempts: extra.code_attempts,
        code_challenge: extra.code_challenge.clone(),
        locale: None,
    };
    let code_hash = match &extra.code {
        Some(c) => {
            let code = SignInCode::parse(c).ok_or("setup: a code is 6 digits")?;
            Some(code_hash(
                &app.keys().link().active,
                &link.token_hash,
                &code,
            ))
        }
        None => None,
    };
    let link = MagicLink { code_hash, ..link };
    store
        .put_magic_link(&link, None)
        .await
        .map_err(|e| e.to_string())?;
    store.make_newest(&link).await.map_err(|e| e.to_string())
}

/// POST /magic/consume through the real handler: status and body.
pub async fn consume(app: &TestApp, token: &str) -> Result<(u16, Value), String> {
    let resp = app
        .handle(Route::MagicConsume, request(&consume_event(token))?)
        .await;
    Ok((resp.status().as_u16(), body_json(&resp)))
}

/// The identity key of a fixture's address (as the API would compute it).
fn email_key(email: &str) -> Result<EmailKey, String> {
    parse_email(email)
        .map(|e| e.key)
        .map_err(|e| format!("setup: {}", e.detail()))
}

/// The `setup` list of an expected file as typed steps.
pub fn parse_steps(setup: &Value) -> Result<Vec<SetupStep>, String> {
    match setup {
        Value::Null => Ok(vec![]),
        v => serde_json::from_value(v.clone()).map_err(|e| format!("setup: {e}")),
    }
}

/// Runs setup steps with `app` (see the module comment on time).
pub async fn setup(app: &TestApp, steps: &[SetupStep]) -> Result<Prepared, String> {
    let mut out = Prepared::default();
    let store = &app.store;
    for step in steps {
        match step {
            SetupStep::MagicLink {
                token,
                email,
                slug,
                used,
                code,
                code_attempts,
                code_challenge,
            } => {
                let extra = LinkExtras {
                    code: code.clone(),
                    code_attempts: *code_attempts,
                    code_challenge: code_challenge.clone(),
                };
                put_link_with(app, token, email, slug, &extra).await?;
                out.secrets.push(token.clone());
                out.secrets.push(email.clone());
                if *used {
                    let (status, _) = consume(app, token).await?;
                    if status != 200 {
                        return Err(format!("setup: first consume answered {status}"));
                    }
                }
            }
            SetupStep::CodeSignIn { email, code, slug } => {
                let event = post_event(
                    Route::MagicConsume.path(),
                    json!({"data": {"type": "magic_link_consumes",
                        "attributes": {"email": email, "code": code, "slug": slug}}}),
                );
                let resp = app.handle(Route::MagicConsume, request(&event)?).await;
                if resp.status() != 200 {
                    return Err(format!("setup: code sign-in answered {}", resp.status()));
                }
                for key in ["access_token", "refresh_token"] {
                    if let Some(v) = body_json(&resp)[key].as_str() {
                        out.secrets.push(v.to_string());
                    }
                }
            }
            SetupStep::Session { email } => {
                let token = RawToken::generate().map_err(|e| e.to_string())?;
                put_link(app, token.expose(), email, "member-academy").await?;
                out.secrets.push(token.expose().to_string());
                out.secrets.push(email.clone());
                let (status, body) = consume(app, token.expose()).await?;
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
                let sid = body["access_token"]
                    .as_str()
                    .and_then(jwt_claim_sid)
                    .ok_or("setup: the access token names no session")?;
                out.vars.insert("SESSION_ID".into(), sid);
                let contact = store
                    .contact_id_by_email(&email_key(email)?)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or("setup: the session made no contact")?;
                out.vars.insert("CONTACT_ID".into(), contact.to_string());
            }
            SetupStep::Password { password } => {
                let contact = out
                    .vars
                    .get("CONTACT_ID")
                    .ok_or("setup: password needs a session first")?;
                let contact = ContactId::from_stored(contact.as_str());
                let hash = password::hash(password)?;
                out.secrets.push(password.clone());
                let notice = MailJob {
                    job_id: new_id(),
                    purpose: JobPurpose::PasswordSetNotice,
                    slug: None,
                    team_id: None,
                    email: String::new(),
                    email_key: EmailKey::from_stored(String::new()),
                    redirect_url: None,
                    created_at: app.now(),
                    contact_id: Some(contact.clone()),
                    change_id: None,
                    pw_version: None,
                    code_challenge: None,
                    source_ip: None,
                    locale: None,
                    accept_language: None,
                };
                if !store
                    .set_first_password(&contact, &hash, app.now(), &notice)
                    .await
                    .map_err(|e| e.to_string())?
                {
                    return Err("setup: the contact already had a password".into());
                }
            }
            SetupStep::Ban => {
                let contact = out
                    .vars
                    .get("CONTACT_ID")
                    .ok_or("setup: ban needs a session first")?;
                let contact = ContactId::from_stored(contact.as_str());
                let team = TeamId::from_stored(crate::seed::DEMO_TEAM);
                if !store
                    .set_banned(&contact, &team, true, app.now())
                    .await
                    .map_err(|e| e.to_string())?
                {
                    return Err("setup: the contact is not a member".into());
                }
            }
            SetupStep::Suppress { email, reason } => {
                let key = parse_email(email)
                    .map_err(|_| format!("setup: suppress: {email} is not an address"))?
                    .key;
                let reason = Reason::parse(reason)
                    .ok_or_else(|| format!("setup: suppress: no reason {reason}"))?;
                store
                    .suppress(&key, reason, app.now())
                    .await
                    .map_err(|e| e.to_string())?;
            }
            SetupStep::Rotate => {
                let old = out
                    .vars
                    .get("REFRESH_TOKEN")
                    .ok_or("setup: rotate needs a session first")?;
                let resp = app
                    .handle(Route::Refresh, request(&refresh_event(old))?)
                    .await;
                if resp.status() != 200 {
                    return Err(format!("setup: rotate answered {}", resp.status()));
                }
                if let Some(t) = body_json(&resp)["refresh_token"].as_str() {
                    out.secrets.push(t.to_string());
                }
            }
            SetupStep::Job {
                job_id,
                email,
                purpose,
                slug,
                team_id,
                source_ip,
                locale,
                accept_language,
            } => {
                let now = app.now();
                let job = MailJob {
                    job_id: job_id.clone(),
                    purpose: match purpose {
                        Some(JobPurposeName::Magic) => JobPurpose::Magic,
                        _ => JobPurpose::Register,
                    },
                    slug: slug.clone(),
                    team_id: team_id.as_deref().map(TeamId::from_stored),
                    email_key: email_key(email)?,
                    email: email.clone(),
                    redirect_url: None,
                    created_at: now,
                    contact_id: None,
                    change_id: None,
                    pw_version: None,
                    code_challenge: None,
                    source_ip: source_ip.clone(),
                    locale: locale
                        .as_deref()
                        .map(|t| {
                            Locale::from_tag(t).ok_or(format!("setup: unsupported locale {t}"))
                        })
                        .transpose()?,
                    accept_language: accept_language.clone(),
                };
                out.secrets.push(email.clone());
                store
                    .enqueue_job(&job, &[], now)
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(out)
}

/// The `sid` claim of a JWT (not verified: the handlers do that).
pub fn jwt_claim_sid(jwt: &str) -> Option<String> {
    use base64::Engine;
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims["sid"].as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_steps_are_typed_and_strict() {
        let steps = parse_steps(&json!([
            {"op": "session", "email": "a@example.com"},
            {"op": "password", "password": "pw"},
            {"op": "rotate"},
            {"op": "magic_link", "token": "t", "email": "e", "slug": "s", "used": true},
            {"op": "job", "job_id": "j", "email": "e", "purpose": "magic", "slug": "s"}
        ]))
        .unwrap();
        assert_eq!(steps.len(), 5);
        assert!(matches!(steps[3], SetupStep::MagicLink { used: true, .. }));
        // A typo is an error, not a silently skipped step.
        assert!(parse_steps(&json!([{"op": "sesion", "email": "a"}])).is_err());
        assert!(parse_steps(&json!([{"op": "session", "emial": "a"}])).is_err());
    }
}
