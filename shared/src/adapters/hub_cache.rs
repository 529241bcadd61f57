//! `HubCache`: a decorator over any store that answers `hub_by_slug_cached` from a warm
//! function's memory (also "no such hub") for `ttl` seconds. Every other method, and the
//! fresh `hub_by_slug`, goes to the store underneath. Only routes whose answer does not
//! depend on a fresh hub use it (register/magic without `redirect_url`, login); the
//! mailer re-reads the hub itself.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::domain::email::EmailKey;
use crate::domain::ids::{ContactId, HubId, TeamId};
use crate::domain::model::{
    Contact, Hub, MagicLink, MailJob, Membership, RefreshRecord, SessionRecord, Team,
};
use crate::domain::rate::RateRule;
use crate::domain::secret::TokenHash;
use crate::domain::session::EndReason;
use crate::domain::suppression::Reason;
use crate::ports::{
    AccessState, Attempts, ConsumeAs, Consumed, Contacts, Counter, Directory, Enqueued, MagicLinks,
    MailJobs, PendingChange, PortResult, ProfileChanges, RefreshState, Reserved, Rotation,
    Sessions, Suppressions, UndoEmailChange,
};

/// At most this many slugs are kept; past it the cache starts over.
const MAX_ENTRIES: usize = 1000;

pub struct HubCache<S> {
    inner: S,
    ttl: i64,
    entries: Mutex<HashMap<String, (i64, Option<Hub>)>>,
}

impl<S> HubCache<S> {
    pub fn new(inner: S, ttl: i64) -> Self {
        HubCache {
            inner,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, slug: &str, now: i64) -> Option<Option<Hub>> {
        let entries = self.entries.lock().ok()?;
        let (at, hub) = entries.get(slug)?;
        (now - at < self.ttl).then(|| hub.clone())
    }

    fn remember(&self, slug: &str, now: i64, hub: &Option<Hub>) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(slug.to_string(), (now, hub.clone()));
        }
    }
}

impl<S: Directory> Directory for HubCache<S> {
    async fn hub_by_slug(&self, slug: &str) -> PortResult<Option<Hub>> {
        self.inner.hub_by_slug(slug).await
    }

    async fn hub_by_slug_cached(&self, slug: &str, now: i64) -> PortResult<Option<Hub>> {
        if let Some(hub) = self.cached(slug, now) {
            return Ok(hub);
        }
        let hub = self.inner.hub_by_slug(slug).await?;
        self.remember(slug, now, &hub);
        Ok(hub)
    }

    async fn hub(&self, hub_id: &HubId) -> PortResult<Option<Hub>> {
        self.inner.hub(hub_id).await
    }

    async fn team(&self, team_id: &TeamId) -> PortResult<Option<Team>> {
        self.inner.team(team_id).await
    }
}

// The other ports pass straight through.

impl<S: MailJobs> MailJobs for HubCache<S> {
    async fn enqueue_job(
        &self,
        job: &MailJob,
        rules: &[RateRule],
        now: i64,
    ) -> PortResult<Enqueued> {
        self.inner.enqueue_job(job, rules, now).await
    }
    async fn request_email_change(
        &self,
        job: &MailJob,
        rules: &[RateRule],
        change: &PendingChange,
        now: i64,
    ) -> PortResult<Enqueued> {
        self.inner
            .request_email_change(job, rules, change, now)
            .await
    }
    async fn job(&self, job_id: &str) -> PortResult<Option<MailJob>> {
        self.inner.job(job_id).await
    }
    async fn delete_job(&self, job_id: &str) -> PortResult<()> {
        self.inner.delete_job(job_id).await
    }
    async fn park_job(&self, job_id: &str, reason: &str, now: i64) -> PortResult<()> {
        self.inner.park_job(job_id, reason, now).await
    }
}

impl<S: Contacts> Contacts for HubCache<S> {
    async fn contact_id_by_email(&self, email_key: &EmailKey) -> PortResult<Option<ContactId>> {
        self.inner.contact_id_by_email(email_key).await
    }
    async fn contact(&self, contact_id: &ContactId) -> PortResult<Option<Contact>> {
        self.inner.contact(contact_id).await
    }
    async fn membership(
        &self,
        contact_id: &ContactId,
        team_id: &TeamId,
    ) -> PortResult<Option<Membership>> {
        self.inner.membership(contact_id, team_id).await
    }
    async fn memberships(&self, contact_id: &ContactId) -> PortResult<Vec<Membership>> {
        self.inner.memberships(contact_id).await
    }
    async fn contact_with_membership(
        &self,
        contact_id: &ContactId,
        team_id: &TeamId,
    ) -> PortResult<(Option<Contact>, Option<Membership>)> {
        self.inner
            .contact_with_membership(contact_id, team_id)
            .await
    }
    async fn access_state(
        &self,
        contact_id: &ContactId,
        team_id: &TeamId,
        sid: &str,
    ) -> PortResult<AccessState> {
        self.inner.access_state(contact_id, team_id, sid).await
    }
    async fn end_all_sessions(
        &self,
        contact_id: &ContactId,
        team_id: &TeamId,
        now: i64,
    ) -> PortResult<()> {
        self.inner.end_all_sessions(contact_id, team_id, now).await
    }
    async fn set_first_password(
        &self,
        contact_id: &ContactId,
        hash: &str,
        now: i64,
        notice: &MailJob,
    ) -> PortResult<bool> {
        self.inner
            .set_first_password(contact_id, hash, now, notice)
            .await
    }
    async fn change_password(
        &self,
        contact: &Contact,
        new_hash: &str,
        refresh: &RefreshRecord,
        now: i64,
        notice: &MailJob,
    ) -> PortResult<bool> {
        self.inner
            .change_password(contact, new_hash, refresh, now, notice)
            .await
    }
    async fn update_profile(
        &self,
        contact_id: &ContactId,
        changes: &ProfileChanges,
    ) -> PortResult<()> {
        self.inner.update_profile(contact_id, changes).await
    }
}

impl<S: MagicLinks> MagicLinks for HubCache<S> {
    async fn put_magic_link(&self, link: &MagicLink, contact_tv: Option<u64>) -> PortResult<bool> {
        self.inner.put_magic_link(link, contact_tv).await
    }
    async fn make_newest(&self, link: &MagicLink) -> PortResult<()> {
        self.inner.make_newest(link).await
    }
    async fn magic_link(
        &self,
        token_hash: &TokenHash,
    ) -> PortResult<Option<(MagicLink, Option<u64>)>> {
        self.inner.magic_link(token_hash).await
    }
    async fn consume_magic_link(
        &self,
        link: &MagicLink,
        who: &ConsumeAs,
        refresh: &RefreshRecord,
        now: i64,
    ) -> PortResult<Consumed> {
        self.inner.consume_magic_link(link, who, refresh, now).await
    }
    async fn use_link(&self, link: &MagicLink, now: i64) -> PortResult<bool> {
        self.inner.use_link(link, now).await
    }
    async fn undo_email_change(
        &self,
        link: &MagicLink,
        undo: &UndoEmailChange,
        now: i64,
    ) -> PortResult<Consumed> {
        self.inner.undo_email_change(link, undo, now).await
    }
    async fn newest_link(
        &self,
        scope: &str,
        placeholder: &TokenHash,
    ) -> PortResult<Option<(MagicLink, Option<u64>)>> {
        self.inner.newest_link(scope, placeholder).await
    }
    async fn reserve_code_attempt(&self, token_hash: &TokenHash, max: u32) -> PortResult<bool> {
        self.inner.reserve_code_attempt(token_hash, max).await
    }
}

impl<S: Attempts> Attempts for HubCache<S> {
    async fn reserve_attempts(
        &self,
        counters: &[(Counter, u32)],
        now: i64,
    ) -> PortResult<Reserved> {
        self.inner.reserve_attempts(counters, now).await
    }
    async fn reset_counter(&self, counter: &Counter) -> PortResult<()> {
        self.inner.reset_counter(counter).await
    }
    async fn count_event(&self, counter: &Counter) -> PortResult<u64> {
        self.inner.count_event(counter).await
    }
}

impl<S: Suppressions> Suppressions for HubCache<S> {
    async fn suppressed(&self, key: &EmailKey) -> PortResult<Option<Reason>> {
        self.inner.suppressed(key).await
    }
    async fn suppress(&self, key: &EmailKey, reason: Reason, at: i64) -> PortResult<()> {
        self.inner.suppress(key, reason, at).await
    }
    async fn lift_suppression(
        &self,
        key: &EmailKey,
        contact: Option<&ContactId>,
    ) -> PortResult<()> {
        self.inner.lift_suppression(key, contact).await
    }
}

impl<S: Sessions> Sessions for HubCache<S> {
    async fn sessions(
        &self,
        contact_id: &ContactId,
        team_id: &TeamId,
    ) -> PortResult<Vec<SessionRecord>> {
        self.inner.sessions(contact_id, team_id).await
    }
    async fn end_session(
        &self,
        contact_id: &ContactId,
        team_id: &TeamId,
        session_id: &str,
        reason: EndReason,
        now: i64,
        until: i64,
    ) -> PortResult<bool> {
        self.inner
            .end_session(contact_id, team_id, session_id, reason, now, until)
            .await
    }
    async fn refresh_state(&self, token_hash: &TokenHash) -> PortResult<Option<RefreshState>> {
        self.inner.refresh_state(token_hash).await
    }
    async fn rotate_refresh(
        &self,
        old: &RefreshState,
        new: &RefreshRecord,
        now: i64,
        grace_since: Option<i64>,
    ) -> PortResult<Rotation> {
        self.inner.rotate_refresh(old, new, now, grace_since).await
    }
    async fn revoke_family(
        &self,
        record: &RefreshRecord,
        token_hash: Option<&TokenHash>,
        reason: EndReason,
        now: i64,
        until: i64,
    ) -> PortResult<()> {
        self.inner
            .revoke_family(record, token_hash, reason, now, until)
            .await
    }
    async fn record_login_success(
        &self,
        refresh: &RefreshRecord,
        failures: &Counter,
        rehash: Option<(&str, &str)>,
    ) -> PortResult<()> {
        self.inner
            .record_login_success(refresh, failures, rehash)
            .await
    }
}
