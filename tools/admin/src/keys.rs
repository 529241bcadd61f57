//! `rotate-key` and `dev-key`: new signing keys, and the rotation of the signing secret
//! document (`domain::jwt::SigningSecret`) in Secrets Manager or a local file.
//!
//! A rotation: previous <- current, current <- next (published since the last rotation,
//! so verifiers that cache the JWK set already have it), next <- a new key. The first
//! rotation of a new stack has no next key yet: the new current key is fresh.

use base64::Engine;
use contact_auth::adapters::keys as secret_store;
use contact_auth::domain::jwt::{SigningKeys, SigningSecret, TokenAlg};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};

type Res<T> = Result<T, String>;

/// How long after a rotation another one would break a promise, unless forced: the key
/// promoted next must have been in the JWK set longer than API Gateway caches it (two
/// hours), plus the functions' reread bound and the JWK set's max-age (5 + 5 minutes);
/// by then the tokens the dropped key signed (15 minutes) have long expired.
pub const MIN_ROTATION_INTERVAL: i64 = 2 * 3600 + 600;

/// Where the document lives.
pub enum Target {
    Secret(String),
    File(String),
}

impl Target {
    fn describe(&self) -> String {
        match self {
            Target::Secret(id) => format!("--secret-id {id}"),
            Target::File(path) => format!("--file {path}"),
        }
    }

    async fn read(&self) -> Res<String> {
        match self {
            Target::Secret(id) => secret_store::get_secret(id).await,
            Target::File(path) => std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}")),
        }
    }

    /// Writes `doc` after checking every key in it whole; its keys, for the report.
    async fn save(&self, doc: &SigningSecret) -> Res<SigningKeys> {
        let keys = SigningKeys::from_doc(doc)?;
        keys.check()?;
        let json = serde_json::to_string(doc).map_err(|e| e.to_string())?;
        match self {
            Target::Secret(id) => secret_store::put_secret(id, &json).await?,
            Target::File(path) => write_private(path, &json)?,
        }
        Ok(keys)
    }
}

/// A file only its owner reads.
pub fn write_private(path: &str, contents: &str) -> Res<()> {
    if let Some(dir) = std::path::Path::new(path).parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let tmp = format!("{path}.tmp");
    // A new file (never through an existing one or a link), readable by its owner only
    // from its creation.
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    {
        use std::io::Write;
        let mut f = options.open(&tmp).map_err(|e| format!("{tmp}: {e}"))?;
        f.write_all(contents.as_bytes())
            .map_err(|e| format!("{tmp}: {e}"))?;
    }
    // Renamed into place: a function rereading the file never sees half of it.
    std::fs::rename(&tmp, path).map_err(|e| format!("{path}: {e}"))
}

/// 64 random characters (48 bytes, base64url): a slot's secret string.
fn random_secret() -> Res<String> {
    let mut bytes = [0u8; 48];
    getrandom::getrandom(&mut bytes).map_err(|e| e.to_string())?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// A new slot for `alg`: its secret, and its private key (PKCS#8 PEM) unless EdDSA,
/// whose key derives from the secret.
fn new_slot(alg: TokenAlg) -> Res<(String, Option<String>)> {
    let key = match alg {
        TokenAlg::RS256 => {
            let mut rng = rsa::rand_core::OsRng;
            let key = rsa::RsaPrivateKey::new(&mut rng, 2048).map_err(|e| e.to_string())?;
            Some(
                key.to_pkcs8_pem(LineEnding::LF)
                    .map_err(|e| e.to_string())?
                    .to_string(),
            )
        }
        TokenAlg::ES256 => {
            let der = EcdsaKeyPair::generate_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                &SystemRandom::new(),
            )
            .map_err(|_| "cannot generate a P-256 key".to_string())?;
            Some(
                pem_rfc7468::encode_string(
                    "PRIVATE KEY",
                    pem_rfc7468::LineEnding::LF,
                    der.as_ref(),
                )
                .map_err(|e| e.to_string())?,
            )
        }
        TokenAlg::EdDSA => None,
    };
    Ok((random_secret()?, key))
}

/// A new document with one fresh slot of `alg` and a next one (what `dev-key` writes).
pub fn new_document(alg: TokenAlg) -> Res<SigningSecret> {
    let (signing_secret, signing_key) = new_slot(alg)?;
    let (next_secret, next_key) = new_slot(alg)?;
    Ok(SigningSecret {
        signing_secret,
        signing_key,
        next_signing_secret: Some(next_secret),
        next_signing_key: next_key,
        ..SigningSecret::default()
    })
}

/// How a rotation treats the keys it replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// previous <- current, current <- next, next <- new; not within
    /// `MIN_ROTATION_INTERVAL` of the last rotation.
    Scheduled,
    /// The same, at any time.
    Forced,
    /// A leaked key (or document): current and next new, no previous — nothing signed
    /// before verifies once functions reread the secret.
    Revoke,
}

/// The document after a revocation at `now`: two new slots and nothing of the old one.
pub fn revoked(alg: TokenAlg, now: i64) -> Res<SigningSecret> {
    Ok(SigningSecret {
        rotated_at: Some(now),
        ..new_document(alg)?
    })
}

/// The algorithm of a rotation's new key when none is given: the document's next key's
/// (what the deployment has been publishing), else RS256 (a new stack's first rotation).
pub fn default_alg(doc: &SigningSecret) -> Res<TokenAlg> {
    Ok(SigningKeys::from_doc(doc)?
        .next
        .map_or(TokenAlg::RS256, |k| k.alg))
}

/// The document after one rotation at `now`.
pub fn rotated(doc: &SigningSecret, alg: TokenAlg, now: i64) -> Res<(SigningSecret, bool)> {
    let next = doc
        .next_signing_secret
        .clone()
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            (
                s,
                doc.next_signing_key
                    .clone()
                    .filter(|k| !k.trim().is_empty()),
            )
        });
    let prepublished = next.is_some();
    let (current_secret, current_key) = match next {
        Some(slot) => slot,
        None => new_slot(alg)?,
    };
    let (next_secret, next_key) = new_slot(alg)?;
    Ok((
        SigningSecret {
            signing_secret: current_secret,
            signing_key: current_key,
            next_signing_secret: Some(next_secret),
            next_signing_key: next_key,
            previous_signing_secret: Some(doc.signing_secret.clone()),
            previous_signing_key: doc.signing_key.clone(),
            rotated_at: Some(now),
        },
        prepublished,
    ))
}

fn describe(keys: &SigningKeys) -> String {
    let line = |role: &str, k: Option<&contact_auth::domain::jwt::KeyPair>| match k {
        Some(k) => format!("  {role:<22} {} {}\n", k.alg.name(), k.kid),
        None => format!("  {role:<22} (none)\n"),
    };
    [
        line("current (signs)", Some(&keys.active)),
        line("next (published)", keys.next.as_ref()),
        line("previous (verifies)", keys.previous.as_ref()),
    ]
    .concat()
}

pub async fn rotate_key(target: Target, alg: Option<TokenAlg>, mode: Mode) -> Res<()> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let doc = SigningSecret::from_json(&target.read().await?)?;
    let alg = match alg {
        Some(a) => a,
        None => default_alg(&doc)?,
    };
    if mode == Mode::Revoke {
        // Whatever the old document holds (it may be the leaked thing), it is replaced.
        let keys = target.save(&revoked(alg, now)?).await?;
        print!(
            "revoked every signing key ({}); the new keys:\n{}",
            target.describe(),
            describe(&keys)
        );
        println!(
            "Within SIGNING_KEY_REFRESH_SECONDS (300 s by default) every function signs with the new key and no access token signed before verifies: members' apps refresh (refresh tokens are not keys and keep working). Sign-in links and codes mailed before stop working. Verifiers that cache the JWK set (API Gateway: up to two hours) refuse the new tokens until they fetch it again."
        );
        return Ok(());
    }
    // The document must be usable before it is rotated (a broken one stays as it was).
    SigningKeys::from_doc(&doc)?.check()?;
    if let Some(at) = doc.rotated_at {
        let wait = at + MIN_ROTATION_INTERVAL - now;
        if wait > 0 && mode == Mode::Scheduled {
            return Err(format!(
                "the last rotation was {} s ago; rotating again within {} s drops a key some verifiers may still need (API Gateway caches the JWK set for up to two hours). Wait {wait} s, or pass --force; for a leaked key, --revoke",
                now - at,
                MIN_ROTATION_INTERVAL
            ));
        }
    }
    let (new_doc, prepublished) = rotated(&doc, alg, now)?;
    let keys = target.save(&new_doc).await?;
    print!(
        "rotated the signing key ({}):\n{}",
        target.describe(),
        describe(&keys)
    );
    if !prepublished {
        println!(
            "The new current key was not published before it signs (the document had no next key: a new stack's first rotation). Verifiers that cached the JWK set in the last two hours refuse its tokens until they fetch it again."
        );
    }
    if keys.active.alg != alg {
        println!(
            "The current key is {} (it was the published next key); the next key is {}. Set ACCESS_TOKEN_ALG={} (stack parameter AccessTokenAlg) no sooner than two hours from now: functions then sign with the next key, already published; the rotation after makes it current.",
            keys.active.alg.name(),
            alg.name(),
            alg.name()
        );
    }
    println!(
        "Next: nothing to do. Warm functions read the secret again within SIGNING_KEY_REFRESH_SECONDS (300 s by default); tokens signed with the previous key verify until they expire. Rotate again no sooner than {} min from now: contact-auth-admin rotate-key {}",
        MIN_ROTATION_INTERVAL / 60,
        target.describe()
    );
    Ok(())
}

/// `dev-key`: a local document when `out` has none, or when the one there cannot sign
/// with `alg` (one from before RS256 was the default): then a new one, the old current key
/// kept as previous. New keys are made only then (an RSA key takes a while).
pub async fn dev_key(out: &str, alg: TokenAlg) -> Res<()> {
    let old = std::fs::read_to_string(out)
        .ok()
        .and_then(|json| SigningSecret::from_json(&json).ok());
    let signs =
        |doc: &SigningSecret| SigningKeys::from_doc(doc).is_ok_and(|k| k.signer(alg).is_some());
    if old.as_ref().is_some_and(signs) {
        println!("signing key {out} exists");
        return Ok(());
    }
    let mut doc = new_document(alg)?;
    if let Some(existing) = old {
        doc.previous_signing_secret = Some(existing.signing_secret);
        doc.previous_signing_key = existing.signing_key;
    }
    Target::File(out.to_string()).save(&doc).await?;
    println!("wrote a new local {} signing key to {out}", alg.name());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kid(doc: &SigningSecret) -> Vec<String> {
        let k = SigningKeys::from_doc(doc).unwrap();
        k.kids().into_iter().map(String::from).collect()
    }

    #[test]
    fn a_rotation_promotes_the_published_next_key_and_keeps_the_current_one_as_previous() {
        let start = SigningSecret {
            signing_secret: "s".repeat(64),
            ..SigningSecret::default()
        };
        let (first, prepublished) = rotated(&start, TokenAlg::ES256, 100).unwrap();
        assert!(!prepublished);
        let k1 = kid(&first);
        assert_eq!(k1.len(), 3);
        assert_eq!(
            first.previous_signing_secret.as_deref(),
            Some("s".repeat(64).as_str())
        );
        assert_eq!(first.rotated_at, Some(100));
        let (second, prepublished) = rotated(&first, TokenAlg::ES256, 200).unwrap();
        assert!(prepublished);
        let k2 = kid(&second);
        // current <- next, previous <- current, the oldest is gone, a new next.
        assert_eq!(k2[0], k1[1]);
        assert_eq!(k2[2], k1[0]);
        assert!(!k2.contains(&k1[2]));
        assert!(!k1.contains(&k2[1]));
        assert_eq!(
            second.signing_secret,
            first.next_signing_secret.clone().unwrap()
        );
    }

    #[test]
    fn a_revocation_keeps_nothing_of_the_old_document() {
        let old = new_document(TokenAlg::ES256).unwrap();
        let old_kids = kid(&old);
        let new = revoked(TokenAlg::ES256, 5).unwrap();
        let kids = kid(&new);
        assert_eq!(kids.len(), 2, "current and next, no previous");
        assert!(kids.iter().all(|k| !old_kids.contains(k)));
        assert!(new.previous_signing_secret.is_none());
        assert_ne!(new.signing_secret, old.signing_secret);
    }

    #[test]
    fn without_alg_a_rotation_keeps_the_deployments_algorithm() {
        let es = new_document(TokenAlg::ES256).unwrap();
        assert_eq!(default_alg(&es).unwrap(), TokenAlg::ES256);
        let template = SigningSecret {
            signing_secret: "s".repeat(64),
            ..SigningSecret::default()
        };
        assert_eq!(default_alg(&template).unwrap(), TokenAlg::RS256);
    }

    #[test]
    fn switching_the_algorithm_makes_the_next_key_of_the_new_one() {
        let doc = new_document(TokenAlg::EdDSA).unwrap();
        let (after, _) = rotated(&doc, TokenAlg::ES256, 1).unwrap();
        let keys = SigningKeys::from_doc(&after).unwrap();
        assert_eq!(keys.active.alg, TokenAlg::EdDSA);
        assert_eq!(keys.next.as_ref().map(|k| k.alg), Some(TokenAlg::ES256));
    }
}
