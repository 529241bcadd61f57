//! Access tokens: EdDSA (Ed25519) JWTs via the `jsonwebtoken` crate, with a `kid` so other
//! services verify them from the JWK set. `jsonwebtoken` parses, encodes and validates
//! the claims; its only cryptography is the EdDSA provider below (`ed25519-dalek`).
//!
//! Key material: each key is derived from a secret string (SHA-256 of it is the Ed25519
//! seed). The stack's Secrets Manager secret is a generated random string, so no key is
//! ever in the repo or the template; locally `make dev` writes one to `.dev/`.

use crate::domain::code::{LinkKey, LinkKeys};
use crate::domain::ids::{ContactId, HubId, TeamId};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use ed25519_dalek::SigningKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The only cryptography `jsonwebtoken` gets: EdDSA with `ed25519-dalek` (the crate is
/// built without its `rust_crypto` backend, which links RSA, ECDSA and HMAC too — about
/// 0.4 MB per function that verifies or signs). Installed once, before the first sign or
/// verify (`KeySet` construction); any other algorithm is refused, never panics.
mod eddsa_only {
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
    use jsonwebtoken::crypto::{CryptoProvider, JwkUtils, JwtSigner, JwtVerifier};
    use jsonwebtoken::errors::{new_error, ErrorKind, Result};
    use jsonwebtoken::signature::{Error, Signer, Verifier};
    use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

    struct EdSigner(SigningKey);

    impl Signer<Vec<u8>> for EdSigner {
        fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, Error> {
            Ok(self.0.sign(msg).to_bytes().to_vec())
        }
    }

    impl JwtSigner for EdSigner {
        fn algorithm(&self) -> Algorithm {
            Algorithm::EdDSA
        }
    }

    struct EdVerifier(VerifyingKey);

    impl Verifier<Vec<u8>> for EdVerifier {
        fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> std::result::Result<(), Error> {
            self.0.verify(msg, &Signature::from_slice(signature)?)
        }
    }

    impl JwtVerifier for EdVerifier {
        fn algorithm(&self) -> Algorithm {
            Algorithm::EdDSA
        }
    }

    fn signer(alg: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
        if *alg != Algorithm::EdDSA {
            return Err(new_error(ErrorKind::InvalidAlgorithm));
        }
        let key = SigningKey::from_pkcs8_der(key.inner())
            .map_err(|_| new_error(ErrorKind::InvalidEddsaKey))?;
        Ok(Box::new(EdSigner(key)))
    }

    fn verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
        if *alg != Algorithm::EdDSA {
            return Err(new_error(ErrorKind::InvalidAlgorithm));
        }
        let bytes: &[u8; 32] = key
            .as_bytes()
            .get(..32)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| new_error(ErrorKind::InvalidEddsaKey))?;
        let key =
            VerifyingKey::from_bytes(bytes).map_err(|_| new_error(ErrorKind::InvalidEddsaKey))?;
        Ok(Box::new(EdVerifier(key)))
    }

    static PROVIDER: CryptoProvider = CryptoProvider {
        signer_factory: signer,
        verifier_factory: verifier,
        jwk_utils: JwkUtils::new_unimplemented(),
    };

    /// Installs the provider (once per process; later calls are no-ops).
    pub fn install() {
        let _ = PROVIDER.install_default();
    }
}

/// The signing secret document, as stored in Secrets Manager or the local key file.
#[derive(Debug, Clone, Deserialize)]
pub struct SigningSecret {
    /// Signs new tokens.
    pub signing_secret: String,
    /// The key before the last rotation: still published so its tokens verify until
    /// they expire; never used to sign.
    #[serde(default)]
    pub previous_signing_secret: Option<String>,
}

pub struct KeyPair {
    pub kid: String,
    /// base64url of the 32-byte public key (JWK `x`).
    pub x: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl KeyPair {
    pub fn from_secret(secret: &str) -> Result<KeyPair, String> {
        if secret.len() < 32 {
            return Err("signing secret is shorter than 32 characters".into());
        }
        let seed: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let signing = SigningKey::from_bytes(&seed);
        let public = signing.verifying_key().to_bytes();
        let der = signing
            .to_pkcs8_der()
            .map_err(|_| "cannot encode the signing key".to_string())?;
        let x = URL_SAFE_NO_PAD.encode(public);
        // kid: RFC 7638 JWK thumbprint of the public key.
        let thumb_input = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(thumb_input.as_bytes()));
        let decoding = DecodingKey::from_ed_components(&x)
            .map_err(|_| "cannot build the verifying key".to_string())?;
        Ok(KeyPair {
            kid,
            x,
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            decoding,
        })
    }
}

/// The active key plus any keys still published for verification, and the link keys
/// derived from the same secrets (sign-in codes, mail-job tokens: `domain::code`).
pub struct KeySet {
    pub active: KeyPair,
    pub previous: Vec<KeyPair>,
    pub link: LinkKeys,
}

impl KeySet {
    pub fn from_secret_doc(doc: &SigningSecret) -> Result<KeySet, String> {
        eddsa_only::install();
        let active = KeyPair::from_secret(&doc.signing_secret)?;
        let (previous, previous_link) = match &doc.previous_signing_secret {
            Some(p) if !p.is_empty() => (vec![KeyPair::from_secret(p)?], Some(LinkKey::derive(p))),
            _ => (vec![], None),
        };
        let link = LinkKeys {
            active: LinkKey::derive(&doc.signing_secret),
            previous: previous_link,
        };
        Ok(KeySet {
            active,
            previous,
            link,
        })
    }

    pub fn from_json(json: &str) -> Result<KeySet, String> {
        let doc: SigningSecret = serde_json::from_str(json)
            .map_err(|_| "signing secret is not the expected JSON".to_string())?;
        KeySet::from_secret_doc(&doc)
    }

    fn all(&self) -> impl Iterator<Item = &KeyPair> {
        std::iter::once(&self.active).chain(self.previous.iter())
    }

    /// The JWK set document served at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<serde_json::Value> = self
            .all()
            .map(|k| {
                serde_json::json!({
                    "kty": "OKP", "crv": "Ed25519", "x": k.x, "kid": k.kid,
                    "alg": "EdDSA", "use": "sig"
                })
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }

    pub fn sign(&self, claims: &AccessClaims) -> Result<String, String> {
        eddsa_only::install();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.active.kid.clone());
        header.typ = Some("at+jwt".into());
        jsonwebtoken::encode(&header, claims, &self.active.encoding)
            .map_err(|_| "cannot sign the access token".to_string())
    }

    /// Verifies signature, `exp` (no leeway), `iss` and `aud`. Token version is the
    /// caller's check (it needs the contact).
    pub fn verify(&self, token: &str, issuer: &str, audience: &str) -> Option<AccessClaims> {
        eddsa_only::install();
        let header = jsonwebtoken::decode_header(token).ok()?;
        if header.alg != Algorithm::EdDSA {
            return None;
        }
        let kid = header.kid?;
        let key = self.all().find(|k| k.kid == kid)?;
        let mut v = Validation::new(Algorithm::EdDSA);
        v.leeway = 0;
        v.set_issuer(&[issuer]);
        v.set_audience(&[audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub", "iat"]);
        jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &v)
            .ok()
            .map(|d| d.claims)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: ContactId,
    pub tid: TeamId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hid: Option<HubId>,
    pub tv: u64,
    pub amr: Vec<String>,
    pub auth_time: i64,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(now: i64) -> AccessClaims {
        AccessClaims {
            iss: "https://auth.example.com/api/v1/contact-auth".into(),
            aud: "contact-api".into(),
            sub: ContactId::from_stored("c1"),
            tid: TeamId::from_stored("t1"),
            hid: Some(HubId::from_stored("h1")),
            tv: 0,
            amr: vec!["magic_link".into()],
            auth_time: now,
            iat: now,
            exp: now + 900,
            jti: "j1".into(),
        }
    }

    fn now() -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }

    #[test]
    fn signs_and_verifies_with_kid_and_rejects_tampering() {
        let ks = KeySet::from_json(r#"{"signing_secret":"0123456789abcdef0123456789abcdef-test"}"#)
            .unwrap();
        let c = claims(now());
        let t = ks.sign(&c).unwrap();
        let header = jsonwebtoken::decode_header(&t).unwrap();
        assert_eq!(header.kid.as_deref(), Some(ks.active.kid.as_str()));
        assert_eq!(ks.verify(&t, &c.iss, &c.aud), Some(c.clone()));
        assert!(ks.verify(&t, &c.iss, "other-aud").is_none());
        assert!(ks.verify(&t, "https://evil", &c.aud).is_none());
        let mut bad = t.clone();
        bad.pop();
        bad.push(if t.ends_with('A') { 'B' } else { 'A' });
        assert!(ks.verify(&bad, &c.iss, &c.aud).is_none());
        // Another key cannot verify it.
        let other =
            KeySet::from_json(r#"{"signing_secret":"another-secret-another-secret-xyz"}"#).unwrap();
        assert!(other.verify(&t, &c.iss, &c.aud).is_none());
    }

    #[test]
    fn expired_tokens_are_rejected() {
        let ks = KeySet::from_json(r#"{"signing_secret":"0123456789abcdef0123456789abcdef-test"}"#)
            .unwrap();
        let mut c = claims(now() - 2000);
        c.exp = now() - 1;
        let t = ks.sign(&c).unwrap();
        assert!(ks.verify(&t, &c.iss, &c.aud).is_none());
    }

    #[test]
    fn previous_key_still_verifies_and_is_published() {
        let old = KeySet::from_json(r#"{"signing_secret":"old-old-old-old-old-old-old-old-old"}"#)
            .unwrap();
        let c = claims(now());
        let t = old.sign(&c).unwrap();
        let rotated = KeySet::from_json(
            r#"{"signing_secret":"new-new-new-new-new-new-new-new-new","previous_signing_secret":"old-old-old-old-old-old-old-old-old"}"#,
        )
        .unwrap();
        assert!(rotated.verify(&t, &c.iss, &c.aud).is_some());
        let jwks = rotated.jwks();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
        assert_eq!(jwks["keys"][0]["kid"], rotated.active.kid.as_str());
        assert_eq!(jwks["keys"][1]["kid"], old.active.kid.as_str());
    }

    #[test]
    fn other_algorithms_are_refused_without_a_panic() {
        let ks = KeySet::from_json(r#"{"signing_secret":"0123456789abcdef0123456789abcdef-test"}"#)
            .unwrap();
        let c = claims(now());
        let t = ks.sign(&c).unwrap();
        let (_, rest) = t.split_once('.').unwrap();
        for alg in ["HS256", "RS256", "ES256", "none"] {
            let header = URL_SAFE_NO_PAD.encode(format!(
                r#"{{"alg":"{alg}","kid":"{}","typ":"at+jwt"}}"#,
                ks.active.kid
            ));
            assert!(
                ks.verify(&format!("{header}.{rest}"), &c.iss, &c.aud)
                    .is_none(),
                "{alg}"
            );
        }
        // The provider itself refuses them too (the check before it aside).
        let key = jsonwebtoken::DecodingKey::from_ed_components(&ks.active.x).unwrap();
        for alg in [
            jsonwebtoken::Algorithm::HS256,
            jsonwebtoken::Algorithm::RS256,
        ] {
            let (header, payload_sig) = t.split_once('.').unwrap();
            let (payload, sig) = payload_sig.split_once('.').unwrap();
            let message = format!("{header}.{payload}");
            assert!(jsonwebtoken::crypto::verify(sig, message.as_bytes(), &key, alg).is_err());
        }
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(KeySet::from_json(r#"{"signing_secret":"short"}"#).is_err());
        assert!(KeySet::from_json("not json").is_err());
    }

    #[test]
    fn secrets_need_32_characters_and_an_empty_previous_secret_is_no_previous_key() {
        assert!(KeyPair::from_secret(&"s".repeat(32)).is_ok());
        assert!(KeyPair::from_secret(&"s".repeat(31)).is_err());
        let ks = KeySet::from_json(&format!(
            r#"{{"signing_secret":"{}","previous_signing_secret":""}}"#,
            "s".repeat(32)
        ))
        .unwrap();
        assert!(ks.previous.is_empty());
        assert_eq!(ks.jwks()["keys"].as_array().unwrap().len(), 1);
    }
}
