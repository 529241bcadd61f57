//! `POST /login`: email + password for a hub or team. Every failure — unknown hub,
//! unknown email, no password, wrong password, not a member, banned — is the same 401
//! `invalid_credentials` after the same work (a dummy argon2 verification when there is
//! no real hash; the same reads either way).
//!
//! The attempt is reserved before anything is verified: one conditional write counts it
//! on the team+email failure counter and the per-IP counter, only while both are under
//! their limits, so N parallel guesses cannot get past the limit (a success clears the
//! team+email counter). DynamoDB: that write, one read of the email index, one batch read
//! (profile, membership), and on success one write (session, counter reset, rehash).
//!
//! A login by a contact whose address SES reported undeliverable (the profile's
//! `mail_suppressed_at`) lifts that suppression: the member is here, and mail may go to
//! them again (two more writes, only then). A failure there does not fail the login.

use lambda_http::Request;
use serde_json::json;

use crate::app::App;
use crate::domain::code::placeholder;
use crate::domain::email::parse_email;
use crate::domain::ids::{ContactId, TeamId};
use crate::domain::jwt::KeySet;
use crate::domain::password;
use crate::domain::rate::{self, email_scope};
use crate::domain::target::{parse_target, Target};
use crate::edge::{attr_pointer, parse_document, HandlerResult, RequestMeta};
use crate::errors::{ApiError, ErrorCode};
use crate::flows::account::reserve_password_attempt;
use crate::flows::session::{
    new_refresh, sign_in_notice, token_pair_response, Family, SessionSubject,
};
use crate::metrics::{self, Event, Method};
use crate::ports::{Attempts, Contacts, Directory, Sessions, Suppressions};

pub async fn handle<S: Directory + Contacts + Attempts + Sessions + Suppressions>(
    app: &App<S, KeySet>,
    req: Request,
    meta: RequestMeta,
) -> HandlerResult {
    let attrs = parse_document(&req, "login_requests", false)?;
    attrs.only(&["email", "password", "slug", "team_id"])?;
    let email = parse_email(&attrs.required_str("email")?)
        .map_err(|e| ApiError::validation(attr_pointer("email"), e.detail()))?;
    let pw = attrs.required_str("password")?;
    if pw.is_empty() {
        return Err(ApiError::validation(
            attr_pointer("password"),
            "password is required.",
        ));
    }
    let target = parse_target(attrs.optional_str("slug")?, attrs.optional_str("team_id")?)?;
    let store = &app.store;
    let now = app.now();

    let (team_id, hub_id, scope, trusted) = match target {
        Target::Slug(slug) => match store.hub_by_slug_cached(&slug, now).await? {
            Some(h) => (
                Some(h.team_id.clone()),
                Some(h.hub_id),
                h.team_id.to_string(),
                rate::trusted(&h.trusted_cidrs, &meta.source_ip),
            ),
            None => (None, None, format!("slug:{slug}"), false),
        },
        Target::Team(t) => (Some(t.clone()), None, t.to_string(), false),
    };
    let failures = reserve_password_attempt(
        app,
        &email_scope(&scope, &email.key),
        &meta.source_ip,
        trusted,
        now,
    )
    .await?;
    // Without a team, look up a team that never exists: the same reads either way.
    let no_team = TeamId::from_stored("none");
    let contact_id = store.contact_id_by_email(&email.key).await?;
    let placeholder =
        ContactId::from_stored(placeholder(&app.keys.link().active, "contact", &email.key));
    let (contact, membership) = store
        .contact_with_membership(
            contact_id.as_ref().unwrap_or(&placeholder),
            team_id.as_ref().unwrap_or(&no_team),
        )
        .await?;
    let stored = contact.as_ref().and_then(|c| c.password_hash.clone());
    let verified = password::verify(stored.as_deref(), &pw);
    let member = membership.is_some_and(|m| m.admits(now));
    let (Some(contact), Some(team_id), true, true) = (contact, team_id, verified, member) else {
        metrics::record(Event::FailedLogin(Method::Pwd));
        tracing::info!("login refused");
        return Err(ApiError::new(ErrorCode::InvalidCredentials));
    };

    let subject = SessionSubject {
        contact_id: contact.contact_id.clone(),
        team_id,
        hub_id,
        token_version: contact.token_version,
        amr: vec!["pwd".into()],
        auth_time: now,
    };
    let mut refresh = new_refresh(app, &subject, Family::start(&meta))?;
    // The new-device check and notice, written with the session.
    refresh.record.sign_in_notice = Some(sign_in_notice(
        &subject,
        &contact.email,
        &contact.email_key,
        &refresh.record.family_id,
        &meta,
        now,
    ));
    // Rehash with today's parameters when the stored hash is older.
    let rehashed = match &stored {
        Some(old) if password::needs_rehash(old) => {
            password::hash(&pw).ok().map(|new| (old.clone(), new))
        }
        _ => None,
    };
    store
        .record_login_success(
            &refresh.record,
            &failures,
            rehashed.as_ref().map(|(o, n)| (o.as_str(), n.as_str())),
        )
        .await?;
    if contact.mail_suppressed_at.is_some() {
        match store
            .lift_suppression(&contact.email_key, Some(&contact.contact_id))
            .await
        {
            Ok(()) => {
                tracing::info!(contact_id = %contact.contact_id, "mail suppression lifted by a password login")
            }
            Err(e) => {
                tracing::warn!(contact_id = %contact.contact_id, error = %e, "mail suppression not lifted; the next login tries again")
            }
        }
    }
    tracing::info!(contact_id = %contact.contact_id, rehashed = rehashed.is_some(), "login");
    metrics::record(Event::SignIn(Method::Pwd));
    token_pair_response(app, &req, &subject, &refresh, json!({}))
}
