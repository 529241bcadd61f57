//! The languages of mail and the hosted page: which one a member gets, and the texts.
//!
//! Catalogs are `shared/i18n/<tag>.json` (flat `key -> text` with `{name}` placeholders),
//! compiled into the binary. English is complete; a key another catalog lacks falls back
//! to English. A hub may override any text per locale (`Branding::texts`) with plain text
//! that uses only the placeholders of the English text (`validate_override`); the text is
//! escaped wherever it goes into HTML, like every other value.
//!
//! Which language (`choose`): the `locale` attribute of the register/magic request → the
//! member's stored locale → the request's `Accept-Language` (stored on the mail job) → the
//! hub's default → English.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Locale {
    En,
    De,
    Fr,
    Es,
    Nl,
}

impl Locale {
    pub const ALL: [Locale; 5] = [Locale::En, Locale::De, Locale::Fr, Locale::Es, Locale::Nl];

    pub fn tag(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::De => "de",
            Locale::Fr => "fr",
            Locale::Es => "es",
            Locale::Nl => "nl",
        }
    }

    /// The supported language of a BCP 47 tag by its primary subtag (`de-AT` → German),
    /// case-insensitive; None for another language or a malformed tag.
    pub fn from_tag(tag: &str) -> Option<Locale> {
        let tag = tag.trim();
        if tag.is_empty()
            || tag.len() > 35
            || !tag.split(['-', '_']).all(|p| {
                !p.is_empty() && p.len() <= 8 && p.bytes().all(|b| b.is_ascii_alphanumeric())
            })
        {
            return None;
        }
        let primary = tag.split(['-', '_']).next()?.to_ascii_lowercase();
        Locale::ALL.into_iter().find(|l| l.tag() == primary)
    }

    /// The supported language an `Accept-Language` header prefers most (RFC 9110 §12.5.4:
    /// the highest `q`, the first listed among equals; `q=0` means "not this one"). None
    /// when it names none of them.
    pub fn from_accept_language(header: &str) -> Option<Locale> {
        let mut wanted: Vec<(u16, Locale)> = Vec::new();
        let mut refused = BTreeSet::new();
        for part in header.split(',').take(32) {
            let mut fields = part.split(';');
            let tag = fields.next().unwrap_or("").trim();
            let mut q: u16 = 1000;
            for f in fields {
                let f = f.trim();
                if let Some(v) = f.strip_prefix("q=").or_else(|| f.strip_prefix("Q=")) {
                    q = parse_q(v).unwrap_or(0);
                }
            }
            match Locale::from_tag(tag) {
                Some(locale) if q == 0 => {
                    refused.insert(locale);
                }
                Some(locale) => wanted.push((q, locale)),
                None => {}
            }
        }
        // The highest q; among equals the first listed (a stable sort keeps the order).
        wanted.sort_by_key(|w| std::cmp::Reverse(w.0));
        wanted
            .into_iter()
            .map(|(_, l)| l)
            .find(|l| !refused.contains(l))
    }
}

/// A `q` value (0 to 1, up to three decimals) in thousandths.
fn parse_q(v: &str) -> Option<u16> {
    let v = v.trim();
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths: u16 = format!("{frac:0<3}").parse().ok()?;
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// The language of a mail or page: the first that is known of `explicit` (the request's
/// `locale` attribute), `stored` (the member's), `accept_language` (the request's header),
/// `hub_default`; else English.
pub fn choose(
    explicit: Option<Locale>,
    stored: Option<Locale>,
    accept_language: Option<&str>,
    hub_default: Option<Locale>,
) -> Locale {
    explicit
        .or(stored)
        .or_else(|| accept_language.and_then(Locale::from_accept_language))
        .or(hub_default)
        .unwrap_or(Locale::En)
}

type Catalog = HashMap<String, String>;

fn source(locale: Locale) -> &'static str {
    match locale {
        Locale::En => include_str!("../../i18n/en.json"),
        Locale::De => include_str!("../../i18n/de.json"),
        Locale::Fr => include_str!("../../i18n/fr.json"),
        Locale::Es => include_str!("../../i18n/es.json"),
        Locale::Nl => include_str!("../../i18n/nl.json"),
    }
}

/// A locale's catalog, parsed once (a malformed catalog is empty, so English answers:
/// the unit tests keep every catalog well-formed).
fn catalog(locale: Locale) -> &'static Catalog {
    static CATALOGS: [OnceLock<Catalog>; 5] = [
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
    ];
    let i = Locale::ALL.iter().position(|l| *l == locale).unwrap_or(0);
    CATALOGS[i].get_or_init(|| serde_json::from_str(source(locale)).unwrap_or_default())
}

/// A hub's overrides: locale -> key -> text.
pub type Overrides = BTreeMap<Locale, BTreeMap<String, String>>;

/// The texts of one language, with a hub's overrides over the catalog, falling back to
/// English for a key the language lacks.
#[derive(Clone, Copy)]
pub struct Texts<'a> {
    pub locale: Locale,
    overrides: Option<&'a BTreeMap<String, String>>,
}

impl<'a> Texts<'a> {
    pub fn new(locale: Locale, overrides: Option<&'a Overrides>) -> Texts<'a> {
        Texts {
            locale,
            overrides: overrides.and_then(|o| o.get(&locale)),
        }
    }

    /// The text of `key`: the hub's override, the locale's catalog, English, else the key.
    pub fn get<'s>(&'s self, key: &'s str) -> &'s str {
        lookup(
            self.overrides,
            catalog(self.locale),
            catalog(Locale::En),
            key,
        )
    }

    /// `get(key)` with its placeholders filled.
    pub fn fill(&self, key: &str, vars: &[(&str, &str)]) -> String {
        fill(self.get(key), vars)
    }

    /// Every key starting with `prefix`, resolved (the hosted page's dictionary).
    pub fn all_with_prefix(&self, prefix: &str) -> BTreeMap<&'static str, String> {
        catalog(Locale::En)
            .keys()
            .filter(|k| k.starts_with(prefix))
            .map(|k| (k.as_str(), self.get(k).to_string()))
            .collect()
    }
}

fn lookup<'a>(
    overrides: Option<&'a BTreeMap<String, String>>,
    catalog: &'a Catalog,
    english: &'a Catalog,
    key: &'a str,
) -> &'a str {
    overrides
        .and_then(|o| o.get(key))
        .or_else(|| catalog.get(key))
        .or_else(|| english.get(key))
        .map_or(key, String::as_str)
}

/// Replaces each `{name}` of `template` with its value, in one pass (a value that itself
/// contains `{…}` is not expanded again). An unknown placeholder stays as written.
pub fn fill(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match vars.iter().find(|(k, _)| *k == name) {
                    Some((_, v)) => out.push_str(v),
                    None => out.push_str(&rest[open..open + close + 2]),
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The `{name}` placeholders of a text; Err when a brace does not belong to one.
pub fn placeholders(text: &str) -> Result<BTreeSet<&str>, String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    loop {
        let open = rest.find('{');
        let close = rest.find('}');
        match (open, close) {
            (None, None) => return Ok(found),
            (Some(o), Some(c)) if o < c => {
                let name = &rest[o + 1..c];
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                    return Err(format!("{{{name}}} is not a placeholder"));
                }
                found.insert(name);
                rest = &rest[c + 1..];
            }
            _ => return Err("a { or } that is not part of a {placeholder}".into()),
        }
    }
}

/// A hub's override of `key`: plain text (1–500 characters, no control characters) with
/// only the placeholders the English text has.
pub fn validate_override(key: &str, text: &str) -> Result<(), String> {
    let english = catalog(Locale::En)
        .get(key)
        .ok_or_else(|| format!("unknown text key {key:?}"))?;
    let n = text.chars().count();
    if n == 0 || n > 500 || text.trim().is_empty() {
        return Err(format!("{key}: 1 to 500 characters"));
    }
    if text.chars().any(char::is_control) {
        return Err(format!(
            "{key}: no control characters (line breaks included)"
        ));
    }
    let allowed = placeholders(english)?;
    let used = placeholders(text).map_err(|e| format!("{key}: {e}"))?;
    if let Some(extra) = used.difference(&allowed).next() {
        return Err(format!(
            "{key}: {{{extra}}} is not one of its placeholders ({})",
            allowed
                .iter()
                .map(|p| format!("{{{p}}}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_accept_language() {
        assert_eq!(Locale::from_tag("de-AT"), Some(Locale::De));
        assert_eq!(Locale::from_tag("NL"), Some(Locale::Nl));
        assert_eq!(Locale::from_tag("es_419"), Some(Locale::Es));
        assert_eq!(Locale::from_tag("pt-BR"), None);
        assert_eq!(Locale::from_tag("de-<script>"), None);
        assert_eq!(Locale::from_tag(""), None);
        let al = Locale::from_accept_language;
        assert_eq!(
            al("fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5"),
            Some(Locale::Fr)
        );
        assert_eq!(al("pt-BR,pt;q=0.9,nl;q=0.4,en;q=0.3"), Some(Locale::Nl));
        assert_eq!(al("en;q=0.5, de"), Some(Locale::De), "q=1 by default");
        assert_eq!(
            al("es;q=0.8, fr;q=0.8"),
            Some(Locale::Es),
            "the first among equals"
        );
        assert_eq!(al("de;q=0, de-AT;q=0.9"), None, "q=0 refuses the language");
        assert_eq!(al("ja, zh"), None);
        assert_eq!(
            al("de;q=2, fr;q=0.1"),
            Some(Locale::Fr),
            "a bad q counts as 0"
        );
        assert_eq!(
            al("fr;q=0.9, de;q=0.5, fr-CA;q=0"),
            Some(Locale::De),
            "the next one after a refused one"
        );
        assert_eq!(al(""), None);
    }

    #[test]
    fn the_order_of_choice() {
        use Locale::*;
        assert_eq!(choose(Some(Fr), Some(De), Some("nl"), Some(Es)), Fr);
        assert_eq!(choose(None, Some(De), Some("nl"), Some(Es)), De);
        assert_eq!(choose(None, None, Some("nl"), Some(Es)), Nl);
        assert_eq!(choose(None, None, Some("ja"), Some(Es)), Es);
        assert_eq!(choose(None, None, None, None), En);
    }

    #[test]
    fn every_catalog_has_the_english_keys_and_placeholders() {
        let en = catalog(Locale::En);
        assert!(en.len() > 100, "English catalog parsed");
        for locale in Locale::ALL {
            let c = catalog(locale);
            assert!(!c.is_empty(), "{locale:?} parses");
            for (key, text) in c {
                let english = en
                    .get(key)
                    .unwrap_or_else(|| panic!("{locale:?} has an extra key {key}"));
                assert_eq!(
                    placeholders(text).unwrap(),
                    placeholders(english).unwrap(),
                    "{locale:?} {key}: {text}"
                );
            }
            // Complete today: a missing key would fall back to English (next test).
            let missing: Vec<_> = en.keys().filter(|k| !c.contains_key(*k)).collect();
            assert!(missing.is_empty(), "{locale:?} lacks {missing:?}");
        }
    }

    #[test]
    fn a_missing_translation_falls_back_to_english_and_an_override_wins() {
        let english = catalog(Locale::En);
        let partial: Catalog = HashMap::from([("mail.sign_in.action".into(), "Anmelden".into())]);
        assert_eq!(
            lookup(None, &partial, english, "mail.sign_in.action"),
            "Anmelden"
        );
        assert_eq!(
            lookup(None, &partial, english, "mail.join.action"),
            "Join and sign in"
        );
        assert_eq!(
            lookup(None, &partial, english, "no.such.key"),
            "no.such.key"
        );
        let ours = BTreeMap::from([("mail.join.action".to_string(), "Mitmachen".to_string())]);
        assert_eq!(
            lookup(Some(&ours), &partial, english, "mail.join.action"),
            "Mitmachen"
        );
        let t = Texts::new(Locale::De, None);
        assert_ne!(t.get("mail.sign_in.action"), "Sign in");
    }

    #[test]
    fn fill_is_one_pass() {
        assert_eq!(
            fill("Hi {hub}, {n} left", &[("hub", "{n}"), ("n", "3")]),
            "Hi {n}, 3 left"
        );
        assert_eq!(fill("{unknown} {", &[]), "{unknown} {");
    }

    #[test]
    fn overrides_keep_to_their_placeholders() {
        assert!(validate_override("mail.sign_in.subject", "Welkom terug bij {hub}").is_ok());
        assert!(validate_override("mail.sign_in.subject", "Welkom terug").is_ok());
        assert!(validate_override("mail.sign_in.subject", "{email} hi")
            .unwrap_err()
            .contains("not one of"));
        assert!(validate_override("mail.sign_in.subject", "a } b").is_err());
        assert!(validate_override("mail.sign_in.subject", "a {Hub}").is_err());
        assert!(validate_override("mail.sign_in.subject", "two\nlines").is_err());
        assert!(validate_override("mail.sign_in.subject", " ").is_err());
        assert!(validate_override("no.such.key", "x").is_err());
        assert!(validate_override("mail.sign_in.subject", &"x".repeat(501)).is_err());
    }
}
