//! Tests of `domain::jwt`. The PEM files in `testdata/` are throwaway keys made for these
//! tests (`openssl genpkey`), never used anywhere else.

use super::*;

const RSA_1: &str = include_str!("testdata/test-only-rsa-1.pem");
const RSA_2: &str = include_str!("testdata/test-only-rsa-2.pem");
const RSA_1024: &str = include_str!("testdata/test-only-rsa-1024.pem");
const P256: &str = include_str!("testdata/test-only-p256.pem");
const SECRET_A: &str = "0123456789abcdef0123456789abcdef-test";
const SECRET_B: &str = "another-secret-another-secret-xyz";
const ISS: &str = "https://auth.example.com/api/v1/contact-auth";

fn claims(now: i64) -> AccessClaims {
    AccessClaims {
        iss: ISS.into(),
        aud: vec!["contact-api".into(), "team:t1".into()],
        sub: ContactId::from_stored("c1"),
        tid: TeamId::from_stored("t1"),
        hid: Some(HubId::from_stored("h1")),
        tv: 0,
        amr: vec!["magic_link".into()],
        auth_time: now,
        iat: now,
        exp: now + 900,
        jti: "j1".into(),
        sid: Some("s1".into()),
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn doc(secret: &str, key: Option<&str>) -> SigningSecret {
    SigningSecret {
        signing_secret: secret.into(),
        signing_key: key.map(String::from),
        ..SigningSecret::default()
    }
}

fn set(doc: &SigningSecret, alg: TokenAlg) -> KeySet {
    KeySet::new(SigningKeys::from_doc(doc).unwrap(), alg, 0)
}

fn with_header(token: &str, header: &str) -> String {
    let (_, rest) = token.split_once('.').unwrap();
    format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header))
}

#[test]
fn each_algorithm_signs_and_verifies_with_kid_and_rejects_tampering() {
    for (key, alg) in [
        (Some(RSA_1), TokenAlg::RS256),
        (Some(P256), TokenAlg::ES256),
        (None, TokenAlg::EdDSA),
    ] {
        let ks = set(&doc(SECRET_A, key), alg);
        let c = claims(now());
        let t = ks.sign(&c).unwrap();
        let header = jsonwebtoken::decode_header(&t).unwrap();
        assert_eq!(header.alg, alg.jose());
        assert_eq!(
            header.kid.as_deref(),
            Some(ks.current().active.kid.as_str())
        );
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        assert_eq!(
            ks.verify(&t, ISS, "contact-api"),
            Some(c.clone()),
            "{alg:?}"
        );
        // Any audience in the array passes; one not in it does not.
        assert!(ks.verify(&t, ISS, "team:t1").is_some());
        assert!(ks.verify(&t, ISS, "other-aud").is_none());
        assert!(ks.verify(&t, "https://evil", "contact-api").is_none());
        let mut bad = t.clone();
        bad.pop();
        bad.push(if t.ends_with('A') { 'B' } else { 'A' });
        assert!(ks.verify(&bad, ISS, "contact-api").is_none(), "{alg:?}");
        // A key of the same kind that is not published cannot verify it.
        let other = set(
            &doc(
                SECRET_B,
                key.map(|_| if alg == TokenAlg::RS256 { RSA_2 } else { P256 }),
            ),
            alg,
        );
        if alg != TokenAlg::ES256 {
            assert!(other.verify(&t, ISS, "contact-api").is_none(), "{alg:?}");
        }
    }
}

#[test]
fn the_jwk_set_gives_standard_public_keys_and_rfc7638_kids() {
    let ks = set(&doc(SECRET_A, Some(RSA_1)), TokenAlg::RS256);
    let jwk = &ks.jwks()["keys"][0];
    assert_eq!(jwk["kty"], "RSA");
    assert_eq!(jwk["alg"], "RS256");
    assert_eq!(jwk["use"], "sig");
    assert_eq!(jwk["e"], "AQAB");
    // 2048-bit modulus: 256 bytes, 342 base64url characters.
    assert_eq!(jwk["n"].as_str().unwrap().len(), 342);
    assert!(
        jwk.get("d").is_none() && jwk.get("p").is_none(),
        "no private member"
    );
    let expected_kid = thumbprint(&format!(
        r#"{{"e":"AQAB","kty":"RSA","n":"{}"}}"#,
        jwk["n"].as_str().unwrap()
    ));
    assert_eq!(jwk["kid"], expected_kid.as_str());
    let ec = set(&doc(SECRET_A, Some(P256)), TokenAlg::ES256).jwks();
    assert_eq!(ec["keys"][0]["crv"], "P-256");
    assert_eq!(ec["keys"][0]["x"].as_str().unwrap().len(), 43);
    assert!(ec["keys"][0].get("d").is_none());
    // The Ed25519 kid earlier releases published for the same secret (computed apart:
    // openssl pkey -pubout of the PKCS#8 seed = SHA-256(secret), RFC 7638 by hand).
    let ed = set(&doc(SECRET_A, None), TokenAlg::EdDSA).jwks();
    assert_eq!(ed["keys"][0]["kty"], "OKP");
    assert_eq!(
        ed["keys"][0]["kid"],
        "ivhqIeLOiuTP5h2k3nV4rbcPPJJyPXfZEZPw3sI9C1w"
    );
}

#[test]
fn expired_tokens_are_rejected() {
    let ks = set(&doc(SECRET_A, Some(RSA_1)), TokenAlg::RS256);
    let mut c = claims(now() - 2000);
    c.exp = now() - 1;
    let t = ks.sign(&c).unwrap();
    assert!(ks.verify(&t, ISS, "contact-api").is_none());
}

#[test]
fn next_and_previous_keys_are_published_and_verify_but_only_the_current_one_signs() {
    let old = set(&doc(SECRET_B, None), TokenAlg::EdDSA);
    let c = claims(now());
    let by_old = old.sign(&c).unwrap();
    let upcoming = set(&doc(SECRET_A, Some(RSA_2)), TokenAlg::RS256);
    let by_next = upcoming.sign(&c).unwrap();
    let rotated = set(
        &SigningSecret {
            signing_secret: SECRET_A.into(),
            signing_key: Some(RSA_1.into()),
            next_signing_secret: Some(SECRET_A.into()),
            next_signing_key: Some(RSA_2.into()),
            previous_signing_secret: Some(SECRET_B.into()),
            ..SigningSecret::default()
        },
        TokenAlg::RS256,
    );
    assert!(rotated.verify(&by_old, ISS, "contact-api").is_some());
    assert!(rotated.verify(&by_next, ISS, "contact-api").is_some());
    let keys = rotated.current();
    assert_eq!(
        keys.kids(),
        vec![
            keys.active.kid.as_str(),
            upcoming.current().active.kid.as_str(),
            old.current().active.kid.as_str()
        ]
    );
    assert_eq!(rotated.jwks()["keys"].as_array().unwrap().len(), 3);
    let mine = rotated.sign(&c).unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(&mine).unwrap().kid.as_deref(),
        Some(keys.active.kid.as_str())
    );
}

#[test]
fn a_header_alg_other_than_the_keys_own_is_refused_without_a_panic() {
    let ks = set(&doc(SECRET_A, Some(RSA_1)), TokenAlg::RS256);
    let c = claims(now());
    let t = ks.sign(&c).unwrap();
    let kid = ks.current().active.kid.clone();
    for alg in ["HS256", "RS384", "PS256", "ES256", "EdDSA", "none"] {
        let forged = with_header(
            &t,
            &format!(r#"{{"alg":"{alg}","kid":"{kid}","typ":"at+jwt"}}"#),
        );
        assert!(ks.verify(&forged, ISS, "contact-api").is_none(), "{alg}");
    }
    // The classic confusion: an HMAC over the token keyed with the public key's bytes.
    let n = ks.jwks()["keys"][0]["n"].as_str().unwrap().to_string();
    let hs = jsonwebtoken::Header {
        kid: Some(kid.clone()),
        ..jsonwebtoken::Header::new(Algorithm::HS256)
    };
    if let Ok(forged) = jsonwebtoken::encode(&hs, &c, &EncodingKey::from_secret(n.as_bytes())) {
        assert!(ks.verify(&forged, ISS, "contact-api").is_none());
    }
    // No kid, or one not published: refused.
    assert!(ks
        .verify(&with_header(&t, r#"{"alg":"RS256"}"#), ISS, "contact-api")
        .is_none());
    assert!(ks
        .verify(
            &with_header(&t, r#"{"alg":"RS256","kid":"nope"}"#),
            ISS,
            "contact-api"
        )
        .is_none());
    // The provider itself refuses other algorithms for these keys.
    let (h, rest) = t.split_once('.').unwrap();
    let (p, s) = rest.split_once('.').unwrap();
    let message = format!("{h}.{p}");
    let key = &ks.current().active.decoding;
    for alg in [Algorithm::HS256, Algorithm::ES256, Algorithm::PS256] {
        assert!(jsonwebtoken::crypto::verify(s, message.as_bytes(), key, alg).is_err());
    }
}

#[test]
fn a_key_of_another_kind_than_the_configured_one_does_not_sign() {
    // The stack template's secret has no RSA key: RS256 sign-ins fail (and say why)
    // until rotate-key writes one; the keys it has are still published.
    let ks = set(&doc(SECRET_A, None), TokenAlg::RS256);
    let e = ks.sign(&claims(now())).unwrap_err();
    assert!(e.contains("rotate-key"), "{e}");
    assert!(!e.contains(SECRET_A));
    assert_eq!(ks.jwks()["keys"].as_array().unwrap().len(), 1);
    // Moving to another algorithm: the published next key of it signs meanwhile.
    let moving = set(
        &SigningSecret {
            next_signing_secret: Some(SECRET_B.into()),
            next_signing_key: Some(RSA_2.into()),
            ..doc(SECRET_A, None)
        },
        TokenAlg::RS256,
    );
    let t = moving.sign(&claims(now())).unwrap();
    let next_kid = moving.current().next.as_ref().unwrap().kid.clone();
    assert_eq!(jsonwebtoken::decode_header(&t).unwrap().kid, Some(next_kid));
    assert!(moving.verify(&t, ISS, "contact-api").is_some());
}

#[test]
fn a_string_audience_from_before_the_array_still_reads() {
    let ks = set(&doc(SECRET_A, Some(RSA_1)), TokenAlg::RS256);
    #[derive(Serialize)]
    struct Old<'a> {
        iss: &'a str,
        aud: &'a str,
        sub: &'a str,
        tid: &'a str,
        tv: u64,
        amr: Vec<&'a str>,
        auth_time: i64,
        iat: i64,
        exp: i64,
        jti: &'a str,
    }
    let t = now();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(ks.current().active.kid.clone());
    let old = Old {
        iss: ISS,
        aud: "contact-api",
        sub: "c1",
        tid: "t1",
        tv: 0,
        amr: vec!["pwd"],
        auth_time: t,
        iat: t,
        exp: t + 60,
        jti: "j",
    };
    let token = jsonwebtoken::encode(&header, &old, &ks.current().active.encoding).unwrap();
    assert_eq!(
        ks.verify(&token, ISS, "contact-api").map(|c| c.aud),
        Some(vec!["contact-api".to_string()])
    );
}

#[test]
fn unusable_secrets_and_keys_are_refused_with_a_message_that_shows_no_secret() {
    assert!(SigningKeys::from_json(r#"{"signing_secret":"short"}"#).is_err());
    assert!(SigningKeys::from_json("not json").is_err());
    for bad in [
        RSA_1024,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
        "garbage",
    ] {
        let e = SigningKeys::from_doc(&doc(SECRET_A, Some(bad)))
            .err()
            .unwrap();
        assert!(e.contains("PKCS#8"), "{e}");
    }
    let e = SigningKeys::from_doc(&doc(
        SECRET_A,
        Some(&RSA_1.replace("PRIVATE KEY", "RSA PRIVATE KEY")),
    ))
    .err()
    .unwrap();
    assert!(!e.contains("MII"), "{e}");
    let d = doc(SECRET_A, Some(RSA_1));
    assert_eq!(format!("{d:?}"), "SigningSecret(<redacted>)");
}

#[test]
fn rsa_keys_load_without_ring_and_pass_its_whole_check() {
    // Loading reads n and e from the DER; `check` (rotate-key) runs ring's own parse of
    // every private key and compares the public key it finds.
    let keys = SigningKeys::from_doc(&SigningSecret {
        next_signing_secret: Some(SECRET_B.into()),
        next_signing_key: Some(RSA_2.into()),
        ..doc(SECRET_A, Some(RSA_1))
    })
    .unwrap();
    assert!(keys.check().is_ok());
    // The public key of the JWK is ring's: its n for the same PEM.
    let der = pem_rfc7468::decode_vec(RSA_1.trim().as_bytes()).unwrap().1;
    let pair = RsaKeyPair::from_pkcs8(&der).unwrap();
    let parts: ring::rsa::PublicKeyComponents<Vec<u8>> = pair.public().into();
    assert_eq!(keys.active.public_jwk()["n"], b64(&parts.n).as_str());

    // A key whose prime is damaged still loads (n and e are intact) but fails the check.
    let info = pkcs8::PrivateKeyInfo::from_der(&der).unwrap();
    let p = pkcs1::RsaPrivateKey::from_der(info.private_key)
        .unwrap()
        .prime1
        .as_bytes()
        .to_vec();
    let at = der
        .windows(p.len())
        .position(|w| w == p.as_slice())
        .unwrap()
        + p.len()
        - 1;
    let mut bad = der.clone();
    bad[at] ^= 0x02;
    let pem = pem_rfc7468::encode_string("PRIVATE KEY", pem_rfc7468::LineEnding::LF, &bad).unwrap();
    let damaged = SigningKeys::from_doc(&doc(SECRET_A, Some(&pem))).unwrap();
    assert_eq!(damaged.active.kid, keys.active.kid);
    assert!(damaged.check().is_err());
}

#[test]
fn secrets_need_32_characters_and_empty_slots_are_no_keys() {
    assert!(KeyPair::from_slot(&"s".repeat(32), None).is_ok());
    assert!(KeyPair::from_slot(&"s".repeat(31), None).is_err());
    let keys = SigningKeys::from_json(&format!(
        r#"{{"signing_secret":"{}","signing_key":"","previous_signing_secret":"","next_signing_secret":" "}}"#,
        "s".repeat(32)
    ))
    .unwrap();
    assert!(keys.previous.is_none() && keys.next.is_none());
    assert_eq!(keys.active.alg, TokenAlg::EdDSA);
    assert!(keys.link.previous.is_none());
}

#[test]
fn the_refresh_is_due_once_per_interval() {
    let ks = KeySet::new(
        SigningKeys::from_doc(&doc(SECRET_A, None)).unwrap(),
        TokenAlg::EdDSA,
        100,
    );
    assert!(!ks.due(399, 300));
    assert!(ks.due(400, 300));
    assert!(!ks.due(400, 300), "marked read");
    assert!(!ks.due(699, 300));
    assert!(ks.due(700, 300));
    let before = ks.current().active.kid.clone();
    ks.replace(SigningKeys::from_doc(&doc(SECRET_A, Some(RSA_1))).unwrap());
    assert_ne!(ks.current().active.kid, before);
}

#[test]
fn algorithm_names_are_exact() {
    for alg in [TokenAlg::RS256, TokenAlg::ES256, TokenAlg::EdDSA] {
        assert_eq!(TokenAlg::parse(alg.name()), Some(alg));
    }
    assert_eq!(TokenAlg::parse("rs256"), None);
    assert_eq!(TokenAlg::parse("HS256"), None);
    assert_eq!(team_audience(&TeamId::from_stored("t9")), "team:t9");
}

#[test]
fn a_reread_takes_a_changed_usable_document_and_keeps_the_keys_otherwise() {
    let json = |d: &SigningSecret| serde_json::to_string(d).unwrap();
    let first = doc(SECRET_A, Some(RSA_1));
    let ks = set(&first, TokenAlg::RS256);
    // The first reread of the same document takes it (nothing seen yet), the next does not.
    assert!(ks.reread(&json(&first)).unwrap().is_some());
    assert_eq!(ks.reread(&json(&first)).unwrap(), None);
    // Only the code secret changed: same kids, still a new document.
    let new_secret = doc(SECRET_B, Some(RSA_1));
    assert!(ks.reread(&json(&new_secret)).unwrap().is_some());
    assert_eq!(
        format!("{:?}", ks.link().active),
        format!(
            "{:?}",
            SigningKeys::from_doc(&new_secret).unwrap().link.active
        )
    );
    let kid = ks.current().active.kid.clone();
    // A document that cannot sign RS256 while the keys in use can: refused, keys kept.
    assert!(ks.reread(&json(&doc(SECRET_A, None))).is_err());
    assert!(ks.reread("not json").is_err());
    assert_eq!(ks.current().active.kid, kid);
    assert!(ks.sign(&claims(now())).is_ok());
    // A cold start remembers its document: rereading it changes nothing.
    let cold = KeySet::loaded(&json(&first), TokenAlg::RS256, 0).unwrap();
    assert_eq!(cold.reread(&json(&first)).unwrap(), None);
    // From a state that cannot sign (the template's secret), any usable document is taken.
    let fresh = set(&doc(SECRET_A, None), TokenAlg::RS256);
    assert!(fresh.reread(&json(&doc(SECRET_B, None))).unwrap().is_some());
    assert!(fresh.reread(&json(&first)).unwrap().is_some());
    assert!(fresh.sign(&claims(now())).is_ok());
}
