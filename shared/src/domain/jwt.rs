//! Access tokens: JWTs signed RS256 (the default), ES256 or EdDSA (`ACCESS_TOKEN_ALG`,
//! CONTRACT §12), with a `kid` so other services — an API Gateway JWT authorizer among
//! them — verify them from the JWK set. `jsonwebtoken` parses, encodes and validates the
//! claims; its only cryptography is the provider below, on `ring` (already linked for
//! TLS; constant-time RSA, no RSA code of our own).
//!
//! Key material comes from the signing secret document (`SigningSecret`), stored in
//! Secrets Manager in AWS and in `.dev/signing-key.json` locally. Each slot — current,
//! next, previous — has a `…_secret` string (the sign-in code keys derive from it, and an
//! Ed25519 key when the slot has no private key) and an optional `…_key`: an RSA (2048 to
//! 4096 bits) or P-256 private key, PKCS#8 PEM, which `contact-auth-admin rotate-key`
//! writes. Every listed key is published and verifies; only the current one signs.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::domain::code::{LinkKey, LinkKeys};
use crate::domain::ids::{ContactId, HubId, TeamId};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use pkcs8::der::Decode;
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};

/// The signing algorithms a deployment can choose (`ACCESS_TOKEN_ALG`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256: what every JWT verifier accepts, API Gateway HTTP
    /// API authorizers included (they accept RSA only).
    RS256,
    /// ECDSA P-256 with SHA-256 (REST API authorizers accept it; HTTP APIs do not).
    ES256,
    /// Ed25519: the smallest and fastest; not accepted by API Gateway authorizers.
    EdDSA,
}

impl TokenAlg {
    pub fn parse(name: &str) -> Option<TokenAlg> {
        match name {
            "RS256" => Some(TokenAlg::RS256),
            "ES256" => Some(TokenAlg::ES256),
            "EdDSA" => Some(TokenAlg::EdDSA),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TokenAlg::RS256 => "RS256",
            TokenAlg::ES256 => "ES256",
            TokenAlg::EdDSA => "EdDSA",
        }
    }

    fn jose(self) -> Algorithm {
        match self {
            TokenAlg::RS256 => Algorithm::RS256,
            TokenAlg::ES256 => Algorithm::ES256,
            TokenAlg::EdDSA => Algorithm::EdDSA,
        }
    }
}

/// The cryptography `jsonwebtoken` gets: RS256, ES256 and EdDSA on `ring` (the crate is
/// built without its own backends, which would link a second RSA and ECDSA). A key's
/// bytes are what `KeyPair` put in them: PKCS#8 DER for RSA and P-256 private keys, the
/// 32-byte seed for Ed25519; the RSA modulus and exponent, the uncompressed P-256 point
/// or the 32-byte Ed25519 key for verifying. Any other algorithm is refused, never a
/// panic. Installed once per process, before the first sign or verify.
mod ring_provider {
    use std::sync::{Arc, Mutex};

    use jsonwebtoken::crypto::{CryptoProvider, JwkUtils, JwtSigner, JwtVerifier};
    use jsonwebtoken::errors::{new_error, ErrorKind, Result};
    use jsonwebtoken::signature::{Error, Signer, Verifier};
    use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind, EncodingKey};
    use ring::rand::SystemRandom;
    use ring::signature::{self as sig, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair};

    enum Private {
        Rsa(Arc<RsaKeyPair>),
        Ec(EcdsaKeyPair),
        Ed(Ed25519KeyPair),
    }

    struct RingSigner(Private, Algorithm);

    impl Signer<Vec<u8>> for RingSigner {
        fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, Error> {
            let rng = SystemRandom::new();
            match &self.0 {
                Private::Rsa(k) => {
                    let mut out = vec![0; k.public().modulus_len()];
                    k.sign(&sig::RSA_PKCS1_SHA256, &rng, msg, &mut out)
                        .map_err(|_| Error::new())?;
                    Ok(out)
                }
                Private::Ec(k) => Ok(k
                    .sign(&rng, msg)
                    .map_err(|_| Error::new())?
                    .as_ref()
                    .to_vec()),
                Private::Ed(k) => Ok(k.sign(msg).as_ref().to_vec()),
            }
        }
    }

    impl JwtSigner for RingSigner {
        fn algorithm(&self) -> Algorithm {
            self.1
        }
    }

    enum Public {
        Rsa { n: Vec<u8>, e: Vec<u8> },
        Other(&'static dyn sig::VerificationAlgorithm, Vec<u8>),
    }

    struct RingVerifier(Public, Algorithm);

    impl Verifier<Vec<u8>> for RingVerifier {
        fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> std::result::Result<(), Error> {
            let ok = match &self.0 {
                Public::Rsa { n, e } => sig::RsaPublicKeyComponents { n, e }
                    .verify(&sig::RSA_PKCS1_2048_8192_SHA256, msg, signature)
                    .is_ok(),
                Public::Other(alg, key) => sig::UnparsedPublicKey::new(*alg, key)
                    .verify(msg, signature)
                    .is_ok(),
            };
            ok.then_some(()).ok_or_else(Error::new)
        }
    }

    impl JwtVerifier for RingVerifier {
        fn algorithm(&self) -> Algorithm {
            self.1
        }
    }

    /// The RSA key parsed last: parsing checks the whole key (a measurable share of a
    /// signature), and a function signs with one key until a rotation.
    static RSA_PARSED: Mutex<Option<(Vec<u8>, Arc<RsaKeyPair>)>> = Mutex::new(None);

    fn rsa_key(der: &[u8]) -> Result<Arc<RsaKeyPair>> {
        let mut cached = RSA_PARSED
            .lock()
            .map_err(|_| new_error(ErrorKind::InvalidRsaKey("lock".into())))?;
        if let Some((d, k)) = cached.as_ref() {
            if d == der {
                return Ok(k.clone());
            }
        }
        let key = Arc::new(
            RsaKeyPair::from_pkcs8(der)
                .map_err(|_| new_error(ErrorKind::InvalidRsaKey("pkcs8".into())))?,
        );
        *cached = Some((der.to_vec(), key.clone()));
        Ok(key)
    }

    fn signer(alg: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
        let private = match alg {
            Algorithm::RS256 => Private::Rsa(rsa_key(key.inner())?),
            Algorithm::ES256 => Private::Ec(
                EcdsaKeyPair::from_pkcs8(
                    &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
                    key.inner(),
                    &SystemRandom::new(),
                )
                .map_err(|_| new_error(ErrorKind::InvalidEcdsaKey))?,
            ),
            Algorithm::EdDSA => Private::Ed(
                Ed25519KeyPair::from_seed_unchecked(key.inner())
                    .map_err(|_| new_error(ErrorKind::InvalidEddsaKey))?,
            ),
            _ => return Err(new_error(ErrorKind::InvalidAlgorithm)),
        };
        Ok(Box::new(RingSigner(private, *alg)))
    }

    fn verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
        let public = match (alg, key.kind()) {
            (Algorithm::RS256, DecodingKeyKind::RsaModulusExponent { n, e }) => Public::Rsa {
                n: n.clone(),
                e: e.clone(),
            },
            (Algorithm::ES256, DecodingKeyKind::SecretOrDer(point)) => {
                Public::Other(&sig::ECDSA_P256_SHA256_FIXED, point.clone())
            }
            (Algorithm::EdDSA, DecodingKeyKind::SecretOrDer(key)) => {
                Public::Other(&sig::ED25519, key.clone())
            }
            _ => return Err(new_error(ErrorKind::InvalidAlgorithm)),
        };
        Ok(Box::new(RingVerifier(public, *alg)))
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

/// The signing secret document, as stored in Secrets Manager or the local key file. The
/// stack template creates it as `{"signing_secret": "<random>"}`; `contact-auth-admin
/// rotate-key` writes the rest. Its `Debug` prints no secret.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct SigningSecret {
    /// The current slot: signs new tokens.
    pub signing_secret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<String>,
    /// Published (and verifying) before it signs: the next rotation makes it current, so
    /// verifiers that cache the JWK set (API Gateway: up to two hours) already have it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_signing_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_signing_key: Option<String>,
    /// The current slot before the last rotation: still published so its tokens verify
    /// until they expire; never signs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_signing_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_signing_key: Option<String>,
    /// When `rotate-key` last rotated (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_at: Option<i64>,
}

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret(<redacted>)")
    }
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.trim().is_empty())
}

impl SigningSecret {
    pub fn from_json(json: &str) -> Result<SigningSecret, String> {
        serde_json::from_str(json).map_err(|_| "signing secret is not the expected JSON".into())
    }
}

/// One key: its `kid` (the RFC 7638 thumbprint of its public JWK), algorithm, public JWK,
/// and what `jsonwebtoken` signs and verifies with.
pub struct KeyPair {
    pub kid: String,
    pub alg: TokenAlg,
    jwk: serde_json::Value,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// RFC 7638: the SHA-256 of the required members in lexicographic order, no spaces.
fn thumbprint(required_members: &str) -> String {
    b64(&Sha256::digest(required_members.as_bytes()))
}

impl KeyPair {
    /// A slot of the secret document: the private key when there is one, else the
    /// Ed25519 key derived from the secret string (SHA-256 of it is the seed).
    pub fn from_slot(secret: &str, private_key: Option<&str>) -> Result<KeyPair, String> {
        if secret.len() < 32 {
            return Err("signing secret is shorter than 32 characters".into());
        }
        match private_key {
            Some(pem) => KeyPair::from_pem(pem),
            None => KeyPair::ed25519(&Sha256::digest(secret.as_bytes()).into()),
        }
    }

    fn ed25519(seed: &[u8; 32]) -> Result<KeyPair, String> {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed)
            .map_err(|_| "cannot build the Ed25519 key".to_string())?;
        let x = b64(pair.public_key().as_ref());
        let kid = thumbprint(&format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#));
        Ok(KeyPair {
            jwk: serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": x}),
            kid,
            alg: TokenAlg::EdDSA,
            encoding: EncodingKey::from_ed_der(seed),
            decoding: DecodingKey::from_ed_der(pair.public_key().as_ref()),
        })
    }

    /// An RSA (RS256) or P-256 (ES256) private key, PKCS#8 PEM.
    fn from_pem(pem: &str) -> Result<KeyPair, String> {
        let not_a_key = || {
            "signing key is not a PKCS#8 PEM RSA (2048 to 4096 bits) or P-256 private key"
                .to_string()
        };
        let (label, der) =
            pem_rfc7468::decode_vec(pem.trim().as_bytes()).map_err(|_| not_a_key())?;
        if label != "PRIVATE KEY" {
            return Err(not_a_key());
        }
        // RSA: the public modulus and exponent straight from the DER (the key that signs is
        // checked whole by ring at its first signature; rotate-key checks every key first:
        // `SigningKeys::check`).
        let info = pkcs8::PrivateKeyInfo::from_der(&der).map_err(|_| not_a_key())?;
        if info.algorithm.oid == pkcs1::ALGORITHM_OID {
            let key = pkcs1::RsaPrivateKey::from_der(info.private_key).map_err(|_| not_a_key())?;
            let (n_raw, e_raw) = (key.modulus.as_bytes(), key.public_exponent.as_bytes());
            // What ring signs with: 2048 to 4096 bits.
            if !(256..=512).contains(&n_raw.len()) {
                return Err(not_a_key());
            }
            let (n, e) = (b64(n_raw), b64(e_raw));
            return Ok(KeyPair {
                kid: thumbprint(&format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#)),
                jwk: serde_json::json!({"kty": "RSA", "n": n, "e": e}),
                alg: TokenAlg::RS256,
                encoding: EncodingKey::from_rsa_der(&der),
                decoding: DecodingKey::from_rsa_raw_components(n_raw, e_raw),
            });
        }
        let pair = EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &der,
            &ring::rand::SystemRandom::new(),
        )
        .map_err(|_| not_a_key())?;
        // The uncompressed point: 0x04 || x (32 bytes) || y (32 bytes).
        let point = pair.public_key().as_ref();
        let (x, y) = (b64(&point[1..33]), b64(&point[33..65]));
        Ok(KeyPair {
            kid: thumbprint(&format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#
            )),
            jwk: serde_json::json!({"kty": "EC", "crv": "P-256", "x": x, "y": y}),
            alg: TokenAlg::ES256,
            encoding: EncodingKey::from_ec_der(&der),
            decoding: DecodingKey::from_ec_der(point),
        })
    }

    /// The public JWK, with `kid`, `alg` and `use`.
    pub fn public_jwk(&self) -> serde_json::Value {
        let mut jwk = self.jwk.clone();
        if let Some(o) = jwk.as_object_mut() {
            o.insert("kid".into(), self.kid.clone().into());
            o.insert("alg".into(), self.alg.name().into());
            o.insert("use".into(), "sig".into());
        }
        jwk
    }
}

/// The keys of one version of the secret: the current key signs, the next and previous
/// ones are published and verify; the link keys (sign-in codes, mail-job tokens:
/// `domain::code`) come from the current, previous and next secrets.
pub struct SigningKeys {
    pub active: KeyPair,
    pub next: Option<KeyPair>,
    pub previous: Option<KeyPair>,
    pub link: LinkKeys,
}

impl SigningKeys {
    pub fn from_doc(doc: &SigningSecret) -> Result<SigningKeys, String> {
        ring_provider::install();
        let slot = |secret: Option<&str>, key: &Option<String>| {
            secret
                .map(|s| KeyPair::from_slot(s, non_empty(key)))
                .transpose()
        };
        let previous_secret = non_empty(&doc.previous_signing_secret);
        Ok(SigningKeys {
            active: KeyPair::from_slot(&doc.signing_secret, non_empty(&doc.signing_key))?,
            next: slot(non_empty(&doc.next_signing_secret), &doc.next_signing_key)?,
            previous: slot(previous_secret, &doc.previous_signing_key)?,
            link: LinkKeys {
                active: LinkKey::derive(&doc.signing_secret),
                previous: previous_secret.map(LinkKey::derive),
                next: non_empty(&doc.next_signing_secret).map(LinkKey::derive),
            },
        })
    }

    pub fn from_json(json: &str) -> Result<SigningKeys, String> {
        SigningKeys::from_doc(&SigningSecret::from_json(json)?)
    }

    /// Every published key: current, next, previous.
    fn all(&self) -> impl Iterator<Item = &KeyPair> {
        std::iter::once(&self.active)
            .chain(self.next.as_ref())
            .chain(self.previous.as_ref())
    }

    /// Every private key checked whole (ring's own parse: the RSA key's primes and CRT
    /// values agree with its modulus), and the public key matching it. `rotate-key` runs
    /// this before it writes; a function checks only the key it signs with, at its first
    /// signature.
    pub fn check(&self) -> Result<(), String> {
        for k in self.all().filter(|k| k.alg == TokenAlg::RS256) {
            let pair = RsaKeyPair::from_pkcs8(k.encoding.inner())
                .map_err(|_| format!("the RSA key {} does not pass ring's check", k.kid))?;
            let parts: ring::rsa::PublicKeyComponents<Vec<u8>> = pair.public().into();
            if b64(&parts.n) != k.jwk["n"] || b64(&parts.e) != k.jwk["e"] {
                return Err(format!(
                    "the RSA key {} does not match its public key",
                    k.kid
                ));
            }
        }
        Ok(())
    }

    /// The key that signs when `alg` is required: the current key, or — while a deployment
    /// moves to another algorithm (README "Key rotation") — the published next key when
    /// only that one is of `alg`.
    pub fn signer(&self, alg: TokenAlg) -> Option<&KeyPair> {
        std::iter::once(&self.active)
            .chain(self.next.as_ref())
            .find(|k| k.alg == alg)
    }

    /// The kids, in the order the JWK set lists them.
    pub fn kids(&self) -> Vec<&str> {
        self.all().map(|k| k.kid.as_str()).collect()
    }
}

/// What a function signs and verifies with: the keys of the secret version it read
/// last. `replace` swaps in a newer version (a warm function rereads the secret every
/// `SIGNING_KEY_REFRESH_SECONDS`: `runtime::KeysDep::refresh`).
pub struct KeySet {
    keys: RwLock<Arc<SigningKeys>>,
    /// What the current key must be to sign (`ACCESS_TOKEN_ALG`).
    required: TokenAlg,
    /// When the secret was last read (or a read was last tried), Unix seconds.
    checked_at: AtomicI64,
    /// SHA-256 of the document the keys in use came from, once a reread has seen it.
    digest: Mutex<Option<[u8; 32]>>,
}

impl KeySet {
    pub fn new(keys: SigningKeys, required: TokenAlg, now: i64) -> KeySet {
        if keys.signer(required).is_none() {
            tracing::error!(
                key_alg = keys.active.alg.name(),
                required = required.name(),
                "the current signing key is not of the configured algorithm: sign-ins fail until `contact-auth-admin rotate-key` writes one"
            );
        }
        KeySet {
            keys: RwLock::new(Arc::new(keys)),
            required,
            checked_at: AtomicI64::new(now),
            digest: Mutex::new(None),
        }
    }

    /// A function's cold start: the keys of the secret document `json`, remembered by its
    /// digest so that a reread of the same version changes nothing.
    pub fn loaded(json: &str, required: TokenAlg, now: i64) -> Result<KeySet, String> {
        let ks = KeySet::new(SigningKeys::from_json(json)?, required, now);
        if let Ok(mut d) = ks.digest.lock() {
            *d = Some(digest(json));
        }
        Ok(ks)
    }

    /// For tests and tools: a secret document, the algorithm it must sign with.
    pub fn from_json(json: &str, required: TokenAlg) -> Result<KeySet, String> {
        Ok(KeySet::new(SigningKeys::from_json(json)?, required, 0))
    }

    /// The keys in use now.
    pub fn current(&self) -> Arc<SigningKeys> {
        match self.keys.read() {
            Ok(k) => k.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Whether the secret is due to be read again; marks it read at `now` when it is, so
    /// a failing read is retried one interval later, not on every request.
    pub fn due(&self, now: i64, every: i64) -> bool {
        let last = self.checked_at.load(Ordering::Relaxed);
        now - last >= every
            && self
                .checked_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// A reread document (`json`): the keys to use from now on, if it differs from the one
    /// in use (by its SHA-256, so a changed code secret counts too), passes ring's whole
    /// check, and can sign when the keys in use can. Otherwise why not, and nothing changes.
    pub fn reread(&self, json: &str) -> Result<Option<Vec<String>>, String> {
        let digest = digest(json);
        let mut seen = match self.digest.lock() {
            Ok(d) => d,
            Err(poisoned) => poisoned.into_inner(),
        };
        if seen.as_ref() == Some(&digest) {
            return Ok(None);
        }
        let keys = SigningKeys::from_json(json)?;
        keys.check()?;
        let signs = |k: &SigningKeys| k.signer(self.required).is_some();
        if !signs(&keys) && signs(&self.current()) {
            return Err(format!(
                "the new signing secret cannot sign {} tokens",
                self.required.name()
            ));
        }
        let kids = keys.kids().into_iter().map(String::from).collect();
        self.replace(keys);
        *seen = Some(digest);
        Ok(Some(kids))
    }

    /// Uses `keys` from now on.
    pub fn replace(&self, keys: SigningKeys) {
        let mut slot = match self.keys.write() {
            Ok(k) => k,
            Err(poisoned) => poisoned.into_inner(),
        };
        *slot = Arc::new(keys);
    }

    pub fn link(&self) -> LinkKeys {
        self.current().link.clone()
    }

    /// The JWK set document served at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> serde_json::Value {
        let keys = self.current();
        let keys: Vec<serde_json::Value> = keys.all().map(KeyPair::public_jwk).collect();
        serde_json::json!({ "keys": keys })
    }

    /// Signs with `SigningKeys::signer` for `ACCESS_TOKEN_ALG`; none: an error naming the
    /// fix.
    pub fn sign(&self, claims: &AccessClaims) -> Result<String, String> {
        ring_provider::install();
        let keys = self.current();
        let key = keys.signer(self.required).ok_or_else(|| {
                format!(
                    "the current signing key is {} but ACCESS_TOKEN_ALG is {}: run contact-auth-admin rotate-key",
                    keys.active.alg.name(),
                    self.required.name()
                )
            })?;
        let mut header = Header::new(key.alg.jose());
        header.kid = Some(key.kid.clone());
        header.typ = Some("at+jwt".into());
        jsonwebtoken::encode(&header, claims, &key.encoding)
            .map_err(|_| "cannot sign the access token".to_string())
    }

    /// Verifies the signature with the published key the `kid` names, under that key's
    /// own algorithm (the header's `alg` must be it), then `exp` (no leeway), `iss` and
    /// that `aud` contains `audience`. The token version is the caller's check (it needs
    /// the contact).
    pub fn verify(&self, token: &str, issuer: &str, audience: &str) -> Option<AccessClaims> {
        ring_provider::install();
        let header = jsonwebtoken::decode_header(token).ok()?;
        let kid = header.kid?;
        let keys = self.current();
        let key = keys.all().find(|k| k.kid == kid)?;
        if header.alg != key.alg.jose() {
            return None;
        }
        let mut v = Validation::new(key.alg.jose());
        v.leeway = 0;
        v.set_issuer(&[issuer]);
        v.set_audience(&[audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub", "iat"]);
        jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &v)
            .ok()
            .map(|d| d.claims)
    }
}

/// SHA-256 of a secret document: how a reread tells a new version from the one in use.
fn digest(json: &str) -> [u8; 32] {
    Sha256::digest(json.as_bytes()).into()
}

/// `aud` is an array (the deployment's audience and `team:<team_id>`); tokens signed
/// before it was (a plain string) still read.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// The audience that names one team: a hub's own JWT authorizer configured with it
/// accepts only that team's members.
pub fn team_audience(team: &TeamId) -> String {
    format!("team:{}", team.as_str())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    #[serde(deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
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
    /// The session (refresh-token family) the token was issued in; this service refuses
    /// the token once that session ended. Absent only from tokens issued before sessions
    /// were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

#[cfg(test)]
#[path = "jwt_tests.rs"]
mod tests;
