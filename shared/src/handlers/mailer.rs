//! The mailer: for each new mail job, decide which mail applies (new registration,
//! join, sign-in, an email change with its notice, a password notice, or none), create
//! the single-use token (hash at rest), send it through the `Mailer` port, and retire the
//! job. The raw token exists only here, in memory, and in the email.
//!
//! Rules that hold whatever the request path did (its hub cache may be a minute stale):
//! - a `redirect_url` is used only if the hub read here allows its origin now; otherwise
//!   the link goes to the hosted page (`/m`) and a warning is logged;
//! - sign-in and join mail goes to the contact's stored address, not the request's
//!   spelling; notices go to the stored (current) address;
//! - a sign-in link becomes the newest for its team and email only once SES accepted its
//!   mail, so a failed send leaves the previous link working;
//! - a permanent SES refusal drops that mail with a log line (job id, never the address);
//!   a transient failure fails the job, and the stream retries it.

use crate::app::App;
use crate::domain::model::{
    Contact, Hub, JobPurpose, LinkPurpose, MagicLink, MailJob, MembershipStatus,
};
use crate::domain::redirect::{origin_allowed, parse_redirect};
use crate::domain::secret::{hash_token, new_token};
use crate::errors::PortError;
use crate::ports::OutgoingMail;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent(LinkPurpose),
    /// A notice without a link (password set or changed).
    Notice,
    /// Nothing applies (unknown hub/team, not a member, banned, registration closed, a
    /// cancelled email change).
    Nothing,
    /// SES refused the mail for good; the job is dropped.
    Dropped,
    /// The job is gone: already processed (a redelivered stream record).
    AlreadyDone,
}

/// What a job resolves to: the hub named in the mail and the team the link is for.
struct Target {
    team_id: String,
    hub: Option<Hub>,
    display_name: String,
}

async fn resolve(
    app: &App,
    slug: Option<&str>,
    team_id: Option<&str>,
) -> Result<Option<Target>, PortError> {
    let store = app.store()?;
    if let Some(slug) = slug {
        return Ok(store.hub_by_slug(slug).await?.map(|hub| Target {
            team_id: hub.team_id.clone(),
            display_name: hub.title.clone(),
            hub: Some(hub),
        }));
    }
    let Some(team_id) = team_id else {
        return Ok(None);
    };
    let Some(team) = store.team(team_id).await? else {
        return Ok(None);
    };
    let hub = match &team.primary_hub_id {
        Some(h) => store.hub(h).await?,
        None => None,
    };
    Ok(Some(Target {
        team_id: team.team_id.clone(),
        display_name: hub
            .as_ref()
            .map(|h| h.title.clone())
            .unwrap_or(team.name.clone()),
        hub,
    }))
}

/// The redirect a link may carry: only one whose origin the hub (as read now) allows.
pub fn allowed_redirect(redirect_url: Option<&str>, hub: Option<&Hub>) -> Option<String> {
    let (url, origin) = parse_redirect(redirect_url?).ok()?;
    let hub = hub?;
    origin_allowed(&origin, &hub.allowed_redirect_origins).then_some(url)
}

/// What a sign-in job (register / magic) sends, from the contact and membership found.
pub fn sign_in_purpose(
    job: JobPurpose,
    contact_exists: bool,
    status: Option<MembershipStatus>,
    registration_open: bool,
) -> Option<LinkPurpose> {
    match (job, contact_exists, status) {
        (JobPurpose::Register | JobPurpose::Magic, true, Some(MembershipStatus::Active)) => {
            Some(LinkPurpose::SignIn)
        }
        (_, true, Some(MembershipStatus::Banned)) => None,
        (JobPurpose::Register, true, _) if registration_open => Some(LinkPurpose::Join),
        (JobPurpose::Register, false, _) if registration_open => Some(LinkPurpose::Register),
        _ => None,
    }
}

/// Sends one mail: `Ok(true)` accepted, `Ok(false)` refused for good (logged, dropped),
/// `Err` transient (the job is retried).
async fn send(app: &App, job_id: &str, mail: &OutgoingMail) -> Result<bool, PortError> {
    match app.mailer()?.send(mail).await {
        Ok(()) => Ok(true),
        Err(PortError::Permanent(reason)) => {
            tracing::error!(job_id = %job_id, reason = %reason, "mail refused by SES for good; dropped");
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

pub async fn process_job(app: &App, job_id: &str) -> Result<Outcome, PortError> {
    let store = app.store()?;
    // The table, not the stream record, is the truth: a retired job is not sent twice.
    let Some(job) = store.job(job_id).await? else {
        return Ok(Outcome::AlreadyDone);
    };
    let outcome = match resolve(app, job.slug.as_deref(), job.team_id.as_deref()).await? {
        None => Outcome::Nothing,
        Some(target) => match job.purpose {
            JobPurpose::Register | JobPurpose::Magic => sign_in_mail(app, &job, &target).await?,
            JobPurpose::EmailChange => email_change_mail(app, &job, &target).await?,
            JobPurpose::PasswordSetNotice | JobPurpose::PasswordChangeNotice => {
                password_notice(app, &job, &target).await?
            }
        },
    };
    store.delete_job(job_id).await?;
    tracing::info!(job_id = %job_id, outcome = ?outcome, "mail job done");
    Ok(outcome)
}

/// A new link for `purpose` and its raw token (the caller stores the link).
fn new_link(
    app: &App,
    purpose: LinkPurpose,
    target: &Target,
    to: (&str, &str),
    contact: Option<&Contact>,
    redirect_url: Option<String>,
    ttl: i64,
) -> Result<(String, MagicLink), PortError> {
    let token = new_token()?;
    let now = app.now();
    let link = MagicLink {
        token_hash: hash_token(&token),
        purpose,
        team_id: target.team_id.clone(),
        hub_id: target.hub.as_ref().map(|h| h.hub_id.clone()),
        email: to.0.to_string(),
        email_key: to.1.to_string(),
        contact_id: contact.map(|c| c.contact_id.clone()),
        redirect_url,
        created_at: now,
        expires_at: now + ttl,
        used_at: None,
        change_id: None,
        pw_version: None,
    };
    Ok((token, link))
}

async fn sign_in_mail(app: &App, job: &MailJob, target: &Target) -> Result<Outcome, PortError> {
    let store = app.store()?;
    let registration_open = target.hub.as_ref().is_none_or(|h| h.registration_enabled);
    let contact = match store.contact_id_by_email(&job.email_key).await? {
        Some(cid) => store.contact(&cid).await?,
        None => None,
    };
    let status = match &contact {
        Some(c) => store
            .membership(&c.contact_id, &target.team_id)
            .await?
            .map(|m| m.status),
        None => None,
    };
    let Some(purpose) = sign_in_purpose(job.purpose, contact.is_some(), status, registration_open)
    else {
        return Ok(Outcome::Nothing);
    };
    let redirect = allowed_redirect(job.redirect_url.as_deref(), target.hub.as_ref());
    if job.redirect_url.is_some() && redirect.is_none() {
        tracing::warn!(job_id = %job.job_id, "redirect_url no longer allowed by the hub: link goes to the hosted page");
    }
    // Existing contacts get mail at the address they verified, not as typed today.
    let to = match &contact {
        Some(c) => (c.email.as_str(), c.email_key.as_str()),
        None => (job.email.as_str(), job.email_key.as_str()),
    };
    let (token, link) = new_link(
        app,
        purpose,
        target,
        to,
        contact.as_ref(),
        redirect.clone(),
        app.config.magic_ttl,
    )?;
    store
        .put_magic_link(&link, contact.as_ref().map(|c| c.token_version))
        .await?;
    let url = link_url(&app.config.public_base_url, redirect.as_deref(), &token);
    let mail = render(
        &app.config.sender_address,
        to.0,
        &target.display_name,
        purpose,
        &url,
        app.config.magic_ttl,
    );
    if !send(app, &job.job_id, &mail).await? {
        return Ok(Outcome::Dropped);
    }
    // Only now does it replace the previous link (a failed send left that one working).
    store.make_newest(&link).await?;
    Ok(Outcome::Sent(purpose))
}

/// An email change: a notice with an undo link to the current address, then the
/// confirmation link to the new one — only while the job's change is still the pending
/// one and the contact still an active member.
async fn email_change_mail(
    app: &App,
    job: &MailJob,
    target: &Target,
) -> Result<Outcome, PortError> {
    let store = app.store()?;
    let (Some(cid), Some(change_id)) = (&job.contact_id, &job.change_id) else {
        return Ok(Outcome::Nothing);
    };
    let Some(contact) = store.contact(cid).await? else {
        return Ok(Outcome::Nothing);
    };
    let active = store
        .membership(cid, &target.team_id)
        .await?
        .is_some_and(|m| m.status == MembershipStatus::Active);
    if !active || contact.email_change_id.as_deref() != Some(change_id.as_str()) {
        return Ok(Outcome::Nothing);
    }
    // 1. The notice to the current address, with the undo link (7 days).
    let change = (change_id.clone(), job.pw_version.unwrap_or(0));
    let to_current = (contact.email.as_str(), contact.email_key.as_str());
    let undo_token = change_link(
        app,
        LinkPurpose::EmailChangeUndo,
        target,
        to_current,
        &contact,
        &change,
    )
    .await?;
    // `&action=undo` tells the hosted page which words to put on its button.
    let undo_url = format!(
        "{}&action=undo",
        link_url(&app.config.public_base_url, None, &undo_token)
    );
    let notice = render_email_change_notice(
        &app.config.sender_address,
        &contact.email,
        &target.display_name,
        &job.email,
        &undo_url,
        app.config.undo_ttl,
    );
    send(app, &job.job_id, &notice).await?;
    // 2. The confirmation link to the new address.
    let to_new = (job.email.as_str(), job.email_key.as_str());
    let token = change_link(
        app,
        LinkPurpose::EmailChange,
        target,
        to_new,
        &contact,
        &change,
    )
    .await?;
    let url = link_url(&app.config.public_base_url, None, &token);
    let mail = render(
        &app.config.sender_address,
        &job.email,
        &target.display_name,
        LinkPurpose::EmailChange,
        &url,
        app.config.magic_ttl,
    );
    if !send(app, &job.job_id, &mail).await? {
        return Ok(Outcome::Dropped);
    }
    Ok(Outcome::Sent(LinkPurpose::EmailChange))
}

/// A stored link of an email change (its confirmation or its undo), bound to the change
/// id and, for the undo, to the password version at the request. Returns the raw token.
async fn change_link(
    app: &App,
    purpose: LinkPurpose,
    target: &Target,
    to: (&str, &str),
    contact: &Contact,
    (change_id, pw_version): &(String, u64),
) -> Result<String, PortError> {
    let ttl = match purpose {
        LinkPurpose::EmailChangeUndo => app.config.undo_ttl,
        _ => app.config.magic_ttl,
    };
    let (token, mut link) = new_link(app, purpose, target, to, Some(contact), None, ttl)?;
    link.change_id = Some(change_id.clone());
    if purpose == LinkPurpose::EmailChangeUndo {
        link.pw_version = Some(*pw_version);
    }
    app.store()?
        .put_magic_link(&link, Some(contact.token_version))
        .await?;
    Ok(token)
}

async fn password_notice(app: &App, job: &MailJob, target: &Target) -> Result<Outcome, PortError> {
    let Some(cid) = &job.contact_id else {
        return Ok(Outcome::Nothing);
    };
    let Some(contact) = app.store()?.contact(cid).await? else {
        return Ok(Outcome::Nothing);
    };
    let mail = render_password_notice(
        &app.config.sender_address,
        &contact.email,
        &target.display_name,
        job.purpose == JobPurpose::PasswordSetNotice,
        &app.config.public_base_url,
    );
    Ok(if send(app, &job.job_id, &mail).await? {
        Outcome::Notice
    } else {
        Outcome::Dropped
    })
}

/// `<redirect_url>#token=…` when one is bound, else the hosted page.
pub fn link_url(public_base_url: &str, redirect_url: Option<&str>, token: &str) -> String {
    match redirect_url {
        Some(r) => format!("{r}#token={token}"),
        None => format!("{}/m#token={token}", public_base_url.trim_end_matches('/')),
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

/// The email: a text part and an HTML part naming the hub.
pub fn render(
    from: &str,
    to: &str,
    hub: &str,
    purpose: LinkPurpose,
    url: &str,
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
    };
    let note = format!(
        "The link works once and expires in {minutes} minutes. If you did not ask for it, you can ignore this email."
    );
    let text = format!("{lead}\n\n{action}: {url}\n\n{note}\n");
    let (h_lead, h_url, h_note, h_action) = (
        escape_html(&lead),
        escape_html(url),
        escape_html(&note),
        escape_html(action),
    );
    let html = format!(
        "<!doctype html><html><body style=\"font-family:system-ui,sans-serif;color:#1d2330\">\
         <p>{h_lead}</p>\
         <p><a href=\"{h_url}\" style=\"display:inline-block;padding:10px 16px;background:#2f5bea;color:#fff;border-radius:6px;text-decoration:none\">{h_action}</a></p>\
         <p style=\"font-size:13px;color:#555\">Or paste this link into your browser:<br>{h_url}</p>\
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
        "If it was not you, undo it with the link below (it works for {days} days, also after the change): it keeps this address, signs out every session and removes a password set since the request."
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_carry_the_token_in_the_fragment() {
        assert_eq!(
            link_url("https://auth.example.com/", None, "T"),
            "https://auth.example.com/m#token=T"
        );
        assert_eq!(
            link_url("https://x", Some("https://app.example.com/cb?a=1"), "T"),
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
            900,
        );
        assert_eq!(m.subject, "Sign in to A <b>&\"Hub\"");
        assert!(m.text.contains("https://x/m#token=T"));
        assert!(m.text.contains("15 minutes"));
        assert!(m.html.contains("A &lt;b&gt;&amp;&quot;Hub&quot;"));
        assert!(!m.html.contains("<b>"));
        assert_eq!(m.from, "\"A <b>&\\\"Hub\\\"\" <no-reply@example.com>");
        let r = render(
            "f@example.com",
            "m@example.com",
            "Member Academy",
            LinkPurpose::Register,
            "u",
            900,
        );
        assert_eq!(r.subject, "Confirm your email for Member Academy");
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

    #[test]
    fn redirects_are_used_only_when_the_hub_allows_them_now() {
        let hub = Hub {
            hub_id: "h".into(),
            slug: "s".into(),
            team_id: "t".into(),
            title: "T".into(),
            allowed_redirect_origins: vec!["https://app.example.com".into()],
            registration_enabled: true,
        };
        assert_eq!(
            allowed_redirect(Some("https://app.example.com/cb"), Some(&hub)).as_deref(),
            Some("https://app.example.com/cb")
        );
        assert_eq!(
            allowed_redirect(Some("https://evil.example/cb"), Some(&hub)),
            None
        );
        assert_eq!(
            allowed_redirect(Some("https://app.example.com/cb"), None),
            None
        );
        assert_eq!(allowed_redirect(None, Some(&hub)), None);
    }

    #[test]
    fn sign_in_purposes() {
        use MembershipStatus::*;
        let p = sign_in_purpose;
        assert_eq!(
            p(JobPurpose::Magic, true, Some(Active), true),
            Some(LinkPurpose::SignIn)
        );
        assert_eq!(
            p(JobPurpose::Register, true, Some(Active), false),
            Some(LinkPurpose::SignIn)
        );
        assert_eq!(p(JobPurpose::Register, true, Some(Banned), true), None);
        assert_eq!(p(JobPurpose::Magic, true, Some(Banned), true), None);
        assert_eq!(
            p(JobPurpose::Register, true, Some(Left), true),
            Some(LinkPurpose::Join)
        );
        assert_eq!(
            p(JobPurpose::Register, true, None, true),
            Some(LinkPurpose::Join)
        );
        assert_eq!(p(JobPurpose::Register, true, None, false), None);
        assert_eq!(
            p(JobPurpose::Register, false, None, true),
            Some(LinkPurpose::Register)
        );
        assert_eq!(p(JobPurpose::Register, false, None, false), None);
        assert_eq!(p(JobPurpose::Magic, false, None, true), None);
        assert_eq!(p(JobPurpose::EmailChange, true, Some(Active), true), None);
    }
}
