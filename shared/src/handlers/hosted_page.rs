//! `GET /m`: the hosted sign-in page. The token arrives in the fragment (never sent to
//! a server, never in logs or `Referer`); the page removes it from the address bar at
//! once and consumes it only when the person presses the button, so mail scanners that
//! open links (even ones that run scripts) do not burn it.

use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use lambda_http::{Body, Request, Response};

use crate::app::App;
use crate::config::API_PREFIX;
use crate::edge::{HandlerResult, RequestMeta};

const PAGE: &str = include_str!("hosted_page.html");

pub async fn handle(_app: &App, _req: Request, _meta: RequestMeta) -> HandlerResult {
    let nonce = crate::domain::secret::new_token()?;
    let html = PAGE
        .replace("{{NONCE}}", &nonce)
        .replace("{{API_PREFIX}}", API_PREFIX);
    let csp = format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; \
         connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'"
    );
    Ok(Response::builder()
        .status(200)
        .header(CONTENT_TYPE, "text/html; charset=utf-8")
        .header(CACHE_CONTROL, "no-store")
        .header("content-security-policy", csp)
        .header("referrer-policy", "no-referrer")
        .header("x-content-type-options", "nosniff")
        .header("x-frame-options", "DENY")
        .body(Body::Text(html))
        .unwrap_or_default())
}
