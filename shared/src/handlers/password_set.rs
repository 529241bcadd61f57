//! `POST /me/password`: the first password.

use http::StatusCode;
use lambda_http::Request;

use crate::app::App;
use crate::domain::jwt::KeySet;
use crate::domain::model::JobPurpose;
use crate::domain::password;
use crate::domain::session::recently_authenticated;
use crate::edge::{json_response, parse_document, HandlerResult, RequestMeta, JSONAPI};
use crate::errors::{ApiError, ErrorCode};
use crate::flows::account::{notice_job, policy, reauthentication_required, resource};
use crate::flows::session::authenticate;
use crate::ports::Contacts;

/// Sets the first password: needs a recent sign-in (a stolen older access token must
/// not plant a password); the member's address gets a notice.
pub async fn handle<S: Contacts>(
    app: &App<S, KeySet>,
    req: Request,
    meta: RequestMeta,
) -> HandlerResult {
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
    let notice = notice_job(
        JobPurpose::PasswordSetNotice,
        &claims.tid,
        &contact,
        meta.accept_language.as_deref(),
        now,
    );
    if !app
        .store
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
