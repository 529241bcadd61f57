//! Email addresses: validation as the contract states it, and the identity key.
//!
//! What SES can deliver: a local part of printable ASCII without RFC 5322 specials or
//! whitespace (SES has no SMTPUTF8), and a domain that may be internationalised — it is
//! converted to its ASCII (IDNA / punycode) form by the `idna` crate (UTS #46, which
//! also applies the Unicode mapping). The address mail goes to and the identity key both
//! use that ASCII domain, so `a@exämple.com` and `a@xn--exmple-cua.com` are one identity.

use unicode_normalization::UnicodeNormalization;

/// A validated address: `display` is the address to send to and show (local part as
/// typed, domain in ASCII form); `key` is the identity key used for uniqueness and
/// lookups (lowercase local part + lowercase ASCII domain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub display: String,
    pub key: EmailKey,
}

/// The identity key of an address: what uniqueness, the email index and the per-email
/// rate scopes use. Made by `parse_email` (or read back from the store), so an address as
/// typed cannot stand in for a key by mistake; its `Debug` prints nothing of the address
/// (personal data stays out of logs), and it has no `Display`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EmailKey(String);

impl std::fmt::Debug for EmailKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EmailKey(<redacted>)")
    }
}

impl EmailKey {
    /// A key as read back from the store (it was made by `parse_email` when written).
    pub fn from_stored(key: String) -> EmailKey {
        EmailKey(key)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailError {
    Empty,
    TooLong,
    Invalid,
    /// The local part has a character SES cannot deliver (non-ASCII or an RFC 5322 special).
    LocalPart,
}

impl EmailError {
    pub fn detail(self) -> &'static str {
        match self {
            EmailError::Empty => "email is required.",
            EmailError::TooLong => "email must be at most 254 characters.",
            EmailError::Invalid => "email is not a valid email address.",
            EmailError::LocalPart => {
                "The part of email before the @ may only contain ASCII letters, digits and !#$%&'*+/=?^_`{|}~.-"
            }
        }
    }
}

pub const MAX_EMAIL_CHARS: usize = 254;

/// RFC 5322 `atext` plus the dot: what a dot-atom local part may contain.
fn local_char_ok(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~.-".contains(&b)
}

pub fn parse_email(raw: &str) -> Result<Email, EmailError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(EmailError::Empty);
    }
    if trimmed.chars().count() > MAX_EMAIL_CHARS {
        return Err(EmailError::TooLong);
    }
    if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(EmailError::Invalid);
    }
    let mut parts = trimmed.split('@');
    let (local, domain) = match (parts.next(), parts.next(), parts.next()) {
        (Some(l), Some(d), None) => (l, d),
        _ => return Err(EmailError::Invalid),
    };
    if local.is_empty() || domain.is_empty() || local.len() > 64 {
        return Err(EmailError::Invalid);
    }
    if !local.bytes().all(local_char_ok) {
        return Err(EmailError::LocalPart);
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(EmailError::Invalid);
    }
    // Unicode normalisation first (NFKC), then UTS #46 to ASCII; a domain that cannot
    // be converted is invalid. The ASCII form must still look like a mail domain.
    let nfkc: String = domain.nfkc().collect();
    let ascii = idna::domain_to_ascii(&nfkc).map_err(|_| EmailError::Invalid)?;
    let labels_ok = ascii.contains('.')
        && ascii.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    // (A domain over DNS's 253 characters cannot pass the 254-character limit below.)
    if !labels_ok {
        return Err(EmailError::Invalid);
    }
    let display = format!("{local}@{ascii}");
    if display.len() > MAX_EMAIL_CHARS {
        return Err(EmailError::TooLong);
    }
    Ok(Email {
        key: EmailKey(display.to_ascii_lowercase()),
        display,
    })
}

/// A log-safe rendering: first character of the local part and the domain.
pub fn redact(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_keys_by_lowercase() {
        let e = parse_email("  Member@Example.COM ").unwrap();
        assert_eq!(e.display, "Member@example.com");
        assert_eq!(e.key.as_str(), "member@example.com");
        // The key never prints the address (Debug of a contact, a job, a link).
        assert_eq!(format!("{:?}", e.key), "EmailKey(<redacted>)");
    }

    #[test]
    fn internationalised_domains_are_one_identity_in_ascii_form() {
        let u = parse_email("a@exämple.com").unwrap();
        let p = parse_email("a@xn--exmple-cua.com").unwrap();
        assert_eq!(u.key.as_str(), "a@xn--exmple-cua.com");
        assert_eq!(u.key, p.key);
        // Mail goes to the ASCII form (what SES accepts).
        assert_eq!(u.display, "a@xn--exmple-cua.com");
        // Unicode case and compatibility forms map to the same domain.
        assert_eq!(parse_email("a@EXÄMPLE.com").unwrap().key, u.key);
        assert_eq!(parse_email("a@ｅxämple.com").unwrap().key, u.key);
    }

    #[test]
    fn local_parts_ses_cannot_deliver_are_refused() {
        for bad in [
            "ｍember@example.com",
            "jörg@example.com",
            "<x@example.com>",
            "a(b)@example.com",
            "a,b@example.com",
            "a;b@example.com",
            "a:b@example.com",
            "a[b]@example.com",
            "a\\b@example.com",
            "\"ab\"@example.com",
        ] {
            assert_eq!(parse_email(bad), Err(EmailError::LocalPart), "{bad}");
        }
        for bad in [".a@example.com", "a.@example.com", "a..b@example.com"] {
            assert_eq!(parse_email(bad), Err(EmailError::Invalid), "{bad}");
        }
        assert!(parse_email("o'brien+tag@example.com").is_ok());
        assert!(parse_email("a@-x.com").is_err());
        assert!(parse_email("a@x_y.com").is_err());
    }

    #[test]
    fn rejects_what_the_contract_rejects() {
        for bad in [
            "",
            "   ",
            "no-at.example.com",
            "two@@example.com",
            "a@b@example.com",
            "@example.com",
            "member@",
            "member@localhost",
            "member@example.",
            "member@.example.com",
            "mem ber@example.com",
            "member@exa\tmple.com",
            "member@exam\u{0}ple.com",
            "member\u{FE6B}x@example.com",
            "member@exa\u{FE6B}mple.com",
        ] {
            assert!(parse_email(bad).is_err(), "accepted {bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(243));
        assert_eq!(long.len(), 255);
        assert_eq!(parse_email(&long), Err(EmailError::TooLong));
        // 254 characters: a 64-character local part (the SMTP limit) and a long domain.
        let ok = format!(
            "{}@{}.{}.{}",
            "a".repeat(64),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(61)
        );
        assert_eq!(ok.len(), 254);
        assert!(parse_email(&ok).is_ok());
        assert!(parse_email(&format!("{}@example.com", "a".repeat(65))).is_err());
    }

    #[test]
    fn redaction_hides_the_local_part() {
        assert_eq!(redact("member@example.com"), "m***@example.com");
        assert_eq!(redact("nonsense"), "***");
    }

    #[test]
    fn whitespace_and_control_characters_are_invalid_not_a_local_part_error() {
        for bad in [
            "mem ber@example.com",
            "mem\u{1}ber@example.com",
            "a\u{7f}b@example.com",
        ] {
            assert_eq!(parse_email(bad), Err(EmailError::Invalid), "{bad:?}");
        }
    }

    #[test]
    fn the_254_character_limit_applies_to_the_ascii_form() {
        let local = "l".repeat(64);
        let domain = format!(
            "{}.{}.{}.com",
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(57)
        );
        let exact = format!("{local}@{domain}");
        assert_eq!(exact.len(), 254);
        assert_eq!(parse_email(&exact).unwrap().display, exact);
        // 242 characters as typed, 260 once the domain is in punycode (each label of 57
        // "ä" is 63 ASCII characters).
        let label = "ä".repeat(57);
        let unicode = format!("{local}@{label}.{label}.{label}.com");
        assert!(unicode.chars().count() <= 254);
        assert_eq!(parse_email(&unicode), Err(EmailError::TooLong));
    }

    #[test]
    fn every_error_has_its_own_detail() {
        let all = [
            EmailError::Empty,
            EmailError::TooLong,
            EmailError::Invalid,
            EmailError::LocalPart,
        ];
        let details: std::collections::HashSet<_> = all.iter().map(|e| e.detail()).collect();
        assert_eq!(details.len(), all.len());
        assert_eq!(EmailError::Empty.detail(), "email is required.");
        assert!(EmailError::TooLong.detail().contains("254"));
        assert!(EmailError::Invalid.detail().contains("not a valid email"));
        assert!(EmailError::LocalPart.detail().contains("before the @"));
    }
}
