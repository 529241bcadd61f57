//! Email addresses: validation as the contract states it, and the identity key
//! (Unicode NFKC, then lowercase, via the `unicode-normalization` crate).

use unicode_normalization::UnicodeNormalization;

/// A validated address: `display` is the address as typed (trimmed), used for sending
/// and showing; `key` is the identity key used for uniqueness and lookups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub display: String,
    pub key: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailError {
    Empty,
    TooLong,
    Invalid,
}

impl EmailError {
    pub fn detail(self) -> &'static str {
        match self {
            EmailError::Empty => "email is required.",
            EmailError::TooLong => "email must be at most 254 characters.",
            EmailError::Invalid => "email is not a valid email address.",
        }
    }
}

pub const MAX_EMAIL_CHARS: usize = 254;

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
    if local.is_empty() || domain.is_empty() {
        return Err(EmailError::Invalid);
    }
    // The domain needs a dot with something on both sides of every label.
    if !domain.contains('.') || domain.split('.').any(|label| label.is_empty()) {
        return Err(EmailError::Invalid);
    }
    let key: String = trimmed.nfkc().collect::<String>().to_lowercase();
    // NFKC can fold characters into '@' or whitespace (e.g. U+FE6B SMALL COMMERCIAL AT).
    if key.matches('@').count() != 1 || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(EmailError::Invalid);
    }
    Ok(Email {
        display: trimmed.to_string(),
        key,
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
    fn trims_and_keys_by_nfkc_lowercase() {
        let e = parse_email("  Member@Example.COM ").unwrap();
        assert_eq!(e.display, "Member@Example.COM");
        assert_eq!(e.key, "member@example.com");
        // Fullwidth letters fold to ASCII under NFKC.
        let f = parse_email("ｍember@example.com").unwrap();
        assert_eq!(f.key, "member@example.com");
        assert_eq!(f.display, "ｍember@example.com");
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
        ] {
            assert!(parse_email(bad).is_err(), "accepted {bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(243));
        assert_eq!(long.len(), 255);
        assert_eq!(parse_email(&long), Err(EmailError::TooLong));
        let ok = format!("{}@example.com", "a".repeat(242));
        assert!(parse_email(&ok).is_ok());
    }

    #[test]
    fn redaction_hides_the_local_part() {
        assert_eq!(redact("member@example.com"), "m***@example.com");
        assert_eq!(redact("nonsense"), "***");
    }
}
