//! The traits handlers depend on. Adapters (DynamoDB, SES v2, Secrets Manager, the
//! system clock) implement them; handlers never see an AWS type.

use async_trait::async_trait;

use crate::domain::model::{Contact, Hub, MagicLink, MailJob, Membership, RefreshRecord, Team};
pub use crate::domain::rate::Counter;
use crate::domain::rate::RateRule;
use crate::errors::PortError;

pub type PortResult<T> = Result<T, PortError>;

/// Result of writing a mail job together with its rate counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    Queued,
    /// A rule refused it; nothing was written.
    Limited {
        retry_after: u64,
    },
}

/// Who consuming a magic link signs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumeAs {
    /// Create this new contact (registration).
    NewContact { contact_id: String },
    /// An existing contact whose token version we expect.
    Existing {
        contact_id: String,
        token_version: u64,
        join: bool,
    },
    /// Move an existing contact to the link's address (from `old_email_key`).
    ChangeEmail {
        contact_id: String,
        token_version: u64,
        old_email_key: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consumed {
    Done,
    /// Unknown, used, expired, superseded, or the membership is banned.
    Invalid,
    /// Registration lost a race: the email now belongs to a contact.
    EmailTaken,
    /// The contact's token version moved since the link was made.
    VersionChanged,
}

/// Login's first read (one BatchGetItem).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoginLookup {
    pub contact_id: Option<String>,
    /// Failed logins for this team+email in the current window.
    pub failures: u32,
    /// Requests from this source IP in the current window.
    pub ip_count: u32,
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
    pub pending_email: Option<String>,
}

#[async_trait]
pub trait Store: Send + Sync {
    async fn hub_by_slug(&self, slug: &str) -> PortResult<Option<Hub>>;
    async fn hub(&self, hub_id: &str) -> PortResult<Option<Hub>>;
    async fn team(&self, team_id: &str) -> PortResult<Option<Team>>;

    /// One write: the job plus every rate counter, all or nothing.
    async fn enqueue_job(
        &self,
        job: &MailJob,
        rules: &[RateRule],
        now: i64,
    ) -> PortResult<Enqueued>;
    async fn job(&self, job_id: &str) -> PortResult<Option<MailJob>>;
    async fn delete_job(&self, job_id: &str) -> PortResult<()>;

    async fn contact_id_by_email(&self, email_key: &str) -> PortResult<Option<String>>;
    async fn contact(&self, contact_id: &str) -> PortResult<Option<Contact>>;
    async fn membership(&self, contact_id: &str, team_id: &str) -> PortResult<Option<Membership>>;
    async fn memberships(&self, contact_id: &str) -> PortResult<Vec<Membership>>;

    /// Stores a new link and makes it the only valid one for its team and email.
    async fn put_magic_link(&self, link: &MagicLink, contact_tv: Option<u64>) -> PortResult<()>;
    /// The link and the contact token version recorded when it was made.
    async fn magic_link(&self, token_hash: &str) -> PortResult<Option<(MagicLink, Option<u64>)>>;
    /// One transaction: mark the link used (only if unused, unexpired and newest),
    /// create or update the contact and membership, and store the refresh token.
    async fn consume_magic_link(
        &self,
        link: &MagicLink,
        who: &ConsumeAs,
        refresh: &RefreshRecord,
        now: i64,
    ) -> PortResult<Consumed>;

    async fn login_lookup(
        &self,
        email_key: &str,
        failures: &Counter,
        ip: &Counter,
    ) -> PortResult<LoginLookup>;
    /// Profile and membership in one read (dummy keys when there is no contact, so every
    /// login does the same reads).
    async fn contact_with_membership(
        &self,
        contact_id: Option<&str>,
        team_id: &str,
    ) -> PortResult<(Option<Contact>, Option<Membership>)>;
    /// Counts a failed login and the request from its IP, in one write.
    async fn record_login_failure(&self, failures: &Counter, ip: &Counter) -> PortResult<()>;
    /// Stores the session, counts the IP, clears the failure count and, when given,
    /// replaces the password hash (old, new) — one transaction.
    async fn record_login_success(
        &self,
        refresh: &RefreshRecord,
        failures: &Counter,
        ip: &Counter,
        rehash: Option<(&str, &str)>,
    ) -> PortResult<()>;

    async fn refresh_state(&self, token_hash: &str) -> PortResult<Option<RefreshState>>;
    /// Rotates `old` into `new` in one transaction. With `grace_since`, `old` was already
    /// rotated at or after that time and stays as it is (a second tab's refresh).
    async fn rotate_refresh(
        &self,
        old: &RefreshState,
        new: &RefreshRecord,
        now: i64,
        grace_since: Option<i64>,
    ) -> PortResult<Rotation>;
    /// Revokes a whole token family (and marks `token_hash` revoked when given).
    async fn revoke_family(
        &self,
        family_id: &str,
        token_hash: Option<&str>,
        now: i64,
        until: i64,
    ) -> PortResult<()>;

    /// Ends every session: token version + 1.
    async fn bump_token_version(&self, contact_id: &str) -> PortResult<()>;
    /// Sets the first password; false when one is already set.
    async fn set_first_password(&self, contact_id: &str, hash: &str) -> PortResult<bool>;
    /// Replaces the password and bumps the token version (only if neither moved since
    /// `contact` was read) and stores the caller's new session — one transaction.
    async fn change_password(
        &self,
        contact: &Contact,
        new_hash: &str,
        refresh: &RefreshRecord,
    ) -> PortResult<bool>;
    async fn update_profile(&self, contact_id: &str, changes: &ProfileChanges) -> PortResult<()>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    pub from: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, mail: &OutgoingMail) -> PortResult<()>;
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

/// The system clock shifted by a fixed number of seconds (tests: "16 minutes later").
pub struct OffsetClock(pub i64);

impl Clock for OffsetClock {
    fn now(&self) -> i64 {
        SystemClock.now() + self.0
    }
}
