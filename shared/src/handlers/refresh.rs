//! `POST /refresh` and `POST /logout`. The refresh token comes from the cookie first,
//! else from the body (`refresh_requests`, attribute `refresh_token`). Rotation is one
//! read and one transaction; a rotated token presented again within the grace window
//! (two tabs) gets a fresh pair in the same family; later, it is reuse and the family
//! is revoked.

use http::StatusCode;
use lambda_http::Request;
use serde_json::json;

use crate::app::App;
use crate::domain::secret::{hash_token, looks_like_token};
use crate::edge::{empty_response, parse_document, HandlerResult, RequestMeta};
use crate::errors::{ApiError, ErrorCode};
use crate::handlers::session::{
    new_refresh, refresh_cookie, set_refresh_cookie, token_pair_response, AmbiguousCookie,
    SessionSubject,
};
use crate::ports::Rotation;

/// The presented refresh token: cookie first, else the body. `Err(AmbiguousCookie)`
/// when several refresh cookies came (the body is still parsed, so a bad body is 4xx).
fn presented(
    app: &App,
    req: &Request,
) -> Result<Result<Option<String>, AmbiguousCookie>, ApiError> {
    let attrs = parse_document(req, "refresh_requests", true)?;
    attrs.only(&["refresh_token"])?;
    let body = attrs.optional_str("refresh_token")?;
    Ok(refresh_cookie(app, req).map(|c| c.or(body).filter(|t| !t.is_empty())))
}

pub async fn handle_refresh(app: &App, req: Request, _meta: RequestMeta) -> HandlerResult {
    let invalid = || ApiError::new(ErrorCode::RefreshTokenInvalid);
    let token = presented(app, &req)?
        .map_err(|AmbiguousCookie| invalid())?
        .ok_or(ApiError::new(ErrorCode::RefreshTokenMissing))?;
    if !looks_like_token(&token) {
        return Err(invalid());
    }
    let store = app.store()?;
    let hash = hash_token(&token);
    for _ in 0..3 {
        let now = app.now();
        let state = store.refresh_state(&hash).await?.ok_or_else(invalid)?;
        let session_end = app.config.session_end(state.record.auth_time);
        if state.revoked_at.is_some() || state.record.expires_at <= now || session_end <= now {
            return Err(invalid());
        }
        let grace_since = match state.rotated_at {
            None => None,
            Some(at) if now - at <= app.config.refresh_grace => {
                Some(now - app.config.refresh_grace)
            }
            Some(_) => {
                store
                    .revoke_family(&state.record.family_id, None, now, session_end)
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
        let next = new_refresh(app, &subject, Some(r.family_id.clone()))?;
        match store
            .rotate_refresh(&state, &next.record, now, grace_since)
            .await?
        {
            Rotation::Done => return token_pair_response(app, &subject, &next, json!({})),
            Rotation::OldChanged => continue,
            Rotation::Rejected => return Err(invalid()),
        }
    }
    Err(invalid())
}

/// Revokes the presented token's family. The family's revocation outlives every token
/// of the family: none can live past the session's absolute end (sign-in + session_max).
pub async fn handle_logout(app: &App, req: Request, _meta: RequestMeta) -> HandlerResult {
    let token = match presented(app, &req)? {
        Ok(t) => t.filter(|t| looks_like_token(t)),
        Err(AmbiguousCookie) => {
            tracing::warn!("logout with several refresh cookies: nothing revoked");
            None
        }
    };
    if let Some(token) = token {
        let store = app.store()?;
        let hash = hash_token(&token);
        if let Some(state) = store.refresh_state(&hash).await? {
            let now = app.now();
            let session_end = app.config.session_end(state.record.auth_time);
            store
                .revoke_family(
                    &state.record.family_id,
                    Some(&hash),
                    now,
                    session_end.max(state.record.expires_at),
                )
                .await?;
        }
    }
    let mut resp = empty_response(StatusCode::NO_CONTENT);
    set_refresh_cookie(app, &mut resp, None);
    Ok(resp)
}
