//! `POST /logout-others`: ends every active session of the member in the token's team
//! except the caller's own; answers how many it ended. Needs a recent sign-in.

use http::StatusCode;
use lambda_http::Request;
use serde_json::json;

use crate::app::App;
use crate::domain::jwt::KeySet;
use crate::domain::session::EndReason;
use crate::edge::{json_response, HandlerResult, RequestMeta, JSONAPI};
use crate::errors::ApiError;
use crate::flows::account::reauthentication_required;
use crate::flows::session::authenticate_member;
use crate::flows::sessions::{active_sessions, family_until, require_recent};
use crate::ports::{Contacts, Sessions};

/// The detail of a 403 for an access token that names no session (issued before sessions
/// were recorded): which session is "this one" is unknown.
const NO_SID: &str = "This access token names no session. Sign in again and retry.";

pub async fn handle<S: Contacts + Sessions>(
    app: &App<S, KeySet>,
    req: Request,
    _meta: RequestMeta,
) -> HandlerResult {
    let (claims, contact, membership) = authenticate_member(app, &req).await?;
    require_recent(app, &claims)?;
    let current = claims
        .sid
        .clone()
        .ok_or_else(|| reauthentication_required().detail(NO_SID))?;
    let now = app.now();
    let mut ended = 0usize;
    for s in active_sessions(app, &claims, &contact, &membership).await? {
        if s.session_id == current {
            continue;
        }
        let until = family_until(app, &s);
        // Each end is conditional: a session ended meanwhile (a parallel request) is not
        // counted twice.
        if app
            .store
            .end_session(
                &claims.sub,
                &claims.tid,
                &s.session_id,
                EndReason::LogoutOthers,
                now,
                until,
            )
            .await
            .map_err(ApiError::from)?
        {
            ended += 1;
        }
    }
    tracing::info!(contact_id = %claims.sub, ended, "other sessions ended");
    Ok(json_response(
        StatusCode::OK,
        JSONAPI,
        &json!({ "meta": { "ended": ended } }),
    ))
}
