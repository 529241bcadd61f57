//! `GET /.well-known/jwks.json`: the public keys that verify access tokens.

use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use lambda_http::{Body, Request, Response};

use crate::app::App;
use crate::edge::{HandlerResult, RequestMeta};

pub async fn handle(app: &App, _req: Request, _meta: RequestMeta) -> HandlerResult {
    let body = app.keys()?.jwks().to_string();
    Ok(Response::builder()
        .status(200)
        .header(CONTENT_TYPE, "application/json")
        // Short enough that a rotation is seen within minutes.
        .header(CACHE_CONTROL, "public, max-age=300")
        .body(Body::Text(body))
        .unwrap_or_default())
}
