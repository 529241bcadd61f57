//! The mailer: for each new mail job, decide which mail applies (new registration,
//! join, sign-in, or none), create the single-use token (hash at rest, newest
//! supersedes older), send it through the `Mailer` port, and retire the job.
//! The raw token exists only here, in memory, and in the email.

use crate::app::App;
use crate::domain::model::{Hub, JobPurpose, LinkPurpose, MagicLink, MembershipStatus};
use crate::domain::secret::{hash_token, new_token};
use crate::errors::PortError;
use crate::ports::OutgoingMail;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent(LinkPurpose),
    /// Nothing applies (unknown hub/team, not a member, banned, registration closed).
    Nothing,
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

pub async fn process_job(app: &App, job_id: &str) -> Result<Outcome, PortError> {
    let store = app.store()?;
    // The table, not the stream record, is the truth: a retired job is not sent twice.
    let Some(job) = store.job(job_id).await? else {
        return Ok(Outcome::AlreadyDone);
    };
    let outcome = match resolve(app, job.slug.as_deref(), job.team_id.as_deref()).await? {
        None => Outcome::Nothing,
        Some(target) => {
            let registration_open = target.hub.as_ref().is_none_or(|h| h.registration_enabled);
            // An address change concerns the requesting contact, not the address's owner.
            let contact_id = match (job.purpose, &job.contact_id) {
                (JobPurpose::EmailChange, Some(cid)) => Some(cid.clone()),
                (JobPurpose::EmailChange, None) => None,
                _ => store.contact_id_by_email(&job.email_key).await?,
            };
            let (contact, membership) = match &contact_id {
                Some(cid) => (
                    store.contact(cid).await?,
                    store.membership(cid, &target.team_id).await?,
                ),
                None => (None, None),
            };
            let status = membership.map(|m| m.status);
            let purpose = match (job.purpose, &contact, status) {
                (JobPurpose::EmailChange, Some(_), Some(MembershipStatus::Active)) => {
                    Some(LinkPurpose::EmailChange)
                }
                (JobPurpose::EmailChange, _, _) => None,
                (_, Some(_), Some(MembershipStatus::Active)) => Some(LinkPurpose::SignIn),
                (_, Some(_), Some(MembershipStatus::Banned)) => None,
                (JobPurpose::Register, Some(_), _) if registration_open => Some(LinkPurpose::Join),
                (JobPurpose::Register, None, _) if registration_open => Some(LinkPurpose::Register),
                _ => None,
            };
            match purpose {
                None => Outcome::Nothing,
                Some(purpose) => {
                    let token = new_token()?;
                    let now = app.now();
                    let link = MagicLink {
                        token_hash: hash_token(&token),
                        purpose,
                        team_id: target.team_id.clone(),
                        hub_id: target.hub.as_ref().map(|h| h.hub_id.clone()),
                        email: job.email.clone(),
                        email_key: job.email_key.clone(),
                        contact_id: contact.as_ref().map(|c| c.contact_id.clone()),
                        redirect_url: job.redirect_url.clone(),
                        created_at: now,
                        expires_at: now + app.config.magic_ttl,
                        used_at: None,
                    };
                    store
                        .put_magic_link(&link, contact.as_ref().map(|c| c.token_version))
                        .await?;
                    let url = link_url(
                        &app.config.public_base_url,
                        job.redirect_url.as_deref(),
                        &token,
                    );
                    let mail = render(
                        &app.config.sender_address,
                        &job.email,
                        &target.display_name,
                        purpose,
                        &url,
                        app.config.magic_ttl,
                    );
                    app.mailer()?.send(&mail).await?;
                    Outcome::Sent(purpose)
                }
            }
        }
    };
    store.delete_job(job_id).await?;
    tracing::info!(job_id = %job_id, outcome = ?outcome, "mail job done");
    Ok(outcome)
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
    let from = format!("\"{}\" <{from}>", hub.replace(['"', '\\', '\r', '\n'], ""));
    OutgoingMail {
        from,
        to: to.to_string(),
        subject: subject.replace(['\r', '\n'], " "),
        text,
        html,
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
        assert_eq!(m.from, "\"A <b>&Hub\" <no-reply@example.com>");
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
}
