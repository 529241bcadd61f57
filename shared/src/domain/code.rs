//! Sign-in codes (v1.1) and same-device binding (PKCE, RFC 7636 `S256`).
//!
//! A register or sign-in mail carries a link and a 6-digit code; both belong to one
//! magic-link item. The mailer derives the link's token and code from the job id with
//! the deployment's link key (HMAC-SHA-256), so a retried job resends the same link and
//! code instead of superseding the mail it already sent. The code is stored only as a
//! keyed hash bound to its link (`code_hash`): a copy of the table is no dictionary for
//! a million codes without the key. Checks compare in constant time (`hmac`'s
//! `verify_slice`), always against every key of the set, so the work is the same
//! whether or not a link exists.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::secret::{RawToken, TokenHash};

type HmacSha256 = Hmac<Sha256>;

/// Wrong codes a link takes before its code is dead (the link itself keeps working).
pub const MAX_CODE_ATTEMPTS: u32 = 5;

/// A key the mailer and `magic/consume` share (derived from the signing secret, see
/// `jwt::KeySet::link`). Never shown.
#[derive(Clone)]
pub struct LinkKey([u8; 32]);

impl std::fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkKey(<redacted>)")
    }
}

impl LinkKey {
    /// HMAC-SHA-256 of a label under a high-entropy secret: one key per purpose.
    pub fn derive(secret: &str) -> LinkKey {
        LinkKey(mac(secret.as_bytes(), &[b"contact-auth link key v1"]))
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        mac(&self.0, parts)
    }

    /// A public name for the key (16 hex digits of a MAC under it): stored on every link
    /// the key made, so a link stops working once its key has left the signing document.
    pub fn id(&self) -> String {
        self.mac(&[b"link key id"])[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// A key no item has, for the reads and writes that keep the work equal when there is no
/// contact or no link: derived from the email under the link key, so the placeholders
/// spread over the table's keyspace (one shared placeholder item would take the whole
/// platform's misses on one partition) and nobody outside can aim at one. `none-` + 32 hex
/// digits: never a token hash (64 hex digits) or a contact id.
pub fn placeholder(
    key: &LinkKey,
    what: &str,
    email_key: &crate::domain::email::EmailKey,
) -> String {
    let m = key.mac(&[
        b"placeholder",
        what.as_bytes(),
        email_key.as_str().as_bytes(),
    ]);
    let hex: String = m[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("none-{hex}")
}

/// HMAC over length-prefixed parts (so no two part lists give the same input).
fn hmac_of(key: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it; the fallback
    // keeps this total without a panic.
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| <HmacSha256 as KeyInit>::new(&Default::default()));
    for p in parts {
        m.update(&(p.len() as u64).to_be_bytes());
        m.update(p);
    }
    m
}

fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    hmac_of(key, parts).finalize().into_bytes().into()
}

/// The active key signs new links; a previous one (after a rotation) still verifies
/// the codes of links made before it.
#[derive(Debug, Clone)]
pub struct LinkKeys {
    pub active: LinkKey,
    pub previous: Option<LinkKey>,
    /// The next slot's: a mailer that has read a rotation before this function makes codes
    /// with it (README "Key rotation").
    pub next: Option<LinkKey>,
}

impl LinkKeys {
    /// Whether a link made under the key named `id` may still be used: its key is one of
    /// the document's (current, next or previous). After `rotate-key --revoke` only the
    /// new keys are; after a plain rotation the old current key stays as previous until
    /// the next rotation. A link without a key id was stored before links carried one
    /// (at most one undo lifetime, 7 days, before this version): accepted until it expires.
    pub fn knows(&self, id: Option<&str>) -> bool {
        let Some(id) = id else { return true };
        std::iter::once(&self.active)
            .chain(self.previous.as_ref())
            .chain(self.next.as_ref())
            .any(|k| k.id() == id)
    }
}

/// A sign-in code: six ASCII digits. Its `Debug` never shows them.
#[derive(Clone, PartialEq, Eq)]
pub struct SignInCode(String);

impl std::fmt::Debug for SignInCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignInCode(<redacted>)")
    }
}

impl SignInCode {
    /// A code as typed: six digits, with spaces or hyphens anywhere ("123 456",
    /// "123-456"); anything else is not a code.
    pub fn parse(raw: &str) -> Option<SignInCode> {
        let digits: String = raw.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        (digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit()))
            .then_some(SignInCode(digits))
    }

    /// The six digits (for the mail; never logged).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// As a mail shows it: `123 456`.
    pub fn display(&self) -> String {
        format!("{} {}", &self.0[..3], &self.0[3..])
    }
}

/// The token and code of the link a mail job sends: the same for every attempt at the
/// job, different for every job.
pub fn link_secrets(key: &LinkKey, job_id: &str) -> (RawToken, SignInCode) {
    let token = RawToken::from_bytes(&key.mac(&[b"token", job_id.as_bytes()]));
    let c = key.mac(&[b"code", job_id.as_bytes()]);
    let n = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) % 1_000_000;
    (token, SignInCode(format!("{n:06}")))
}

/// The keyed hash of a link's code: HMAC of the link's token hash and the code.
fn code_mac(key: &LinkKey, token_hash: &TokenHash, code: &SignInCode) -> HmacSha256 {
    hmac_of(
        &key.0,
        &[
            b"code-hash",
            token_hash.as_str().as_bytes(),
            code.0.as_bytes(),
        ],
    )
}

/// What the link item stores for its code: the base64url `code_mac`.
pub fn code_hash(key: &LinkKey, token_hash: &TokenHash, code: &SignInCode) -> String {
    URL_SAFE_NO_PAD.encode(code_mac(key, token_hash, code).finalize().into_bytes())
}

/// A stored value no code matches: the comparison when there is no link to compare with.
pub const NO_CODE_HASH: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

thread_local! {
    static CODE_COMPARISONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many constant-time code comparisons ran on this thread (tests: a code for an
/// email without a link costs the same comparisons as a wrong code for a real one).
pub fn code_comparisons_on_this_thread() -> u64 {
    CODE_COMPARISONS.with(|n| n.get())
}

/// Whether `code` is the one `stored` was made from, under any key of the set. Every
/// key is tried (no early return), each comparison in constant time.
pub fn code_matches(
    keys: &LinkKeys,
    token_hash: &TokenHash,
    code: &SignInCode,
    stored: &str,
) -> bool {
    let stored = URL_SAFE_NO_PAD.decode(stored).unwrap_or_default();
    let mut any = false;
    for key in std::iter::once(&keys.active)
        .chain(keys.previous.as_ref())
        .chain(keys.next.as_ref())
    {
        CODE_COMPARISONS.with(|n| n.set(n.get() + 1));
        any |= code_mac(key, token_hash, code)
            .verify_slice(&stored)
            .is_ok();
    }
    any
}

/// A PKCE `code_challenge`: 43 base64url characters (a SHA-256).
pub fn parse_challenge(raw: &str) -> Option<String> {
    (raw.len() == 43
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    .then(|| raw.to_string())
}

/// A PKCE `code_verifier`: 43–128 characters of `[A-Za-z0-9-._~]` (RFC 7636 §4.1).
#[derive(Clone, PartialEq, Eq)]
pub struct CodeVerifier(String);

impl std::fmt::Debug for CodeVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeVerifier(<redacted>)")
    }
}

impl CodeVerifier {
    pub fn parse(raw: &str) -> Option<CodeVerifier> {
        ((43..=128).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')))
        .then(|| CodeVerifier(raw.to_string()))
    }
}

/// Whether a link bound to `challenge` may be used with `verifier`: an unbound link
/// takes any (or none); a bound one only the verifier whose S256 is the challenge,
/// compared in constant time.
pub fn binding_satisfied(challenge: Option<&str>, verifier: Option<&CodeVerifier>) -> bool {
    let Some(challenge) = challenge else {
        return true;
    };
    let Some(v) = verifier else {
        return false;
    };
    let s256 = URL_SAFE_NO_PAD.encode(Sha256::digest(v.0.as_bytes()));
    // `ct_eq` on slices of different lengths is false (their lengths are not secret).
    s256.as_bytes().ct_eq(challenge.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_spread_by_email_and_never_look_like_real_keys() {
        let key = LinkKey::derive("secret one");
        let a = crate::domain::email::EmailKey::from_stored("a@example.com".into());
        let b = crate::domain::email::EmailKey::from_stored("b@example.com".into());
        let pa = placeholder(&key, "contact", &a);
        assert_eq!(pa, placeholder(&key, "contact", &a));
        assert_ne!(pa, placeholder(&key, "contact", &b));
        assert_ne!(pa, placeholder(&key, "link", &a));
        assert_ne!(
            pa,
            placeholder(&LinkKey::derive("secret two"), "contact", &a)
        );
        assert!(
            pa.starts_with("none-") && pa.len() == 37 && !pa.contains("example"),
            "{pa}"
        );
    }

    fn keys() -> LinkKeys {
        LinkKeys {
            active: LinkKey::derive("active-secret-active-secret-0123"),
            previous: None,
            next: None,
        }
    }

    #[test]
    fn a_link_works_while_its_key_is_in_the_document() {
        let a = LinkKey::derive("active-secret-active-secret-0123");
        let b = LinkKey::derive("next-secret-next-secret-01234567");
        let c = LinkKey::derive("third-secret-third-secret-012345");
        assert_eq!(a.id().len(), 16);
        assert_eq!(
            a.id(),
            LinkKey::derive("active-secret-active-secret-0123").id()
        );
        assert_ne!(a.id(), b.id());
        // The key id reveals nothing usable: it is not the key's bytes.
        assert!(!a.id().contains(&format!("{:02x}{:02x}", a.0[0], a.0[1])));
        let doc = LinkKeys {
            active: b.clone(),
            previous: Some(a.clone()),
            next: Some(c.clone()),
        };
        for k in [&a, &b, &c] {
            assert!(doc.knows(Some(&k.id())));
        }
        // After a revoke (new current and next, no previous) the old keys' links die.
        let revoked = LinkKeys {
            active: c.clone(),
            previous: None,
            next: Some(LinkKey::derive("fourth-secret-fourth-secret-0123")),
        };
        assert!(!revoked.knows(Some(&a.id())));
        assert!(!revoked.knows(Some(&b.id())));
        assert!(revoked.knows(Some(&c.id())));
        assert!(doc.knows(None), "a link stored before key ids");
        assert!(!doc.knows(Some("")));
    }

    #[test]
    fn codes_parse_as_typed_and_show_grouped() {
        for typed in ["123456", "123 456", "123-456", " 123456 ", "1 2 3 4 5 6"] {
            assert_eq!(
                SignInCode::parse(typed).unwrap().expose(),
                "123456",
                "{typed:?}"
            );
        }
        for bad in [
            "12345",
            "1234567",
            "12345a",
            "",
            "１２３４５６",
            "123_456",
            "123.456",
        ] {
            assert!(SignInCode::parse(bad).is_none(), "{bad:?}");
        }
        let c = SignInCode::parse("012345").unwrap();
        assert_eq!(c.display(), "012 345");
        assert_eq!(format!("{c:?}"), "SignInCode(<redacted>)");
    }

    #[test]
    fn a_job_always_gets_the_same_token_and_code_and_another_job_others() {
        let k = keys();
        let (t1, c1) = link_secrets(&k.active, "job-1/sign-in");
        let (t2, c2) = link_secrets(&k.active, "job-1/sign-in");
        assert_eq!((t1.expose(), c1.expose()), (t2.expose(), c2.expose()));
        assert!(crate::domain::secret::looks_like_token(t1.expose()));
        assert_eq!(c1.expose().len(), 6);
        let (t3, _) = link_secrets(&k.active, "job-2/sign-in");
        assert_ne!(t1, t3);
        let other = LinkKey::derive("another-secret-another-secret-01");
        assert_ne!(link_secrets(&other, "job-1/sign-in").0, t1);
        // Codes spread over all six digits (no fixed prefix, leading zeros kept).
        let firsts: std::collections::HashSet<char> = (0..200)
            .map(|i| {
                link_secrets(&k.active, &format!("j{i}"))
                    .1
                     .0
                    .chars()
                    .next()
                    .unwrap()
            })
            .collect();
        assert_eq!(firsts.len(), 10);
    }

    #[test]
    fn a_code_matches_only_its_own_link_under_a_known_key() {
        let k = keys();
        let (token, code) = link_secrets(&k.active, "job-1/sign-in");
        let hash = token.hash();
        let stored = code_hash(&k.active, &hash, &code);
        assert!(code_matches(&k, &hash, &code, &stored));
        let wrong = SignInCode::parse(if code.expose() == "000000" {
            "000001"
        } else {
            "000000"
        })
        .unwrap();
        assert!(!code_matches(&k, &hash, &wrong, &stored));
        let (other_token, _) = link_secrets(&k.active, "job-2/sign-in");
        assert!(!code_matches(&k, &other_token.hash(), &code, &stored));
        assert!(!code_matches(&k, &hash, &code, NO_CODE_HASH));
        assert!(!code_matches(&k, &hash, &code, "not base64 !"));
        // After a rotation the previous key still verifies codes it made; a key the
        // set does not know does not.
        let rotated = LinkKeys {
            active: LinkKey::derive("next-secret-next-secret-01234567"),
            previous: Some(k.active.clone()),
            next: None,
        };
        assert!(code_matches(&rotated, &hash, &code, &stored));
        let unknown = LinkKeys {
            active: LinkKey::derive("next-secret-next-secret-01234567"),
            previous: None,
            next: None,
        };
        assert!(!code_matches(&unknown, &hash, &code, &stored));
        // A function a rotation behind the mailer: the mailer's new current key is this
        // function's next one.
        let behind = LinkKeys {
            active: LinkKey::derive("old-secret-old-secret-0123456789"),
            previous: None,
            next: Some(k.active.clone()),
        };
        assert!(code_matches(&behind, &hash, &code, &stored));
    }

    #[test]
    fn every_key_is_compared_whatever_the_outcome() {
        let rotated = LinkKeys {
            active: LinkKey::derive("next-secret-next-secret-01234567"),
            previous: Some(LinkKey::derive("active-secret-active-secret-0123")),
            next: None,
        };
        let hash = TokenHash::from_stored("h".into());
        let code = SignInCode::parse("123456").unwrap();
        let stored = code_hash(&rotated.active, &hash, &code);
        let before = code_comparisons_on_this_thread();
        code_matches(&rotated, &hash, &code, &stored);
        assert_eq!(code_comparisons_on_this_thread(), before + 2, "a match");
        code_matches(&rotated, &hash, &code, NO_CODE_HASH);
        assert_eq!(code_comparisons_on_this_thread(), before + 4, "no link");
        code_matches(&keys(), &hash, &code, NO_CODE_HASH);
        assert_eq!(code_comparisons_on_this_thread(), before + 5, "one key");
    }

    #[test]
    fn pkce_s256_binding() {
        // RFC 7636 appendix B.
        let verifier = CodeVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").unwrap();
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(parse_challenge(challenge).as_deref(), Some(challenge));
        assert!(binding_satisfied(Some(challenge), Some(&verifier)));
        let other = CodeVerifier::parse(&"a".repeat(43)).unwrap();
        assert!(!binding_satisfied(Some(challenge), Some(&other)));
        assert!(!binding_satisfied(Some(challenge), None));
        assert!(!binding_satisfied(Some("short"), Some(&verifier)));
        // An unbound link takes any verifier, or none.
        assert!(binding_satisfied(None, Some(&other)));
        assert!(binding_satisfied(None, None));
        for bad in [
            "",
            "x",
            &"a".repeat(42),
            &"a".repeat(44),
            &format!("{}=", "a".repeat(42)),
        ] {
            assert!(parse_challenge(bad).is_none(), "{bad:?}");
        }
        assert!(parse_challenge(&format!("{}+", "a".repeat(42))).is_none());
        assert!(CodeVerifier::parse(&"a".repeat(42)).is_none());
        assert!(CodeVerifier::parse(&"a".repeat(129)).is_none());
        assert!(CodeVerifier::parse(&"~._-".repeat(32)).is_some());
        assert!(CodeVerifier::parse(&format!("{} ", "a".repeat(43))).is_none());
        assert_eq!(format!("{verifier:?}"), "CodeVerifier(<redacted>)");
    }
}
