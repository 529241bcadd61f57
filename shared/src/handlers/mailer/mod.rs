//! The mailer: for each new mail job, decide which mail applies (new registration,
//! join, sign-in, an email change with its notice, a password notice, or none), create
//! the single-use token (hash at rest) and, for sign-in mail, its 6-digit code (keyed hash
//! at rest), send it through the `Mailer` port, and retire the job. The raw token and
//! code exist only here, in memory, and in the email. Both are derived from the job id
//! with the link key (`code::link_secrets`), so a retried job resends the same link and
//! code rather than superseding the mail it may already have delivered.
//!
//! Rules that hold whatever the request path did (its hub cache may be a minute stale):
//! - a `redirect_url` is used only if the hub read here allows its origin now; otherwise
//!   the link goes to the hosted page (`/m`) and a warning is logged;
//! - sign-in and join mail goes to the contact's stored address, not the request's
//!   spelling; notices go to the stored (current) address;
//! - a sign-in link becomes the newest for its team and email only once SES accepted its
//!   mail, so a failed send leaves the previous link working;
//! - a permanent SES refusal drops that mail with a log line (job id, never the address);
//!   a transient failure fails the job, and the stream retries it;
//! - every send first takes a slot of the account's send rate (`SES_MAX_SEND_RATE` per
//!   second, counted in the table, so shared by every instance), waiting for the next
//!   second when there is none; a send SES still throttles is tried again after a
//!   jittered back-off;
//! - when SES says the account's sending stopped (daily quota, paused, suspended), the job
//!   is parked, not failed: it stays in the table (`MailFailures{Kind=paused}` alarms) for
//!   `contact-auth-admin redrive`, instead of retrying into the dead-letter queue;
//! - a sign-in or registration job older than the link lifetime is dropped
//!   (`MailJobs{Outcome=expired}`): its link would be dead before or soon after it arrives;
//! - nothing goes to an address SES reported bouncing, and only security notices go to one
//!   whose owner complained (`domain::suppression::may_send`; written by `ses-events`):
//!   `MailJobs{Outcome=suppressed}`. Checked at each send, and a stored link that was not
//!   mailed never becomes the newest.

pub mod render;

use crate::app::App;
use crate::domain::branding::sender_allowed;
use crate::domain::code::{code_hash, link_secrets, LinkKey, SignInCode};
use crate::domain::email::{parse_email, EmailKey};
use crate::domain::i18n::choose;
use crate::domain::ids::TeamId;
use crate::domain::jwt::KeySet;
use crate::domain::model::{
    Contact, Hub, JobPurpose, LinkPurpose, MagicLink, MailJob, MembershipStatus, Team,
};
use crate::domain::rate::{trusted, IpBudget};
use crate::domain::redirect::{origin_allowed, parse_redirect};
use crate::domain::secret::RawToken;
use crate::domain::suppression::may_send;
use crate::errors::PortError;
use crate::metrics::{self, Event, FailureKind, Limit};
use crate::ports::{
    Attempts, Contacts, Counter, Directory, MagicLinks, MailJobs, Mailer, OutgoingMail, Reserved,
    Sessions, Suppressions,
};
use render::{
    link_url, render, render_email_change_notice, render_email_changed_notice, render_new_sign_in,
    render_password_notice, Look,
};

/// What the mailer reads and writes: hubs and teams, jobs, contacts, links, and the
/// counters of the per-IP mail budgets and the send-rate governor.
pub trait MailerStore:
    Directory + MailJobs + Contacts + MagicLinks + Attempts + Suppressions + Sessions
{
}
impl<T: Directory + MailJobs + Contacts + MagicLinks + Attempts + Suppressions + Sessions>
    MailerStore for T
{
}

/// The mailer's state: the table, the keys (only their link keys: a job's token and code
/// are derived from its id) and the mail sender.
pub type MailerApp<S, M> = App<S, KeySet, M>;

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
    /// SES stopped the account's sending: the job is kept for a redrive.
    Parked,
    /// A sign-in job older than the link lifetime: dropped.
    Expired,
    /// The request's source IP is over its mail budget (new addresses, or sign-in mail):
    /// nothing is sent (the request already answered 202).
    Limited,
    /// SES reported the address undeliverable (a permanent bounce or a complaint):
    /// nothing is sent.
    Suppressed,
    /// The job is gone: already processed (a redelivered stream record).
    AlreadyDone,
}

impl Outcome {
    /// The `Outcome` dimension of the `MailJobs` metric.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Sent(_) => "sent",
            Outcome::Notice => "notice",
            Outcome::Nothing => "nothing",
            Outcome::Dropped => "dropped",
            Outcome::Parked => "parked",
            Outcome::Expired => "expired",
            Outcome::Limited => "limited",
            Outcome::Suppressed => "suppressed",
            Outcome::AlreadyDone => "already_done",
        }
    }
}

/// What a job resolves to: the hub named in the mail and the team the link is for.
struct Target {
    team_id: TeamId,
    hub: Option<Hub>,
    /// The team: its own sender address, if any.
    team: Option<Team>,
    display_name: String,
}

impl Target {
    /// The name the mail goes by: the hub's branded name, else its title (or the team's).
    fn name(&self) -> &str {
        self.hub
            .as_ref()
            .and_then(|h| h.branding.display_name.as_deref())
            .unwrap_or(&self.display_name)
    }

    /// The mail's language (`i18n::choose`: the request's `locale`, the member's, the
    /// request's Accept-Language, the hub's default) and the hub's branding; from the
    /// team's own sender address when the deployment allows it.
    fn look<'a, S, M>(
        &'a self,
        app: &'a MailerApp<S, M>,
        job: &MailJob,
        contact: Option<&Contact>,
    ) -> Look<'a> {
        let branding = self.hub.as_ref().map(|h| &h.branding);
        let locale = choose(
            job.locale,
            contact.and_then(|c| c.locale),
            job.accept_language.as_deref(),
            branding.and_then(|b| b.default_locale),
        );
        let from = self
            .team
            .as_ref()
            .and_then(|t| t.sender_address.as_deref())
            .filter(|a| sender_allowed(a, &app.config.team_sender_patterns))
            .unwrap_or(&app.config.sender_address);
        Look::new(locale, &self.display_name, branding, from)
    }
}

async fn resolve<S: MailerStore, M>(
    app: &MailerApp<S, M>,
    slug: Option<&str>,
    team_id: Option<&TeamId>,
) -> Result<Option<Target>, PortError> {
    let store = &app.store;
    if let Some(slug) = slug {
        let Some(hub) = store.hub_by_slug(slug).await? else {
            return Ok(None);
        };
        return Ok(Some(Target {
            team_id: hub.team_id.clone(),
            team: store.team(&hub.team_id).await?,
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
        team: Some(team),
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

/// How often a send SES throttles is tried again (back-off 200 ms doubling to 3.2 s, with
/// jitter: about 10 s in all) before the job fails and the stream retries it.
const THROTTLED_SENDS: u32 = 8;

/// How long the governor waits for a send slot before the job fails (and is retried).
const GOVERNOR_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

fn jitter_ms(max: u64) -> u64 {
    let mut b = [0u8; 2];
    let _ = getrandom::getrandom(&mut b);
    u64::from(u16::from_le_bytes(b)) % max.max(1)
}

/// Takes one slot of the account's send rate for the current second (a counter in the
/// table, shared by every mailer instance); without one, waits for the next second. Wall
/// time, not the app's clock: it paces real calls to SES.
async fn send_slot<S: Attempts, M>(app: &MailerApp<S, M>) -> Result<(), PortError> {
    let rate = app.config.ses_max_send_rate;
    if rate == 0 {
        return Ok(());
    }
    let started = std::time::Instant::now();
    loop {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let second = now_ms / 1000;
        let slot = Counter {
            key: format!("ses-send#{second}"),
            expires_at: second + 60,
        };
        // A throttled or unreachable table is waited out like a full second.
        let taken = match app.store.reserve_attempts(&[(slot, rate)], second).await {
            Ok(Reserved::Ok) => return Ok(()),
            Ok(Reserved::Limited { .. }) | Err(PortError::Unavailable(_)) => false,
            Err(e) => return Err(e),
        };
        if !taken && started.elapsed() >= GOVERNOR_WAIT {
            return Err(PortError::Unavailable(
                "ses governor: no send slot in time".into(),
            ));
        }
        // Into the next second, spread over its first half: waiters do not all wake at
        // its first millisecond.
        let wait = (1000 - now_ms.rem_euclid(1000)) as u64 + jitter_ms(500);
        tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
    }
}

/// What became of one mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    Accepted,
    /// SES refused it for good (logged, dropped).
    Refused,
    /// The address is suppressed: not sent.
    Suppressed,
}

impl Sent {
    /// The job's outcome when this was its mail.
    fn outcome(self, accepted: Outcome) -> Outcome {
        match self {
            Sent::Accepted => accepted,
            Sent::Refused => Outcome::Dropped,
            Sent::Suppressed => Outcome::Suppressed,
        }
    }
}

/// Sends one mail unless its address is suppressed (`notice`: a security notice, which
/// still goes to an address that complained: `suppression::may_send`); `Err` when it
/// could not be sent now (`Paused`: the caller parks the job; anything else: retried).
async fn send<S: Attempts + Suppressions, M: Mailer>(
    app: &MailerApp<S, M>,
    job_id: &str,
    mail: &OutgoingMail,
    notice: bool,
) -> Result<Sent, PortError> {
    // Every address the mailer writes to is one `parse_email` made (a stored address or
    // a job's); one that no longer parses has no key to be suppressed under.
    if let Ok(to) = parse_email(&mail.to) {
        if !may_send(app.store.suppressed(&to.key).await?, notice) {
            tracing::info!(job_id = %job_id, "address reported undeliverable by SES: not sent");
            return Ok(Sent::Suppressed);
        }
    }
    let mut backoff = 200u64;
    for _ in 0..THROTTLED_SENDS {
        send_slot(app).await?;
        match app.mailer.send(mail).await {
            Ok(()) => {
                metrics::record(Event::MailSent);
                return Ok(Sent::Accepted);
            }
            Err(PortError::Permanent(reason)) => {
                metrics::record(Event::MailFailed(FailureKind::Permanent));
                tracing::error!(job_id = %job_id, reason = %reason, "mail refused by SES for good; dropped");
                return Ok(Sent::Refused);
            }
            Err(PortError::Throttled(_)) => {
                metrics::record(Event::MailFailed(FailureKind::Throttled));
                let wait = backoff + jitter_ms(backoff);
                tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                backoff = (backoff * 2).min(3_200);
            }
            Err(e @ PortError::Paused(_)) => {
                metrics::record(Event::MailFailed(FailureKind::Paused));
                return Err(e);
            }
            Err(e) => {
                metrics::record(Event::MailFailed(FailureKind::Transient));
                return Err(e);
            }
        }
    }
    metrics::record(Event::MailFailed(FailureKind::Transient));
    Err(PortError::Unavailable("ses send: still throttled".into()))
}

pub async fn process_job<S: MailerStore, M: Mailer>(
    app: &MailerApp<S, M>,
    job_id: &str,
) -> Result<Outcome, PortError> {
    let store = &app.store;
    // The table, not the stream record, is the truth: a retired job is not sent twice.
    let Some(job) = store.job(job_id).await? else {
        return Ok(Outcome::AlreadyDone);
    };
    let outcome = if job.sign_in_expired(app.config.magic_ttl, app.now()) {
        // Asked for a link lifetime ago: the member has given up on it or asked again.
        tracing::warn!(job_id = %job_id, "sign-in job older than the link lifetime: dropped");
        Outcome::Expired
    } else {
        match mail_for(app, &job).await {
            Ok(outcome) => outcome,
            Err(PortError::Paused(reason)) => {
                store.park_job(job_id, &reason, app.now()).await?;
                tracing::error!(job_id = %job_id, reason = %reason, "SES stopped the account's sending: job parked for a redrive");
                return Ok(Outcome::Parked);
            }
            Err(e) => return Err(e),
        }
    };
    store.delete_job(job_id).await?;
    tracing::info!(job_id = %job_id, outcome = ?outcome, "mail job done");
    Ok(outcome)
}

/// The mail a job asks for, sent (or the reason none is).
async fn mail_for<S: MailerStore, M: Mailer>(
    app: &MailerApp<S, M>,
    job: &MailJob,
) -> Result<Outcome, PortError> {
    Ok(
        match resolve(app, job.slug.as_deref(), job.team_id.as_ref()).await? {
            None => Outcome::Nothing,
            Some(target) => match job.purpose {
                JobPurpose::Register | JobPurpose::Magic => sign_in_mail(app, job, &target).await?,
                JobPurpose::EmailChange => email_change_mail(app, job, &target).await?,
                JobPurpose::PasswordSetNotice | JobPurpose::PasswordChangeNotice => {
                    password_notice(app, job, &target).await?
                }
                JobPurpose::EmailChangedNotice => email_changed_notice(app, job, &target).await?,
                JobPurpose::NewSignInNotice => new_sign_in_notice(app, job, &target).await?,
            },
        },
    )
}

/// The token and code of one link of a job (`label` tells a job's links apart), and the
/// link key that made them (read once: a key reread in between cannot split them).
fn job_secrets<S, M>(
    app: &MailerApp<S, M>,
    job: &MailJob,
    label: &str,
) -> (RawToken, SignInCode, LinkKey) {
    let key = app.keys.link().active;
    let (token, code) = link_secrets(&key, &format!("{}/{label}", job.job_id));
    (token, code, key)
}

/// A new link for `purpose` with `token` (the caller stores the link).
#[allow(clippy::too_many_arguments)]
fn new_link<S, M>(
    app: &MailerApp<S, M>,
    token: &RawToken,
    purpose: LinkPurpose,
    target: &Target,
    to: (&str, &EmailKey),
    contact: Option<&Contact>,
    redirect_url: Option<String>,
    ttl: i64,
) -> MagicLink {
    let now = app.now();
    MagicLink {
        token_hash: token.hash(),
        purpose,
        team_id: target.team_id.clone(),
        hub_id: target.hub.as_ref().map(|h| h.hub_id.clone()),
        email: to.0.to_string(),
        email_key: to.1.clone(),
        contact_id: contact.map(|c| c.contact_id.clone()),
        redirect_url,
        created_at: now,
        expires_at: now + ttl,
        used_at: None,
        change_id: None,
        pw_version: None,
        chain_id: None,
        key_id: None,
        code_hash: None,
        code_attempts: 0,
        code_challenge: None,
        locale: None,
    }
}

async fn sign_in_mail<S: MailerStore, M: Mailer>(
    app: &MailerApp<S, M>,
    job: &MailJob,
    target: &Target,
) -> Result<Outcome, PortError> {
    let store = &app.store;
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
        Some(c) => (c.email.as_str(), &c.email_key),
        None => (job.email.as_str(), &job.email_key),
    };
    let (token, code, key) = job_secrets(app, job, "sign-in");
    let mut link = new_link(
        app,
        &token,
        purpose,
        target,
        to,
        contact.as_ref(),
        redirect,
        app.config.magic_ttl,
    );
    link.key_id = Some(key.id());
    link.code_hash = Some(code_hash(&key, &link.token_hash, &code));
    link.code_challenge = job.code_challenge.clone();
    link.locale = job.locale;
    // Ordered by the request, not by when a (concurrent) mailer got to it: the link of
    // the newest request becomes the newest (`make_newest`), whatever order jobs finish in.
    link.created_at = job.created_at;
    if !store
        .put_magic_link(&link, contact.as_ref().map(|c| c.token_version))
        .await?
    {
        // A retry of this job: its link (same token, same code) is stored already. Resend
        // it as stored, unless it was used meanwhile (the first mail got through). Its
        // mail budget was counted by the first attempt.
        match store.magic_link(&link.token_hash).await? {
            Some((stored, _)) if stored.used_at.is_none() => link = stored,
            _ => return Ok(Outcome::Nothing),
        }
    } else if !within_mail_budget(app, job, target, purpose).await? {
        // The stored link is never mailed and never becomes the newest: it just expires.
        return Ok(Outcome::Limited);
    }
    let look = target.look(app, job, contact.as_ref());
    let url = link_url(
        &app.config.public_base_url,
        link.redirect_url.as_deref(),
        token.expose(),
        target.hub.as_ref().map(|h| h.slug.as_str()),
        look.texts.locale,
    );
    let mail = render(
        &look,
        to.0,
        link.purpose,
        &url,
        Some(&code.display()),
        app.config.magic_ttl,
    );
    let sent = send(app, &job.job_id, &mail, false).await?;
    if sent != Sent::Accepted {
        return Ok(sent.outcome(Outcome::Sent(link.purpose)));
    }
    // Only now does it replace the previous link (a failed send left that one working).
    store.make_newest(&link).await?;
    Ok(Outcome::Sent(link.purpose))
}

/// The per-IP mail budget of the job's request. Every sign-in job from an IP counts on
/// one counter (per minute of the request), whatever it finds; the limit it is held to depends on what it sends:
/// strict (30 a minute) for a registration to an address without an account, loose (600)
/// for mail to a contact. Counting every job the same way matters: were only new
/// addresses counted on the strict counter, an attacker could ask for a victim's address
/// and 30 of their own in one minute and learn from the 30th mail whether the victim has
/// an account. A source inside one of the hub's trusted networks is exempt — only when
/// the request named the hub by slug, as on the request side — and so is a job without a
/// source (a redrive: counted when it first ran).
async fn within_mail_budget<S: MailerStore, M>(
    app: &MailerApp<S, M>,
    job: &MailJob,
    target: &Target,
    purpose: LinkPurpose,
) -> Result<bool, PortError> {
    let Some(ip) = job.source_ip.as_deref() else {
        return Ok(true);
    };
    let trusted_hub = target.hub.as_ref().filter(|_| job.slug.is_some());
    if trusted_hub.is_some_and(|h| trusted(&h.trusted_cidrs, ip)) {
        return Ok(true);
    }
    let (budget, limit) = match purpose {
        LinkPurpose::Register => (IpBudget::NewAddressMail, Limit::NewAddressMail),
        _ => (IpBudget::SignInMail, Limit::SignInMail),
    };
    // Counted in the request's window, like the per-IP ceiling that admitted the request
    // (a backlog must not crowd two request-minutes into one), and kept an hour past that
    // window's end or now, whichever is later: TTL deletion is lazy but may come any time
    // after `expires_at`, and would reset a delayed crowd's count.
    let window = budget.counter(ip, job.created_at);
    let counter = Counter {
        expires_at: window.expires_at.max(app.now()) + 3600,
        ..window
    };
    let count = app.store.count_event(&counter).await?;
    if count <= u64::from(budget.limit(&app.config)) {
        return Ok(true);
    }
    metrics::record(Event::RateLimited(limit));
    tracing::warn!(job_id = %job.job_id, budget = ?budget, "per-IP mail budget reached: not sent");
    Ok(false)
}

/// An email change: a notice with an undo link to the current address, then the
/// confirmation link to the new one — only while the job's change is still the pending
/// one and the contact still an active member.
async fn email_change_mail<S: MailerStore, M: Mailer>(
    app: &MailerApp<S, M>,
    job: &MailJob,
    target: &Target,
) -> Result<Outcome, PortError> {
    let store = &app.store;
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
    // 1. The notice to the address the undo chain started from (the current one for the
    // first change of a chain), with the undo link (7 days).
    let Some(chain) = contact.undo_chain.clone() else {
        return Ok(Outcome::Nothing);
    };
    let change = (change_id.clone(), job.pw_version.unwrap_or(0));
    let to_origin = (chain.origin_email.as_str(), &chain.origin_key);
    let undo_token = change_link(
        app,
        job,
        LinkPurpose::EmailChangeUndo,
        target,
        to_origin,
        &contact,
        &change,
    )
    .await?;
    // `&action=undo` tells the hosted page which words to put on its button.
    let look = target.look(app, job, Some(&contact));
    let undo_url = format!(
        "{}&action=undo",
        link_url(
            &app.config.public_base_url,
            None,
            undo_token.expose(),
            None,
            look.texts.locale
        )
    );
    let notice = render_email_change_notice(
        &look,
        &chain.origin_email,
        &job.email,
        &undo_url,
        app.config.undo_ttl,
    );
    send(app, &job.job_id, &notice, true).await?;
    // 2. The confirmation link to the new address.
    let to_new = (job.email.as_str(), &job.email_key);
    let token = change_link(
        app,
        job,
        LinkPurpose::EmailChange,
        target,
        to_new,
        &contact,
        &change,
    )
    .await?;
    let url = link_url(
        &app.config.public_base_url,
        None,
        token.expose(),
        None,
        look.texts.locale,
    );
    let mail = render(
        &look,
        &job.email,
        LinkPurpose::EmailChange,
        &url,
        None,
        app.config.magic_ttl,
    );
    Ok(send(app, &job.job_id, &mail, false)
        .await?
        .outcome(Outcome::Sent(LinkPurpose::EmailChange)))
}

/// A stored link of an email change (its confirmation or its undo), bound to the change
/// id and, for the undo, to the password version at the request. Returns the raw token.
async fn change_link<S: MailerStore, M>(
    app: &MailerApp<S, M>,
    job: &MailJob,
    purpose: LinkPurpose,
    target: &Target,
    to: (&str, &EmailKey),
    contact: &Contact,
    (change_id, pw_version): &(String, u64),
) -> Result<RawToken, PortError> {
    let ttl = match purpose {
        LinkPurpose::EmailChangeUndo => app.config.undo_ttl,
        _ => app.config.magic_ttl,
    };
    let label = match purpose {
        LinkPurpose::EmailChangeUndo => "undo",
        _ => "confirm",
    };
    let (token, _, key) = job_secrets(app, job, label);
    let mut link = new_link(app, &token, purpose, target, to, Some(contact), None, ttl);
    link.key_id = Some(key.id());
    link.change_id = Some(change_id.clone());
    if purpose == LinkPurpose::EmailChangeUndo {
        link.pw_version = Some(*pw_version);
        link.chain_id = contact.undo_chain.as_ref().map(|c| c.chain_id.clone());
    }
    // False on a retry of the job: the same link is stored already.
    app.store
        .put_magic_link(&link, Some(contact.token_version))
        .await?;
    Ok(token)
}

/// "This address is now on this account", to the address an email change moved the
/// contact to, naming the hubs of its active memberships — only while the account is
/// still on that address (an undo since makes it untrue).
async fn email_changed_notice<S: MailerStore, M: Mailer>(
    app: &MailerApp<S, M>,
    job: &MailJob,
    target: &Target,
) -> Result<Outcome, PortError> {
    let store = &app.store;
    let Some(cid) = &job.contact_id else {
        return Ok(Outcome::Nothing);
    };
    let Some(contact) = store.contact(cid).await? else {
        return Ok(Outcome::Nothing);
    };
    if contact.email_key != job.email_key {
        return Ok(Outcome::Nothing);
    }
    let mut hubs = vec![];
    for m in store.memberships(cid).await? {
        if m.status != MembershipStatus::Active {
            continue;
        }
        if let Some(t) = resolve(app, None, Some(&m.team_id)).await? {
            hubs.push(t.name().to_string());
        }
    }
    let mail = render_email_changed_notice(
        &target.look(app, job, Some(&contact)),
        &contact.email,
        &hubs,
        &app.config.public_base_url,
    );
    Ok(send(app, &job.job_id, &mail, true)
        .await?
        .outcome(Outcome::Notice))
}

async fn password_notice<S: MailerStore, M: Mailer>(
    app: &MailerApp<S, M>,
    job: &MailJob,
    target: &Target,
) -> Result<Outcome, PortError> {
    let Some(cid) = &job.contact_id else {
        return Ok(Outcome::Nothing);
    };
    let Some(contact) = app.store.contact(cid).await? else {
        return Ok(Outcome::Nothing);
    };
    let mail = render_password_notice(
        &target.look(app, job, Some(&contact)),
        &contact.email,
        job.purpose == JobPurpose::PasswordSetNotice,
        &app.config.public_base_url,
    );
    Ok(send(app, &job.job_id, &mail, true)
        .await?
        .outcome(Outcome::Notice))
}

/// "Firefox on Linux" in the mail's language (`mail.device.*`).
fn device_in(look: &Look, user_agent: &str) -> String {
    match crate::domain::session::device_parts(user_agent) {
        (Some(b), Some(o)) => look
            .texts
            .fill("mail.device.both", &[("browser", b), ("os", o)]),
        (Some(one), None) | (None, Some(one)) => one.to_string(),
        (None, None) => look.texts.get("mail.device.unknown").to_string(),
    }
}

/// How many new-sign-in notices a member gets an hour at most (a burst of sign-ins from new
/// places is one story; the rest are counted, not mailed).
pub const NEW_SIGN_IN_NOTICES_PER_HOUR: u64 = 3;

/// A sign-in by an existing member: when its device and network are new to the member
/// (`domain::session::new_device`), a notice with a one-use "Not you? End that session"
/// link (`LinkPurpose::EndSessions`, valid as long as an undo link). Nothing when the
/// session ended meanwhile, the address changed, or the hour's notices were sent.
async fn new_sign_in_notice<S: MailerStore, M: Mailer>(
    app: &MailerApp<S, M>,
    job: &MailJob,
    target: &Target,
) -> Result<Outcome, PortError> {
    let store = &app.store;
    let (Some(cid), Some(sid)) = (&job.contact_id, &job.change_id) else {
        return Ok(Outcome::Nothing);
    };
    let Some(contact) = store.contact(cid).await? else {
        return Ok(Outcome::Nothing);
    };
    if contact.email_key != job.email_key {
        return Ok(Outcome::Nothing);
    }
    let sessions = store.sessions(cid, &target.team_id).await?;
    let Some(this) = sessions.iter().find(|s| &s.session_id == sid) else {
        return Ok(Outcome::Nothing);
    };
    if this.ended_at.is_some()
        || !crate::domain::session::new_device(this, &sessions, contact.created_at)
    {
        return Ok(Outcome::Nothing);
    }
    let hour = app.now().div_euclid(3600);
    let counter = Counter {
        key: format!("newsignin#{cid}#{hour}"),
        expires_at: (hour + 2) * 3600,
    };
    if store.count_event(&counter).await? > NEW_SIGN_IN_NOTICES_PER_HOUR {
        tracing::info!(job_id = %job.job_id, "new-sign-in notices of the hour sent: not mailed");
        return Ok(Outcome::Limited);
    }
    let (token, _, key) = job_secrets(app, job, "end-sessions");
    let to = (contact.email.as_str(), &contact.email_key);
    let mut link = new_link(
        app,
        &token,
        LinkPurpose::EndSessions,
        target,
        to,
        Some(&contact),
        None,
        app.config.undo_ttl,
    );
    link.key_id = Some(key.id());
    link.change_id = Some(sid.clone());
    if !store.put_magic_link(&link, None).await? {
        // A retry of this job: its link is stored already; resend it unless used.
        match store.magic_link(&link.token_hash).await? {
            Some((stored, _)) if stored.used_at.is_none() => {}
            _ => return Ok(Outcome::Nothing),
        }
    }
    let look = target.look(app, job, Some(&contact));
    let url = format!(
        "{}&action=end-sessions",
        link_url(
            &app.config.public_base_url,
            None,
            token.expose(),
            None,
            look.texts.locale
        )
    );
    let when = crate::flows::account::rfc3339(this.created_at.unwrap_or(job.created_at));
    let mail = render_new_sign_in(
        &look,
        &contact.email,
        &device_in(&look, this.user_agent.as_deref().unwrap_or("")),
        this.network.as_deref().unwrap_or("unknown"),
        when.as_str().unwrap_or(""),
        &url,
        app.config.undo_ttl,
    );
    Ok(send(app, &job.job_id, &mail, true)
        .await?
        .outcome(Outcome::Notice))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::HubId;

    #[test]
    fn the_device_of_a_new_sign_in_is_named_in_the_mail_language() {
        use crate::domain::i18n::Locale;
        let ua = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
        let de = Look::new(Locale::De, "Hub", None, "a@example.com");
        assert_eq!(device_in(&de, ua), "Firefox unter Linux");
        assert_eq!(device_in(&de, ""), "Unbekanntes Gerät");
        assert_eq!(device_in(&de, "curl/8.5.0"), "curl");
        let en = Look::new(Locale::En, "Hub", None, "a@example.com");
        assert_eq!(device_in(&en, ua), crate::domain::session::device_label(ua));
    }

    #[test]
    fn redirects_are_used_only_when_the_hub_allows_them_now() {
        let hub = Hub {
            hub_id: HubId::from_stored("h"),
            slug: "s".into(),
            team_id: TeamId::from_stored("t"),
            title: "T".into(),
            allowed_redirect_origins: vec!["https://app.example.com".into()],
            registration_enabled: true,
            trusted_cidrs: vec![],
            branding: Default::default(),
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
