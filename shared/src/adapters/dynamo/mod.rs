//! The store on one DynamoDB table (`pk`/`sk` strings, TTL attribute `expires_at`),
//! one file per aggregate, each implementing its port:
//!
//! - `directory` (`Directory`: hubs, teams), `jobs` (`MailJobs`), `contacts`
//!   (`Contacts`: profile, email index, memberships, passwords), `links` (`MagicLinks`:
//!   links and what consuming one writes), `sessions` (`Sessions`: refresh tokens and
//!   families), `attempts` (`Attempts`: fixed-window counters), `suppressions` (`Suppressions`:
//!   addresses SES reported undeliverable);
//! - `keys` (every item key), `codec` (every item's attributes), `tx` (transactions
//!   decoded by named steps), `admin` (operator writes: teams, hubs, bans).
//!
//! TTL deletion is lazy, so every read and conditional write checks `expires_at` itself.

mod admin;
pub use admin::{PendingJob, RedriveReport};
mod attempts;
pub mod codec;
mod contacts;
mod directory;
mod events;
mod jobs;
pub mod keys;
mod links;
mod sessions;
mod suppressions;
mod tx;

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;

use crate::domain::events::AuthEvent;
use crate::errors::PortError;
use crate::ports::PortResult;
use keys::{key_map, Key};
use tx::{failed_steps, Settled, Tx, TxOutcome};

pub type Item = HashMap<String, AttributeValue>;

/// The profile attributes of a pending email change (its address and change id): every
/// write that ends the change removes both.
const PENDING_CHANGE: &str = "pending_email, email_change_id";

/// The profile attributes of an email-change undo chain (`domain::email_change`): an
/// undo removes them all, ending the chain and every other undo link of it.
const UNDO_CHAIN: &str =
    "undo_chain, undo_origin_email, undo_origin_key, undo_boundary, undo_switched_at, undo_until";

/// Retries of a transaction cancelled by a conflict or a throttled item (then 503).
pub const TX_RETRIES: u32 = 6;

/// Jobs live a day at most (the mailer retires them at once; this is the TTL backstop).
const JOB_TTL: i64 = 86_400;

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

/// A single write with a condition: true when written, false when its condition did not
/// hold; any other failure is an error.
pub(crate) fn conditional<T, E: ProvideErrorMetadata, R>(
    op: &str,
    res: Result<T, SdkError<E, R>>,
) -> PortResult<bool> {
    match res {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(sdk_err(op, e)),
    }
}

/// Maps an SDK error to a port error with only the operation and the error code:
/// SDK messages can echo request data, so they are not logged.
pub(crate) fn sdk_err<E: ProvideErrorMetadata, R>(op: &str, e: SdkError<E, R>) -> PortError {
    let code = e.code().unwrap_or("none").to_string();
    match &e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
            PortError::Unavailable(format!("dynamodb {op}: unreachable"))
        }
        _ if code.contains("Throttl")
            || code == "ProvisionedThroughputExceededException"
            || code == "RequestLimitExceeded"
            || code == "InternalServerError"
            || code == "ServiceUnavailable" =>
        {
            PortError::Unavailable(format!("dynamodb {op}: {code}"))
        }
        _ => PortError::Internal(format!("dynamodb {op}: {code}")),
    }
}

pub(crate) fn build_err(e: impl std::fmt::Display) -> PortError {
    PortError::Internal(format!("dynamodb request build: {e}"))
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
        }
    }

    pub async fn from_env(table: &str) -> Self {
        let cfg = super::aws::sdk_config(super::aws::Service::DynamoDb);
        let conf = aws_sdk_dynamodb::config::Builder::from(&cfg)
            .interceptor(super::aws::DependencyTimer(
                crate::metrics::Dependency::DynamoDb,
            ))
            .build();
        DynamoStore::new(Client::from_conf(conf), table)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    async fn get(&self, op: &str, key: Key) -> PortResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_map(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_err(op, e))?;
        Ok(out.item)
    }

    /// One BatchGetItem (consistent), retrying unprocessed keys; items come back in any order.
    async fn batch_get(&self, op: &str, keys: Vec<Key>) -> PortResult<Vec<Item>> {
        let mut pending: Vec<Item> = keys.into_iter().map(key_map).collect();
        let mut found = Vec::new();
        for _ in 0..4 {
            if pending.is_empty() {
                break;
            }
            let ka = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .consistent_read(true)
                .build()
                .map_err(build_err)?;
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, ka)
                .send()
                .await
                .map_err(|e| sdk_err(op, e))?;
            if let Some(mut r) = out.responses {
                found.extend(r.remove(&self.table).unwrap_or_default());
            }
            if let Some(mut u) = out.unprocessed_keys {
                if let Some(ka) = u.remove(&self.table) {
                    pending = ka.keys;
                }
            }
        }
        if !pending.is_empty() {
            return Err(PortError::Unavailable(format!(
                "dynamodb {op}: unprocessed keys"
            )));
        }
        Ok(found)
    }

    /// A transaction item that creates `item`, only if nothing holds its key yet.
    /// An auth event's outbox item, for the transaction of the change it records.
    fn put_event(&self, e: &AuthEvent) -> PortResult<TransactWriteItem> {
        self.put_new(codec::event_item(e))
    }

    fn put_new(&self, item: Item) -> PortResult<TransactWriteItem> {
        self.put(item, Some("attribute_not_exists(pk)"))
    }

    /// A transaction item: put `item`, on condition `cond`.
    fn put(&self, item: Item, cond: Option<&str>) -> PortResult<TransactWriteItem> {
        let p = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(cond.map(str::to_string))
            .build()
            .map_err(build_err)?;
        Ok(TransactWriteItem::builder().put(p).build())
    }

    /// Runs a transaction; retries a few times, with jittered back-off, when it only lost
    /// a race (`TransactionConflict`: hot counters under a crowd) or an item was throttled
    /// (`ThrottlingError`, `ProvisionedThroughputExceeded` among the cancellation reasons),
    /// since the caller's conditions decide the outcome; then `Unavailable` (503 with
    /// `Retry-After`). Throttling of the whole call is retried by the SDK's standard
    /// retry (3 attempts, exponential back-off with jitter) before it gets here.
    async fn transact(&self, op: &str, items: Vec<TransactWriteItem>) -> PortResult<TxOutcome> {
        let mut attempt = 0u32;
        loop {
            let res = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let err = match res {
                Ok(_) => return Ok(TxOutcome::Ok),
                Err(e) => e,
            };
            let reasons = match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c)) => c
                    .cancellation_reasons()
                    .iter()
                    .map(|r| (r.code().unwrap_or("None").to_string(), r.item().cloned()))
                    .collect::<Vec<_>>(),
                Some(TransactWriteItemsError::TransactionInProgressException(_)) => {
                    vec![("TransactionConflict".to_string(), None)]
                }
                _ => return Err(sdk_err(op, err)),
            };
            let failed = reasons.iter().any(|(c, _)| c == "ConditionalCheckFailed");
            let conflict = reasons.iter().any(|(c, _)| {
                matches!(
                    c.as_str(),
                    "TransactionConflict"
                        | "ThrottlingError"
                        | "ProvisionedThroughputExceeded"
                        | "RequestLimitExceeded"
                )
            });
            if !failed && conflict && attempt < TX_RETRIES {
                attempt += 1;
                let jitter = u64::from(getrandom_u8()) % 20;
                tokio::time::sleep(Duration::from_millis(10 * u64::from(attempt) + jitter)).await;
                continue;
            }
            if !failed && conflict {
                let codes: Vec<&str> = reasons.iter().map(|(c, _)| c.as_str()).collect();
                return Err(PortError::Unavailable(format!(
                    "dynamodb {op}: contention ({})",
                    codes.join(", ")
                )));
            }
            return Ok(TxOutcome::Cancelled(reasons));
        }
    }

    /// Runs a transaction built from named steps: `Done`, or the steps whose conditions
    /// failed. A cancellation that names no failed condition is a server fault.
    async fn commit<S: Copy>(&self, op: &str, mut tx: Tx<S>) -> PortResult<Settled<S>> {
        match self.transact(op, std::mem::take(&mut tx.items)).await? {
            TxOutcome::Ok => Ok(Settled::Done),
            TxOutcome::Cancelled(reasons) => {
                let failed = failed_steps(tx.steps(), &reasons);
                if failed.is_empty() {
                    let codes: Vec<&str> = reasons.iter().map(|(c, _)| c.as_str()).collect();
                    return Err(PortError::Internal(format!(
                        "dynamodb {op}: cancelled ({})",
                        codes.join(", ")
                    )));
                }
                Ok(Settled::Failed(failed))
            }
        }
    }
}

fn getrandom_u8() -> u8 {
    let mut b = [0u8; 1];
    let _ = getrandom::getrandom(&mut b);
    b[0]
}
