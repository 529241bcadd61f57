//! The traits handlers depend on. Adapters (DynamoDB, SES v2, Secrets Manager, the
//! system clock) implement them; handlers never see an AWS type.

use async_trait::async_trait;

use crate::domain::model::{Contact, Hub, MagicLink, MailJob, Membership, RefreshRecord, Team};
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
