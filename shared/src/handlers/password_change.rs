//! `POST /me/password/change`.

use http::StatusCode;
use lambda_http::Request;

use crate::app::App;
use crate::domain::jwt::KeySet;
use crate::domain::model::JobPurpose;
use crate::domain::password;
use crate::domain::session::recent_email_sign_in;
use crate::edge::{json_response, parse_document, HandlerResult, RequestMeta, JSONAPI};
use crate::errors::{ApiError, ErrorCode};
use crate::flows::account::{
    check_current_password, notice_job, policy, reauthentication_required, resource,
};
use crate::flows::session::{
    authenticate, new_refresh, set_refresh_cookie, token_pair, Family, SessionSubject,
};
use crate::ports::{Attempts, Contacts};

/// Changes the password with the current one, or without it within the window of a
/// sign-in by email (the forgotten-password path). Ends every other session and any
/// pending email change; this session continues with a new pair; the member's address
/// gets a notice.
pub async fn handle<S: Contacts + Attempts>(
    app: &App<S, KeySet>,
    req: Request,
    meta: RequestMeta,
) -> HandlerResult {
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
    let refresh = new_refresh(app, &subject, Family::start(&meta))?;
    let notice = notice_job(
        JobPurpose::PasswordChangeNotice,
        &claims.tid,
        &contact,
        meta.accept_language.as_deref(),
        now,
    );
    if !app
        .store
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
    set_refresh_cookie(app, &req, &mut resp, Some(&refresh));
    Ok(resp)
}
