//! The signed-in contact's own account, shared by the account routes (me-get, me-patch,
//! password-set, password-change, logout-everywhere) and login: the `contacts` resource,
//! password attempts (reserved before any verification), notice mail jobs.

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::app::App;
use crate::domain::email::EmailKey;
use crate::domain::ids::{ContactId, TeamId};
use crate::domain::jwt::AccessClaims;
use crate::domain::model::{Contact, JobPurpose, MailJob, Membership, MembershipStatus};
use crate::domain::password;
use crate::domain::rate::{email_scope, login_failures, IpBudget};
use crate::domain::secret::new_id;
use crate::edge::attr_pointer;
use crate::errors::{ApiError, ErrorCode};
use crate::flows::limits::reserve;
use crate::metrics::{self, Event, Limit, Method};
use crate::ports::{Attempts, Contacts, Counter};

pub fn rfc3339(secs: i64) -> Value {
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .map(Value::String)
        .unwrap_or(Value::Null)
}

pub fn contact_resource(c: &Contact, memberships: &[Membership]) -> Value {
    let teams: Vec<Value> = memberships
        .iter()
        .filter(|m| m.status == MembershipStatus::Active)
        .map(|m| json!({ "team_id": m.team_id, "joined_at": rfc3339(m.joined_at) }))
        .collect();
    json!({
        "data": {
            "type": "contacts",
            "id": c.contact_id,
            "attributes": {
                "email": c.email,
                "email_verified_at": c.email_verified_at.map(rfc3339).unwrap_or(Value::Null),
                "has_password": c.password_hash.is_some(),
                "created_at": rfc3339(c.created_at),
                "tos_accepted_at": c.tos_accepted_at,
                "tos_version": c.tos_version,
                "pending_email": c.pending_email,
                "team_memberships": teams,
            }
        }
    })
}

/// The contact as the API shows it, read fresh (after a change).
pub async fn resource<S: Contacts, K>(
    app: &App<S, K>,
    contact_id: &ContactId,
) -> Result<Value, ApiError> {
    let store = &app.store;
    let contact = store
        .contact(contact_id)
        .await?
        .ok_or(ApiError::new(ErrorCode::Unauthorized))?;
    let memberships = store.memberships(contact_id).await?;
    Ok(contact_resource(&contact, &memberships))
}

/// Counts one password attempt for `scope` (team or slug + email) and, unless the source
/// is a trusted network of the hub, the per-IP ceiling and login budget, before the
/// password is verified: 429 when any limit is reached.
pub async fn reserve_password_attempt<S: Attempts, K>(
    app: &App<S, K>,
    scope: &str,
    source_ip: &str,
    trusted: bool,
    now: i64,
) -> Result<Counter, ApiError> {
    let failures = login_failures(scope, now);
    let mut counters = vec![(failures.clone(), app.config.login_failures_per_15min)];
    if !trusted {
        counters.push(IpBudget::Ceiling.reserve(&app.config, source_ip, now));
        counters.push(IpBudget::Login.reserve(&app.config, source_ip, now));
    }
    reserve(app, &counters, trusted, source_ip, Limit::Login, now).await?;
    Ok(failures)
}

/// A mail job about the contact's account in `team_id` (the session's team), for its own
/// (stored) address.
pub fn notice_job(
    purpose: JobPurpose,
    team_id: &TeamId,
    contact: &Contact,
    accept_language: Option<&str>,
    now: i64,
) -> MailJob {
    MailJob {
        job_id: new_id(),
        purpose,
        slug: None,
        team_id: Some(team_id.clone()),
        email: contact.email.clone(),
        email_key: contact.email_key.clone(),
        redirect_url: None,
        created_at: now,
        contact_id: Some(contact.contact_id.clone()),
        change_id: None,
        pw_version: None,
        code_challenge: None,
        source_ip: None,
        locale: None,
        accept_language: accept_language.map(str::to_string),
    }
}

/// Checks a `current_password` sent with a sensitive change. The attempt is reserved
/// first, on the same counters as a login for this team and email (a stolen access token
/// gives no more guesses than the login form); a correct one clears the failure count.
pub async fn check_current_password<S: Attempts, K>(
    app: &App<S, K>,
    claims: &AccessClaims,
    contact: &Contact,
    given: &str,
    source_ip: &str,
) -> Result<(), ApiError> {
    let now = app.now();
    let scope = email_scope(claims.tid.as_str(), &contact.email_key);
    let failures = reserve_password_attempt(app, &scope, source_ip, false, now).await?;
    if !password::verify(contact.password_hash.as_deref(), given) {
        metrics::record(Event::FailedLogin(Method::Pwd));
        tracing::info!(contact_id = %contact.contact_id, "wrong current password");
        return Err(
            ApiError::new(ErrorCode::CurrentPasswordIncorrect).at(attr_pointer("current_password"))
        );
    }
    app.store.reset_counter(&failures).await?;
    Ok(())
}

pub fn reauthentication_required() -> ApiError {
    ApiError::new(ErrorCode::ReauthenticationRequired)
}

/// The password policy, its failure pointed at `field`.
pub fn policy(pw: &str, email_key: &EmailKey, field: &str) -> Result<(), ApiError> {
    password::check_policy(pw, email_key)
        .map_err(|code| ApiError::new(code).at(attr_pointer(field)))
}
