//! One module per function, named like it (`functions/me-patch` -> `handlers::me_patch`),
//! each with one entry point, `handle`. A handler takes the `App` with exactly the
//! dependencies its signature names, the request and its metadata, and returns a response
//! or an `ApiError`; the edge maps errors once. `crate::routes` binds each to its function. The two event functions (`mailer`:
//! DynamoDB stream; `ses_events`: SNS) are bound in `crate::runtime`.

pub mod events;
pub mod hosted_page;
pub mod jwks;
pub mod login;
pub mod logout;
pub mod logout_everywhere;
pub mod logout_others;
pub mod magic;
pub mod magic_consume;
pub mod mailer;
pub mod me_get;
pub mod me_patch;
pub mod me_session_delete;
pub mod me_sessions;
pub mod openid_configuration;
pub mod password_change;
pub mod password_set;
pub mod refresh;
pub mod register;
pub mod ses_events;

/// A public document about the keys (the JWK set, the discovery document): JSON, cacheable
/// for five minutes — short enough that a rotation is seen within minutes (verifiers such
/// as API Gateway may keep it longer; rotate-key allows for that).
fn key_document(doc: &serde_json::Value) -> lambda_http::Response<lambda_http::Body> {
    use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
    let mut resp = lambda_http::Response::new(lambda_http::Body::Text(doc.to_string()));
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    resp
}
