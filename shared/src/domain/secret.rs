//! Opaque secrets (magic tokens, refresh tokens): 32 random bytes from the OS,
//! base64url without padding; stored only as the hex SHA-256 of the raw value.
//!
//! Two types keep the two forms apart: a `RawToken` (what the member holds) has no
//! `Display`, a `Debug` that prints nothing of it, and no `Serialize`, so it cannot reach
//! a log line or a stored item by accident; the store takes only a `TokenHash`, made by
//! `RawToken::hash`. Passing a raw token where a hash is stored is a type error.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::errors::PortError;

/// A token as issued to a member (in a mail link or a token pair).
#[derive(Clone, PartialEq, Eq)]
pub struct RawToken(String);

impl std::fmt::Debug for RawToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawToken(<redacted>)")
    }
}

impl RawToken {
    /// A fresh random token (43 characters).
    pub fn generate() -> Result<RawToken, PortError> {
        let mut bytes = [0u8; 32];
        getrandom::getrandom(&mut bytes)
            .map_err(|_| PortError::Internal("OS random source failed".into()))?;
        Ok(RawToken(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// A token made from 32 bytes of a keyed hash (`code::link_secrets`).
    pub(crate) fn from_bytes(bytes: &[u8; 32]) -> RawToken {
        RawToken(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// A presented token, only if it has the shape we issue; anything else is rejected
    /// without a database read.
    pub fn parse(presented: &str) -> Option<RawToken> {
        looks_like_token(presented).then(|| RawToken(presented.to_string()))
    }

    /// The storage form.
    pub fn hash(&self) -> TokenHash {
        TokenHash(hex_sha256(self.0.as_bytes()))
    }

    /// The raw value, for the one place it goes: the member (a response body, a cookie,
    /// a mail link).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// The hex SHA-256 of a token: the only form the store reads or writes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(String);

impl TokenHash {
    /// A hash as read back from the store.
    pub fn from_stored(hex: String) -> TokenHash {
        TokenHash(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub fn hex_sha256(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Whether a presented token has the shape we issue.
pub fn looks_like_token(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A random id (UUID v4), for contacts, jobs and token families.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A random value for a page nonce (not a token: never stored).
pub fn new_nonce() -> Result<String, PortError> {
    Ok(RawToken::generate()?.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_well_formed() {
        let a = RawToken::generate().unwrap();
        let b = RawToken::generate().unwrap();
        assert_ne!(a, b);
        assert!(looks_like_token(a.expose()));
        assert!(RawToken::parse(a.expose()).is_some());
        assert!(RawToken::parse("short").is_none());
        assert!(RawToken::parse(&format!("{}=", &a.expose()[..42])).is_none());
        assert_eq!(format!("{a:?}"), "RawToken(<redacted>)");
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn hash_is_hex_sha256() {
        assert_eq!(
            RawToken("abc".into()).hash().as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn ids_are_uuids_and_nonces_are_token_shaped_and_fresh() {
        let (a, b) = (new_id(), new_id());
        assert_ne!(a, b);
        assert!(uuid::Uuid::parse_str(&a).is_ok(), "{a}");
        let (n1, n2) = (new_nonce().unwrap(), new_nonce().unwrap());
        assert_ne!(n1, n2);
        assert!(looks_like_token(&n1), "{n1}");
    }
}
