//! `POST /logout-everywhere`.

use http::StatusCode;
use lambda_http::Request;

use crate::app::App;
use crate::domain::jwt::KeySet;
use crate::edge::{empty_response, HandlerResult, RequestMeta};
use crate::flows::session::{authenticate, set_refresh_cookie};
use crate::ports::Contacts;

/// Ends every session of the contact (token version + 1) and cancels a pending email
/// change, whose link then answers 401 `magic_link_invalid`.
pub async fn handle<S: Contacts>(
    app: &App<S, KeySet>,
    req: Request,
    _meta: RequestMeta,
) -> HandlerResult {
    let (claims, _) = authenticate(app, &req).await?;
    app.store
        .end_all_sessions(&claims.sub, &claims.tid, app.now())
        .await?;
    tracing::info!(contact_id = %claims.sub, "logged out everywhere");
    let mut resp = empty_response(StatusCode::NO_CONTENT);
    set_refresh_cookie(app, &req, &mut resp, None);
    Ok(resp)
}
