//! `POST /logout`: revokes the presented refresh token's family (cookie first, else the
//! body) and clears the cookie. 204 whatever was presented.

use http::StatusCode;
use lambda_http::Request;

use crate::app::App;
use crate::domain::secret::RawToken;
use crate::domain::session::EndReason;
use crate::edge::{empty_response, HandlerResult, RequestMeta};
use crate::flows::session::{presented_refresh_token, set_refresh_cookie, AmbiguousCookie};
use crate::ports::Sessions;

/// Revokes the presented token's family. The family's revocation outlives every token
/// of the family: none can live past the session's absolute end (sign-in + session_max).
pub async fn handle<S: Sessions, K>(
    app: &App<S, K>,
    req: Request,
    _meta: RequestMeta,
) -> HandlerResult {
    let token = match presented_refresh_token(app, &req)? {
        Ok(t) => t.as_deref().and_then(RawToken::parse),
        Err(AmbiguousCookie) => {
            tracing::warn!("logout with several refresh cookies: nothing revoked");
            None
        }
    };
    if let Some(token) = token {
        let store = &app.store;
        let hash = token.hash();
        if let Some(state) = store.refresh_state(&hash).await? {
            let now = app.now();
            let session_end = app.config.session_end(state.record.auth_time);
            store
                .revoke_family(
                    &state.record,
                    Some(&hash),
                    EndReason::Logout,
                    now,
                    session_end.max(state.record.expires_at),
                )
                .await?;
        }
    }
    let mut resp = empty_response(StatusCode::NO_CONTENT);
    set_refresh_cookie(app, &req, &mut resp, None);
    Ok(resp)
}
