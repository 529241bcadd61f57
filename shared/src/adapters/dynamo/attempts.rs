//! `Attempts` on the table: fixed-window counters (RATE#), counted only while below
//! their limits — the same items the mail-send rules count (`jobs.rs`).

use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use aws_sdk_dynamodb::types::{ReturnValue, TransactWriteItem, Update};

use super::codec::{get_n, n};
use super::keys::{self, key_map};
use super::tx::{Settled, Tx};
use super::{build_err, conditional, sdk_err, DynamoStore, Item};
use crate::errors::PortError;
use crate::ports::{Attempts, Counter, PortResult, Reserved};

/// The items of a reservation: `counters[i]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CounterStep(usize);

/// A cancelled reservation: the counters at their limits say when to retry.
fn reserve_outcome(
    counters: &[(Counter, u32)],
    now: i64,
    failed: &[(CounterStep, Option<Item>)],
) -> PortResult<Reserved> {
    let mut retry = None;
    let mut refused = vec![];
    for (CounterStep(i), _) in failed {
        let Some((c, _)) = counters.get(*i) else {
            return Err(PortError::Internal(
                "reserve_attempts: unknown counter".into(),
            ));
        };
        retry = retry.max(Some((c.expires_at - now).max(1) as u64));
        refused.push(*i);
    }
    match retry {
        Some(retry_after) => Ok(Reserved::Limited {
            retry_after,
            refused,
        }),
        None => Err(PortError::Internal("reserve_attempts cancelled".into())),
    }
}

impl DynamoStore {
    /// Counts one event on a fixed-window counter, only while it is below `limit` (mail
    /// sends and password attempts alike).
    pub(super) fn window_count(&self, c: &Counter, limit: u32) -> UpdateBuilder {
        Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(keys::rate(&c.key))))
            .update_expression("ADD n :one SET expires_at = :exp")
            .condition_expression("attribute_not_exists(n) OR n < :limit")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(limit))
            .expression_attribute_values(":exp", n(c.expires_at))
    }
}

impl Attempts for DynamoStore {
    async fn reserve_attempts(
        &self,
        counters: &[(Counter, u32)],
        now: i64,
    ) -> PortResult<Reserved> {
        // One counter (the mailer's send-rate slot, taken by many instances at once): a
        // plain conditional update, which cannot lose a transaction conflict.
        if let [(c, limit)] = counters {
            let res = self
                .window_count(c, *limit)
                .build()
                .map_err(build_err)
                .map(|u| {
                    self.client
                        .update_item()
                        .table_name(&self.table)
                        .set_key(Some(u.key))
                        .update_expression(u.update_expression)
                        .set_condition_expression(u.condition_expression)
                        .set_expression_attribute_values(u.expression_attribute_values)
                })?
                .send()
                .await;
            return Ok(if conditional("reserve_attempts", res)? {
                Reserved::Ok
            } else {
                Reserved::Limited {
                    retry_after: (c.expires_at - now).max(1) as u64,
                    refused: vec![0],
                }
            });
        }
        let mut tx = Tx::new();
        for (i, (c, limit)) in counters.iter().enumerate() {
            let u = self.window_count(c, *limit).build().map_err(build_err)?;
            tx.push(
                CounterStep(i),
                TransactWriteItem::builder().update(u).build(),
            );
        }
        match self.commit("reserve_attempts", tx).await? {
            Settled::Done => Ok(Reserved::Ok),
            Settled::Failed(failed) => reserve_outcome(counters, now, &failed),
        }
    }

    async fn count_event(&self, counter: &Counter) -> PortResult<u64> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_map(keys::rate(&counter.key))))
            .update_expression("ADD n :one SET expires_at = :exp")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":exp", n(counter.expires_at))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| sdk_err("count_event", e))?;
        Ok(out
            .attributes
            .as_ref()
            .and_then(|a| get_n(a, "n"))
            .map_or(0, |v| v.max(0) as u64))
    }

    async fn reset_counter(&self, counter: &Counter) -> PortResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_map(keys::rate(&counter.key))))
            .send()
            .await
            .map_err(|e| sdk_err("reset_counter", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counter_at_its_limit_says_when() {
        let now = 1_000;
        let counters = [
            (
                Counter {
                    key: "login".into(),
                    expires_at: now + 600,
                },
                10,
            ),
            (
                Counter {
                    key: "ip".into(),
                    expires_at: now + 30,
                },
                30,
            ),
        ];
        let at = |failed: &[usize]| {
            let f: Vec<_> = failed.iter().map(|i| (CounterStep(*i), None)).collect();
            reserve_outcome(&counters, now, &f)
        };
        let limited = |retry_after, refused: &[usize]| Reserved::Limited {
            retry_after,
            refused: refused.to_vec(),
        };
        assert_eq!(at(&[1]).unwrap(), limited(30, &[1]));
        assert_eq!(at(&[0]).unwrap(), limited(600, &[0]));
        assert_eq!(at(&[0, 1]).unwrap(), limited(600, &[0, 1]));
        assert!(at(&[2]).is_err());
    }
}
