//! The signed-in contact's own account: `POST /logout-everywhere`, `PATCH /me`,
//! `POST /me/password`, `POST /me/password/change`.

use http::StatusCode;
use lambda_http::Request;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use crate::app::App;
use crate::domain::email::parse_email;
use crate::domain::jwt::AccessClaims;
use crate::domain::model::{Contact, JobPurpose, MailJob};
use crate::domain::password;
use crate::domain::rate::{email_scope, send_rules};
use crate::domain::secret::new_id;
use crate::edge::{
    attr_pointer, empty_response, json_response, parse_document, HandlerResult, RequestMeta,
    JSONAPI,
};
use crate::errors::{ApiError, ErrorCode};
use crate::handlers::login::reserve_password_attempt;
use crate::handlers::me::contact_resource;
use crate::handlers::session::{
    authenticate, new_refresh, recent_email_sign_in, recently_authenticated, set_refresh_cookie,
    token_pair, SessionSubject,
};
use crate::ports::{Enqueued, ProfileChanges};

async fn resource(app: &App, contact_id: &str) -> Result<Value, ApiError> {
    let store = app.store()?;
    let contact = store
        .contact(contact_id)
        .await?
        .ok_or(ApiError::new(ErrorCode::Unauthorized))?;
    let memberships = store.memberships(contact_id).await?;
    Ok(contact_resource(&contact, &memberships))
}

/// Ends every session of the contact (token version + 1) and cancels a pending email
/// change, whose link then answers 401 `magic_link_invalid`.
pub async fn handle_logout_everywhere(
    app: &App,
    req: Request,
    _meta: RequestMeta,
) -> HandlerResult {
    let (claims, _) = authenticate(app, &req).await?;
    app.store()?.end_all_sessions(&claims.sub).await?;
    tracing::info!(contact_id = %claims.sub, "logged out everywhere");
    let mut resp = empty_response(StatusCode::NO_CONTENT);
    set_refresh_cookie(app, &mut resp, None);
    Ok(resp)
}

/// A mail job about the contact's account, for its own (stored) address.
fn notice_job(purpose: JobPurpose, claims: &AccessClaims, contact: &Contact, now: i64) -> MailJob {
    MailJob {
        job_id: new_id(),
        purpose,
        slug: None,
        team_id: Some(claims.tid.clone()),
        email: contact.email.clone(),
        email_key: contact.email_key.clone(),
        redirect_url: None,
        created_at: now,
        contact_id: Some(contact.contact_id.clone()),
        change_id: None,
        pw_version: None,
    }
}

/// Checks a `current_password` sent with a sensitive change. The attempt is reserved
/// first, on the same counters as a login for this team and email (a stolen access token
/// gives no more guesses than the login form); a correct one clears the failure count.
async fn check_current_password(
    app: &App,
    claims: &AccessClaims,
    contact: &Contact,
    given: &str,
    source_ip: &str,
) -> Result<(), ApiError> {
    let store = app.store()?;
    let now = app.now();
    let scope = email_scope(&claims.tid, &contact.email_key);
    let failures = reserve_password_attempt(app, store, &scope, source_ip, now).await?;
    if !password::verify(contact.password_hash.as_deref(), given) {
        tracing::info!(contact_id = %contact.contact_id, "wrong current password");
        return Err(
            ApiError::new(ErrorCode::CurrentPasswordIncorrect).at(attr_pointer("current_password"))
        );
    }
    store.reset_counter(&failures).await?;
    Ok(())
}

fn reauthentication_required() -> ApiError {
    ApiError::new(ErrorCode::ReauthenticationRequired)
}

fn optional_text(
    value: Option<&Value>,
    name: &str,
    max: usize,
) -> Result<Option<Option<String>>, ApiError> {
    match value {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= max => {
            Ok(Some(Some(s.trim().to_string())))
        }
        Some(_) => Err(ApiError::validation(
            attr_pointer(name),
            format!("{name} must be a non-empty string of at most {max} characters, or null."),
        )),
    }
}

/// `tos_accepted_at`: RFC 3339, years 1970–9999 once in UTC, not in the future; stored
/// in UTC. Every failure is a 422 (no client input reaches a 5xx).
pub fn parse_tos_time(raw: &str, now: i64) -> Result<String, ApiError> {
    let invalid = || {
        ApiError::validation(
            attr_pointer("tos_accepted_at"),
            "tos_accepted_at must be an RFC 3339 date-time between 1970 and 9999.",
        )
    };
    let at = OffsetDateTime::parse(raw, &Rfc3339).map_err(|_| invalid())?;
    let utc = at.checked_to_offset(UtcOffset::UTC).ok_or_else(invalid)?;
    if !(1970..=9999).contains(&utc.year()) {
        return Err(invalid());
    }
    if utc.unix_timestamp() > now + 300 {
        return Err(ApiError::validation(
            attr_pointer("tos_accepted_at"),
            "tos_accepted_at must not be in the future.",
        ));
    }
    utc.format(&Rfc3339).map_err(|_| invalid())
}

pub async fn handle_patch_me(app: &App, req: Request, meta: RequestMeta) -> HandlerResult {
    let (claims, contact) = authenticate(app, &req).await?;
    let attrs = parse_document(&req, "contacts", false)?;
    attrs.only(&[
        "tos_accepted_at",
        "tos_version",
        "email",
        "current_password",
    ])?;
    let now = app.now();
    let mut changes = ProfileChanges {
        tos_version: optional_text(attrs.0.get("tos_version"), "tos_version", 64)?,
        ..Default::default()
    };
    changes.tos_accepted_at =
        match optional_text(attrs.0.get("tos_accepted_at"), "tos_accepted_at", 64)? {
            Some(Some(t)) => Some(Some(parse_tos_time(&t, now)?)),
            other => other,
        };
    let current_password = attrs.optional_str("current_password")?;
    let new_email = match attrs.optional_str("email")? {
        None => None,
        Some(raw) => Some(
            parse_email(&raw)
                .map_err(|e| ApiError::validation(attr_pointer("email"), e.detail()))?,
        ),
    };
    if current_password.is_some() && new_email.is_none() {
        return Err(ApiError::validation(
            attr_pointer("current_password"),
            "current_password is only accepted together with email.",
        ));
    }
    let store = app.store()?;
    match &new_email {
        None => {}
        // Back to the current address: cancel a pending change (its link dies).
        Some(email) if email.key == contact.email_key => {
            changes.cancel_email_change = true;
        }
        Some(email) => {
            // A new address needs a recent sign-in, or the current password now.
            match &current_password {
                Some(pw) => {
                    check_current_password(app, &claims, &contact, pw, &meta.source_ip).await?
                }
                None if recently_authenticated(&claims, now, app.config.recent_auth) => {}
                None => return Err(reauthentication_required()),
            }
            // A confirmation link goes to the new address and a notice with an undo link
            // to the current one (both by the mailer); the switch happens when the link
            // is consumed, and only while this request is the pending one.
            let change_id = new_id();
            let rules = send_rules(
                &app.config,
                &email_scope(&claims.tid, &email.key),
                &meta.source_ip,
            );
            let job = MailJob {
                email: email.display.clone(),
                email_key: email.key.clone(),
                change_id: Some(change_id),
                pw_version: Some(contact.password_version),
                ..notice_job(JobPurpose::EmailChange, &claims, &contact, now)
            };
            if let Enqueued::Limited { retry_after } = store
                .request_email_change(&job, &rules, &email.display, now)
                .await?
            {
                return Err(ApiError::rate_limited(retry_after));
            }
            tracing::info!(contact_id = %contact.contact_id, job_id = %job.job_id, "email change requested");
        }
    }
    store.update_profile(&contact.contact_id, &changes).await?;
    Ok(json_response(
        StatusCode::OK,
        JSONAPI,
        &resource(app, &contact.contact_id).await?,
    ))
}

fn policy(pw: &str, email_key: &str, field: &str) -> Result<(), ApiError> {
    password::check_policy(pw, email_key)
        .map_err(|code| ApiError::new(code).at(attr_pointer(field)))
}

/// Sets the first password: needs a recent sign-in (a stolen older access token must
/// not plant a password); the member's address gets a notice.
pub async fn handle_password_set(app: &App, req: Request, _meta: RequestMeta) -> HandlerResult {
    let (claims, contact) = authenticate(app, &req).await?;
    let attrs = parse_document(&req, "password_sets", false)?;
    attrs.only(&["password"])?;
    let pw = attrs.required_str("password")?;
    if contact.password_hash.is_some() {
        return Err(ApiError::new(ErrorCode::PasswordAlreadySet));
    }
    let now = app.now();
    if !recently_authenticated(&claims, now, app.config.recent_auth) {
        return Err(reauthentication_required());
    }
    policy(&pw, &contact.email_key, "password")?;
    let hash = password::hash(&pw).map_err(|_| ApiError::internal())?;
    let notice = notice_job(JobPurpose::PasswordSetNotice, &claims, &contact, now);
    if !app
        .store()?
        .set_first_password(&contact.contact_id, &hash, now, &notice)
        .await?
    {
        return Err(ApiError::new(ErrorCode::PasswordAlreadySet));
    }
    tracing::info!(contact_id = %contact.contact_id, "password set");
    Ok(json_response(
        StatusCode::OK,
        JSONAPI,
        &resource(app, &contact.contact_id).await?,
    ))
}

/// Changes the password with the current one, or without it within the window of a
/// sign-in by email (the forgotten-password path). Ends every other session and any
/// pending email change; this session continues with a new pair; the member's address
/// gets a notice.
pub async fn handle_password_change(app: &App, req: Request, meta: RequestMeta) -> HandlerResult {
    let (claims, contact) = authenticate(app, &req).await?;
    let attrs = parse_document(&req, "password_changes", false)?;
    attrs.only(&["current_password", "new_password"])?;
    let current = attrs.optional_str("current_password")?;
    let new_pw = attrs.required_str("new_password")?;
    if contact.password_hash.is_none() {
        return Err(ApiError::new(ErrorCode::PasswordNotSet));
    }
    let now = app.now();
    match &current {
        Some(cur) => check_current_password(app, &claims, &contact, cur, &meta.source_ip).await?,
        None if recent_email_sign_in(&claims, now, app.config.recent_auth) => {}
        None => return Err(reauthentication_required().detail(
            "current_password is required; it may be omitted only within 10 minutes of signing in with an email link or code. Sign in again by email to reset a forgotten password.",
        )),
    }
    policy(&new_pw, &contact.email_key, "new_password")?;
    let hash = password::hash(&new_pw).map_err(|_| ApiError::internal())?;
    // This session continues with a new pair at the new token version; all others end.
    let subject = SessionSubject {
        contact_id: contact.contact_id.clone(),
        team_id: claims.tid.clone(),
        hub_id: claims.hid.clone(),
        token_version: contact.token_version + 1,
        amr: vec!["pwd".into()],
        auth_time: now,
    };
    let refresh = new_refresh(app, &subject, None)?;
    let notice = notice_job(JobPurpose::PasswordChangeNotice, &claims, &contact, now);
    if !app
        .store()?
        .change_password(&contact, &hash, &refresh.record, now, &notice)
        .await?
    {
        // The password or the token version moved meanwhile: this token is stale.
        return Err(ApiError::new(ErrorCode::Unauthorized));
    }
    tracing::info!(contact_id = %contact.contact_id, "password changed; other sessions ended");
    let mut doc = resource(app, &contact.contact_id).await?;
    doc["meta"] = token_pair(app, &subject, &refresh)?;
    let mut resp = json_response(StatusCode::OK, JSONAPI, &doc);
    set_refresh_cookie(app, &mut resp, Some(&refresh));
    Ok(resp)
}
