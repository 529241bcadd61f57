//! Operator writes (the admin CLI and test setup; no function calls them): teams, hubs
//! with their slug items, membership status and bans.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem, Update};

use super::codec::{get_n, get_s, hub_item, job_from, job_item, n, s};
use super::keys::{self, key_map, with_key};
use super::tx::{Settled, Tx};
use super::{build_err, sdk_err, DynamoStore};
use crate::domain::events::{AuthEvent, EventType};
use crate::domain::ids::{ContactId, TeamId};
use crate::domain::model::{Hub, MailJob, Team};
use crate::ports::PortResult;

/// A mail job the mailer has not retired: parked (SES stopped the account's sending) or
/// stuck (its stream record was lost: older than the operator's threshold).
#[derive(Debug, Clone)]
pub struct PendingJob {
    pub job: MailJob,
    /// The SES error that parked it, if parked.
    pub parked_reason: Option<String>,
    pub parked_at: Option<i64>,
}

/// What `redrive_pending` did (or, dry, would do).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RedriveReport {
    /// Parked or stuck jobs sent through the mailer again.
    pub redriven: usize,
    /// Sign-in jobs older than the link lifetime: deleted, not sent.
    pub expired: usize,
    /// Jobs younger than the stuck threshold and not parked: left to the mailer.
    pub left: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RedriveStep {
    New,
    Old,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HubStep {
    Hub,
    /// The slug item: free, or already this hub's.
    Slug,
}

impl DynamoStore {
    /// Every mail job in the table (a scan: an operator's command, not a request path).
    pub async fn pending_jobs(&self) -> PortResult<Vec<PendingJob>> {
        let mut out = vec![];
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("begins_with(pk, :job)")
                .expression_attribute_values(":job", s(keys::JOB_PREFIX))
                .set_exclusive_start_key(start)
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| sdk_err("pending_jobs", e))?;
            for item in page.items() {
                if let Some(job) = job_from(item) {
                    out.push(PendingJob {
                        job,
                        parked_reason: get_s(item, "parked_reason"),
                        parked_at: get_n(item, "parked_at"),
                    });
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }

    /// Sends a job through the mailer again: the same job under `new_id` (a new stream
    /// record; its link and code are new, since nothing of the old one was delivered), and
    /// the old one deleted — in one transaction, only while the old one is still there
    /// (two operators redriving at once send it once).
    pub async fn redrive_job(&self, job: &MailJob, new_id: &str, now: i64) -> PortResult<bool> {
        // No source IP: its per-IP mail budget was counted when it first ran (an operator
        // redriving a thousand parked jobs from one office must not find them over it).
        let copy = MailJob {
            job_id: new_id.to_string(),
            source_ip: None,
            ..job.clone()
        };
        let old = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(keys::job(&job.job_id))))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(build_err)?;
        let mut tx = Tx::new();
        tx.push(
            RedriveStep::New,
            self.put_new(job_item(&copy, now + super::JOB_TTL))?,
        );
        tx.push(
            RedriveStep::Old,
            TransactWriteItem::builder().delete(old).build(),
        );
        match self.commit("redrive_job", tx).await? {
            Settled::Done => Ok(true),
            Settled::Failed(_) => Ok(false),
        }
    }

    /// The redrive runbook step (`contact-auth-admin redrive`): every parked job, and every
    /// job older than `stuck_after` seconds (its stream record lost), goes through the
    /// mailer again — except sign-in and registration jobs older than the link lifetime
    /// `magic_ttl`, which are deleted (the member has asked again or given up).
    pub async fn redrive_pending(
        &self,
        magic_ttl: i64,
        stuck_after: i64,
        now: i64,
        dry_run: bool,
    ) -> PortResult<RedriveReport> {
        use crate::ports::MailJobs;
        let mut report = RedriveReport::default();
        for p in self.pending_jobs().await? {
            let job = &p.job;
            if p.parked_at.is_none() && job.created_at + stuck_after > now {
                report.left += 1;
                continue;
            }
            if job.sign_in_expired(magic_ttl, now) {
                report.expired += 1;
                if !dry_run {
                    self.delete_job(&job.job_id).await?;
                }
                continue;
            }
            if dry_run
                || self
                    .redrive_job(job, &crate::domain::secret::new_id(), now)
                    .await?
            {
                report.redriven += 1;
            }
        }
        Ok(report)
    }

    pub async fn put_team(&self, team: &Team) -> PortResult<()> {
        let mut item = HashMap::from([
            ("team_id".to_string(), s(team.team_id.as_str())),
            ("name".to_string(), s(&team.name)),
        ]);
        if let Some(h) = &team.primary_hub_id {
            item.insert("primary_hub_id".into(), s(h.as_str()));
        }
        if let Some(a) = &team.sender_address {
            item.insert("sender_address".into(), s(a));
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(with_key(item, keys::team(&team.team_id))))
            .send()
            .await
            .map_err(|e| sdk_err("put_team", e))?;
        Ok(())
    }

    /// Writes the hub and its slug item together (the slug item carries a copy of
    /// the hub so a slug lookup is one read). Fails if the slug belongs to another hub.
    pub async fn put_hub(&self, hub: &Hub) -> PortResult<bool> {
        let item = hub_item(hub);
        let hub_put = self.put(with_key(item.clone(), keys::hub(&hub.hub_id)), None)?;
        let slug_put = {
            let p = Put::builder()
                .table_name(&self.table)
                .set_item(Some(with_key(item, keys::slug(&hub.slug))))
                .condition_expression("attribute_not_exists(pk) OR hub_id = :h")
                .expression_attribute_values(":h", s(hub.hub_id.as_str()))
                .build()
                .map_err(build_err)?;
            TransactWriteItem::builder().put(p).build()
        };
        let mut tx = Tx::new();
        tx.push(HubStep::Hub, hub_put);
        tx.push(HubStep::Slug, slug_put);
        match self.commit("put_hub", tx).await? {
            Settled::Done => Ok(true),
            Settled::Failed(_) => Ok(false),
        }
    }

    /// Admin: bans (or unbans) an existing member. A ban also ends the member's sessions
    /// in the team for good: `sessions_valid_after` = now, which refresh and every
    /// authenticated route check, so an unban does not bring them back. False when the
    /// contact has no membership in the team.
    pub async fn set_banned(
        &self,
        contact_id: &ContactId,
        team_id: &TeamId,
        banned: bool,
        now: i64,
    ) -> PortResult<bool> {
        let mut req = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(keys::membership(contact_id, team_id))))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#st", "status");
        req = if banned {
            req.update_expression("SET #st = :st, sessions_valid_after = :now")
                .expression_attribute_values(":st", s("banned"))
                .expression_attribute_values(":now", n(now))
        } else {
            req.update_expression("SET #st = :st")
                .expression_attribute_values(":st", s("active"))
        };
        let event_type = if banned {
            EventType::MembershipBanned
        } else {
            EventType::MembershipUnbanned
        };
        let event = AuthEvent::new(event_type, now, contact_id).team(Some(team_id));
        let mut tx = Tx::new();
        tx.push(
            (),
            TransactWriteItem::builder()
                .update(req.build().map_err(build_err)?)
                .build(),
        );
        tx.push((), self.put_event(&event)?);
        Ok(matches!(
            self.commit("set_banned", tx).await?,
            Settled::Done
        ))
    }
}
