//! `GET /m`: the hosted sign-in page. The token arrives in the fragment (never sent to
//! a server, never in logs or `Referer`); the page removes it from the address bar at
//! once and consumes it only when the person presses the button, so mail scanners that
//! open links (even ones that run scripts) do not burn it.

use http::header::{HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use lambda_http::{Body, Request, Response};

use crate::app::App;
use crate::config::API_PREFIX;
use crate::edge::{HandlerResult, RequestMeta};

const PAGE: &str = include_str!("hosted_page.html");

pub async fn handle<S, K>(app: &App<S, K>, _req: Request, _meta: RequestMeta) -> HandlerResult {
    let nonce = crate::domain::secret::new_nonce()?;
    // The same-browser proof is kept while a link can still arrive and work (see the page).
    let pending = (2 * app.config.magic_ttl).max(60);
    let html = PAGE
        .replace("{{NONCE}}", &nonce)
        .replace("{{API_PREFIX}}", API_PREFIX)
        .replace("{{PENDING_SECONDS}}", &pending.to_string());
    let csp = format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; \
         connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'"
    );
    // The nonce is base64url, so the policy is always a valid header value.
    let csp = HeaderValue::from_str(&csp).map_err(|_| crate::errors::ApiError::internal())?;
    let mut resp = Response::new(Body::Text(html));
    let h = resp.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(HeaderName::from_static("content-security-policy"), csp);
    h.insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        HeaderName::from_static("x-frame-options"),
        HeaderValue::from_static("DENY"),
    );
    Ok(resp)
}
