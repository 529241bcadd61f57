//! Passwords: argon2id via the `argon2` crate (PHC strings), the policy, and the
//! common-password list of the `passwords` crate (99,838 entries), embedded as an FST set
//! (`fst` crate): exact, about a third of the list's size, looked up without decoding.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::domain::email::EmailKey;
use crate::errors::ErrorCode;

/// OWASP's minimum for argon2id: 19 MiB, 2 iterations, 1 lane.
pub const M_COST_KIB: u32 = 19_456;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;
pub const MIN_CHARS: usize = 8;
pub const MAX_CHARS: usize = 256;

/// A well-formed argon2id hash with today's parameters that no known password matches:
/// verifying against it costs what a real verification costs (unknown email, no
/// password set), so failures take the same time.
pub const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$bm90LWEtcmVhbC1zYWx0$0vqg1q7dB1+XW3rj9UU0qV0p8pbd0aJk3B2p7GQ3Y0M";

fn hasher() -> Argon2<'static> {
    // The parameters are constants within argon2's bounds; fall back to its defaults
    // (which are the same OWASP values) rather than panic.
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The common-password list (see the module comment; `testkit/tests/password_list.rs`
/// checks the file is exactly the `passwords` crate's list).
static COMMON_PASSWORDS: &[u8] = include_bytes!("../../data/common-passwords.fst");

/// Whether `password` is on the common-password list. A file that is not an FST set
/// (never: it is checked in the tests) counts every password as common, so the policy
/// fails closed.
pub fn is_common(password: &str) -> bool {
    match fst::Set::new(COMMON_PASSWORDS) {
        Ok(set) => set.contains(password),
        Err(_) => true,
    }
}

/// The policy for a new password. `email_key` is the contact's identity key.
pub fn check_policy(password: &str, email_key: &EmailKey) -> Result<(), ErrorCode> {
    let email_key = email_key.as_str();
    let chars = password.chars().count();
    if chars < MIN_CHARS {
        return Err(ErrorCode::PasswordTooShort);
    }
    if chars > MAX_CHARS {
        return Err(ErrorCode::PasswordTooLong);
    }
    let lower = password.to_lowercase();
    if is_common(password) || is_common(&lower) {
        return Err(ErrorCode::PasswordTooCommon);
    }
    let local = email_key.split('@').next().unwrap_or("");
    if lower.contains(email_key) || (local.chars().count() >= 3 && lower == local) {
        return Err(ErrorCode::PasswordContainsEmail);
    }
    Ok(())
}

pub fn hash(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(|_| "OS random source failed".to_string())?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

thread_local! {
    static ARGON2_VERIFICATIONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many argon2 verifications ran on this thread (tests: every login does exactly one,
/// with the dummy hash when there is no real one, so the work does not tell them apart).
pub fn argon2_verifications_on_this_thread() -> u64 {
    ARGON2_VERIFICATIONS.with(|n| n.get())
}

/// Constant work whatever the stored value: an unparsable hash verifies against the
/// dummy hash and fails.
pub fn verify(stored: Option<&str>, password: &str) -> bool {
    let real = stored.and_then(|s| PasswordHash::new(s).ok());
    let parsed = match &real {
        Some(p) => p.clone(),
        None => match PasswordHash::new(DUMMY_HASH) {
            Ok(p) => p,
            Err(_) => return false,
        },
    };
    ARGON2_VERIFICATIONS.with(|n| n.set(n.get() + 1));
    let ok = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    ok && real.is_some()
}

/// Whether a stored hash uses weaker parameters (or another algorithm) than today's.
pub fn needs_rehash(stored: &str) -> bool {
    let Ok(h) = PasswordHash::new(stored) else {
        return true;
    };
    if h.algorithm.as_str() != "argon2id" {
        return true;
    }
    let get = |k: &str| h.params.get_decimal(k).unwrap_or(0);
    get("m") < M_COST_KIB || get("t") < T_COST || get("p") < P_COST
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_phc_with_owasp_parameters_and_verify() {
        let h = hash("correct horse battery staple").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify(Some(&h), "correct horse battery staple"));
        assert!(!verify(Some(&h), "correct horse battery stapl"));
        assert!(!needs_rehash(&h));
        assert_ne!(h, hash("correct horse battery staple").unwrap(), "salted");
    }

    #[test]
    fn the_dummy_hash_parses_and_never_verifies() {
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
        assert!(!needs_rehash(DUMMY_HASH));
        assert!(!verify(None, "anything"));
        assert!(!verify(Some("not a phc string"), "anything"));
    }

    #[test]
    fn weaker_parameters_need_a_rehash() {
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(4096, 1, 1, None).unwrap(),
        );
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let h = weak
            .hash_password(b"pw-pw-pw-pw", &salt)
            .unwrap()
            .to_string();
        assert!(needs_rehash(&h));
        assert!(verify(Some(&h), "pw-pw-pw-pw"), "old hashes still verify");
    }

    #[test]
    fn policy() {
        let email = &crate::domain::email::parse_email("member@example.com")
            .unwrap()
            .key;
        // The embedded list: exact entries (case as listed), nothing else.
        assert!(is_common("password123") && is_common("qwerty") && is_common("!QAZ1qaz"));
        assert!(!is_common("violet-kettle-harbour-42") && !is_common(""));
        assert_eq!(
            check_policy("short", email),
            Err(ErrorCode::PasswordTooShort)
        );
        assert_eq!(
            check_policy(&"x".repeat(257), email),
            Err(ErrorCode::PasswordTooLong)
        );
        assert_eq!(
            check_policy("password", email),
            Err(ErrorCode::PasswordTooCommon)
        );
        assert_eq!(
            check_policy("12345678", email),
            Err(ErrorCode::PasswordTooCommon)
        );
        assert_eq!(
            check_policy("Password1", email),
            Err(ErrorCode::PasswordTooCommon)
        );
        assert_eq!(
            check_policy("Member@Example.com", email),
            Err(ErrorCode::PasswordContainsEmail)
        );
        assert_eq!(
            check_policy("member@example.com!", email),
            Err(ErrorCode::PasswordContainsEmail)
        );
        assert!(check_policy("correct horse battery staple", email).is_ok());
        // Length counts characters, not bytes.
        assert!(check_policy("éüöäßçñø", email).is_ok());
        assert_eq!(
            check_policy("éüöäßçñ", email),
            Err(ErrorCode::PasswordTooShort)
        );
        assert!(
            check_policy(&"ü7".repeat(128), email).is_ok(),
            "256 characters is allowed"
        );
    }

    /// A PHC string with the dummy hash's salt and output and the given parameters
    /// (`needs_rehash` reads only the parameters).
    fn phc(alg: &str, m: u32, t: u32, p: u32) -> String {
        let tail = DUMMY_HASH.rsplitn(3, '$').take(2).collect::<Vec<_>>();
        format!("${alg}$v=19$m={m},t={t},p={p}${}${}", tail[1], tail[0])
    }

    #[test]
    fn a_rehash_is_needed_when_any_parameter_is_weaker_or_the_variant_differs() {
        assert_eq!(phc("argon2id", 19456, 2, 1), DUMMY_HASH);
        for (alg, m, t, p, weaker) in [
            ("argon2id", 19456, 2, 1, false),
            ("argon2id", 65536, 3, 4, false),
            ("argon2id", 65536, 2, 1, false),
            ("argon2id", 19456, 3, 1, false),
            ("argon2id", 19456, 2, 2, false),
            ("argon2id", 19455, 2, 1, true),
            ("argon2id", 4096, 3, 2, true),
            ("argon2id", 19456, 1, 1, true),
            ("argon2id", 65536, 1, 4, true),
            ("argon2i", 19456, 2, 1, true),
            ("argon2d", 65536, 3, 1, true),
        ] {
            assert_eq!(
                needs_rehash(&phc(alg, m, t, p)),
                weaker,
                "{alg} m={m} t={t} p={p}"
            );
        }
        assert!(needs_rehash("not a phc string"));
    }

    #[test]
    fn each_verification_is_counted_once_on_its_thread() {
        let before = argon2_verifications_on_this_thread();
        verify(None, "x");
        assert_eq!(argon2_verifications_on_this_thread(), before + 1);
        verify(Some(DUMMY_HASH), "y");
        verify(Some("garbage"), "z");
        assert_eq!(argon2_verifications_on_this_thread(), before + 3);
        let other = std::thread::spawn(argon2_verifications_on_this_thread)
            .join()
            .unwrap();
        assert_eq!(other, 0);
    }

    #[test]
    fn common_passwords_match_in_any_case_and_a_long_local_part_alone_is_refused() {
        let email = &crate::domain::email::parse_email("membermember@example.com")
            .unwrap()
            .key;
        // Not on the list as typed, but its lowercase form is.
        assert!(!is_common("PaSsWoRd123") && is_common("password123"));
        assert_eq!(
            check_policy("PaSsWoRd123", email),
            Err(ErrorCode::PasswordTooCommon)
        );
        // On the list as typed (mixed case), while its lowercase form is not.
        let listed = "!QAZ1qaz";
        assert!(is_common(listed));
        if !is_common(&listed.to_lowercase()) {
            assert_eq!(
                check_policy(listed, email),
                Err(ErrorCode::PasswordTooCommon)
            );
        }
        assert_eq!(
            check_policy("MemberMember", email),
            Err(ErrorCode::PasswordContainsEmail)
        );
        assert!(check_policy("membermember-kettle", email).is_ok());
    }
}
