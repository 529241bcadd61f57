//! `make bench`: CPU cost of the hot pure parts, in release mode on this machine.
//! Prints medians and p99s; asserts nothing (figures go in the README, not in a test).

use std::time::Instant;

use contact_auth::domain::email::parse_email;
use contact_auth::domain::ids::{ContactId, TeamId};
use contact_auth::domain::jwt::{AccessClaims, KeySet, TokenAlg};
use contact_auth::domain::password;
use contact_auth::domain::redirect::parse_redirect;
use contact_auth::edge::parse_document;
use lambda_http::Body;

fn stats(name: &str, mut samples: Vec<f64>) {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let med = samples[samples.len() / 2];
    let p99 = samples[(samples.len() * 99 / 100).min(samples.len() - 1)];
    println!(
        "{name:<44} median {med:>10.3} ms   p99 {p99:>10.3} ms   (n={})",
        samples.len()
    );
}

fn time<F: FnMut()>(n: usize, mut f: F) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect()
}

fn main() {
    println!(
        "contact-auth bench ({} cores)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    let hash = password::hash("violet-kettle-harbour-42").unwrap();
    stats(
        "argon2id hash (m=19456 KiB, t=2, p=1)",
        time(30, || {
            password::hash("violet-kettle-harbour-42").unwrap();
        }),
    );
    stats(
        "argon2id verify (m=19456 KiB, t=2, p=1)",
        time(30, || {
            assert!(password::verify(Some(&hash), "violet-kettle-harbour-42"));
        }),
    );
    stats(
        "argon2id verify, dummy hash (unknown email)",
        time(30, || {
            assert!(!password::verify(None, "violet-kettle-harbour-42"));
        }),
    );

    let key = contact_auth::domain::email::parse_email("m@example.com")
        .map(|e| e.key)
        .unwrap();
    stats(
        "password policy incl. common-password list",
        time(200, || {
            assert!(password::check_policy("violet-kettle-harbour-42", &key).is_ok());
        }),
    );

    // The keys are the unit tests' throwaway ones (src/domain/testdata).
    let now = 1_795_687_200;
    let claims = AccessClaims {
        iss: "https://auth.example.com/api/v1/contact-auth".into(),
        aud: vec!["contact-api".into(), "team:t".into()],
        sub: ContactId::from_stored("c"),
        tid: TeamId::from_stored("t"),
        hid: None,
        tv: 0,
        amr: vec!["pwd".into()],
        auth_time: now,
        iat: now,
        exp: i64::MAX / 2,
        jti: "j".into(),
        sid: Some("s".into()),
    };
    for (alg, key) in [
        (
            TokenAlg::RS256,
            Some(include_str!("../src/domain/testdata/test-only-rsa-1.pem")),
        ),
        (
            TokenAlg::ES256,
            Some(include_str!("../src/domain/testdata/test-only-p256.pem")),
        ),
        (TokenAlg::EdDSA, None),
    ] {
        let doc = serde_json::json!({
            "signing_secret": "bench-signing-secret-0123456789abcdef",
            "signing_key": key,
        });
        let keys = KeySet::from_json(&doc.to_string(), alg).unwrap();
        let token = keys.sign(&claims).unwrap();
        stats(
            &format!("JWT sign ({})", alg.name()),
            time(2000, || {
                keys.sign(&claims).unwrap();
            }),
        );
        stats(
            &format!("JWT verify ({})", alg.name()),
            time(2000, || {
                keys.verify(&token, &claims.iss, "contact-api").unwrap();
            }),
        );
        println!(
            "{:<44} {} bytes",
            format!("access token size ({})", alg.name()),
            token.len()
        );
    }

    let body = r#"{"data":{"type":"register_requests","attributes":{"email":"Member@Example.com","slug":"member-academy","redirect_url":"http://localhost:5173/welcome"}}}"#;
    stats(
        "register request: parse + validate",
        time(5000, || {
            let req = http::Request::builder()
                .method("POST")
                .uri("/api/v1/contact-auth/register")
                .header("content-type", "application/vnd.api+json")
                .body(Body::Text(body.to_string()))
                .unwrap();
            let a = parse_document(&req, "register_requests", false).unwrap();
            a.only(&["email", "slug", "team_id", "redirect_url"])
                .unwrap();
            parse_email(&a.required_str("email").unwrap()).unwrap();
            parse_redirect(&a.required_str("redirect_url").unwrap()).unwrap();
        }),
    );
}
