//! `GET /m`: the hosted sign-in page. The token arrives in the fragment (never sent to
//! a server, never in logs or `Referer`); the page removes it from the address bar at
//! once and consumes it only when the person presses the button, so mail scanners that
//! open links (even ones that run scripts) do not burn it.

use http::header::{HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::json;

use crate::app::App;
use crate::config::API_PREFIX;
use crate::domain::branding::{validate_accent, validate_logo_url};
use crate::domain::i18n::{choose, Locale, Texts};
use crate::edge::{HandlerResult, RequestMeta};
use crate::handlers::mailer::render::DEFAULT_ACCENT;
use crate::ports::Directory;

const PAGE: &str = include_str!("hosted_page.html");

/// A slug as the API accepts it (1–64 of a-z0-9-, case-folded), else None.
fn slug_of(raw: &str) -> Option<String> {
    let s = raw.trim().to_ascii_lowercase();
    (!s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .then_some(s)
}

/// JSON safe inside a `<script>` element: no `<`, `>`, `&` or line separators that could
/// end the element or the string.
fn script_json(v: &serde_json::Value) -> String {
    v.to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// The page in the member's language (`?lang=` — the mail's —, else `Accept-Language`,
/// else the hub's default, else English) with the hub's branding (`?hub=<slug>`, read
/// through the warm function's cache: branding is not a security decision). Every text
/// and tenant value reaches the page as JSON data the script puts in with `textContent`;
/// the accent (checked again) is the only value in the style sheet, the logo's origin the
/// only addition to the content security policy.
pub async fn handle<S: Directory, K>(
    app: &App<S, K>,
    req: Request,
    meta: RequestMeta,
) -> HandlerResult {
    let nonce = crate::domain::secret::new_nonce()?;
    // The same-browser proof is kept while a link can still arrive and work (see the page).
    let pending = (2 * app.config.magic_ttl).max(60);
    let query = req.query_string_parameters();
    let hub = match query.first("hub").and_then(slug_of) {
        // An unknown hub, or a read that failed, shows the page unbranded.
        Some(slug) => app
            .store
            .hub_by_slug_cached(&slug, app.now())
            .await
            .ok()
            .flatten(),
        None => None,
    };
    let branding = hub.as_ref().map(|h| &h.branding);
    let locale = choose(
        query.first("lang").and_then(Locale::from_tag),
        None,
        meta.accept_language.as_deref(),
        branding.and_then(|b| b.default_locale),
    );
    let texts = Texts::new(locale, branding.map(|b| &b.texts));
    let logo = branding
        .and_then(|b| b.logo_url.as_deref())
        .and_then(|u| validate_logo_url(u).ok());
    let accent = branding
        .and_then(|b| b.accent.as_deref())
        .and_then(|a| validate_accent(a).ok())
        .unwrap_or_else(|| DEFAULT_ACCENT.to_string());
    let data = json!({
        "lang": locale.tag(),
        "t": texts.all_with_prefix("page."),
        "hub": hub.as_ref().map(|h| json!({
            "slug": h.slug,
            "name": h.branding.display_name.as_deref().unwrap_or(&h.title),
            "logo": logo,
        })),
        "minutes": (app.config.magic_ttl / 60).max(1),
    });
    let html = PAGE
        .replace("{{NONCE}}", &nonce)
        .replace("{{API_PREFIX}}", API_PREFIX)
        .replace("{{PENDING_SECONDS}}", &pending.to_string())
        .replace("{{LANG}}", locale.tag())
        .replace("{{ACCENT}}", &accent)
        .replace("{{DATA}}", &script_json(&data));
    let logo_origin = logo
        .as_deref()
        .and_then(|u| url::Url::parse(u).ok())
        .map(|u| format!(" {}", u.origin().ascii_serialization()))
        .unwrap_or_default();
    let csp = format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; \
         connect-src 'self'; img-src 'self' data:{logo_origin}; base-uri 'none'; \
         form-action 'none'; frame-ancestors 'none'"
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
