//! `GET /.well-known/openid-configuration`: the discovery document a JWT verifier (an API
//! Gateway JWT authorizer) reads at `<iss>/.well-known/openid-configuration` to find the
//! JWK set (CONTRACT §12). Not an OpenID provider's whole document: there is no
//! authorization endpoint; it names the issuer, the keys and the signing algorithm.
//! Needs no table and no secret: everything comes from the configuration.

use lambda_http::Request;

use crate::app::App;
use crate::config::API_PREFIX;
use crate::edge::{HandlerResult, RequestMeta};

pub async fn handle<S, K>(app: &App<S, K>, _req: Request, _meta: RequestMeta) -> HandlerResult {
    let c = &app.config;
    let doc = serde_json::json!({
        "issuer": c.jwt_issuer,
        "jwks_uri": format!("{}{API_PREFIX}/.well-known/jwks.json", c.public_base_url),
        "id_token_signing_alg_values_supported": [c.access_token_alg.name()],
        "subject_types_supported": ["public"],
        "claims_supported": ["iss", "aud", "sub", "tid", "hid", "tv", "amr", "auth_time", "iat", "exp", "jti", "sid"],
    });
    Ok(super::key_document(&doc))
}
