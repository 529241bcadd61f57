//! The HTTP edge shared by every route: request id, CORS, media types, the JSON:API
//! envelope, strict attributes, and the one place errors become JSON:API documents.

use std::future::Future;

use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::{Method, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{json, Map, Value};
use tracing::Instrument;

use crate::config::Config;
use crate::errors::{ApiError, ErrorCode};

pub const JSONAPI: &str = "application/vnd.api+json";
pub const MAX_BODY_BYTES: usize = 16 * 1024;
pub const X_REQUEST_ID: &str = "x-request-id";

/// What a handler learns about the request besides its body.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub request_id: String,
    pub source_ip: String,
    /// The `User-Agent` header, if any (a sign-in records it on its session).
    pub user_agent: Option<String>,
    /// The `Accept-Language` header (printable ASCII, at most 256 characters, else none):
    /// stored on the mail jobs the request writes (`i18n::choose`).
    pub accept_language: Option<String>,
}

pub type HandlerResult = Result<Response<Body>, ApiError>;

pub fn request_meta(req: &Request) -> RequestMeta {
    let (request_id, source_ip) = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => (
            ctx.request_id.clone().filter(|s| !s.is_empty()),
            ctx.http.source_ip.clone().filter(|s| !s.is_empty()),
        ),
        _ => (None, None),
    };
    RequestMeta {
        request_id: request_id.unwrap_or_else(crate::domain::secret::new_id),
        source_ip: source_ip.unwrap_or_else(|| "unknown".into()),
        user_agent: req
            .headers()
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        accept_language: req
            .headers()
            .get(http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| {
                !v.is_empty() && v.len() <= 256 && v.bytes().all(|b| (0x20..0x7f).contains(&b))
            })
            .map(str::to_string),
    }
}

/// Runs one route's handler: answers CORS preflights and wrong methods, logs one line
/// per request (method, route, status, latency; never bodies), writes its metrics (EMF,
/// `metrics`; not for preflights), maps errors, and puts `X-Request-ID` and CORS headers
/// on every response.
pub async fn serve<F, Fut>(
    cfg: &Config,
    function: &str,
    method: Method,
    path_methods: &str,
    req: Request,
    handler: F,
) -> Response<Body>
where
    F: FnOnce(Request, RequestMeta) -> Fut,
    Fut: Future<Output = HandlerResult>,
{
    let meta = request_meta(&req);
    let origin = req
        .headers()
        .get(http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let allowed_origin = origin.filter(|o| cfg.cors_origins.iter().any(|a| a == o));
    let started = std::time::Instant::now();
    let req_method = req.method().clone();
    let path = req.uri().path().to_string();
    let span = tracing::info_span!("request", request_id = %meta.request_id);

    let mut resp = if req_method == Method::OPTIONS {
        preflight(path_methods, allowed_origin.is_some())
    } else if req_method != method && !(method == Method::GET && req_method == Method::HEAD) {
        let mut r = error_response(
            &ApiError::new(ErrorCode::MethodNotAllowed),
            &meta.request_id,
        );
        if let Ok(v) = HeaderValue::from_str(&format!("{method}, OPTIONS")) {
            r.headers_mut().insert(http::header::ALLOW, v);
        }
        r
    } else {
        let rid = meta.request_id.clone();
        let (result, recorded) =
            crate::metrics::scope(handler(req, meta.clone()).instrument(span.clone())).await;
        let resp = match result {
            Ok(r) => r,
            Err(e) => error_response(&e, &rid),
        };
        crate::metrics::emit(&crate::metrics::documents(
            &cfg.metrics_namespace,
            function,
            crate::metrics::now_ms(),
            crate::metrics::Unit::Request {
                server_error: resp.status().is_server_error(),
            },
            started.elapsed().as_secs_f64() * 1000.0,
            &recorded,
        ));
        resp
    };

    let headers = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&meta.request_id) {
        headers.insert(HeaderName::from_static(X_REQUEST_ID), v);
    }
    if let Some(o) = allowed_origin {
        if let Ok(v) = HeaderValue::from_str(&o) {
            headers.insert("access-control-allow-origin", v);
            headers.insert(
                "access-control-allow-credentials",
                HeaderValue::from_static("true"),
            );
            headers.insert(
                "access-control-expose-headers",
                HeaderValue::from_static("X-Request-ID, Retry-After, WWW-Authenticate"),
            );
        }
    }
    headers.append(http::header::VARY, HeaderValue::from_static("Origin"));
    // Browsers must not guess a type for any answer (an error body is never HTML).
    headers.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    span.in_scope(|| {
        tracing::info!(
            method = %req_method,
            path = %path,
            status = resp.status().as_u16(),
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request done"
        );
    });
    resp
}

fn preflight(path_methods: &str, allowed: bool) -> Response<Body> {
    let mut resp = empty_response(StatusCode::NO_CONTENT);
    if allowed {
        let h = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&format!("{path_methods}, OPTIONS")) {
            h.insert("access-control-allow-methods", v);
        }
        h.insert(
            "access-control-allow-headers",
            HeaderValue::from_static("Authorization, Content-Type, Refresh-Cookie, X-Request-ID"),
        );
        h.insert("access-control-max-age", HeaderValue::from_static("600"));
    }
    resp
}

/// The JSON:API error document for one error.
pub fn error_document(err: &ApiError, request_id: &str) -> Value {
    let mut e = Map::new();
    e.insert(
        "status".into(),
        json!(err.code.status().as_u16().to_string()),
    );
    e.insert("code".into(), json!(err.code.as_str()));
    e.insert("title".into(), json!(err.code.title()));
    e.insert(
        "detail".into(),
        json!(err.detail.as_deref().unwrap_or(err.code.default_detail())),
    );
    if let Some(p) = &err.pointer {
        e.insert("source".into(), json!({ "pointer": p }));
    }
    let mut meta = Map::new();
    meta.insert("request_id".into(), json!(request_id));
    if let Some(reason) = err.reason {
        meta.insert("reason".into(), json!(reason));
    }
    e.insert("meta".into(), Value::Object(meta));
    json!({ "errors": [Value::Object(e)] })
}

// Responses are built as values (`Response::new` plus typed headers), not with
// `Response::builder()`: a builder failure would otherwise have to become something,
// and an empty 200 is the wrong something. Header values are static or checked.

pub fn error_response(err: &ApiError, request_id: &str) -> Response<Body> {
    let mut resp = json_response(err.code.status(), JSONAPI, &error_document(err, request_id));
    let h = resp.headers_mut();
    if let Some(s) = err.retry_after {
        h.insert(http::header::RETRY_AFTER, HeaderValue::from(s));
    }
    if err.code == ErrorCode::Unauthorized {
        h.insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer"),
        );
    }
    resp
}

/// A JSON body with `content_type` (one of the static media types) and `no-store`.
pub fn json_response(
    status: StatusCode,
    content_type: &'static str,
    body: &Value,
) -> Response<Body> {
    let mut resp = empty_response(status);
    *resp.body_mut() = Body::Text(body.to_string());
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    resp
}

pub fn empty_response(status: StatusCode) -> Response<Body> {
    let mut resp = Response::new(Body::Empty);
    *resp.status_mut() = status;
    resp
}

fn body_bytes(req: &Request) -> &[u8] {
    match req.body() {
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b.as_slice(),
        _ => &[],
    }
}

/// 415 unless the Content-Type is JSON:API or JSON (parameters such as charset allowed
/// on application/json; JSON:API allows only `ext`/`profile`).
fn check_media_type(req: &Request) -> Result<(), ApiError> {
    let ct = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut parts = ct.split(';');
    let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let params: Vec<String> = parts.map(|p| p.trim().to_ascii_lowercase()).collect();
    let ok = match essence.as_str() {
        "application/json" => true,
        JSONAPI => params
            .iter()
            .all(|p| p.is_empty() || p.starts_with("ext=") || p.starts_with("profile=")),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(ErrorCode::UnsupportedMediaType))
    }
}

/// Parses a JSON:API request document of the given `data.type` and returns its
/// attributes. With `optional`, an empty body yields empty attributes.
pub fn parse_document(
    req: &Request,
    expected_type: &str,
    optional: bool,
) -> Result<Attributes, ApiError> {
    let bytes = body_bytes(req);
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::new(ErrorCode::PayloadTooLarge));
    }
    if optional && bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Attributes(Map::new()));
    }
    check_media_type(req)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::validation(
            "/data",
            "A request body with data is required.",
        ));
    }
    let doc: Value =
        serde_json::from_slice(bytes).map_err(|_| ApiError::new(ErrorCode::MalformedJson))?;
    let data = match doc.get("data") {
        Some(Value::Object(d)) => d,
        _ => {
            return Err(ApiError::validation(
                "/data",
                "data must be an object with type and attributes.",
            ))
        }
    };
    match data.get("type") {
        Some(Value::String(t)) if t == expected_type => {}
        Some(Value::String(_)) => {
            return Err(ApiError::new(ErrorCode::TypeMismatch)
                .at("/data/type")
                .detail(format!(
                    "data.type must be \"{expected_type}\" on this route."
                )))
        }
        _ => {
            return Err(ApiError::validation(
                "/data/type",
                format!("data.type is required and must be \"{expected_type}\"."),
            ))
        }
    }
    match data.get("attributes") {
        Some(Value::Object(a)) => Ok(Attributes(a.clone())),
        None if optional => Ok(Attributes(Map::new())),
        _ => Err(ApiError::validation(
            "/data/attributes",
            "data.attributes must be an object.",
        )),
    }
}

/// The attributes of a request, read strictly.
#[derive(Debug, Clone, Default)]
pub struct Attributes(pub Map<String, Value>);

/// The JSON Pointer (RFC 6901) of an attribute: `~` and `/` in the name are escaped.
pub fn attr_pointer(name: &str) -> String {
    format!(
        "/data/attributes/{}",
        name.replace('~', "~0").replace('/', "~1")
    )
}

impl Attributes {
    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// A present attribute that must not be there answers with `code`.
    pub fn reject(&self, name: &str, code: ErrorCode) -> Result<(), ApiError> {
        if self.has(name) {
            Err(ApiError::new(code).at(attr_pointer(name)))
        } else {
            Ok(())
        }
    }

    /// 422 `unknown_attribute` for the first attribute not in `allowed`.
    pub fn only(&self, allowed: &[&str]) -> Result<(), ApiError> {
        let mut names: Vec<&String> = self.0.keys().collect();
        names.sort();
        match names.into_iter().find(|k| !allowed.contains(&k.as_str())) {
            None => Ok(()),
            Some(k) => {
                let shown: String = k.chars().take(64).collect();
                Err(ApiError::new(ErrorCode::UnknownAttribute)
                    .at(attr_pointer(k))
                    .detail(format!(
                        "Unknown attribute \"{shown}\". Allowed: {}.",
                        allowed.join(", ")
                    )))
            }
        }
    }

    /// A string attribute; absent or null is None; any other type is 422.
    pub fn optional_str(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ApiError::validation(
                attr_pointer(name),
                format!("{name} must be a string."),
            )),
        }
    }

    pub fn required_str(&self, name: &str) -> Result<String, ApiError> {
        self.optional_str(name)?
            .ok_or_else(|| ApiError::validation(attr_pointer(name), format!("{name} is required.")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(ct: Option<&str>, body: &str) -> Request {
        let mut b = http::Request::builder().method("POST").uri("/x");
        if let Some(ct) = ct {
            b = b.header(CONTENT_TYPE, ct);
        }
        b.body(Body::Text(body.to_string())).unwrap()
    }

    fn code(r: Result<Attributes, ApiError>) -> (ErrorCode, Option<String>) {
        let e = r.unwrap_err();
        (e.code, e.pointer)
    }

    #[test]
    fn media_types() {
        let body = r#"{"data":{"type":"t","attributes":{}}}"#;
        assert!(parse_document(&req(Some(JSONAPI), body), "t", false).is_ok());
        assert!(parse_document(
            &req(Some("application/json; charset=utf-8"), body),
            "t",
            false
        )
        .is_ok());
        for bad in ["text/plain", "application/x-www-form-urlencoded", ""] {
            let ct = if bad.is_empty() { None } else { Some(bad) };
            assert_eq!(
                code(parse_document(&req(ct, body), "t", false)).0,
                ErrorCode::UnsupportedMediaType
            );
        }
        assert_eq!(
            code(parse_document(
                &req(Some("application/vnd.api+json; charset=utf-8"), body),
                "t",
                false
            ))
            .0,
            ErrorCode::UnsupportedMediaType
        );
    }

    #[test]
    fn envelope_errors() {
        let p = |b: &str| code(parse_document(&req(Some(JSONAPI), b), "t", false));
        assert_eq!(p("{").0, ErrorCode::MalformedJson);
        assert_eq!(p("").0, ErrorCode::ValidationError);
        assert_eq!(p("[]"), (ErrorCode::ValidationError, Some("/data".into())));
        assert_eq!(
            p(r#"{"data":[]}"#),
            (ErrorCode::ValidationError, Some("/data".into()))
        );
        assert_eq!(
            p(r#"{"data":{"attributes":{}}}"#),
            (ErrorCode::ValidationError, Some("/data/type".into()))
        );
        assert_eq!(
            p(r#"{"data":{"type":"u","attributes":{}}}"#),
            (ErrorCode::TypeMismatch, Some("/data/type".into()))
        );
        assert_eq!(
            p(r#"{"data":{"type":"t","attributes":[]}}"#),
            (ErrorCode::ValidationError, Some("/data/attributes".into()))
        );
        let big = format!(
            r#"{{"data":{{"type":"t","attributes":{{"x":"{}"}}}}}}"#,
            "a".repeat(MAX_BODY_BYTES)
        );
        assert_eq!(p(&big).0, ErrorCode::PayloadTooLarge);
    }

    #[test]
    fn optional_body() {
        let a = parse_document(&req(None, ""), "t", true).unwrap();
        assert!(a.0.is_empty());
        let a = parse_document(&req(Some(JSONAPI), r#"{"data":{"type":"t"}}"#), "t", true).unwrap();
        assert!(a.0.is_empty());
    }

    #[test]
    fn strict_attributes() {
        let a = parse_document(
            &req(
                Some(JSONAPI),
                r#"{"data":{"type":"t","attributes":{"email":"x","redirectUrl":"y","n":1}}}"#,
            ),
            "t",
            false,
        )
        .unwrap();
        let e = a.only(&["email", "n"]).unwrap_err();
        assert_eq!(e.code, ErrorCode::UnknownAttribute);
        assert_eq!(e.pointer.as_deref(), Some("/data/attributes/redirectUrl"));
        assert_eq!(attr_pointer("a/b~c"), "/data/attributes/a~1b~0c");
        assert_eq!(a.required_str("email").unwrap(), "x");
        assert_eq!(
            a.required_str("n").unwrap_err().pointer.as_deref(),
            Some("/data/attributes/n")
        );
        assert_eq!(
            a.required_str("missing").unwrap_err().code,
            ErrorCode::ValidationError
        );
        assert_eq!(a.optional_str("missing").unwrap(), None);
    }

    #[test]
    fn error_document_shape() {
        let e = ApiError::validation("/data/attributes/email", "email is required.");
        let d = error_document(&e, "rid-1");
        assert_eq!(d["errors"][0]["status"], "422");
        assert_eq!(d["errors"][0]["code"], "validation_error");
        assert_eq!(d["errors"][0]["title"], "Validation Error");
        assert_eq!(
            d["errors"][0]["source"]["pointer"],
            "/data/attributes/email"
        );
        assert_eq!(d["errors"][0]["meta"]["request_id"], "rid-1");
        assert_eq!(d["errors"][0]["meta"].as_object().unwrap().len(), 1);
        let used = ApiError::link_refused(crate::domain::model::LinkRefusal::Used);
        let d = error_document(&used, "rid-2");
        assert_eq!(d["errors"][0]["code"], "magic_link_invalid");
        assert_eq!(d["errors"][0]["status"], "401");
        assert_eq!(
            d["errors"][0]["meta"],
            json!({"request_id": "rid-2", "reason": "used"})
        );
    }

    /// An API Gateway v2 event (the shape `make invoke` replays) for the edge tests.
    fn gateway_event(method: &str, headers: Value, request_id: &str, source_ip: &str) -> Request {
        let event = json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": "/x",
            "rawQueryString": "",
            "headers": headers,
            "requestContext": {
                "accountId": "1", "apiId": "a", "domainName": "d", "domainPrefix": "d",
                "http": { "method": method, "path": "/x", "protocol": "HTTP/1.1",
                          "sourceIp": source_ip, "userAgent": "t" },
                "requestId": request_id, "routeKey": "$default", "stage": "$default",
                "time": "26/Nov/2026:10:00:00 +0000", "timeEpoch": 1795687200000u64
            },
            "isBase64Encoded": false
        });
        lambda_http::request::from_str(&event.to_string()).unwrap()
    }

    fn cfg_with_origin() -> Config {
        let mut cfg = Config::defaults("t");
        cfg.cors_origins = vec!["https://app.example".into()];
        cfg
    }

    fn header<'a>(r: &'a Response<Body>, name: &str) -> Option<&'a str> {
        r.headers().get(name).and_then(|v| v.to_str().ok())
    }

    fn body_of(r: &Response<Body>) -> Value {
        match r.body() {
            Body::Text(t) => serde_json::from_str(t).unwrap(),
            _ => Value::Null,
        }
    }

    fn run(
        cfg: &Config,
        route: Method,
        req: Request,
        answer: HandlerResult,
    ) -> (Response<Body>, bool) {
        let ran = std::cell::Cell::new(false);
        let resp = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(serve(cfg, "test", route, "POST", req, |_, _| {
                ran.set(true);
                async move { answer }
            }));
        (resp, ran.get())
    }

    fn ok_json() -> HandlerResult {
        Ok(json_response(StatusCode::OK, JSONAPI, &json!({"ok": true})))
    }

    #[test]
    fn the_gateway_request_id_and_source_ip_are_used_and_blanks_are_replaced() {
        let m = request_meta(&gateway_event("POST", json!({}), "rid-7", "203.0.113.9"));
        assert_eq!(
            (m.request_id.as_str(), m.source_ip.as_str()),
            ("rid-7", "203.0.113.9")
        );
        let m = request_meta(&gateway_event("POST", json!({}), "", ""));
        assert_eq!(m.source_ip, "unknown");
        assert!(
            uuid::Uuid::parse_str(&m.request_id).is_ok(),
            "{}",
            m.request_id
        );
        let plain = req(None, "");
        assert_eq!(request_meta(&plain).source_ip, "unknown");
    }

    #[test]
    fn a_handled_request_gets_the_request_id_nosniff_vary_and_cors_for_allowed_origins_only() {
        let cfg = cfg_with_origin();
        let hdrs = json!({"origin": "https://app.example"});
        let (r, ran) = run(
            &cfg,
            Method::POST,
            gateway_event("POST", hdrs, "rid-1", "1.2.3.4"),
            ok_json(),
        );
        assert!(ran);
        assert_eq!(r.status(), 200);
        assert_eq!(body_of(&r), json!({"ok": true}));
        assert_eq!(header(&r, "content-type"), Some(JSONAPI));
        assert_eq!(header(&r, "cache-control"), Some("no-store"));
        assert_eq!(header(&r, X_REQUEST_ID), Some("rid-1"));
        assert_eq!(header(&r, "x-content-type-options"), Some("nosniff"));
        assert_eq!(header(&r, "vary"), Some("Origin"));
        assert_eq!(
            header(&r, "access-control-allow-origin"),
            Some("https://app.example")
        );
        assert_eq!(header(&r, "access-control-allow-credentials"), Some("true"));
        assert_eq!(
            header(&r, "access-control-expose-headers"),
            Some("X-Request-ID, Retry-After, WWW-Authenticate")
        );
        let evil = json!({"origin": "https://evil.example"});
        let (r, _) = run(
            &cfg,
            Method::POST,
            gateway_event("POST", evil, "rid-2", "1.2.3.4"),
            ok_json(),
        );
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "access-control-allow-origin"), None);
        assert_eq!(header(&r, "access-control-allow-credentials"), None);
    }

    #[test]
    fn preflights_answer_204_and_name_methods_only_to_allowed_origins() {
        let cfg = cfg_with_origin();
        let good = json!({"origin": "https://app.example"});
        let (r, ran) = run(
            &cfg,
            Method::POST,
            gateway_event("OPTIONS", good, "p", "1.2.3.4"),
            ok_json(),
        );
        assert!(!ran, "a preflight never reaches the handler");
        assert_eq!(r.status(), 204);
        assert_eq!(r.body(), &Body::Empty);
        assert_eq!(
            header(&r, "access-control-allow-methods"),
            Some("POST, OPTIONS")
        );
        assert_eq!(
            header(&r, "access-control-allow-headers"),
            Some("Authorization, Content-Type, Refresh-Cookie, X-Request-ID")
        );
        assert_eq!(header(&r, "access-control-max-age"), Some("600"));
        assert_eq!(header(&r, X_REQUEST_ID), Some("p"));
        let evil = json!({"origin": "https://evil.example"});
        let (r, _) = run(
            &cfg,
            Method::POST,
            gateway_event("OPTIONS", evil, "p", "1.2.3.4"),
            ok_json(),
        );
        assert_eq!(r.status(), 204);
        assert_eq!(header(&r, "access-control-allow-methods"), None);
        assert_eq!(header(&r, "access-control-max-age"), None);
    }

    #[test]
    fn other_methods_are_405_with_allow_and_head_is_served_on_get_routes() {
        let cfg = Config::defaults("t");
        let (r, ran) = run(
            &cfg,
            Method::POST,
            gateway_event("GET", json!({}), "m", "1.2.3.4"),
            ok_json(),
        );
        assert!(!ran);
        assert_eq!(r.status(), 405);
        assert_eq!(header(&r, "allow"), Some("POST, OPTIONS"));
        assert_eq!(body_of(&r)["errors"][0]["code"], "method_not_allowed");
        assert_eq!(body_of(&r)["errors"][0]["meta"]["request_id"], "m");
        let (r, ran) = run(
            &cfg,
            Method::GET,
            gateway_event("HEAD", json!({}), "h", "1.2.3.4"),
            ok_json(),
        );
        assert!(ran, "HEAD runs a GET route");
        assert_eq!(r.status(), 200);
        let (r, ran) = run(
            &cfg,
            Method::POST,
            gateway_event("HEAD", json!({}), "h", "1.2.3.4"),
            ok_json(),
        );
        assert!(!ran, "HEAD is not POST");
        assert_eq!(r.status(), 405);
        let (r, ran) = run(
            &cfg,
            Method::GET,
            gateway_event("POST", json!({}), "h", "1.2.3.4"),
            ok_json(),
        );
        assert!(!ran);
        assert_eq!(
            (r.status().as_u16(), header(&r, "allow")),
            (405, Some("GET, OPTIONS"))
        );
    }

    #[test]
    fn handler_errors_become_documents_with_retry_after_and_a_bearer_challenge_only_on_401() {
        let cfg = Config::defaults("t");
        let ev = || gateway_event("POST", json!({}), "e", "1.2.3.4");
        let mut limited = ApiError::new(ErrorCode::RateLimited);
        limited.retry_after = Some(42);
        let (r, _) = run(&cfg, Method::POST, ev(), Err(limited));
        assert_eq!(r.status(), 429);
        assert_eq!(header(&r, "retry-after"), Some("42"));
        assert_eq!(header(&r, "www-authenticate"), None);
        assert_eq!(header(&r, "content-type"), Some(JSONAPI));
        assert_eq!(header(&r, "cache-control"), Some("no-store"));
        assert_eq!(body_of(&r)["errors"][0]["code"], "rate_limited");
        assert_eq!(body_of(&r)["errors"][0]["meta"]["request_id"], "e");
        let (r, _) = run(
            &cfg,
            Method::POST,
            ev(),
            Err(ApiError::new(ErrorCode::Unauthorized)),
        );
        assert_eq!(r.status(), 401);
        assert_eq!(header(&r, "www-authenticate"), Some("Bearer"));
        assert_eq!(header(&r, "retry-after"), None);
        assert_eq!(header(&r, X_REQUEST_ID), Some("e"));
    }

    #[test]
    fn bodies_up_to_the_limit_are_read_from_text_or_binary() {
        assert_eq!(MAX_BODY_BYTES, 16384);
        let doc = |pad: usize| {
            format!(
                r#"{{"data":{{"type":"t","attributes":{{"x":"{}"}}}}}}"#,
                "a".repeat(pad)
            )
        };
        let overhead = doc(0).len();
        let exact = doc(MAX_BODY_BYTES - overhead);
        assert_eq!(exact.len(), MAX_BODY_BYTES);
        assert!(parse_document(&req(Some(JSONAPI), &exact), "t", false).is_ok());
        let over = doc(MAX_BODY_BYTES - overhead + 1);
        assert_eq!(
            code(parse_document(&req(Some(JSONAPI), &over), "t", false)).0,
            ErrorCode::PayloadTooLarge
        );
        let mut bin = req(Some(JSONAPI), "");
        *bin.body_mut() = Body::Binary(doc(2000).into_bytes());
        let a = parse_document(&bin, "t", false).unwrap();
        assert_eq!(a.required_str("x").unwrap().len(), 2000);
        let mut empty = req(None, "");
        *empty.body_mut() = Body::Empty;
        assert!(parse_document(&empty, "t", true).unwrap().0.is_empty());
        assert_eq!(
            code(parse_document(&empty, "t", false)).0,
            ErrorCode::UnsupportedMediaType
        );
    }

    #[test]
    fn json_api_media_type_parameters_ext_profile_and_empty_are_allowed() {
        let body = r#"{"data":{"type":"t","attributes":{}}}"#;
        for ct in [
            "application/vnd.api+json; ext=\"https://x\"",
            "application/vnd.api+json; profile=\"https://y\"",
            "application/vnd.api+json;",
            "Application/Vnd.Api+Json",
        ] {
            assert!(
                parse_document(&req(Some(ct), body), "t", false).is_ok(),
                "{ct}"
            );
        }
    }

    #[test]
    fn attributes_are_required_unless_the_route_makes_them_optional() {
        let b = r#"{"data":{"type":"t"}}"#;
        assert_eq!(
            code(parse_document(&req(Some(JSONAPI), b), "t", false)),
            (ErrorCode::ValidationError, Some("/data/attributes".into()))
        );
        assert!(parse_document(&req(Some(JSONAPI), b), "t", true).is_ok());
    }

    #[test]
    fn reject_refuses_only_present_attributes_with_its_code_and_pointer() {
        let a = Attributes(serde_json::from_str(r#"{"password":"x","n":null}"#).unwrap());
        assert!(a.has("password") && a.has("n") && !a.has("email"));
        let e = a
            .reject("password", ErrorCode::UnknownAttribute)
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::UnknownAttribute);
        assert_eq!(e.pointer.as_deref(), Some("/data/attributes/password"));
        assert!(a.reject("email", ErrorCode::UnknownAttribute).is_ok());
    }
}
