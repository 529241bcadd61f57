//! The mails the mailer sends, as pure functions of what goes in them: a sign-in (or
//! registration, join, email-change confirmation) link, the email-change notice with its
//! undo link, and the password notices. Text and HTML parts; the hub's name is escaped.

use askama::Template;

use crate::domain::branding::{validate_accent, validate_logo_url, Branding};
use crate::domain::i18n::{Locale, Texts};
use crate::domain::model::LinkPurpose;
use crate::ports::OutgoingMail;

/// `<redirect_url>#token=…` when one is bound, else the hosted page in the mail's
/// language (`?lang=`), which also learns the hub (`hub=<slug>`, when the mail is for
/// one) so it can show the hub's branding and offer a new link. The token stays in the
/// fragment: never sent to a server, never in a log or a `Referer`.
pub fn link_url(
    public_base_url: &str,
    redirect_url: Option<&str>,
    token: &str,
    hub_slug: Option<&str>,
    lang: Locale,
) -> String {
    let base = public_base_url.trim_end_matches('/');
    let lang = lang.tag();
    match (redirect_url, hub_slug) {
        (Some(r), _) => format!("{r}#token={token}"),
        (None, Some(slug)) => format!("{base}/m?hub={slug}&lang={lang}#token={token}"),
        (None, None) => format!("{base}/m?lang={lang}#token={token}"),
    }
}

pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The buttons' colour when a hub sets none.
pub const DEFAULT_ACCENT: &str = "#2f5bea";

/// How a hub's mail looks and reads: its language (with its overrides), the name it
/// goes by, the sender, the reply-to, logo and accent. The logo and accent are checked
/// again here (`domain::branding`), so a value written around the admin CLI still
/// cannot break out of its attribute.
pub struct Look<'a> {
    pub texts: Texts<'a>,
    pub hub: &'a str,
    pub sender_name: &'a str,
    pub from_address: &'a str,
    pub reply_to: Option<&'a str>,
    pub logo_url: Option<String>,
    pub accent: String,
}

impl<'a> Look<'a> {
    /// `hub_title` unless the branding names the hub otherwise.
    pub fn new(
        locale: Locale,
        hub_title: &'a str,
        branding: Option<&'a Branding>,
        from_address: &'a str,
    ) -> Look<'a> {
        let hub = branding
            .and_then(|b| b.display_name.as_deref())
            .unwrap_or(hub_title);
        Look {
            texts: Texts::new(locale, branding.map(|b| &b.texts)),
            hub,
            sender_name: branding
                .and_then(|b| b.sender_name.as_deref())
                .unwrap_or(hub),
            from_address,
            reply_to: branding.and_then(|b| b.reply_to.as_deref()),
            logo_url: branding
                .and_then(|b| b.logo_url.as_deref())
                .and_then(|u| validate_logo_url(u).ok()),
            accent: branding
                .and_then(|b| b.accent.as_deref())
                .and_then(|a| validate_accent(a).ok())
                .unwrap_or_else(|| DEFAULT_ACCENT.to_string()),
        }
    }

    /// English, unbranded: the hub's title from the deployment's sender.
    pub fn plain(hub: &'a str, from_address: &'a str) -> Look<'a> {
        Look::new(Locale::En, hub, None, from_address)
    }

    fn t(&self, key: &str, vars: &[(&str, &str)]) -> String {
        let mut all: Vec<(&str, &str)> = vec![("hub", self.hub)];
        all.extend_from_slice(vars);
        self.texts.fill(key, &all)
    }
}

#[derive(Template)]
#[template(path = "mail.html")]
struct MailHtml<'a> {
    lang: &'a str,
    subject: &'a str,
    hub: &'a str,
    logo_url: Option<&'a str>,
    accent: &'a str,
    paragraphs: &'a [String],
    action_url: Option<&'a str>,
    action_label: &'a str,
    paste_label: &'a str,
    code: Option<&'a str>,
    code_label: &'a str,
    note: Option<&'a str>,
}

/// What goes into one mail; `compose` makes both parts and the headers.
struct Parts<'p> {
    subject: String,
    paragraphs: Vec<String>,
    action: Option<(String, &'p str)>,
    code: Option<&'p str>,
    note: Option<String>,
}

fn compose(look: &Look, to: &str, parts: Parts) -> OutgoingMail {
    let subject = parts.subject.replace(['\r', '\n'], " ");
    let code_label = look.t("mail.code_line", &[]);
    let paste_label = look.t("mail.paste_link", &[]);
    let mut text = parts.paragraphs.join("\n\n");
    if let Some((label, url)) = &parts.action {
        text.push_str(&format!("\n\n{label}: {url}"));
    }
    if let Some(c) = parts.code {
        text.push_str(&format!("\n\n{code_label} {c}"));
    }
    if let Some(n) = &parts.note {
        text.push_str(&format!("\n\n{n}"));
    }
    text.push('\n');
    let page = MailHtml {
        lang: look.texts.locale.tag(),
        subject: &subject,
        hub: look.hub,
        logo_url: look.logo_url.as_deref(),
        accent: &look.accent,
        paragraphs: &parts.paragraphs,
        action_url: parts.action.as_ref().map(|(_, u)| *u),
        action_label: parts.action.as_ref().map_or("", |(l, _)| l.as_str()),
        paste_label: &paste_label,
        code: parts.code,
        code_label: &code_label,
        note: parts.note.as_deref(),
    };
    // Rendering writes into a String and cannot fail for these fields; should it ever,
    // the mail still goes out with its text, escaped.
    let html = page
        .render()
        .unwrap_or_else(|_| format!("<pre>{}</pre>", escape_html(&text)));
    OutgoingMail {
        from: from_header(look.sender_name, look.from_address),
        to: to.to_string(),
        reply_to: look.reply_to.map(str::to_string),
        subject: encode_header_text(&subject),
        text,
        html,
    }
}

/// The email: a text part and an HTML part naming the hub; sign-in mail also shows the
/// code (`123 456`) for signing in on another device.
pub fn render(
    look: &Look,
    to: &str,
    purpose: LinkPurpose,
    url: &str,
    code: Option<&str>,
    ttl_secs: i64,
) -> OutgoingMail {
    let minutes = (ttl_secs / 60).max(1).to_string();
    let key = match purpose {
        LinkPurpose::Register => "register",
        LinkPurpose::Join => "join",
        LinkPurpose::SignIn => "sign_in",
        LinkPurpose::EmailChange => "email_change",
        LinkPurpose::EmailChangeUndo => "undo",
        // Mailed inside the new-sign-in notice (`render_new_sign_in`), not on its own.
        LinkPurpose::EndSessions => "end_sessions",
    };
    let note_key = if code.is_some() {
        "mail.expiry_with_code"
    } else {
        "mail.expiry"
    };
    compose(
        look,
        to,
        Parts {
            subject: look.t(&format!("mail.{key}.subject"), &[]),
            paragraphs: vec![look.t(&format!("mail.{key}.lead"), &[])],
            action: Some((look.t(&format!("mail.{key}.action"), &[]), url)),
            code,
            note: Some(look.t(note_key, &[("minutes", &minutes)])),
        },
    )
}

/// RFC 2047 encoded-words (UTF-8, base64) for a header's text that is not plain ASCII,
/// split on character boundaries so no word exceeds 75 characters; ASCII as is. SES
/// takes only 7-bit ASCII in a subject and a From display name.
pub fn encode_header_text(text: &str) -> String {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    if text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return text.to_string();
    }
    // 45 bytes of UTF-8 -> 60 base64 characters; with `=?UTF-8?B?` and `?=`, 72.
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars().filter(|c| !c.is_control()) {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(format!("=?UTF-8?B?{}?=", STANDARD.encode(chunk.as_bytes())));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(format!("=?UTF-8?B?{}?=", STANDARD.encode(chunk.as_bytes())));
    }
    words.join(" ")
}

/// The `From` header: the display name, then the sender address. A plain ASCII name goes
/// in a quoted string; any other is RFC 2047 encoded-words (`encode_header_text`) — SES
/// refuses raw non-ASCII display names.
pub fn from_header(display: &str, address: &str) -> String {
    let name: String = display
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .to_string();
    if name.is_empty() {
        return address.to_string();
    }
    if name.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        let quoted = name.replace('\\', "\\\\").replace('"', "\\\"");
        return format!("\"{quoted}\" <{address}>");
    }
    format!("{} <{address}>", encode_header_text(&name))
}

/// The notice to the current address when a change to `new_email` was requested: names
/// the new address partly masked, and carries the undo link.
pub fn render_email_change_notice(
    look: &Look,
    to: &str,
    new_email: &str,
    undo_url: &str,
    undo_ttl_secs: i64,
) -> OutgoingMail {
    let days = (undo_ttl_secs / 86_400).max(1).to_string();
    let masked = crate::domain::email::redact(new_email);
    compose(
        look,
        to,
        Parts {
            subject: look.t("mail.change_notice.subject", &[]),
            paragraphs: vec![
                look.t("mail.change_notice.lead", &[("masked", &masked)]),
                look.t("mail.change_notice.if_you", &[]),
                look.t("mail.change_notice.if_not", &[("days", &days)]),
            ],
            action: Some((look.t("mail.change_notice.action", &[]), undo_url)),
            code: None,
            note: None,
        },
    )
}

/// To the address an email change just moved an account to: this address now signs in
/// to that account, a member of `hubs`. Someone who confirmed a change they did not ask
/// for (an unsolicited confirmation mail) learns whose account it is.
pub fn render_email_changed_notice(
    look: &Look,
    to: &str,
    hubs: &[String],
    public_base_url: &str,
) -> OutgoingMail {
    let names = if hubs.is_empty() {
        look.hub.to_string()
    } else {
        hubs.join(", ")
    };
    let url = format!("{}/m", public_base_url.trim_end_matches('/'));
    compose(
        look,
        to,
        Parts {
            subject: look.t("mail.changed_notice.subject", &[]),
            paragraphs: vec![
                look.t("mail.changed_notice.lead", &[("names", &names)]),
                look.t("mail.changed_notice.if_not", &[("url", &url)]),
            ],
            action: None,
            code: None,
            note: None,
        },
    )
}

/// The notice to the contact's address when a password was set or changed.
pub fn render_password_notice(
    look: &Look,
    to: &str,
    first: bool,
    public_base_url: &str,
) -> OutgoingMail {
    let what = if first { "set" } else { "changed" };
    let url = format!("{}/m", public_base_url.trim_end_matches('/'));
    compose(
        look,
        to,
        Parts {
            subject: look.t(&format!("mail.password_{what}.subject"), &[]),
            paragraphs: vec![
                look.t(&format!("mail.password_{what}.lead"), &[]),
                look.t("mail.password.if_not", &[("url", &url)]),
            ],
            action: None,
            code: None,
            note: None,
        },
    )
}

/// A sign-in from a device and network new to the member (`domain::session::new_device`):
/// what, where and when — the network, never the address — and the link that ends that
/// session and every later one.
pub fn render_new_sign_in(
    look: &Look,
    to: &str,
    device: &str,
    network: &str,
    when: &str,
    end_url: &str,
    ttl_secs: i64,
) -> OutgoingMail {
    let days = (ttl_secs / 86_400).max(1).to_string();
    compose(
        look,
        to,
        Parts {
            subject: look.t("mail.new_sign_in.subject", &[]),
            paragraphs: vec![
                look.t(
                    "mail.new_sign_in.lead",
                    &[("device", device), ("network", network), ("when", when)],
                ),
                look.t("mail.new_sign_in.if_you", &[]),
                look.t("mail.new_sign_in.if_not", &[("days", &days)]),
            ],
            action: Some((look.t("mail.new_sign_in.action", &[]), end_url)),
            code: None,
            note: None,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_carry_the_token_in_the_fragment() {
        assert_eq!(
            link_url("https://auth.example.com/", None, "T", None, Locale::En),
            "https://auth.example.com/m?lang=en#token=T"
        );
        assert_eq!(
            link_url(
                "https://auth.example.com",
                None,
                "T",
                Some("my-hub"),
                Locale::De
            ),
            "https://auth.example.com/m?hub=my-hub&lang=de#token=T"
        );
        assert_eq!(
            link_url(
                "https://x",
                Some("https://app.example.com/cb?a=1"),
                "T",
                Some("h"),
                Locale::Fr
            ),
            "https://app.example.com/cb?a=1#token=T"
        );
    }

    /// Decodes RFC 2047 encoded-words (UTF-8, base64) as a mail client would.
    fn decode_header(h: &str) -> String {
        use base64::Engine;
        if !h.starts_with("=?UTF-8?B?") {
            return h.to_string();
        }
        h.split(' ')
            .map(|w| {
                let b64 = w
                    .strip_prefix("=?UTF-8?B?")
                    .and_then(|w| w.strip_suffix("?="))
                    .expect("an encoded-word");
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .expect("base64");
                String::from_utf8(bytes).expect("whole characters in each word")
            })
            .collect()
    }

    #[test]
    fn mail_names_the_hub_and_escapes_it() {
        let look = Look::plain("A <b>&\"Hub\"", "no-reply@example.com");
        let m = render(
            &look,
            "m@example.com",
            LinkPurpose::SignIn,
            "https://x/m#token=T",
            Some("123 456"),
            900,
        );
        assert_eq!(m.subject, "Sign in to A <b>&\"Hub\"");
        assert!(m.text.contains("https://x/m#token=T"));
        assert!(m.text.contains("15 minutes"));
        assert!(m.text.contains("sign in: 123 456\n"), "{}", m.text);
        assert!(m.html.contains(">123 456</p>"));
        assert!(
            m.html.contains("A &#60;b&#62;&#38;&#34;Hub&#34;")
                || m.html.contains("A &lt;b&gt;&amp;&quot;Hub&quot;"),
            "{}",
            m.html
        );
        assert!(!m.html.contains("<b>"));
        assert_eq!(m.from, "\"A <b>&\\\"Hub\\\"\" <no-reply@example.com>");
        assert_eq!(m.reply_to, None);
        assert!(m.html.contains(DEFAULT_ACCENT) && m.html.contains("lang=\"en\""));
        let look = Look::plain("Member Academy", "f@example.com");
        let r = render(
            &look,
            "m@example.com",
            LinkPurpose::EmailChange,
            "u",
            None,
            900,
        );
        assert_eq!(r.subject, "Confirm your new email for Member Academy");
        assert!(!r.text.contains("code") && !r.html.contains("code"));
    }

    /// Every mail in every language: the subject (RFC 2047 when not ASCII) decodes to the
    /// catalog's text, both parts carry the language's lead and no unfilled placeholder,
    /// and the HTML part declares the language.
    #[test]
    fn every_mail_in_every_locale() {
        for locale in Locale::ALL {
            let look = Look::new(
                locale,
                "Akademie für Mitglieder",
                None,
                "no-reply@example.com",
            );
            let texts = Texts::new(locale, None);
            let hub = [("hub", "Akademie für Mitglieder")];
            let mails = [
                (
                    "mail.sign_in",
                    render(
                        &look,
                        "m@example.com",
                        LinkPurpose::SignIn,
                        "https://x/m#token=T",
                        Some("123 456"),
                        900,
                    ),
                ),
                (
                    "mail.register",
                    render(
                        &look,
                        "m@example.com",
                        LinkPurpose::Register,
                        "https://x/m#token=T",
                        Some("123 456"),
                        900,
                    ),
                ),
                (
                    "mail.join",
                    render(
                        &look,
                        "m@example.com",
                        LinkPurpose::Join,
                        "https://x/m#token=T",
                        Some("123 456"),
                        900,
                    ),
                ),
                (
                    "mail.email_change",
                    render(
                        &look,
                        "m@example.com",
                        LinkPurpose::EmailChange,
                        "https://x/m#token=T",
                        None,
                        900,
                    ),
                ),
                (
                    "mail.change_notice",
                    render_email_change_notice(
                        &look,
                        "m@example.com",
                        "new@example.org",
                        "https://x/m#token=U",
                        7 * 86_400,
                    ),
                ),
                (
                    "mail.changed_notice",
                    render_email_changed_notice(&look, "m@example.com", &[], "https://x"),
                ),
                (
                    "mail.password_set",
                    render_password_notice(&look, "m@example.com", true, "https://x"),
                ),
                (
                    "mail.password_changed",
                    render_password_notice(&look, "m@example.com", false, "https://x"),
                ),
                (
                    "mail.new_sign_in",
                    render_new_sign_in(
                        &look,
                        "m@example.com",
                        "Firefox on Linux",
                        "203.0.113.0/24",
                        "2026-12-06T10:00:00Z",
                        "https://x/m#token=E",
                        7 * 86_400,
                    ),
                ),
            ];
            for (key, m) in mails {
                let subject = texts.fill(&format!("{key}.subject"), &hub);
                assert!(m.subject.is_ascii(), "{locale:?} {key}: {}", m.subject);
                assert!(
                    m.subject.starts_with("=?UTF-8?B?"),
                    "the hub name is not ASCII: {}",
                    m.subject
                );
                assert!(m.subject.split(' ').all(|w| w.len() <= 75));
                assert_eq!(decode_header(&m.subject), subject, "{locale:?} {key}");
                let lead = texts.fill(&format!("{key}.lead"), &hub);
                let lead_start: String = lead.chars().take(12).collect();
                assert!(m.text.contains(&lead_start), "{locale:?} {key}: {}", m.text);
                assert!(
                    m.html.contains(&format!("lang=\"{}\"", locale.tag())),
                    "{locale:?} {key}"
                );
                for part in [&m.text, &m.html] {
                    assert!(
                        !part.contains("{hub}")
                            && !part.contains("{minutes}")
                            && !part.contains("{days}")
                            && !part.contains("{url}"),
                        "{locale:?} {key}: unfilled placeholder"
                    );
                }
                assert!(
                    m.from.starts_with("=?UTF-8?B?") && m.from.ends_with(" <no-reply@example.com>")
                );
            }
            if locale != Locale::En {
                let en = Texts::new(Locale::En, None);
                assert_ne!(
                    texts.get("mail.sign_in.lead"),
                    en.get("mail.sign_in.lead"),
                    "{locale:?} is translated"
                );
            }
        }
    }

    /// Every tenant value is escaped in the HTML part (and an override is plain text), the
    /// logo and accent are used only when valid, the reply-to and the sender name reach
    /// the headers.
    #[test]
    fn branding_is_shown_and_escaped() {
        let mut texts = crate::domain::i18n::Overrides::new();
        texts.entry(Locale::De).or_default().insert(
            "mail.sign_in.lead".to_string(),
            "<script>alert(1)</script> Willkommen zurück bei {hub}".to_string(),
        );
        let b = Branding {
            display_name: Some("Club \"<img src=x onerror=alert(1)>\"".into()),
            logo_url: Some("https://cdn.example.org/logo.png?a=1&b=2".into()),
            accent: Some("#0b6e4f".into()),
            sender_name: Some("Der Club".into()),
            reply_to: Some("hello@club.example".into()),
            default_locale: None,
            texts,
        };
        let look = Look::new(Locale::De, "Title", Some(&b), "no-reply@example.com");
        let m = render(
            &look,
            "m@example.com",
            LinkPurpose::SignIn,
            "https://x/m#token=T",
            Some("123 456"),
            900,
        );
        assert!(
            !m.html.contains("<script>") && !m.html.contains("<img src=x"),
            "{}",
            m.html
        );
        assert!(
            m.html.contains("&#60;script&#62;") || m.html.contains("&lt;script&gt;"),
            "{}",
            m.html
        );
        assert!(
            m.text
                .contains("<script>alert(1)</script> Willkommen zurück bei Club"),
            "text is plain"
        );
        assert!(
            m.html
                .contains("src=\"https://cdn.example.org/logo.png?a=1&#38;b=2\"")
                || m.html
                    .contains("src=\"https://cdn.example.org/logo.png?a=1&amp;b=2\""),
            "{}",
            m.html
        );
        assert!(m.html.contains("background:#0b6e4f"));
        assert_eq!(m.from, "\"Der Club\" <no-reply@example.com>");
        assert_eq!(m.reply_to.as_deref(), Some("hello@club.example"));
        assert!(decode_header(&m.subject).contains("Club \"<img src=x onerror=alert(1)>\""));
        // Values that did not come through the admin CLI's checks are not used.
        let bad = Branding {
            logo_url: Some("javascript:alert(1)".into()),
            accent: Some("red;background:url(https://evil.example/)".into()),
            ..Branding::default()
        };
        let look = Look::new(Locale::En, "Title", Some(&bad), "no-reply@example.com");
        let m = render(&look, "m@example.com", LinkPurpose::SignIn, "u", None, 900);
        assert!(!m.html.contains("javascript:") && !m.html.contains("evil.example"));
        assert!(m.html.contains(DEFAULT_ACCENT));
    }

    #[test]
    fn non_ascii_display_names_are_encoded_words() {
        let f = from_header("Akademie für Mitglieder", "no-reply@example.com");
        assert_eq!(
            f,
            "=?UTF-8?B?QWthZGVtaWUgZsO8ciBNaXRnbGllZGVy?= <no-reply@example.com>"
        );
        assert!(f.is_ascii());
        // Long names split into several encoded-words of at most 75 characters, each
        // decoding to whole characters.
        let long = "Ünïcödé ".repeat(12);
        let f = from_header(&long, "a@example.com");
        let words: Vec<&str> = f.trim_end_matches(" <a@example.com>").split(' ').collect();
        assert!(words.len() > 1);
        let mut decoded = String::new();
        for w in words {
            assert!(w.len() <= 75, "{w}");
            let b64 = w
                .strip_prefix("=?UTF-8?B?")
                .unwrap()
                .strip_suffix("?=")
                .unwrap();
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap();
            decoded.push_str(std::str::from_utf8(&bytes).unwrap());
        }
        assert_eq!(decoded, long.trim());
        assert_eq!(from_header("", "a@example.com"), "a@example.com");
        assert_eq!(
            from_header("A\r\nBcc: x", "a@example.com"),
            "\"ABcc: x\" <a@example.com>"
        );
    }
}
