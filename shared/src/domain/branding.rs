//! A hub's branding: the name, logo, accent colour and sender name its mail and hosted
//! page show, the reply-to address of its mail, its default language and plain-text
//! overrides of fixed texts (`i18n::validate_override`). Set with `contact-auth-admin
//! branding`; every value is validated here and escaped wherever it is shown. There are
//! no tenant-written templates.
//!
//! A team's own sender address (`contact-auth-admin sender`) is used only when it matches
//! one of the deployment's `TEAM_SENDER_ADDRESSES` patterns (the IAM grant allows exactly
//! those), else mail goes from the deployment's sender.

use super::i18n::{Locale, Overrides};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Branding {
    /// Shown instead of the hub's title in mail and on the hosted page.
    pub display_name: Option<String>,
    /// An https image URL shown at the top of mail and the hosted page.
    pub logo_url: Option<String>,
    /// `#rrggbb` (lowercase), the buttons' colour; white text on it must be legible.
    pub accent: Option<String>,
    /// The `From` display name (default: the display name, else the title).
    pub sender_name: Option<String>,
    /// A `Reply-To` address for the hub's mail.
    pub reply_to: Option<String>,
    pub default_locale: Option<Locale>,
    pub texts: Overrides,
}

/// A name shown to members: 1–80 characters once trimmed, no control characters.
pub fn validate_name(what: &str, raw: &str) -> Result<String, String> {
    let v = raw.trim();
    if v.is_empty() || v.chars().count() > 80 {
        return Err(format!("{what}: 1 to 80 characters"));
    }
    if v.chars().any(char::is_control) {
        return Err(format!("{what}: no control characters"));
    }
    Ok(v.to_string())
}

/// An absolute `https` URL with a host, without user info or fragment, at most 2048 bytes.
pub fn validate_logo_url(raw: &str) -> Result<String, String> {
    let v = raw.trim();
    let url = url::Url::parse(v).map_err(|e| format!("logo URL: {e}"))?;
    if url.scheme() != "https" {
        return Err("logo URL: https only".into());
    }
    if url.host_str().is_none_or(str::is_empty)
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err("logo URL: a host and no user info".into());
    }
    if url.fragment().is_some() {
        return Err("logo URL: no fragment".into());
    }
    let s = url.to_string();
    if s.len() > 2048 {
        return Err("logo URL: at most 2048 characters".into());
    }
    Ok(s)
}

/// `#rrggbb` (any case; stored lowercase) dark enough that white button text on it has a
/// contrast ratio of at least 4.5:1 (WCAG 2.2, 1.4.3).
pub fn validate_accent(raw: &str) -> Result<String, String> {
    let v = raw.trim();
    let hex = v
        .strip_prefix('#')
        .filter(|h| h.len() == 6 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or("accent: a colour as #rrggbb")?;
    let channel = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map(|c| f64::from(c) / 255.0);
    let lin = |c: f64| {
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let (r, g, b) = (
        channel(0).map_err(|_| "accent: #rrggbb")?,
        channel(2).map_err(|_| "accent: #rrggbb")?,
        channel(4).map_err(|_| "accent: #rrggbb")?,
    );
    let luminance = 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
    let contrast = 1.05 / (luminance + 0.05);
    if contrast < 4.5 {
        return Err(format!(
            "accent: white text on {v} has a contrast of {contrast:.2}:1; choose a darker colour (4.5:1 or more)"
        ));
    }
    Ok(v.to_ascii_lowercase())
}

/// A team's sender address is used only when one of the deployment's patterns
/// (`TEAM_SENDER_ADDRESSES`: `members@example.org` or `*@example.org`) matches it,
/// case-insensitively.
pub fn sender_allowed(address: &str, patterns: &[String]) -> bool {
    let a = address.to_ascii_lowercase();
    patterns.iter().any(|p| {
        let p = p.trim().to_ascii_lowercase();
        match p.strip_prefix("*@") {
            Some(domain) => a.rsplit_once('@').is_some_and(|(_, d)| d == domain),
            None => !p.is_empty() && a == p,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            validate_name("name", "  Akademie für Mitglieder ").unwrap(),
            "Akademie für Mitglieder"
        );
        assert!(validate_name("name", " ").is_err());
        assert!(validate_name("name", &"x".repeat(81)).is_err());
        assert!(validate_name("name", "A\r\nBcc: x").is_err());
    }

    #[test]
    fn logo_urls() {
        assert_eq!(
            validate_logo_url("https://cdn.example.org/logo.png").unwrap(),
            "https://cdn.example.org/logo.png"
        );
        for bad in [
            "http://cdn.example.org/logo.png",
            "javascript:alert(1)",
            "data:image/png;base64,AAAA",
            "https://user:pw@cdn.example.org/logo.png",
            "https://cdn.example.org/logo.png#x",
            "/logo.png",
        ] {
            assert!(validate_logo_url(bad).is_err(), "{bad}");
        }
        // Quotes and angle brackets cannot survive into the stored URL unescaped.
        let v = validate_logo_url("https://cdn.example.org/a\"b<c>.png").unwrap();
        assert!(!v.contains('"') && !v.contains('<'), "{v}");
    }

    #[test]
    fn accents_need_contrast_with_white() {
        assert_eq!(validate_accent("#2F5BEA").unwrap(), "#2f5bea");
        assert_eq!(validate_accent("#000000").unwrap(), "#000000");
        assert!(validate_accent("#ffff00").unwrap_err().contains("contrast"));
        // #767676 is the classic 4.54:1 grey; #777777 is 4.48:1.
        assert!(validate_accent("#767676").is_ok());
        assert!(validate_accent("#777777").is_err());
        for bad in ["2f5bea", "#2f5be", "#2f5bez", "red", "#2f5bea; x"] {
            assert!(validate_accent(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn team_senders_match_the_deployment_patterns() {
        let p = vec![
            "*@members.example.org".to_string(),
            "hello@example.com".to_string(),
        ];
        assert!(sender_allowed("Academy@Members.example.org", &p));
        assert!(sender_allowed("hello@example.com", &p));
        assert!(!sender_allowed("hello@evil.example.com", &p));
        assert!(!sender_allowed("x@sub.members.example.org", &p));
        assert!(!sender_allowed("x@members.example.org", &[]));
    }
}
