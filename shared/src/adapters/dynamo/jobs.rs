//! `MailJobs` on the table: JOB# items, written in one transaction with the rate
//! counters that allow them (RATE#), read and deleted by the mailer.

use aws_sdk_dynamodb::types::{ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};

use super::codec::{get_n, job_from, job_item, n, s};
use super::keys::{self, key_map};
use super::tx::{Settled, Tx};
use super::{build_err, conditional, sdk_err, DynamoStore, Item, JOB_TTL};
use crate::domain::events::{AuthEvent, EventType};
use crate::domain::model::MailJob;
use crate::domain::rate::RateRule;
use crate::errors::PortError;
use crate::ports::{Counter, Enqueued, MailJobs, PendingChange, PortResult, PARKED_JOB_TTL};

/// The items of an enqueue transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EnqueueStep {
    /// `rules[i]`'s counter.
    Rule(usize),
    Job,
    /// The profile's pending email change (email-change jobs only).
    PendingChange,
}

/// What a cancelled enqueue means: a rule refused it (retry after the longest wait), or
/// a server fault (the job id collided, the profile is gone).
fn enqueue_outcome(
    rules: &[RateRule],
    now: i64,
    failed: &[(EnqueueStep, Option<Item>)],
) -> PortResult<Enqueued> {
    let mut retry = 0u64;
    let mut refused = vec![];
    for (step, old) in failed {
        match step {
            EnqueueStep::Rule(i) => {
                let Some(rule) = rules.get(*i) else {
                    return Err(PortError::Internal("enqueue: unknown rule".into()));
                };
                let last = old.as_ref().and_then(|o| get_n(o, "last_at"));
                retry = retry.max(rule.retry_after(now, last));
                refused.push(rule.key().to_string());
            }
            // The profile moved since it was read: nothing was written.
            EnqueueStep::PendingChange => return Ok(Enqueued::Stale),
            EnqueueStep::Job => {
                return Err(PortError::Internal(format!(
                    "enqueue cancelled at {step:?}"
                )))
            }
        }
    }
    Ok(Enqueued::Limited {
        retry_after: retry.max(1),
        refused,
    })
}

impl DynamoStore {
    /// The conditional update of one rate rule's counter.
    fn rule_update(&self, rule: &RateRule, now: i64) -> PortResult<TransactWriteItem> {
        let u = match rule {
            RateRule::Cooldown { key, seconds } => Update::builder()
                .table_name(&self.table)
                .set_key(Some(key_map(keys::rate(key))))
                .update_expression("SET last_at = :now, expires_at = :exp")
                // One cooldown length per key: `last_at <= :cut` is also "past its TTL"
                // (`expires_at`), so an expired, not yet deleted item does not block.
                .condition_expression("attribute_not_exists(pk) OR last_at <= :cut")
                .expression_attribute_values(":now", n(now))
                .expression_attribute_values(":cut", n(now - seconds))
                .expression_attribute_values(":exp", n(now + seconds))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                ),
            RateRule::Window {
                key,
                limit,
                seconds,
            } => {
                // The same item login reserves (`Counter::window`).
                self.window_count(&Counter::window(key, now, *seconds), *limit)
            }
        };
        Ok(TransactWriteItem::builder()
            .update(u.build().map_err(build_err)?)
            .build())
    }

    /// One transaction: every rate counter (conditional), the job, and the profile's
    /// pending change when given — all or nothing.
    async fn enqueue(
        &self,
        job: &MailJob,
        rules: &[RateRule],
        now: i64,
        extra: Vec<TransactWriteItem>,
    ) -> PortResult<Enqueued> {
        let mut tx = Tx::new();
        for (i, rule) in rules.iter().enumerate() {
            tx.push(EnqueueStep::Rule(i), self.rule_update(rule, now)?);
        }
        tx.push(
            EnqueueStep::Job,
            self.put_new(job_item(job, now + JOB_TTL))?,
        );
        for item in extra {
            tx.push(EnqueueStep::PendingChange, item);
        }
        match self.commit("enqueue_job", tx).await? {
            Settled::Done => Ok(Enqueued::Queued),
            Settled::Failed(failed) => enqueue_outcome(rules, now, &failed),
        }
    }
}

impl MailJobs for DynamoStore {
    async fn enqueue_job(
        &self,
        job: &MailJob,
        rules: &[RateRule],
        now: i64,
    ) -> PortResult<Enqueued> {
        self.enqueue(job, rules, now, vec![]).await
    }

    async fn request_email_change(
        &self,
        job: &MailJob,
        rules: &[RateRule],
        change: &PendingChange,
        now: i64,
    ) -> PortResult<Enqueued> {
        let (Some(cid), Some(change_id)) = (&job.contact_id, &job.change_id) else {
            return Err(PortError::Internal(
                "email change job without contact".into(),
            ));
        };
        let chain = &change.chain;
        // The two attributes of PENDING_CHANGE and those of UNDO_CHAIN.
        let mut set = "SET pending_email = :p, email_change_id = :c, undo_chain = :chain, \
            undo_origin_email = :oe, undo_origin_key = :ok, undo_boundary = :b, undo_until = :u"
            .to_string();
        let mut u = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(keys::profile(cid))))
            // Only while no confirm, undo, logout-everywhere or password change came in
            // between (each moves the token version), and while the chain is the one read:
            // a new chain only where none is open (two requests at once cannot both start
            // one and leave the first one's undo links dead), an open one only if unchanged.
            .condition_expression(
                "attribute_exists(pk) AND token_version = :tv AND (attribute_not_exists(undo_chain) OR undo_until <= :now OR undo_chain = :chain)",
            )
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":p", s(&change.pending_email))
            .expression_attribute_values(":c", s(change_id))
            .expression_attribute_values(":chain", s(&chain.chain_id))
            .expression_attribute_values(":oe", s(&chain.origin_email))
            .expression_attribute_values(":ok", s(chain.origin_key.as_str()))
            .expression_attribute_values(":b", n(chain.boundary))
            .expression_attribute_values(":u", n(chain.until))
            .expression_attribute_values(":tv", n(change.token_version));
        match chain.switched_at {
            Some(at) => {
                set.push_str(", undo_switched_at = :sw");
                u = u.expression_attribute_values(":sw", n(at));
            }
            None => set.push_str(" REMOVE undo_switched_at"),
        }
        let u = u.update_expression(set).build().map_err(build_err)?;
        let requested = AuthEvent::new(EventType::EmailChangeRequested, now, cid)
            .team(job.team_id.as_ref())
            .email(&change.pending_email);
        self.enqueue(
            job,
            rules,
            now,
            vec![
                TransactWriteItem::builder().update(u).build(),
                self.put_event(&requested)?,
            ],
        )
        .await
    }

    async fn job(&self, job_id: &str) -> PortResult<Option<MailJob>> {
        Ok(self
            .get("job", keys::job(job_id))
            .await?
            .as_ref()
            .and_then(job_from))
    }

    async fn park_job(&self, job_id: &str, reason: &str, now: i64) -> PortResult<()> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_map(keys::job(job_id))))
            .update_expression("SET parked_at = :now, parked_reason = :r, expires_at = :exp")
            // Only a job that is still there (a redelivered record may find it retired).
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":r", s(reason))
            .expression_attribute_values(":exp", n(now + PARKED_JOB_TTL))
            .send()
            .await;
        conditional("park_job", res).map(|_| ())
    }

    async fn delete_job(&self, job_id: &str) -> PortResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_map(keys::job(job_id))))
            .send()
            .await
            .map_err(|e| sdk_err("delete_job", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn a_refused_rule_says_when_and_anything_else_is_a_fault() {
        let rules = [
            RateRule::Cooldown {
                key: "c".into(),
                seconds: 60,
            },
            RateRule::Window {
                key: "w".into(),
                limit: 5,
                seconds: 3600,
            },
        ];
        let now = 1_000_000;
        let old = HashMap::from([("last_at".to_string(), n(now - 20))]);
        // The cooldown refused, sent 20 s ago: retry in 40 s.
        let out = enqueue_outcome(&rules, now, &[(EnqueueStep::Rule(0), Some(old))]).unwrap();
        assert_eq!(
            out,
            Enqueued::Limited {
                retry_after: 40,
                refused: vec!["c".into()]
            }
        );
        // The window refused: retry when the hour window ends; the longer wait wins.
        let out = enqueue_outcome(&rules, now, &[(EnqueueStep::Rule(1), None)]).unwrap();
        let Enqueued::Limited {
            retry_after,
            refused,
        } = out
        else {
            panic!("{out:?}")
        };
        assert!(retry_after > 40 && retry_after <= 3600, "{retry_after}");
        assert_eq!(refused, vec!["w".to_string()]);
        // A profile that moved since it was read (sessions ended) is stale, not limited.
        assert_eq!(
            enqueue_outcome(&rules, now, &[(EnqueueStep::PendingChange, None)]).unwrap(),
            Enqueued::Stale
        );
        // A collided job id is never reported as a rate limit.
        for step in [EnqueueStep::Job, EnqueueStep::Rule(7)] {
            assert!(
                enqueue_outcome(&rules, now, &[(step, None)]).is_err(),
                "{step:?}"
            );
        }
        // A rule refusal beside a job failure is still a fault.
        assert!(enqueue_outcome(
            &rules,
            now,
            &[(EnqueueStep::Rule(0), None), (EnqueueStep::Job, None)]
        )
        .is_err());
    }
}
