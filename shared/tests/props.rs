//! Property tests: arbitrary input to the request edge and the domain parsers never
//! panics, and every refusal is a client error (4xx) — hostile input can never turn into
//! a 5xx. (Example-based tests of what is accepted live beside each parser.)

use contact_auth::app::App;
use contact_auth::config::Config;
use contact_auth::domain::email::parse_email;
use contact_auth::domain::redirect::parse_redirect;
use contact_auth::domain::secret::{hex_sha256, looks_like_token, RawToken};
use contact_auth::domain::target::{parse_slug, parse_target, parse_team_id};
use contact_auth::edge::{error_document, parse_document, JSONAPI};
use contact_auth::flows::session::refresh_cookie;
use contact_auth::handlers::me_patch::parse_tos_time;
use lambda_http::{Body, Request};
use proptest::prelude::*;

fn request(content_type: Option<&str>, cookies: &[String], body: Vec<u8>) -> Request {
    let mut b = http::Request::builder().method("POST").uri("/x");
    if let Some(ct) = content_type {
        if let Ok(v) = http::HeaderValue::from_str(ct) {
            b = b.header(http::header::CONTENT_TYPE, v);
        }
    }
    for c in cookies {
        if let Ok(v) = http::HeaderValue::from_str(c) {
            b = b.header(http::header::COOKIE, v);
        }
    }
    b.body(Body::Binary(body)).expect("a request")
}

/// JSON-ish documents: mostly well-formed envelopes with arbitrary attribute values.
fn document() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        ".{0,40}".prop_map(serde_json::Value::String),
    ];
    let value = leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    });
    let attrs = prop::collection::btree_map(
        prop_oneof![
            Just("email".to_string()),
            Just("slug".to_string()),
            Just("token".to_string()),
            ".{0,12}"
        ],
        value.clone(),
        0..5,
    );
    prop_oneof![
        (prop_oneof![Just("t".to_string()), ".{0,6}"], attrs).prop_map(|(t, a)| {
            serde_json::json!({"data": {"type": t, "attributes": a}})
                .to_string()
                .into_bytes()
        }),
        value.prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..200),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn emails(raw in prop_oneof![".{0,80}", "[a-zA-Z0-9.+<>\"(),;:@ä-]{1,30}@[a-zA-Z0-9.äöü-]{1,30}"]) {
        if let Ok(e) = parse_email(&raw) {
            prop_assert!(e.display.is_ascii());
            prop_assert!(e.display.len() <= 254);
            prop_assert_eq!(e.display.matches('@').count(), 1);
            prop_assert_eq!(e.key.as_str(), e.display.to_ascii_lowercase());
        }
    }

    #[test]
    fn slugs_team_ids_and_targets(a in ".{0,70}", b in ".{0,70}", which in 0u8..4) {
        if let Ok(s) = parse_slug(&a) {
            prop_assert!(s.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'));
        }
        if let Ok(t) = parse_team_id(&b) {
            prop_assert!(t.as_str().len() <= 64);
        }
        let (slug, team) = match which {
            0 => (None, None),
            1 => (Some(a), None),
            2 => (None, Some(b)),
            _ => (Some(a), Some(b)),
        };
        if let Err(e) = parse_target(slug, team) {
            prop_assert!(e.code.status().is_client_error());
        }
    }

    #[test]
    fn redirect_urls(raw in prop_oneof![".{0,100}", "(https?|javascript|data)://[a-z0-9.@:#/?%-]{0,60}"]) {
        if let Ok((url, origin)) = parse_redirect(&raw) {
            prop_assert!(!url.contains('#'));
            prop_assert!(origin.starts_with("https://") || origin.starts_with("http://localhost") || origin.starts_with("http://127.0.0.1"));
        }
    }

    #[test]
    fn timestamps(raw in prop_oneof![
        ".{0,40}",
        (0u32..12000, 0u32..14, 0u32..32, -25i32..26, 0u32..60)
            .prop_map(|(y, mo, d, oh, om)| format!("{y:04}-{mo:02}-{d:02}T00:00:00{}{:02}:{om:02}", if oh < 0 { '-' } else { '+' }, oh.abs())),
    ]) {
        match parse_tos_time(&raw, 1_800_000_000) {
            Ok(t) => {
                let year: i32 = t[..4].parse().unwrap_or(0);
                prop_assert!((1970..=9999).contains(&year), "{}", t);
                prop_assert!(t.ends_with('Z'));
            }
            Err(e) => prop_assert!(e.code.status().is_client_error()),
        }
    }

    #[test]
    fn json_api_documents(ct in prop_oneof![Just(Some(JSONAPI.to_string())), Just(Some("application/json".to_string())), proptest::option::of(".{0,30}")],
                          body in document(), optional in any::<bool>()) {
        let req = request(ct.as_deref(), &[], body);
        match parse_document(&req, "t", optional) {
            Ok(attrs) => {
                // Reading any attribute strictly never panics either.
                let _ = attrs.only(&["email", "slug"]);
                let _ = attrs.optional_str("email");
                let _ = attrs.required_str("token");
            }
            Err(e) => {
                prop_assert!(e.code.status().is_client_error());
                let doc = error_document(&e, "rid");
                let status = e.code.status().as_u16().to_string();
                prop_assert_eq!(doc["errors"][0]["status"].as_str(), Some(status.as_str()));
            }
        }
    }

    #[test]
    fn cookies_and_tokens(cookies in prop::collection::vec(prop_oneof![
        ".{0,60}",
        "contact_refresh=[A-Za-z0-9_-]{0,50}(; contact_refresh=[A-Za-z0-9_\"-]{0,50})?",
    ], 0..3), token in ".{0,60}") {
        let app = App::new(Config::defaults("t"));
        let req = request(None, &cookies, vec![]);
        if let Ok(Some(v)) = refresh_cookie(&app, &req) {
            prop_assert!(!v.is_empty());
        }
        if looks_like_token(&token) {
            prop_assert_eq!(token.len(), 43);
        }
        prop_assert_eq!(RawToken::parse(&token).is_some(), looks_like_token(&token));
        prop_assert_eq!(hex_sha256(token.as_bytes()).len(), 64);
    }
}
