//! `PATCH /me`: terms acceptance, and an email change (recent sign-in or the current
//! password; the switch happens when the link sent to the new address is consumed).

use http::StatusCode;
use lambda_http::Request;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use crate::app::App;
use crate::domain::email::parse_email;
use crate::domain::email_change::{
    chain_for_request, may_request_change, ChangeProof, ChangeRefusal,
};
use crate::domain::jwt::KeySet;
use crate::domain::model::{JobPurpose, MailJob};
use crate::domain::rate::{email_scope, send_rules};
use crate::domain::secret::new_id;
use crate::edge::{
    attr_pointer, json_response, parse_document, HandlerResult, RequestMeta, JSONAPI,
};
use crate::errors::{ApiError, ErrorCode};
use crate::flows::account::{
    check_current_password, notice_job, reauthentication_required, resource,
};
use crate::flows::session::authenticate;
use crate::metrics::{self, Event, Limit};
use crate::ports::{Attempts, Contacts, Enqueued, MailJobs, PendingChange, ProfileChanges};

/// The detail of a change refused while an undo chain is open.
const CHAIN_OPEN: &str = "This account's email address changed in the last 7 days and can still be undone. Another change now needs a sign-in from before the address changed, or the password the account had at least 7 days before the first change; otherwise wait until the undo period has ended.";

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

pub async fn handle<S: Contacts + MailJobs + Attempts>(
    app: &App<S, KeySet>,
    req: Request,
    meta: RequestMeta,
) -> HandlerResult {
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
    let store = &app.store;
    match &new_email {
        None => {}
        // Back to the current address: cancel a pending change (its link dies).
        Some(email) if email.key == contact.email_key => {
            changes.cancel_email_change = true;
        }
        Some(email) => {
            // A new address needs a recent sign-in, or the current password now; while
            // an undo chain is open, one from before the chain (`domain::email_change`).
            let proof = match &current_password {
                Some(pw) => {
                    check_current_password(app, &claims, &contact, pw, &meta.source_ip).await?;
                    ChangeProof::CurrentPassword {
                        changed_at: contact.password_changed_at,
                    }
                }
                None => ChangeProof::Session,
            };
            may_request_change(
                contact.undo_chain.as_ref(),
                &claims,
                proof,
                contact.password_changed_at,
                now,
                app.config.recent_auth,
            )
            .map_err(|refusal| match refusal {
                ChangeRefusal::NotRecent => reauthentication_required(),
                ChangeRefusal::ChainOpen => reauthentication_required().detail(CHAIN_OPEN),
            })?;
            // A confirmation link goes to the new address and a notice with an undo link
            // to the chain's origin (both by the mailer); the switch happens when the link
            // is consumed, and only while this request is the pending one.
            let change_id = new_id();
            let rules = send_rules(
                &app.config,
                &email_scope(claims.tid.as_str(), &email.key),
                &meta.source_ip,
                false,
            );
            let job = MailJob {
                email: email.display.clone(),
                email_key: email.key.clone(),
                change_id: Some(change_id),
                pw_version: Some(contact.password_version),
                ..notice_job(
                    JobPurpose::EmailChange,
                    &claims.tid,
                    &contact,
                    meta.accept_language.as_deref(),
                    now,
                )
            };
            let change = PendingChange {
                pending_email: email.display.clone(),
                chain: chain_for_request(
                    contact.undo_chain.as_ref(),
                    new_id,
                    (&contact.email, &contact.email_key),
                    claims.auth_time,
                    now,
                    app.config.undo_ttl,
                ),
                token_version: contact.token_version,
            };
            match store
                .request_email_change(&job, &rules, &change, now)
                .await?
            {
                Enqueued::Queued => {}
                Enqueued::Limited { retry_after, .. } => {
                    metrics::record(Event::RateLimited(Limit::Send));
                    return Err(ApiError::rate_limited(retry_after));
                }
                // Confirmed, undone or signed out everywhere in between: this session ended.
                Enqueued::Stale => return Err(ApiError::new(ErrorCode::Unauthorized)),
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
