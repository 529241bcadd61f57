//! `GET /.well-known/jwks.json`: the public keys that verify access tokens.

use lambda_http::Request;

use crate::app::App;
use crate::domain::jwt::KeySet;
use crate::edge::{HandlerResult, RequestMeta};

pub async fn handle<S>(app: &App<S, KeySet>, _req: Request, _meta: RequestMeta) -> HandlerResult {
    Ok(super::key_document(&app.keys.jwks()))
}
