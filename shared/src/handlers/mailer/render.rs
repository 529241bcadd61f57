//! The mails the mailer sends, as pure functions of what goes in them: a sign-in (or
//! registration, join, email-change confirmation) link, the email-change notice with its
//! undo link, and the password notices. Text and HTML parts; the hub's name is escaped.

use crate::domain::model::LinkPurpose;
use crate::ports::OutgoingMail;

/// `<redirect_url>#token=…` when one is bound, else the hosted page, which also learns
/// the hub (`&hub=<slug>`, when the mail is for one) so it can offer a new link.
pub fn link_url(
    public_base_url: &str,
    redirect_url: Option<&str>,
    token: &str,
    hub_slug: Option<&str>,
) -> String {
    match (redirect_url, hub_slug) {
        (Some(r), _) => format!("{r}#token={token}"),
        (None, Some(slug)) => format!(
            "{}/m#token={token}&hub={slug}",
            public_base_url.trim_end_matches('/')
        ),
        (None, None) => format!("{}/m#token={token}", public_base_url.trim_end_matches('/')),
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

/// The email: a text part and an HTML part naming the hub; sign-in mail also shows the
/// code (`123 456`) for signing in on another device.
pub fn render(
    from: &str,
    to: &str,
    hub: &str,
    purpose: LinkPurpose,
    url: &str,
    code: Option<&str>,
    ttl_secs: i64,
) -> OutgoingMail {
    let minutes = (ttl_secs / 60).max(1);
    let (subject, lead, action) = match purpose {
        LinkPurpose::Register => (
            format!("Confirm your email for {hub}"),
            format!(
                "Welcome to {hub}! Confirm your email address and sign in with the link below."
            ),
            "Confirm and sign in",
        ),
        LinkPurpose::Join => (
            format!("Join {hub}"),
            format!("You asked to join {hub}. Use the link below to join and sign in."),
            "Join and sign in",
        ),
        LinkPurpose::SignIn => (
            format!("Sign in to {hub}"),
            format!("Use the link below to sign in to {hub}."),
            "Sign in",
        ),
        LinkPurpose::EmailChange => (
            format!("Confirm your new email for {hub}"),
            format!("Confirm this address as your new email for {hub} with the link below."),
            "Confirm new email",
        ),
        LinkPurpose::EmailChangeUndo => (
            format!("Undo the email change for {hub}"),
            format!("Use the link below to undo the email change for {hub}."),
            "Undo the change",
        ),
        // Mailed inside the new-sign-in notice (`render_new_sign_in`), not on its own.
        LinkPurpose::EndSessions => (
            format!("End the new session on {hub}"),
            format!("Use the link below to end the new session on your {hub} account."),
            "End that session",
        ),
    };
    let what = if code.is_some() {
        "The link and the code work once (using one uses both) and expire"
    } else {
        "The link works once and expires"
    };
    let note = format!(
        "{what} in {minutes} minutes. If you did not ask for it, you can ignore this email."
    );
    let code_line = code
        .map(|c| format!("Or type this code on the page where you asked to sign in: {c}\n\n"))
        .unwrap_or_default();
    let text = format!("{lead}\n\n{action}: {url}\n\n{code_line}{note}\n");
    let (h_lead, h_url, h_note, h_action) = (
        escape_html(&lead),
        escape_html(url),
        escape_html(&note),
        escape_html(action),
    );
    // The code is six digits and a space: nothing to escape.
    let h_code = code
        .map(|c| {
            format!(
                "<p>Or type this code on the page where you asked to sign in:</p>\
                 <p style=\"font-size:28px;font-weight:600;letter-spacing:4px;font-family:ui-monospace,monospace\">{c}</p>"
            )
        })
        .unwrap_or_default();
    let html = format!(
        "<!doctype html><html><body style=\"font-family:system-ui,sans-serif;color:#1d2330\">\
         <p>{h_lead}</p>\
         <p><a href=\"{h_url}\" style=\"display:inline-block;padding:10px 16px;background:#2f5bea;color:#fff;border-radius:6px;text-decoration:none\">{h_action}</a></p>\
         <p style=\"font-size:13px;color:#555\">Or paste this link into your browser:<br>{h_url}</p>\
         {h_code}\
         <p style=\"font-size:13px;color:#555\">{h_note}</p></body></html>"
    );
    OutgoingMail {
        from: from_header(hub, from),
        to: to.to_string(),
        subject: subject.replace(['\r', '\n'], " "),
        text,
        html,
    }
}

/// The `From` header: the hub's name as display name, then the sender address. A plain
/// ASCII name goes in a quoted string; any other is an RFC 2047 encoded-word (UTF-8,
/// base64), split so no encoded-word exceeds 75 characters — SES refuses raw non-ASCII
/// display names.
pub fn from_header(display: &str, address: &str) -> String {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
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
    // 45 bytes of UTF-8 -> 60 base64 characters; with `=?UTF-8?B?` and `?=`, 72.
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in name.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(format!("=?UTF-8?B?{}?=", STANDARD.encode(chunk.as_bytes())));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(format!("=?UTF-8?B?{}?=", STANDARD.encode(chunk.as_bytes())));
    }
    format!("{} <{address}>", words.join(" "))
}

fn html_page(paragraphs: &[String], action: Option<(&str, &str)>) -> String {
    let mut body = String::new();
    for p in paragraphs {
        body.push_str(&format!("<p>{}</p>", escape_html(p)));
    }
    if let Some((label, url)) = action {
        body.push_str(&format!(
            "<p><a href=\"{u}\" style=\"display:inline-block;padding:10px 16px;background:#b42318;color:#fff;border-radius:6px;text-decoration:none\">{l}</a></p><p style=\"font-size:13px;color:#555\">Or paste this link into your browser:<br>{u}</p>",
            u = escape_html(url),
            l = escape_html(label)
        ));
    }
    format!("<!doctype html><html><body style=\"font-family:system-ui,sans-serif;color:#1d2330\">{body}</body></html>")
}

/// The notice to the current address when a change to `new_email` was requested: names
/// the new address partly masked, and carries the undo link.
pub fn render_email_change_notice(
    from: &str,
    to: &str,
    hub: &str,
    new_email: &str,
    undo_url: &str,
    undo_ttl_secs: i64,
) -> OutgoingMail {
    let days = (undo_ttl_secs / 86_400).max(1);
    let masked = crate::domain::email::redact(new_email);
    let lead = format!(
        "Someone signed in to your {hub} account asked to change its email address to {masked}."
    );
    let if_you =
        "If that was you, there is nothing to do: confirm the change from the new address."
            .to_string();
    let if_not = format!(
        "If it was not you, undo it with the link below (it works for {days} days, also after the change, and also undoes any further change made since): it puts the account back on this address, signs out every session and removes a password set or changed since the change began."
    );
    let text = format!("{lead}\n\n{if_you}\n\n{if_not}\n\nUndo the change: {undo_url}\n");
    OutgoingMail {
        from: from_header(hub, from),
        to: to.to_string(),
        subject: format!("Your {hub} email address is being changed").replace(['\r', '\n'], " "),
        html: html_page(&[lead, if_you, if_not], Some(("Undo the change", undo_url))),
        text,
    }
}

/// To the address an email change just moved an account to: this address now signs in
/// to that account, a member of `hubs`. Someone who confirmed a change they did not ask
/// for (an unsolicited confirmation mail) learns whose account it is.
pub fn render_email_changed_notice(
    from: &str,
    to: &str,
    hub: &str,
    hubs: &[String],
    public_base_url: &str,
) -> OutgoingMail {
    let names = if hubs.is_empty() {
        hub.to_string()
    } else {
        hubs.join(", ")
    };
    let lead = format!(
        "Your address is now on this account: it is the sign-in address of a member account of {names}."
    );
    let if_not = format!(
        "If you did not ask to move an account to this address, someone else did: this is not your account. Do not use it, and sign out at {}/m. Nothing else changes for you.",
        public_base_url.trim_end_matches('/')
    );
    OutgoingMail {
        from: from_header(hub, from),
        to: to.to_string(),
        subject: format!("Your address is now on a {hub} account").replace(['\r', '\n'], " "),
        text: format!("{lead}\n\n{if_not}\n"),
        html: html_page(&[lead, if_not], None),
    }
}

/// The notice to the contact's address when a password was set or changed.
pub fn render_password_notice(
    from: &str,
    to: &str,
    hub: &str,
    first: bool,
    public_base_url: &str,
) -> OutgoingMail {
    let what = if first { "set" } else { "changed" };
    let lead = format!("A password was {what} for your {hub} account.");
    let if_not = format!(
        "If this was not you, sign in with an email link at {}/m and change your password right away: that ends every other session.",
        public_base_url.trim_end_matches('/')
    );
    OutgoingMail {
        from: from_header(hub, from),
        to: to.to_string(),
        subject: format!("Your {hub} password was {what}").replace(['\r', '\n'], " "),
        text: format!("{lead}\n\n{if_not}\n"),
        html: html_page(&[lead, if_not], None),
    }
}

/// A sign-in from a device and network new to the member (`domain::session::new_device`):
/// what, where and when — the network, never the address — and the link that ends that
/// session and every later one.
#[allow(clippy::too_many_arguments)]
pub fn render_new_sign_in(
    from: &str,
    to: &str,
    hub: &str,
    device: &str,
    network: &str,
    when: &str,
    end_url: &str,
    ttl_secs: i64,
) -> OutgoingMail {
    let days = (ttl_secs / 86_400).max(1);
    let lead = format!(
        "Your {hub} account was just signed in to from a device we have not seen for you before: {device}, network {network}, at {when} (UTC)."
    );
    let if_you = "If that was you, there is nothing to do.".to_string();
    let if_not = format!(
        "Not you? End that session with the link below (it works once, for {days} days): it signs out that session and every session started after it. Then sign in again and change your password if you have one."
    );
    let text = format!("{lead}\n\n{if_you}\n\n{if_not}\n\nEnd that session: {end_url}\n");
    OutgoingMail {
        from: from_header(hub, from),
        to: to.to_string(),
        subject: format!("New sign-in to your {hub} account").replace(['\r', '\n'], " "),
        html: html_page(
            &[lead, if_you, if_not],
            Some(("Not you? End that session", end_url)),
        ),
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_carry_the_token_in_the_fragment() {
        assert_eq!(
            link_url("https://auth.example.com/", None, "T", None),
            "https://auth.example.com/m#token=T"
        );
        assert_eq!(
            link_url("https://auth.example.com", None, "T", Some("my-hub")),
            "https://auth.example.com/m#token=T&hub=my-hub"
        );
        assert_eq!(
            link_url(
                "https://x",
                Some("https://app.example.com/cb?a=1"),
                "T",
                Some("h")
            ),
            "https://app.example.com/cb?a=1#token=T"
        );
    }

    #[test]
    fn mail_names_the_hub_and_escapes_it() {
        let m = render(
            "no-reply@example.com",
            "m@example.com",
            "A <b>&\"Hub\"",
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
        assert!(m.html.contains("A &lt;b&gt;&amp;&quot;Hub&quot;"));
        assert!(!m.html.contains("<b>"));
        assert_eq!(m.from, "\"A <b>&\\\"Hub\\\"\" <no-reply@example.com>");
        let r = render(
            "f@example.com",
            "m@example.com",
            "Member Academy",
            LinkPurpose::EmailChange,
            "u",
            None,
            900,
        );
        assert_eq!(r.subject, "Confirm your new email for Member Academy");
        assert!(!r.text.contains("code") && !r.html.contains("code"));
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
