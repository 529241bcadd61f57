//! `GET /.well-known/jwks.json`: the public keys that verify access tokens.

use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use lambda_http::{Body, Request, Response};

use crate::app::App;
use crate::domain::jwt::KeySet;
use crate::edge::{HandlerResult, RequestMeta};

pub async fn handle<S>(app: &App<S, KeySet>, _req: Request, _meta: RequestMeta) -> HandlerResult {
    let mut resp = Response::new(Body::Text(app.keys.jwks().to_string()));
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    // Short enough that a rotation is seen within minutes.
    h.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(resp)
}
