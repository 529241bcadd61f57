//! The signed-in contact's own account: `POST /logout-everywhere`, `PATCH /me`,
//! `POST /me/password`, `POST /me/password/change`.

use http::StatusCode;
use lambda_http::Request;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::app::App;
use crate::domain::email::parse_email;
use crate::domain::model::{JobPurpose, MailJob};
use crate::domain::password;
use crate::domain::rate::{email_scope, ip_counter, login_failures, send_rules};
use crate::domain::secret::new_id;
use crate::edge::{
    attr_pointer, empty_response, json_response, parse_document, HandlerResult, RequestMeta,
    JSONAPI,
};
use crate::errors::{ApiError, ErrorCode};
use crate::handlers::me::contact_resource;
use crate::handlers::session::{
    authenticate, new_refresh, set_refresh_cookie, sign_access, SessionSubject,
};
use crate::ports::{Enqueued, ProfileChanges};

/// How long after a magic-link sign-in the current password may be omitted.
pub const FORGOTTEN_PASSWORD_WINDOW: i64 = 600;

async fn resource(app: &App, contact_id: &str) -> Result<Value, ApiError> {
    let store = app.store()?;
    let contact = store
        .contact(contact_id)
        .await?
        .ok_or(ApiError::new(ErrorCode::Unauthorized))?;
    let memberships = store.memberships(contact_id).await?;
    Ok(contact_resource(&contact, &memberships))
}

pub async fn handle_logout_everywhere(
    app: &App,
    req: Request,
    _meta: RequestMeta,
) -> HandlerResult {
    let (claims, _) = authenticate(app, &req).await?;
    app.store()?.bump_token_version(&claims.sub).await?;
    tracing::info!(contact_id = %claims.sub, "logged out everywhere");
    let mut resp = empty_response(StatusCode::NO_CONTENT);
    set_refresh_cookie(app, &mut resp, None);
    Ok(resp)
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

pub async fn handle_patch_me(app: &App, req: Request, meta: RequestMeta) -> HandlerResult {
    let (claims, contact) = authenticate(app, &req).await?;
    let attrs = parse_document(&req, "contacts", false)?;
    attrs.only(&["tos_accepted_at", "tos_version", "email"])?;
    let mut changes = ProfileChanges {
        tos_version: optional_text(attrs.0.get("tos_version"), "tos_version", 64)?,
        ..Default::default()
    };
    changes.tos_accepted_at =
        match optional_text(attrs.0.get("tos_accepted_at"), "tos_accepted_at", 64)? {
            Some(Some(t)) => {
                let at = OffsetDateTime::parse(&t, &Rfc3339).map_err(|_| {
                    ApiError::validation(
                        attr_pointer("tos_accepted_at"),
                        "tos_accepted_at must be an RFC 3339 date-time.",
                    )
                })?;
                if at.unix_timestamp() > app.now() + 300 {
                    return Err(ApiError::validation(
                        attr_pointer("tos_accepted_at"),
                        "tos_accepted_at must not be in the future.",
                    ));
                }
                let utc = at
                    .to_offset(time::UtcOffset::UTC)
                    .format(&Rfc3339)
                    .map_err(|_| ApiError::internal())?;
                Some(Some(utc))
            }
            other => other,
        };
    let new_email = match attrs.optional_str("email")? {
        None => None,
        Some(raw) => {
            let e = parse_email(&raw)
                .map_err(|e| ApiError::validation(attr_pointer("email"), e.detail()))?;
            (e.key != contact.email_key).then_some(e)
        }
    };
    let store = app.store()?;
    if let Some(email) = &new_email {
        // A confirmation link goes to the new address (through the mailer); the switch
        // happens when it is consumed. Rate limited like any other mail.
        let now = app.now();
        let rules = send_rules(
            &app.config,
            &email_scope(&claims.tid, &email.key),
            &meta.source_ip,
        );
        let job = MailJob {
            job_id: new_id(),
            purpose: JobPurpose::EmailChange,
            slug: None,
            team_id: Some(claims.tid.clone()),
            email: email.display.clone(),
            email_key: email.key.clone(),
            redirect_url: None,
            created_at: now,
            contact_id: Some(contact.contact_id.clone()),
        };
        if let Enqueued::Limited { retry_after } = store.enqueue_job(&job, &rules, now).await? {
            return Err(ApiError::rate_limited(retry_after));
        }
        changes.pending_email = Some(email.display.clone());
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

pub async fn handle_password_set(app: &App, req: Request, _meta: RequestMeta) -> HandlerResult {
    let (_, contact) = authenticate(app, &req).await?;
    let attrs = parse_document(&req, "password_sets", false)?;
    attrs.only(&["password"])?;
    let pw = attrs.required_str("password")?;
    if contact.password_hash.is_some() {
        return Err(ApiError::new(ErrorCode::PasswordAlreadySet));
    }
    policy(&pw, &contact.email_key, "password")?;
    let hash = password::hash(&pw).map_err(|_| ApiError::internal())?;
    if !app
        .store()?
        .set_first_password(&contact.contact_id, &hash)
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

pub async fn handle_password_change(app: &App, req: Request, meta: RequestMeta) -> HandlerResult {
    let (claims, contact) = authenticate(app, &req).await?;
    let attrs = parse_document(&req, "password_changes", false)?;
    attrs.only(&["current_password", "new_password"])?;
    let current = attrs.optional_str("current_password")?;
    let new_pw = attrs.required_str("new_password")?;
    let Some(stored) = contact.password_hash.clone() else {
        return Err(ApiError::new(ErrorCode::PasswordNotSet));
    };
    let now = app.now();
    match current {
        Some(cur) => {
            // Wrong current passwords count as failed logins (a stolen access token must
            // not allow unlimited guessing).
            let store = app.store()?;
            let failures = login_failures(&email_scope(&claims.tid, &contact.email_key), now);
            let ip = ip_counter(&meta.source_ip, now);
            let seen = store
                .login_lookup(&contact.email_key, &failures, &ip)
                .await?;
            if seen.failures >= app.config.login_failures_per_15min {
                return Err(ApiError::rate_limited(
                    (failures.expires_at - now).max(1) as u64
                ));
            }
            if !password::verify(Some(&stored), &cur) {
                store.record_login_failure(&failures, &ip).await?;
                return Err(ApiError::new(ErrorCode::CurrentPasswordIncorrect)
                    .at(attr_pointer("current_password")));
            }
        }
        None => {
            let recent_magic = claims.amr.iter().any(|m| m == "magic_link")
                && now - claims.auth_time < FORGOTTEN_PASSWORD_WINDOW;
            if !recent_magic {
                return Err(ApiError::validation(
                    attr_pointer("current_password"),
                    "current_password is required (it may be omitted within 10 minutes of signing in with an email link).",
                ));
            }
        }
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
    if !app
        .store()?
        .change_password(&contact, &hash, &refresh.record)
        .await?
    {
        // The password or the token version moved meanwhile: this token is stale.
        return Err(ApiError::new(ErrorCode::Unauthorized));
    }
    tracing::info!(contact_id = %contact.contact_id, "password changed; other sessions ended");
    let access = sign_access(app, &subject)?;
    let mut doc = resource(app, &contact.contact_id).await?;
    doc["meta"] = json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": app.config.access_ttl,
        "refresh_token": refresh.raw,
        "refresh_expires_in": app.config.refresh_ttl,
    });
    let mut resp = json_response(StatusCode::OK, JSONAPI, &doc);
    set_refresh_cookie(app, &mut resp, Some(&refresh.raw));
    Ok(resp)
}
