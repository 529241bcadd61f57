//! Redirect URLs and their origins (the `url` crate does the parsing and the
//! default-port elision). Origins are compared exactly: no prefix or suffix matching.

use url::Url;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectError {
    Invalid,
    NotAbsolute,
    Scheme,
    UserInfo,
    Fragment,
    TooLong,
}

impl RedirectError {
    pub fn detail(self) -> &'static str {
        match self {
            RedirectError::Invalid | RedirectError::NotAbsolute => {
                "redirect_url must be an absolute URL."
            }
            RedirectError::Scheme => {
                "redirect_url must use https (http only for localhost or 127.0.0.1)."
            }
            RedirectError::UserInfo => "redirect_url must not contain a user name or password.",
            RedirectError::Fragment => "redirect_url must not contain a fragment (#...).",
            RedirectError::TooLong => "redirect_url must be at most 2048 characters.",
        }
    }
}

pub const MAX_REDIRECT_CHARS: usize = 2048;

fn is_loopback_host(url: &Url) -> bool {
    matches!(url.host_str(), Some("localhost") | Some("127.0.0.1"))
}

/// Validates a redirect URL; returns it normalised (as `url` serialises it) and its origin.
pub fn parse_redirect(raw: &str) -> Result<(String, String), RedirectError> {
    if raw.chars().count() > MAX_REDIRECT_CHARS {
        return Err(RedirectError::TooLong);
    }
    let url = Url::parse(raw).map_err(|e| match e {
        url::ParseError::RelativeUrlWithoutBase => RedirectError::NotAbsolute,
        _ => RedirectError::Invalid,
    })?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_host(&url) => {}
        _ => return Err(RedirectError::Scheme),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(RedirectError::NotAbsolute);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(RedirectError::UserInfo);
    }
    // A `#` anywhere in the input is a fragment to the parser (even an empty one).
    if url.fragment().is_some() {
        return Err(RedirectError::Fragment);
    }
    let origin = url.origin().ascii_serialization();
    Ok((url.to_string(), origin))
}

/// Normalises an allow-list entry to the same origin form (`scheme://host[:port]`).
/// Returns None when the entry is not an origin.
pub fn normalize_origin(raw: &str) -> Option<String> {
    let url = Url::parse(raw).ok()?;
    if !matches!(url.scheme(), "https" | "http") {
        return None;
    }
    let path_ok = url.path() == "/" || url.path().is_empty();
    let user_info = !url.username().is_empty() || url.password().is_some();
    if !path_ok || url.query().is_some() || url.fragment().is_some() || user_info {
        return None;
    }
    Some(url.origin().ascii_serialization())
}

/// Exact origin match against an allow list (entries are normalised first).
pub fn origin_allowed(origin: &str, allowed: &[String]) -> bool {
    allowed
        .iter()
        .filter_map(|a| normalize_origin(a))
        .any(|a| a == origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_on_its_own() {
        // The length limit is inclusive.
        let at_limit = format!("https://a.example/{}", "x".repeat(MAX_REDIRECT_CHARS - 18));
        assert_eq!(at_limit.chars().count(), MAX_REDIRECT_CHARS);
        assert!(parse_redirect(&at_limit).is_ok());
        let over = format!("{at_limit}x");
        assert_eq!(parse_redirect(&over), Err(RedirectError::TooLong));
        // User name alone, password alone.
        for u in ["https://user@a.example/cb", "https://:secret@a.example/cb"] {
            assert_eq!(parse_redirect(u), Err(RedirectError::UserInfo), "{u}");
        }
        // A fragment, also an empty one.
        for u in ["https://a.example/cb#x", "https://a.example/cb#"] {
            assert_eq!(parse_redirect(u), Err(RedirectError::Fragment), "{u}");
        }
    }

    #[test]
    fn allow_list_entries_must_be_bare_origins() {
        assert_eq!(
            normalize_origin("https://a.example"),
            Some("https://a.example".into())
        );
        assert_eq!(
            normalize_origin("https://a.example/"),
            Some("https://a.example".into())
        );
        for bad in [
            "https://a.example/path",
            "https://a.example/?q=1",
            "https://a.example/#f",
            "https://user@a.example",
            "https://:pw@a.example",
            "ftp://a.example",
            "not a url",
        ] {
            assert_eq!(normalize_origin(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_refusal_says_what_is_wrong() {
        let all = [
            RedirectError::Invalid,
            RedirectError::NotAbsolute,
            RedirectError::Scheme,
            RedirectError::UserInfo,
            RedirectError::Fragment,
            RedirectError::TooLong,
        ];
        for e in all {
            assert!(e.detail().starts_with("redirect_url must"), "{e:?}");
        }
        let distinct: std::collections::HashSet<_> = all.iter().map(|e| e.detail()).collect();
        assert_eq!(distinct.len(), 5); // Invalid and NotAbsolute share one.
    }

    #[test]
    fn origin_drops_default_port_and_lowercases_host() {
        let (_, o) = parse_redirect("https://App.Example.com:443/welcome?x=1").unwrap();
        assert_eq!(o, "https://app.example.com");
        let (_, o) = parse_redirect("http://localhost:5173/cb").unwrap();
        assert_eq!(o, "http://localhost:5173");
        let (_, o) = parse_redirect("http://127.0.0.1/cb").unwrap();
        assert_eq!(o, "http://127.0.0.1");
    }

    #[test]
    fn rejects_unsafe_urls() {
        assert_eq!(parse_redirect("/relative"), Err(RedirectError::NotAbsolute));
        assert_eq!(
            parse_redirect("http://example.com/x"),
            Err(RedirectError::Scheme)
        );
        assert_eq!(
            parse_redirect("javascript:alert(1)"),
            Err(RedirectError::Scheme)
        );
        assert_eq!(
            parse_redirect("https://user:pw@example.com/"),
            Err(RedirectError::UserInfo)
        );
        assert_eq!(
            parse_redirect("https://example.com/#frag"),
            Err(RedirectError::Fragment)
        );
        assert_eq!(
            parse_redirect("https://example.com/#"),
            Err(RedirectError::Fragment)
        );
        assert_eq!(
            parse_redirect("http://localhost.evil.com/"),
            Err(RedirectError::Scheme)
        );
    }

    #[test]
    fn allow_list_is_exact() {
        let allowed = vec![
            "https://app.example.com".to_string(),
            "http://localhost:5173".to_string(),
        ];
        let ok = |u: &str| origin_allowed(&parse_redirect(u).unwrap().1, &allowed);
        assert!(ok("https://app.example.com/a/b?c=d"));
        assert!(ok("https://APP.example.com:443/"));
        assert!(ok("http://localhost:5173/x"));
        assert!(!ok("https://app.example.com.evil.com/"));
        assert!(!ok("https://evilapp.example.com/"));
        assert!(!ok("https://app.example.com:8443/"));
        assert!(!ok("http://localhost:5174/"));
        assert!(!origin_allowed("https://app.example.com", &[]));
    }
}
