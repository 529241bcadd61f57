//! `POST /refresh`. The refresh token comes from the cookie first, else from the body
//! (`refresh_requests`, attribute `refresh_token`). Rotation is one
//! read and one transaction; a rotated token presented again within the grace window
//! (two tabs) gets a fresh pair in the same family; later, it is reuse and the family
//! is revoked.

use lambda_http::Request;
use serde_json::json;

use crate::app::App;
use crate::domain::jwt::KeySet;
use crate::domain::secret::RawToken;
use crate::domain::session::{refresh_decision, EndReason, RefreshDecision};
use crate::edge::{HandlerResult, RequestMeta};
use crate::errors::{ApiError, ErrorCode};
use crate::flows::session::{
    new_refresh, presented_refresh_token, token_pair_response, AmbiguousCookie, Family,
    SessionSubject,
};
use crate::metrics::{self, Event};
use crate::ports::{Rotation, Sessions};

pub async fn handle<S: Sessions>(
    app: &App<S, KeySet>,
    req: Request,
    _meta: RequestMeta,
) -> HandlerResult {
    let invalid = || ApiError::new(ErrorCode::RefreshTokenInvalid);
    let token = presented_refresh_token(app, &req)?
        .map_err(|AmbiguousCookie| invalid())?
        .ok_or(ApiError::new(ErrorCode::RefreshTokenMissing))?;
    let hash = RawToken::parse(&token).ok_or_else(invalid)?.hash();
    let store = &app.store;
    for _ in 0..3 {
        let now = app.now();
        let state = store.refresh_state(&hash).await?.ok_or_else(invalid)?;
        let session_end = app.config.session_end(state.record.auth_time);
        let grace_since = match refresh_decision(
            state.revoked_at,
            state.record.expires_at,
            session_end,
            state.rotated_at,
            now,
            app.config.refresh_grace,
        ) {
            RefreshDecision::Invalid => return Err(invalid()),
            RefreshDecision::Rotate => None,
            RefreshDecision::Grace { since } => Some(since),
            RefreshDecision::Reuse => {
                metrics::record(Event::RefreshReuse);
                store
                    .revoke_family(&state.record, None, EndReason::Reuse, now, session_end)
                    .await?;
                tracing::warn!(contact_id = %state.record.contact_id, "refresh token reuse: family revoked");
                return Err(ApiError::new(ErrorCode::RefreshTokenReused));
            }
        };
        let r = &state.record;
        let subject = SessionSubject {
            contact_id: r.contact_id.clone(),
            team_id: r.team_id.clone(),
            hub_id: r.hub_id.clone(),
            token_version: r.token_version,
            amr: r.amr.clone(),
            auth_time: r.auth_time,
        };
        let next = new_refresh(app, &subject, Family::Existing(r.family_id.clone()))?;
        match store
            .rotate_refresh(&state, &next.record, now, grace_since)
            .await?
        {
            Rotation::Done => return token_pair_response(app, &req, &subject, &next, json!({})),
            Rotation::OldChanged => continue,
            Rotation::Rejected => return Err(invalid()),
        }
    }
    Err(invalid())
}
