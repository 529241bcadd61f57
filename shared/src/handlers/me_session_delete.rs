//! `DELETE /me/sessions/{id}`: ends one of the member's sessions (its refresh tokens and
//! access tokens stop working at once). Another session needs a recent sign-in; an id
//! that is not one of the caller's active sessions in this team — unknown, ended, another
//! member's, another team's — is the same 404.

use http::StatusCode;
use lambda_http::{Request, RequestExt};

use crate::app::App;
use crate::domain::jwt::KeySet;
use crate::domain::session::EndReason;
use crate::edge::{empty_response, HandlerResult, RequestMeta};
use crate::errors::{ApiError, ErrorCode};
use crate::flows::session::{authenticate_member, set_refresh_cookie};
use crate::flows::sessions::{family_until, is_active, require_recent};
use crate::ports::{Contacts, Sessions};

/// The `{id}` of the path: API Gateway's path parameter, else the path's last segment
/// (a local router that does not fill path parameters). Ids are UUIDs: anything else is
/// no session.
fn session_id(req: &Request) -> Option<String> {
    let id = req
        .path_parameters()
        .first("id")
        .map(str::to_string)
        .or_else(|| req.uri().path().rsplit('/').next().map(str::to_string))?;
    let ok = (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    ok.then_some(id)
}

pub async fn handle<S: Contacts + Sessions>(
    app: &App<S, KeySet>,
    req: Request,
    _meta: RequestMeta,
) -> HandlerResult {
    let (claims, contact, membership) = authenticate_member(app, &req).await?;
    let not_found = || ApiError::new(ErrorCode::SessionNotFound);
    let id = session_id(&req);
    let current = id.is_some() && id.as_deref() == claims.sid.as_deref();
    // Checked before the id is looked up: a token that may not end other sessions learns
    // nothing about which ids exist.
    if !current {
        require_recent(app, &claims)?;
    }
    let id = id.ok_or_else(not_found)?;
    let now = app.now();
    let (_, _, record) = app
        .store
        .access_state(&claims.sub, &claims.tid, &id)
        .await?;
    let record = record
        .filter(|s| is_active(app, s, &contact, &membership, now))
        .ok_or_else(not_found)?;
    let until = family_until(app, &record);
    // Conditional on the record being live: of two parallel ends, one wins, one is 404.
    if !app
        .store
        .end_session(
            &claims.sub,
            &claims.tid,
            &id,
            EndReason::Revoked,
            now,
            until,
        )
        .await?
    {
        return Err(not_found());
    }
    tracing::info!(contact_id = %claims.sub, current, "session ended by the member");
    let mut resp = empty_response(StatusCode::NO_CONTENT);
    if current {
        set_refresh_cookie(app, &req, &mut resp, None);
    }
    Ok(resp)
}
