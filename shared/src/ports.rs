//! The traits handlers depend on. Adapters (DynamoDB, SES v2, Secrets Manager, the
//! system clock) implement them; handlers never see an AWS type.

use std::future::Future;

use crate::domain::email::EmailKey;
use crate::domain::email_change::UndoChain;
use crate::domain::ids::{ContactId, HubId, TeamId};
use crate::domain::model::{
    Contact, Hub, LinkRefusal, MagicLink, MailJob, Membership, RefreshRecord, SessionRecord, Team,
};
pub use crate::domain::rate::Counter;
use crate::domain::rate::RateRule;
use crate::domain::secret::TokenHash;
use crate::domain::session::EndReason;
use crate::domain::suppression::Reason;
use crate::errors::PortError;

pub type PortResult<T> = Result<T, PortError>;

/// Result of writing a mail job together with its rate counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    Queued,
    /// A rule refused it; nothing was written.
    Limited {
        retry_after: u64,
        /// The keys of the rules that refused (`RateRule::key`).
        refused: Vec<String>,
    },
    /// The profile moved since it was read (an email change was confirmed or undone, or
    /// every session ended): nothing was written; the session that asked has ended.
    Stale,
}

/// An email change as requested (PATCH /me): the address it goes to and the undo chain
/// the profile carries from now on (`domain::email_change`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingChange {
    pub pending_email: String,
    pub chain: UndoChain,
    /// The profile's token version as read: the write holds only while it is unchanged.
    pub token_version: u64,
}

/// Who consuming a magic link signs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumeAs {
    /// Create this new contact (registration).
    NewContact { contact_id: ContactId },
    /// An existing contact whose token version we expect.
    Existing {
        contact_id: ContactId,
        token_version: u64,
        join: bool,
    },
    /// Move an existing contact to the link's address (from `old_email_key`), only
    /// while the link's change request is still the pending one.
    ChangeEmail {
        contact_id: ContactId,
        token_version: u64,
        old_email_key: EmailKey,
        change_id: String,
        /// "This address is now on this account", to the new address (written in the
        /// same transaction).
        notice: Box<MailJob>,
    },
}

/// The profile as an undo link found it (the transaction re-checks all of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndoEmailChange {
    pub contact_id: ContactId,
    pub token_version: u64,
    /// The address the contact has now (released when it differs from the restored one).
    pub current_email_key: EmailKey,
    /// The address restored: the chain's origin (or, for an undo link mailed before
    /// chains existed, the address it was mailed to).
    pub origin_email: String,
    pub origin_key: EmailKey,
    /// The chain being undone: the profile must still carry it (`None`: a link from
    /// before chains, which is not tied to one).
    pub chain_id: Option<String>,
    /// `password_version` as read: the condition that nothing moved since.
    pub password_version: u64,
    /// Remove the password (set or changed inside the chain: `UndoChain::password_inside`).
    pub remove_password: bool,
}

/// The result of reserving attempts on fixed-window counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserved {
    Ok,
    /// A counter is at its limit; nothing was counted.
    Limited {
        retry_after: u64,
        /// The indices of the counters at their limit.
        refused: Vec<usize>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consumed {
    Done,
    /// Used, expired, superseded (the transaction's conditions say which), or the
    /// membership is banned (`Unknown`).
    Refused(LinkRefusal),
    /// Registration lost a race: the email now belongs to a contact.
    EmailTaken,
    /// The contact's token version moved since the link was made.
    VersionChanged,
}

/// A refresh token record as stored, with its rotation state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshState {
    pub record: RefreshRecord,
    pub rotated_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    Done,
    /// The presented token changed under us (a concurrent rotation): read it again.
    OldChanged,
    /// Family revoked, token version moved, or the token lapsed.
    Rejected,
}

/// PATCH /me changes; `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileChanges {
    pub tos_accepted_at: Option<Option<String>>,
    pub tos_version: Option<Option<String>>,
    /// Cancel the pending email change (a change starts with `request_email_change`).
    pub cancel_email_change: bool,
}

// The store, cut by aggregate. Each route names the traits it uses (see `handlers`);
// `adapters::dynamo::DynamoStore` implements all of them on one table. Methods return
// `Send` futures so a handler generic over these traits still runs on the Lambda loop.
// Static dispatch: a function binary contains only the operations its route calls.

/// Hubs and teams (read-only on request paths).
pub trait Directory: Send + Sync {
    fn hub_by_slug(&self, slug: &str) -> impl Future<Output = PortResult<Option<Hub>>> + Send;
    /// The same lookup, possibly answered from a warm function's cache (the
    /// `adapters::hub_cache::HubCache` decorator); a plain store reads fresh. Never used
    /// where a stale answer could let something through (a `redirect_url` check).
    fn hub_by_slug_cached(
        &self,
        slug: &str,
        _now: i64,
    ) -> impl Future<Output = PortResult<Option<Hub>>> + Send {
        self.hub_by_slug(slug)
    }
    fn hub(&self, hub_id: &HubId) -> impl Future<Output = PortResult<Option<Hub>>> + Send;
    fn team(&self, team_id: &TeamId) -> impl Future<Output = PortResult<Option<Team>>> + Send;
}

/// Mail jobs: written by the request paths, read and retired by the mailer.
pub trait MailJobs: Send + Sync {
    /// One write: the job plus every rate counter, all or nothing.
    fn enqueue_job(
        &self,
        job: &MailJob,
        rules: &[RateRule],
        now: i64,
    ) -> impl Future<Output = PortResult<Enqueued>> + Send;
    /// One write: the email-change job with its rate counters, and the profile's pending
    /// change (`pending_email`, `email_change_id` = the job's `change_id`) with its undo
    /// chain, so the mailer never sees the job before the change it belongs to. `Stale`
    /// when the profile's token version moved since it was read.
    fn request_email_change(
        &self,
        job: &MailJob,
        rules: &[RateRule],
        change: &PendingChange,
        now: i64,
    ) -> impl Future<Output = PortResult<Enqueued>> + Send;
    fn job(&self, job_id: &str) -> impl Future<Output = PortResult<Option<MailJob>>> + Send;
    fn delete_job(&self, job_id: &str) -> impl Future<Output = PortResult<()>> + Send;
    /// Keeps a job the mailer could not send because SES stopped the account's sending:
    /// marks it parked (`reason`: the SES error code) and keeps it `PARKED_JOB_TTL` for
    /// `contact-auth-admin redrive`.
    fn park_job(
        &self,
        job_id: &str,
        reason: &str,
        now: i64,
    ) -> impl Future<Output = PortResult<()>> + Send;
}

/// An access token's state: profile, membership, session (`Contacts::access_state`).
pub type AccessState = (Option<Contact>, Option<Membership>, Option<SessionRecord>);

/// How long a parked job is kept (redrive it within this).
pub const PARKED_JOB_TTL: i64 = 3 * 86_400;

/// Contacts: the profile, the email index and team memberships.
pub trait Contacts: Send + Sync {
    fn contact_id_by_email(
        &self,
        email_key: &EmailKey,
    ) -> impl Future<Output = PortResult<Option<ContactId>>> + Send;
    fn contact(
        &self,
        contact_id: &ContactId,
    ) -> impl Future<Output = PortResult<Option<Contact>>> + Send;
    fn membership(
        &self,
        contact_id: &ContactId,
        team_id: &TeamId,
    ) -> impl Future<Output = PortResult<Option<Membership>>> + Send;
    fn memberships(
        &self,
        contact_id: &ContactId,
    ) -> impl Future<Output = PortResult<Vec<Membership>>> + Send;
    /// Profile and membership in one read. Without a contact, the caller passes a
    /// placeholder id whose keys never exist (`domain::code::placeholder`): the same reads,
    /// and nothing found.
    fn contact_with_membership(
        &self,
        contact_id: &ContactId,
        team_id: &TeamId,
    ) -> impl Future<Output = PortResult<(Option<Contact>, Option<Membership>)>> + Send;
    /// What an access token of session `sid` is checked against, in one read: the profile,
    /// the membership in `team_id`, and the session (`None`: never recorded).
    fn access_state(
        &self,
        contact_id: &ContactId,
        team_id: &TeamId,
        sid: &str,
    ) -> impl Future<Output = PortResult<AccessState>> + Send;
    /// Ends every session (token version + 1) and cancels a pending email change.
    fn end_all_sessions(
        &self,
        contact_id: &ContactId,
        team_id: &TeamId,
        now: i64,
    ) -> impl Future<Output = PortResult<()>> + Send;
    /// Sets the first password and queues its notice mail (one transaction); false when
    /// one is already set.
    fn set_first_password(
        &self,
        contact_id: &ContactId,
        hash: &str,
        now: i64,
        notice: &MailJob,
    ) -> impl Future<Output = PortResult<bool>> + Send;
    /// Replaces the password, bumps the token version and cancels a pending email change
    /// (only if neither password nor version moved since `contact` was read) stores
    /// the caller's new session and queues the notice mail — one transaction.
    fn change_password(
        &self,
        contact: &Contact,
        new_hash: &str,
        refresh: &RefreshRecord,
        now: i64,
        notice: &MailJob,
    ) -> impl Future<Output = PortResult<bool>> + Send;
    fn update_profile(
        &self,
        contact_id: &ContactId,
        changes: &ProfileChanges,
    ) -> impl Future<Output = PortResult<()>> + Send;
}

/// Magic links, and what consuming one does to the contact (one transaction each).
pub trait MagicLinks: Send + Sync {
    /// Stores a new link (not yet the newest: see `make_newest`); false when a link with
    /// this token is stored already (a retried mail job), which is left as it is.
    fn put_magic_link(
        &self,
        link: &MagicLink,
        contact_tv: Option<u64>,
    ) -> impl Future<Output = PortResult<bool>> + Send;
    /// Makes a link the only valid one for its team and email (once its mail was
    /// accepted), unless a newer one already is.
    fn make_newest(&self, link: &MagicLink) -> impl Future<Output = PortResult<()>> + Send;
    /// The link and the contact token version recorded when it was made.
    fn magic_link(
        &self,
        token_hash: &TokenHash,
    ) -> impl Future<Output = PortResult<Option<(MagicLink, Option<u64>)>>> + Send;
    /// One transaction: mark the link used (only if unused, unexpired and newest),
    /// create or update the contact and membership, and store the refresh token.
    fn consume_magic_link(
        &self,
        link: &MagicLink,
        who: &ConsumeAs,
        refresh: &RefreshRecord,
        now: i64,
    ) -> impl Future<Output = PortResult<Consumed>> + Send;
    /// One transaction: mark an undo link used, restore its address (releasing the
    /// current one), bump the token version, cancel pending changes and, when asked,
    /// remove the password. `VersionChanged` when the profile moved since it was read.
    fn undo_email_change(
        &self,
        link: &MagicLink,
        undo: &UndoEmailChange,
        now: i64,
    ) -> impl Future<Output = PortResult<Consumed>> + Send;
    /// Marks a link used, only if it is unused and unexpired (a link that signs nobody in:
    /// `EndSessions`). False when it was not (used meanwhile, expired, gone).
    fn use_link(&self, link: &MagicLink, now: i64)
        -> impl Future<Output = PortResult<bool>> + Send;
    /// The newest sign-in link for a team and email (`rate::email_scope`), with its
    /// contact token version. The same two reads whether or not there is one (without a
    /// pointer, the `placeholder` link, which never exists, is read), so a code attempt
    /// costs the same.
    fn newest_link(
        &self,
        scope: &str,
        placeholder: &TokenHash,
    ) -> impl Future<Output = PortResult<Option<(MagicLink, Option<u64>)>>> + Send;
    /// Counts one code attempt on a link: one conditional write that succeeds only if the
    /// link has a code and fewer than `max` attempts (parallel guesses cannot pass it).
    /// False otherwise, also for a link that does not exist (the same write).
    fn reserve_code_attempt(
        &self,
        token_hash: &TokenHash,
        max: u32,
    ) -> impl Future<Output = PortResult<bool>> + Send;
}

/// Refresh-token sessions: one record per token, families revoked as a whole.
pub trait Sessions: Send + Sync {
    fn refresh_state(
        &self,
        token_hash: &TokenHash,
    ) -> impl Future<Output = PortResult<Option<RefreshState>>> + Send;
    /// Rotates `old` into `new` in one transaction. With `grace_since`, `old` was already
    /// rotated at or after that time and stays as it is (a second tab's refresh).
    fn rotate_refresh(
        &self,
        old: &RefreshState,
        new: &RefreshRecord,
        now: i64,
        grace_since: Option<i64>,
    ) -> impl Future<Output = PortResult<Rotation>> + Send;
    /// Revokes `record`'s whole token family (and marks `token_hash` revoked when given),
    /// and ends its session with `reason` — one transaction.
    fn revoke_family(
        &self,
        record: &RefreshRecord,
        token_hash: Option<&TokenHash>,
        reason: EndReason,
        now: i64,
        until: i64,
    ) -> impl Future<Output = PortResult<()>> + Send;
    /// The contact's session records in `team_id` (ended ones included), at most
    /// `SESSION_LIST_CAP`, in no particular order.
    fn sessions(
        &self,
        contact_id: &ContactId,
        team_id: &TeamId,
    ) -> impl Future<Output = PortResult<Vec<SessionRecord>>> + Send;
    /// Ends session `session_id` with `reason` and revokes its token family (until
    /// `until`, the family's latest possible end) — one transaction, only while the record
    /// exists and has not ended. False when it did not (unknown, ended, or ended meanwhile).
    fn end_session(
        &self,
        contact_id: &ContactId,
        team_id: &TeamId,
        session_id: &str,
        reason: EndReason,
        now: i64,
        until: i64,
    ) -> impl Future<Output = PortResult<bool>> + Send;
    /// Stores the session, clears the failure count and, when given, replaces the
    /// password hash (old, new) — one transaction.
    fn record_login_success(
        &self,
        refresh: &RefreshRecord,
        failures: &Counter,
        rehash: Option<(&str, &str)>,
    ) -> impl Future<Output = PortResult<()>> + Send;
}

/// How many session records a list reads at most (a member signing in many times a day
/// for 90 days stays below it; past it, the oldest records may be left out).
pub const SESSION_LIST_CAP: usize = 1_000;

/// Fixed-window attempt counters (password attempts).
pub trait Attempts: Send + Sync {
    /// Counts one attempt on each counter, only if every counter is below its limit —
    /// one conditional write, so parallel attempts cannot exceed a limit.
    fn reserve_attempts(
        &self,
        counters: &[(Counter, u32)],
        now: i64,
    ) -> impl Future<Output = PortResult<Reserved>> + Send;
    /// Counts one event on a fixed-window counter, whatever its value, and returns the new
    /// count (the mailer's per-IP mail budgets: see `handlers::mailer`).
    fn count_event(&self, counter: &Counter) -> impl Future<Output = PortResult<u64>> + Send;
    /// Deletes a counter (a successful check clears its failures).
    fn reset_counter(&self, counter: &Counter) -> impl Future<Output = PortResult<()>> + Send;
}

/// Addresses SES reported undeliverable: a permanent bounce or a complaint
/// (`domain::suppression`). The mailer sends them nothing; a password login by the
/// contact the address belongs to, or an operator, lifts it.
pub trait Suppressions: Send + Sync {
    /// Why mail to the address is suppressed, if it is (a consistent read).
    fn suppressed(&self, key: &EmailKey)
        -> impl Future<Output = PortResult<Option<Reason>>> + Send;
    /// Suppresses the address (again: the newest reason and time win), and flags the
    /// profile of the contact that has it now (`Contact::mail_suppressed_at`) so that
    /// contact's next password login lifts it without another read.
    fn suppress(
        &self,
        key: &EmailKey,
        reason: Reason,
        at: i64,
    ) -> impl Future<Output = PortResult<()>> + Send;
    /// Lifts the suppression of an address: its item, then the flag on `contact`'s
    /// profile (the contact that has the address, when there is one).
    fn lift_suppression(
        &self,
        key: &EmailKey,
        contact: Option<&ContactId>,
    ) -> impl Future<Output = PortResult<()>> + Send;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    pub from: String,
    pub to: String,
    /// The hub's reply-to address (`Branding::reply_to`), if it set one.
    pub reply_to: Option<String>,
    /// Plain ASCII, or RFC 2047 encoded-words (`render::encode_header_text`).
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// A team's auth-event settings (`contact-auth-admin events`): a webhook (URL and its
/// Standard Webhooks secret, `whsec_…`) and whether deliveries carry the email address.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventSettings {
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<String>,
    pub include_email: bool,
    /// Until when the webhook is paused (unix seconds): set when an event's every attempt
    /// failed, so one dead receiver holds up the stream once per pause, not once per event.
    pub paused_until: Option<i64>,
}

/// Where an event's delivery to one target stands (`EventStore::event_marks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeliveryMarks {
    pub bus: bool,
    pub webhook: bool,
}

/// The events function's table: team settings and the delivery marks on each outbox item
/// (a redelivered stream batch skips what was delivered).
pub trait EventStore: Send + Sync {
    fn event_settings(
        &self,
        team_id: &TeamId,
    ) -> impl Future<Output = PortResult<Option<EventSettings>>> + Send;
    fn event_marks(&self, event_id: &str)
        -> impl Future<Output = PortResult<DeliveryMarks>> + Send;
    /// Pauses a team's webhook until `until` (its every attempt failed).
    fn pause_webhook(
        &self,
        team_id: &TeamId,
        until: i64,
    ) -> impl Future<Output = PortResult<()>> + Send;
    /// Records `target`'s (`bus`, `webhook`) outcome on the event's outbox item.
    fn mark_event(
        &self,
        event_id: &str,
        target: &'static str,
        outcome: &str,
        now: i64,
    ) -> impl Future<Output = PortResult<()>> + Send;
}

/// An EventBridge bus (source `contact-auth`).
pub trait EventBus: Send + Sync {
    /// Publishes one event: its detail-type and detail (JSON). Err when it was not taken.
    fn publish(
        &self,
        detail_type: &str,
        detail: &str,
    ) -> impl Future<Output = PortResult<()>> + Send;
}

/// One webhook delivery attempt (Standard Webhooks headers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRequest {
    pub url: String,
    pub id: String,
    pub timestamp: i64,
    pub signature: String,
    pub body: String,
}

/// What a webhook attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// 2xx.
    Delivered(u16),
    /// A 4xx other than 408/429: the receiver refused it; not retried.
    Rejected(u16),
    /// A timeout, a connection error, 408, 429 or 5xx: worth another attempt.
    Failed(String),
    /// Not sent: the URL is not https, or its host resolves to an address that is not
    /// public (`domain::events::webhook_address_allowed`).
    Refused(&'static str),
}

pub trait WebhookSender: Send + Sync {
    fn send(&self, req: &WebhookRequest) -> impl Future<Output = WebhookOutcome> + Send;
}

pub trait Mailer: Send + Sync {
    fn send(&self, mail: &OutgoingMail) -> impl Future<Output = PortResult<()>> + Send;
}

pub trait Clock: Send + Sync {
    /// Unix seconds.
    fn now(&self) -> i64;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }
}
