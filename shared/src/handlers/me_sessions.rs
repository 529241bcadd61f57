//! `GET /me/sessions`: the member's active sessions in the token's team: the one the
//! token belongs to first (marked `current`), then the others newest first.

use http::StatusCode;
use lambda_http::Request;
use serde_json::{json, Value};

use crate::app::App;
use crate::domain::jwt::KeySet;
use crate::edge::{json_response, HandlerResult, RequestMeta, JSONAPI};
use crate::flows::session::authenticate_member;
use crate::flows::sessions::{active_sessions, session_resource};
use crate::ports::{Contacts, Sessions};

/// How many sessions one answer shows (`meta.total` counts them all).
pub const SESSIONS_SHOWN: usize = 100;

pub async fn handle<S: Contacts + Sessions>(
    app: &App<S, KeySet>,
    req: Request,
    _meta: RequestMeta,
) -> HandlerResult {
    let (claims, contact, membership) = authenticate_member(app, &req).await?;
    let list = active_sessions(app, &claims, &contact, &membership).await?;
    let current = claims.sid.as_deref();
    let data: Vec<Value> = list
        .iter()
        .take(SESSIONS_SHOWN)
        .map(|s| session_resource(s, current == Some(s.session_id.as_str())))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        JSONAPI,
        &json!({ "data": data, "meta": { "total": list.len() } }),
    ))
}
