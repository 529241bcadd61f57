//! The `Store` on one DynamoDB table (`pk`/`sk` strings, TTL attribute `expires_at`).
//! Item layout (see NOTES.md): TEAM#, HUB#, SLUG#, CONTACT# (PROFILE and TEAM#),
//! EMAIL#, JOB#, MAGIC#, MAGICLATEST#, RT#, RATE#. TTL deletion is lazy, so every read
//! and conditional write checks `expires_at` itself.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, KeysAndAttributes, Put,
    ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;

use crate::domain::model::{
    Contact, Hub, LinkPurpose, MagicLink, MailJob, Membership, MembershipStatus, RefreshRecord,
    Team,
};
use crate::domain::rate::{email_scope, RateRule};
use crate::errors::PortError;
use crate::ports::{
    ConsumeAs, Consumed, Counter, Enqueued, PortResult, ProfileChanges, RefreshState, Reserved,
    Rotation, Store, UndoEmailChange,
};

pub type Item = HashMap<String, AttributeValue>;

/// The profile attributes of a pending email change (its address and change id): every
/// write that ends the change removes both.
const PENDING_CHANGE: &str = "pending_email, email_change_id";

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn opt_s(v: &Option<String>) -> AttributeValue {
    match v {
        Some(v) => s(v.clone()),
        None => AttributeValue::Null(true),
    }
}

fn get_s(item: &Item, k: &str) -> Option<String> {
    item.get(k).and_then(|v| v.as_s().ok()).cloned()
}

fn get_n(item: &Item, k: &str) -> Option<i64> {
    item.get(k)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn get_bool(item: &Item, k: &str) -> Option<bool> {
    item.get(k).and_then(|v| v.as_bool().ok()).copied()
}

fn get_list_s(item: &Item, k: &str) -> Vec<String> {
    item.get(k)
        .and_then(|v| v.as_l().ok())
        .map(|l| l.iter().filter_map(|v| v.as_s().ok().cloned()).collect())
        .unwrap_or_default()
}

fn list_s(v: &[String]) -> AttributeValue {
    AttributeValue::L(v.iter().map(|x| s(x.clone())).collect())
}

/// Maps an SDK error to a port error with only the operation and the error code:
/// SDK messages can echo request data, so they are not logged.
fn sdk_err<E: ProvideErrorMetadata, R>(op: &str, e: SdkError<E, R>) -> PortError {
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

fn build_err(e: impl std::fmt::Display) -> PortError {
    PortError::Internal(format!("dynamodb request build: {e}"))
}

pub mod keys {
    pub fn team(id: &str) -> (String, String) {
        (format!("TEAM#{id}"), "TEAM".into())
    }
    pub fn hub(id: &str) -> (String, String) {
        (format!("HUB#{id}"), "HUB".into())
    }
    pub fn slug(slug: &str) -> (String, String) {
        (format!("SLUG#{slug}"), "SLUG".into())
    }
    pub fn profile(contact: &str) -> (String, String) {
        (format!("CONTACT#{contact}"), "PROFILE".into())
    }
    pub fn membership(contact: &str, team: &str) -> (String, String) {
        (format!("CONTACT#{contact}"), format!("TEAM#{team}"))
    }
    pub fn email(key: &str) -> (String, String) {
        (format!("EMAIL#{key}"), "EMAIL".into())
    }
    pub fn job(id: &str) -> (String, String) {
        (format!("JOB#{id}"), "JOB".into())
    }
    pub fn magic(hash: &str) -> (String, String) {
        (format!("MAGIC#{hash}"), "MAGIC".into())
    }
    pub fn magic_latest(scope: &str) -> (String, String) {
        (format!("MAGICLATEST#{scope}"), "MAGICLATEST".into())
    }
    pub fn refresh(hash: &str) -> (String, String) {
        (format!("RT#{hash}"), "RT".into())
    }
    pub fn rate(key: &str) -> (String, String) {
        (format!("RATE#{key}"), "RATE".into())
    }
    pub fn family(id: &str) -> (String, String) {
        (format!("RTFAMILY#{id}"), "RTFAMILY".into())
    }
}

fn key_map((pk, sk): (String, String)) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

fn with_key(mut item: Item, key: (String, String)) -> Item {
    item.extend(key_map(key));
    item
}

fn hub_from(item: &Item) -> Option<Hub> {
    Some(Hub {
        hub_id: get_s(item, "hub_id")?,
        slug: get_s(item, "slug")?,
        team_id: get_s(item, "team_id")?,
        title: get_s(item, "title").unwrap_or_default(),
        allowed_redirect_origins: get_list_s(item, "allowed_redirect_origins"),
        registration_enabled: get_bool(item, "registration_enabled").unwrap_or(true),
    })
}

fn hub_item(h: &Hub) -> Item {
    HashMap::from([
        ("hub_id".to_string(), s(&h.hub_id)),
        ("slug".to_string(), s(&h.slug)),
        ("team_id".to_string(), s(&h.team_id)),
        ("title".to_string(), s(&h.title)),
        (
            "allowed_redirect_origins".to_string(),
            list_s(&h.allowed_redirect_origins),
        ),
        (
            "registration_enabled".to_string(),
            AttributeValue::Bool(h.registration_enabled),
        ),
    ])
}

fn status_str(st: MembershipStatus) -> &'static str {
    match st {
        MembershipStatus::Active => "active",
        MembershipStatus::Banned => "banned",
        MembershipStatus::Left => "left",
    }
}

fn membership_from(item: &Item) -> Option<Membership> {
    let status = match get_s(item, "status")?.as_str() {
        "active" => MembershipStatus::Active,
        "banned" => MembershipStatus::Banned,
        _ => MembershipStatus::Left,
    };
    Some(Membership {
        team_id: get_s(item, "team_id")?,
        joined_at: get_n(item, "joined_at").unwrap_or(0),
        status,
        sessions_valid_after: get_n(item, "sessions_valid_after"),
    })
}

fn contact_from(item: &Item) -> Option<Contact> {
    Some(Contact {
        contact_id: get_s(item, "contact_id")?,
        email: get_s(item, "email")?,
        email_key: get_s(item, "email_key")?,
        email_verified_at: get_n(item, "email_verified_at"),
        password_hash: get_s(item, "password_hash"),
        token_version: get_n(item, "token_version").unwrap_or(0).max(0) as u64,
        created_at: get_n(item, "created_at").unwrap_or(0),
        tos_accepted_at: get_s(item, "tos_accepted_at"),
        tos_version: get_s(item, "tos_version"),
        pending_email: get_s(item, "pending_email"),
        email_change_id: get_s(item, "email_change_id"),
        password_version: get_n(item, "password_version").unwrap_or(0).max(0) as u64,
    })
}

fn purpose_str(p: LinkPurpose) -> &'static str {
    match p {
        LinkPurpose::Register => "register",
        LinkPurpose::Join => "join",
        LinkPurpose::SignIn => "sign_in",
        LinkPurpose::EmailChange => "email_change",
        LinkPurpose::EmailChangeUndo => "email_change_undo",
    }
}

fn magic_from(hash: &str, item: &Item) -> Option<(MagicLink, Option<u64>)> {
    let purpose = match get_s(item, "purpose")?.as_str() {
        "register" => LinkPurpose::Register,
        "join" => LinkPurpose::Join,
        "sign_in" => LinkPurpose::SignIn,
        "email_change" => LinkPurpose::EmailChange,
        "email_change_undo" => LinkPurpose::EmailChangeUndo,
        _ => return None,
    };
    let link = MagicLink {
        token_hash: hash.to_string(),
        purpose,
        team_id: get_s(item, "team_id")?,
        hub_id: get_s(item, "hub_id"),
        email: get_s(item, "email")?,
        email_key: get_s(item, "email_key")?,
        contact_id: get_s(item, "contact_id"),
        redirect_url: get_s(item, "redirect_url"),
        created_at: get_n(item, "created_at").unwrap_or(0),
        expires_at: get_n(item, "expires_at")?,
        used_at: get_n(item, "used_at"),
        change_id: get_s(item, "change_id"),
        pw_version: get_n(item, "pw_version").map(|v| v.max(0) as u64),
    };
    Some((link, get_n(item, "contact_tv").map(|v| v.max(0) as u64)))
}

/// How a cancelled transaction ended, per item.
enum TxOutcome {
    Ok,
    /// The cancellation reasons: (code, old item when returned).
    Cancelled(Vec<(String, Option<Item>)>),
}

/// What each item of a transaction is for, so a cancellation is read by meaning rather
/// than by position (adding an item cannot change what an outcome means).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Link,
    Newest,
    Profile,
    ClaimEmail,
    ReleaseEmail,
    Membership,
    Session,
}

#[derive(Default)]
struct Tx {
    steps: Vec<Step>,
    items: Vec<TransactWriteItem>,
}

impl Tx {
    fn push(&mut self, step: Step, item: TransactWriteItem) {
        self.steps.push(step);
        self.items.push(item);
    }

    /// The steps whose condition failed, with the old item when it was returned.
    fn failed(&self, reasons: &[(String, Option<Item>)]) -> Vec<(Step, Option<Item>)> {
        failed_steps(&self.steps, reasons)
    }
}

fn failed_steps(steps: &[Step], reasons: &[(String, Option<Item>)]) -> Vec<(Step, Option<Item>)> {
    steps
        .iter()
        .zip(reasons)
        .filter(|(_, (code, _))| code == "ConditionalCheckFailed")
        .map(|(step, (_, old))| (*step, old.clone()))
        .collect()
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
        DynamoStore::new(Client::new(&cfg), table)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    async fn get(&self, op: &str, key: (String, String)) -> PortResult<Option<Item>> {
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
    async fn batch_get(&self, op: &str, keys: Vec<(String, String)>) -> PortResult<Vec<Item>> {
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

    /// The email index entry for `email_key`, only if no contact holds it yet.
    fn claim_email(&self, contact_id: &str, email_key: &str) -> PortResult<TransactWriteItem> {
        let item = HashMap::from([("contact_id".to_string(), s(contact_id))]);
        self.put(
            with_key(item, keys::email(email_key)),
            Some("attribute_not_exists(pk)"),
        )
    }

    /// Marks a link used, only if it is unused and unexpired.
    fn mark_link_used(&self, link: &MagicLink, now: i64) -> PortResult<TransactWriteItem> {
        let mark = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(keys::magic(&link.token_hash))))
            .update_expression("SET used_at = :now")
            .condition_expression(
                "attribute_exists(pk) AND attribute_not_exists(used_at) AND expires_at > :now",
            )
            .expression_attribute_values(":now", n(now))
            .build()
            .map_err(build_err)?;
        Ok(TransactWriteItem::builder().update(mark).build())
    }

    /// Deletes the email index entry for `email_key`, only if `contact_id` holds it.
    fn release_email(&self, contact_id: &str, email_key: &str) -> PortResult<TransactWriteItem> {
        let release = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(keys::email(email_key))))
            .condition_expression("contact_id = :c")
            .expression_attribute_values(":c", s(contact_id))
            .build()
            .map_err(build_err)?;
        Ok(TransactWriteItem::builder().delete(release).build())
    }

    /// Counts one event on a fixed-window counter, only while it is below `limit` (mail
    /// sends and password attempts alike).
    fn window_count(&self, c: &Counter, limit: u32) -> UpdateBuilder {
        Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(keys::rate(&c.key))))
            .update_expression("ADD n :one SET expires_at = :exp")
            .condition_expression("attribute_not_exists(n) OR n < :limit")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(limit))
            .expression_attribute_values(":exp", n(c.expires_at))
    }

    /// A transaction condition: the contact is an active member of the team.
    fn active_member_check(
        &self,
        contact_id: &str,
        team_id: &str,
    ) -> PortResult<TransactWriteItem> {
        let c = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(keys::membership(contact_id, team_id))))
            .condition_expression("#st = :active")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":active", s("active"))
            .build()
            .map_err(build_err)?;
        Ok(TransactWriteItem::builder().condition_check(c).build())
    }

    fn put(&self, item: Item, cond: Option<&str>) -> PortResult<TransactWriteItem> {
        let p = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(cond.map(str::to_string))
            .build()
            .map_err(build_err)?;
        Ok(TransactWriteItem::builder().put(p).build())
    }

    /// Runs a transaction; retries a few times when it only lost a race
    /// (`TransactionConflict`), since the caller's conditions decide the outcome.
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
            let conflict = reasons.iter().any(|(c, _)| c == "TransactionConflict");
            if !failed && conflict && attempt < 6 {
                attempt += 1;
                let jitter = u64::from(getrandom_u8()) % 20;
                tokio::time::sleep(Duration::from_millis(10 * u64::from(attempt) + jitter)).await;
                continue;
            }
            if !failed && conflict {
                return Err(PortError::Unavailable(format!("dynamodb {op}: contention")));
            }
            return Ok(TxOutcome::Cancelled(reasons));
        }
    }

    /// One transaction: every rate counter (conditional), the job, and `extra` (e.g. the
    /// profile's pending change) — all or nothing.
    async fn enqueue(
        &self,
        job: &MailJob,
        rules: &[RateRule],
        now: i64,
        extra: Option<TransactWriteItem>,
    ) -> PortResult<Enqueued> {
        let mut items = Vec::with_capacity(rules.len() + 1);
        for rule in rules {
            let u = match rule {
                RateRule::Cooldown { key, seconds } => Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key_map(keys::rate(key))))
                    .update_expression("SET last_at = :now, expires_at = :exp")
                    .condition_expression(
                        "attribute_not_exists(pk) OR last_at <= :cut OR expires_at <= :now",
                    )
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
            let u = u.build().map_err(build_err)?;
            items.push(TransactWriteItem::builder().update(u).build());
        }
        items.push(self.put(
            job_item(job, now + 86_400)?,
            Some("attribute_not_exists(pk)"),
        )?);
        items.extend(extra);
        match self.transact("enqueue_job", items).await? {
            TxOutcome::Ok => Ok(Enqueued::Queued),
            TxOutcome::Cancelled(reasons) => {
                let mut retry = 0u64;
                for (i, (code, old)) in reasons.iter().enumerate() {
                    if code != "ConditionalCheckFailed" {
                        continue;
                    }
                    match rules.get(i) {
                        Some(rule) => {
                            let last = old.as_ref().and_then(|o| get_n(o, "last_at"));
                            retry = retry.max(rule.retry_after(now, last));
                        }
                        // The job id collided (practically impossible) or the profile is
                        // gone: a server fault.
                        None => return Err(PortError::Internal("enqueue cancelled".into())),
                    }
                }
                Ok(Enqueued::Limited {
                    retry_after: retry.max(1),
                })
            }
        }
    }

    // ---- admin and seeding (used by tools/admin and tests) ----

    pub async fn put_team(&self, team: &Team) -> PortResult<()> {
        let mut item = HashMap::from([
            ("team_id".to_string(), s(&team.team_id)),
            ("name".to_string(), s(&team.name)),
        ]);
        if let Some(h) = &team.primary_hub_id {
            item.insert("primary_hub_id".into(), s(h));
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
                .expression_attribute_values(":h", s(&hub.hub_id))
                .build()
                .map_err(build_err)?;
            TransactWriteItem::builder().put(p).build()
        };
        match self.transact("put_hub", vec![hub_put, slug_put]).await? {
            TxOutcome::Ok => Ok(true),
            TxOutcome::Cancelled(_) => Ok(false),
        }
    }

    /// The demo data of `make dev` and the tests: team `team_abc123` with hubs
    /// `member-academy` ("Member Academy", primary) and `my-hub` ("My Hub"), both
    /// allowing the redirect origin `http://localhost:5173`.
    pub async fn seed_demo(&self) -> PortResult<()> {
        self.put_team(&Team {
            team_id: "team_abc123".into(),
            name: "Demo Team".into(),
            primary_hub_id: Some("hub_member_academy".into()),
        })
        .await?;
        for (id, slug, title) in [
            ("hub_member_academy", "member-academy", "Member Academy"),
            ("hub_my_hub", "my-hub", "My Hub"),
        ] {
            let hub = Hub {
                hub_id: id.into(),
                slug: slug.into(),
                team_id: "team_abc123".into(),
                title: title.into(),
                allowed_redirect_origins: vec!["http://localhost:5173".into()],
                registration_enabled: true,
            };
            if !self.put_hub(&hub).await? {
                return Err(PortError::Internal(format!(
                    "slug {slug} belongs to another hub"
                )));
            }
        }
        Ok(())
    }

    /// Test helper: writes a membership with this status.
    pub async fn set_membership_status(
        &self,
        contact_id: &str,
        team_id: &str,
        status: MembershipStatus,
        now: i64,
    ) -> PortResult<()> {
        let item = HashMap::from([
            ("team_id".to_string(), s(team_id)),
            ("status".to_string(), s(status_str(status))),
            ("joined_at".to_string(), n(now)),
        ]);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(with_key(item, keys::membership(contact_id, team_id))))
            .send()
            .await
            .map_err(|e| sdk_err("set_membership_status", e))?;
        Ok(())
    }

    /// Admin: bans (or unbans) an existing member. A ban also ends the member's sessions
    /// in the team for good: `sessions_valid_after` = now, which refresh and every
    /// authenticated route check, so an unban does not bring them back. False when the
    /// contact has no membership in the team.
    pub async fn set_banned(
        &self,
        contact_id: &str,
        team_id: &str,
        banned: bool,
        now: i64,
    ) -> PortResult<bool> {
        let mut req = self
            .client
            .update_item()
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
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(sdk_err("set_banned", e)),
        }
    }
}

fn getrandom_u8() -> u8 {
    let mut b = [0u8; 1];
    let _ = getrandom::getrandom(&mut b);
    b[0]
}

fn job_item(job: &MailJob, expires_at: i64) -> PortResult<Item> {
    let mut item: Item = serde_dynamo::aws_sdk_dynamodb_1::to_item(job)
        .map_err(|_| PortError::Internal("job serialisation".into()))?;
    item.insert("kind".into(), s("mail_job"));
    item.insert("expires_at".into(), n(expires_at));
    Ok(with_key(item, keys::job(&job.job_id)))
}

#[async_trait]
impl Store for DynamoStore {
    async fn hub_by_slug(&self, slug: &str) -> PortResult<Option<Hub>> {
        Ok(self
            .get("hub_by_slug", keys::slug(slug))
            .await?
            .as_ref()
            .and_then(hub_from))
    }

    async fn hub(&self, hub_id: &str) -> PortResult<Option<Hub>> {
        Ok(self
            .get("hub", keys::hub(hub_id))
            .await?
            .as_ref()
            .and_then(hub_from))
    }

    async fn team(&self, team_id: &str) -> PortResult<Option<Team>> {
        Ok(self.get("team", keys::team(team_id)).await?.map(|i| Team {
            team_id: get_s(&i, "team_id").unwrap_or_else(|| team_id.to_string()),
            name: get_s(&i, "name").unwrap_or_default(),
            primary_hub_id: get_s(&i, "primary_hub_id"),
        }))
    }

    async fn enqueue_job(
        &self,
        job: &MailJob,
        rules: &[RateRule],
        now: i64,
    ) -> PortResult<Enqueued> {
        self.enqueue(job, rules, now, None).await
    }

    async fn request_email_change(
        &self,
        job: &MailJob,
        rules: &[RateRule],
        pending_email: &str,
        now: i64,
    ) -> PortResult<Enqueued> {
        let (Some(cid), Some(change_id)) = (&job.contact_id, &job.change_id) else {
            return Err(PortError::Internal(
                "email change job without contact".into(),
            ));
        };
        let u = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(keys::profile(cid))))
            // The two attributes of PENDING_CHANGE.
            .update_expression("SET pending_email = :p, email_change_id = :c")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":p", s(pending_email))
            .expression_attribute_values(":c", s(change_id))
            .build()
            .map_err(build_err)?;
        self.enqueue(
            job,
            rules,
            now,
            Some(TransactWriteItem::builder().update(u).build()),
        )
        .await
    }

    async fn job(&self, job_id: &str) -> PortResult<Option<MailJob>> {
        Ok(self
            .get("job", keys::job(job_id))
            .await?
            .and_then(|i| serde_dynamo::aws_sdk_dynamodb_1::from_item(i).ok()))
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

    async fn contact_id_by_email(&self, email_key: &str) -> PortResult<Option<String>> {
        Ok(self
            .get("contact_id_by_email", keys::email(email_key))
            .await?
            .and_then(|i| get_s(&i, "contact_id")))
    }

    async fn contact(&self, contact_id: &str) -> PortResult<Option<Contact>> {
        Ok(self
            .get("contact", keys::profile(contact_id))
            .await?
            .as_ref()
            .and_then(contact_from))
    }

    async fn membership(&self, contact_id: &str, team_id: &str) -> PortResult<Option<Membership>> {
        Ok(self
            .get("membership", keys::membership(contact_id, team_id))
            .await?
            .as_ref()
            .and_then(membership_from))
    }

    async fn memberships(&self, contact_id: &str) -> PortResult<Vec<Membership>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :t)")
            .expression_attribute_values(":pk", s(format!("CONTACT#{contact_id}")))
            .expression_attribute_values(":t", s("TEAM#"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_err("memberships", e))?;
        Ok(out.items().iter().filter_map(membership_from).collect())
    }

    async fn put_magic_link(&self, link: &MagicLink, contact_tv: Option<u64>) -> PortResult<()> {
        let mut item = HashMap::from([
            ("purpose".to_string(), s(purpose_str(link.purpose))),
            ("team_id".to_string(), s(&link.team_id)),
            ("hub_id".to_string(), opt_s(&link.hub_id)),
            ("email".to_string(), s(&link.email)),
            ("email_key".to_string(), s(&link.email_key)),
            ("contact_id".to_string(), opt_s(&link.contact_id)),
            ("redirect_url".to_string(), opt_s(&link.redirect_url)),
            ("created_at".to_string(), n(link.created_at)),
            ("expires_at".to_string(), n(link.expires_at)),
        ]);
        if let Some(tv) = contact_tv {
            item.insert("contact_tv".into(), n(tv));
        }
        if let Some(c) = &link.change_id {
            item.insert("change_id".into(), s(c));
        }
        if let Some(v) = link.pw_version {
            item.insert("pw_version".into(), n(v));
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(with_key(item, keys::magic(&link.token_hash))))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(|e| sdk_err("put_magic_link", e))?;
        Ok(())
    }

    async fn make_newest(&self, link: &MagicLink) -> PortResult<()> {
        let scope = email_scope(&link.team_id, &link.email_key);
        let latest = HashMap::from([
            ("token_hash".to_string(), s(&link.token_hash)),
            ("created_at".to_string(), n(link.created_at)),
            ("expires_at".to_string(), n(link.expires_at)),
        ]);
        // Out-of-order mail jobs: an older link never replaces a newer one.
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(with_key(latest, keys::magic_latest(&scope))))
            .condition_expression(
                "attribute_not_exists(pk) OR attribute_not_exists(created_at) OR created_at <= :c OR expires_at <= :c",
            )
            .expression_attribute_values(":c", n(link.created_at))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(()),
            Err(e) => Err(sdk_err("make_newest", e)),
        }
    }

    async fn magic_link(&self, token_hash: &str) -> PortResult<Option<(MagicLink, Option<u64>)>> {
        Ok(self
            .get("magic_link", keys::magic(token_hash))
            .await?
            .and_then(|i| magic_from(token_hash, &i)))
    }

    async fn consume_magic_link(
        &self,
        link: &MagicLink,
        who: &ConsumeAs,
        refresh: &RefreshRecord,
        now: i64,
    ) -> PortResult<Consumed> {
        let mut tx = Tx::default();
        tx.push(Step::Link, self.mark_link_used(link, now)?);
        if link.purpose.supersedes() {
            // Still the newest link for this team and email.
            let newest = ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(key_map(keys::magic_latest(&email_scope(
                    &link.team_id,
                    &link.email_key,
                )))))
                .condition_expression("token_hash = :h")
                .expression_attribute_values(":h", s(&link.token_hash))
                .build()
                .map_err(build_err)?;
            tx.push(
                Step::Newest,
                TransactWriteItem::builder().condition_check(newest).build(),
            );
        }

        let membership = HashMap::from([
            ("team_id".to_string(), s(&link.team_id)),
            ("status".to_string(), s("active")),
            ("joined_at".to_string(), n(now)),
        ]);
        match who {
            ConsumeAs::NewContact { contact_id } => {
                let profile = HashMap::from([
                    ("contact_id".to_string(), s(contact_id)),
                    ("email".to_string(), s(&link.email)),
                    ("email_key".to_string(), s(&link.email_key)),
                    ("email_verified_at".to_string(), n(now)),
                    ("token_version".to_string(), n(0)),
                    ("created_at".to_string(), n(now)),
                    ("last_sign_in_at".to_string(), n(now)),
                ]);
                tx.push(
                    Step::Profile,
                    self.put(
                        with_key(profile, keys::profile(contact_id)),
                        Some("attribute_not_exists(pk)"),
                    )?,
                );
                tx.push(
                    Step::ClaimEmail,
                    self.claim_email(contact_id, &link.email_key)?,
                );
                tx.push(
                    Step::Membership,
                    self.put(
                        with_key(membership, keys::membership(contact_id, &link.team_id)),
                        Some("attribute_not_exists(pk)"),
                    )?,
                );
            }
            ConsumeAs::Existing {
                contact_id,
                token_version,
                join,
            } => {
                let touch = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key_map(keys::profile(contact_id))))
                    .update_expression(
                        "SET last_sign_in_at = :now, email_verified_at = if_not_exists(email_verified_at, :now)",
                    )
                    .condition_expression("attribute_exists(pk) AND token_version = :tv")
                    .expression_attribute_values(":now", n(now))
                    .expression_attribute_values(":tv", n(*token_version))
                    .build()
                    .map_err(build_err)?;
                tx.push(
                    Step::Profile,
                    TransactWriteItem::builder().update(touch).build(),
                );
                let key = key_map(keys::membership(contact_id, &link.team_id));
                if *join {
                    let u = Update::builder()
                        .table_name(&self.table)
                        .set_key(Some(key))
                        .update_expression(
                            "SET #st = :active, team_id = :t, joined_at = if_not_exists(joined_at, :now)",
                        )
                        .condition_expression("attribute_not_exists(pk) OR #st <> :banned")
                        .expression_attribute_names("#st", "status")
                        .expression_attribute_values(":active", s("active"))
                        .expression_attribute_values(":banned", s("banned"))
                        .expression_attribute_values(":t", s(&link.team_id))
                        .expression_attribute_values(":now", n(now))
                        .build()
                        .map_err(build_err)?;
                    tx.push(
                        Step::Membership,
                        TransactWriteItem::builder().update(u).build(),
                    );
                } else {
                    tx.push(
                        Step::Membership,
                        self.active_member_check(contact_id, &link.team_id)?,
                    );
                }
            }
            ConsumeAs::ChangeEmail {
                contact_id,
                token_version,
                old_email_key,
                change_id,
            } => {
                // The new address must be free; release the old one; switch the profile
                // (only while this change is the pending one); still a member.
                tx.push(
                    Step::ClaimEmail,
                    self.claim_email(contact_id, &link.email_key)?,
                );
                tx.push(
                    Step::ReleaseEmail,
                    self.release_email(contact_id, old_email_key)?,
                );
                let switch = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key_map(keys::profile(contact_id))))
                    .update_expression(
                        format!("SET email = :e, email_key = :k, email_verified_at = :now, last_sign_in_at = :now REMOVE {PENDING_CHANGE}"),
                    )
                    .condition_expression(
                        "attribute_exists(pk) AND email_key = :old AND token_version = :tv AND email_change_id = :cid",
                    )
                    .expression_attribute_values(":e", s(&link.email))
                    .expression_attribute_values(":k", s(&link.email_key))
                    .expression_attribute_values(":old", s(old_email_key))
                    .expression_attribute_values(":now", n(now))
                    .expression_attribute_values(":tv", n(*token_version))
                    .expression_attribute_values(":cid", s(change_id))
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    )
                    .build()
                    .map_err(build_err)?;
                tx.push(
                    Step::Profile,
                    TransactWriteItem::builder().update(switch).build(),
                );
                tx.push(
                    Step::Membership,
                    self.active_member_check(contact_id, &link.team_id)?,
                );
            }
        }
        tx.push(
            Step::Session,
            self.put(refresh_item(refresh), Some("attribute_not_exists(pk)"))?,
        );

        let failed = match self
            .transact("consume_magic_link", std::mem::take(&mut tx.items))
            .await?
        {
            TxOutcome::Ok => return Ok(Consumed::Done),
            TxOutcome::Cancelled(reasons) => tx.failed(&reasons),
        };
        let (profile_failed, profile_old) = failed
            .iter()
            .find(|(step, _)| *step == Step::Profile)
            .map(|(_, old)| (true, old.clone()))
            .unwrap_or((false, None));
        let has = |step: Step| failed.iter().any(|(s, _)| *s == step);
        Ok(match who {
            _ if has(Step::Link) || has(Step::Newest) => Consumed::Invalid,
            ConsumeAs::NewContact { .. } if has(Step::ClaimEmail) => Consumed::EmailTaken,
            ConsumeAs::NewContact { .. } => {
                return Err(PortError::Internal("consume transaction cancelled".into()))
            }
            ConsumeAs::ChangeEmail { change_id, .. } => {
                // A change that is no longer pending (newer request, cancelled, ended
                // by logout-everywhere or a password change) is an invalid link.
                let still_pending = profile_old
                    .as_ref()
                    .and_then(|o| get_s(o, "email_change_id"))
                    .is_some_and(|c| &c == change_id);
                if profile_failed && !still_pending {
                    Consumed::Invalid
                } else if has(Step::ClaimEmail) {
                    Consumed::EmailTaken
                } else if profile_failed || has(Step::ReleaseEmail) {
                    Consumed::VersionChanged
                } else {
                    Consumed::Invalid
                }
            }
            ConsumeAs::Existing { .. } if profile_failed => Consumed::VersionChanged,
            ConsumeAs::Existing { .. } => Consumed::Invalid,
        })
    }

    async fn undo_email_change(
        &self,
        link: &MagicLink,
        undo: &UndoEmailChange,
        now: i64,
    ) -> PortResult<Consumed> {
        let cid = &undo.contact_id;
        let mut tx = Tx::default();
        tx.push(Step::Link, self.mark_link_used(link, now)?);
        if undo.current_email_key != link.email_key {
            tx.push(
                Step::ReleaseEmail,
                self.release_email(cid, &undo.current_email_key)?,
            );
            let claim = Put::builder()
                .table_name(&self.table)
                .set_item(Some(with_key(
                    HashMap::from([("contact_id".to_string(), s(cid))]),
                    keys::email(&link.email_key),
                )))
                .condition_expression("attribute_not_exists(pk) OR contact_id = :c")
                .expression_attribute_values(":c", s(cid))
                .build()
                .map_err(build_err)?;
            tx.push(
                Step::ClaimEmail,
                TransactWriteItem::builder().put(claim).build(),
            );
        }
        let mut remove = vec![PENDING_CHANGE];
        if undo.remove_password {
            remove.push("password_hash");
        }
        let pw_cond = match undo.password_version {
            0 => "attribute_not_exists(password_version)",
            _ => "password_version = :pv",
        };
        let mut u = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(keys::profile(cid))))
            .update_expression(format!(
                "SET email = :e, email_key = :k, token_version = :next REMOVE {}",
                remove.join(", ")
            ))
            .condition_expression(format!(
                "attribute_exists(pk) AND token_version = :tv AND email_key = :cur AND {pw_cond}"
            ))
            .expression_attribute_values(":e", s(&link.email))
            .expression_attribute_values(":k", s(&link.email_key))
            .expression_attribute_values(":cur", s(&undo.current_email_key))
            .expression_attribute_values(":tv", n(undo.token_version))
            .expression_attribute_values(":next", n(undo.token_version + 1));
        if undo.password_version > 0 {
            u = u.expression_attribute_values(":pv", n(undo.password_version));
        }
        tx.push(
            Step::Profile,
            TransactWriteItem::builder()
                .update(u.build().map_err(build_err)?)
                .build(),
        );
        let failed = match self
            .transact("undo_email_change", std::mem::take(&mut tx.items))
            .await?
        {
            TxOutcome::Ok => return Ok(Consumed::Done),
            TxOutcome::Cancelled(reasons) => tx.failed(&reasons),
        };
        let has = |step: Step| failed.iter().any(|(s, _)| *s == step);
        Ok(if has(Step::Link) {
            Consumed::Invalid
        } else if has(Step::ClaimEmail) {
            Consumed::EmailTaken
        } else {
            Consumed::VersionChanged
        })
    }

    async fn reserve_attempts(
        &self,
        counters: &[(Counter, u32)],
        now: i64,
    ) -> PortResult<Reserved> {
        let mut items = Vec::with_capacity(counters.len());
        for (c, limit) in counters {
            let u = self.window_count(c, *limit).build().map_err(build_err)?;
            items.push(TransactWriteItem::builder().update(u).build());
        }
        match self.transact("reserve_attempts", items).await? {
            TxOutcome::Ok => Ok(Reserved::Ok),
            TxOutcome::Cancelled(reasons) => {
                let retry = reasons
                    .iter()
                    .zip(counters)
                    .filter(|((code, _), _)| code == "ConditionalCheckFailed")
                    .map(|(_, (c, _))| (c.expires_at - now).max(1) as u64)
                    .max();
                match retry {
                    Some(retry_after) => Ok(Reserved::Limited { retry_after }),
                    None => Err(PortError::Internal("reserve_attempts cancelled".into())),
                }
            }
        }
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

    async fn contact_with_membership(
        &self,
        contact_id: Option<&str>,
        team_id: &str,
    ) -> PortResult<(Option<Contact>, Option<Membership>)> {
        // Without a contact, read two keys that never exist: the same cost either way.
        let id = contact_id.unwrap_or("none");
        let items = self
            .batch_get(
                "contact_with_membership",
                vec![keys::profile(id), keys::membership(id, team_id)],
            )
            .await?;
        if contact_id.is_none() {
            return Ok((None, None));
        }
        let contact = items
            .iter()
            .find(|i| get_s(i, "sk").as_deref() == Some("PROFILE"))
            .and_then(contact_from);
        let membership = items
            .iter()
            .find(|i| get_s(i, "sk").is_some_and(|sk| sk.starts_with("TEAM#")))
            .and_then(membership_from);
        Ok((contact, membership))
    }

    async fn record_login_success(
        &self,
        refresh: &RefreshRecord,
        failures: &Counter,
        rehash: Option<(&str, &str)>,
    ) -> PortResult<()> {
        let build = |rehash: Option<(&str, &str)>| -> PortResult<Vec<TransactWriteItem>> {
            let mut items = vec![
                self.put(refresh_item(refresh), Some("attribute_not_exists(pk)"))?,
                TransactWriteItem::builder()
                    .delete(
                        Delete::builder()
                            .table_name(&self.table)
                            .set_key(Some(key_map(keys::rate(&failures.key))))
                            .build()
                            .map_err(build_err)?,
                    )
                    .build(),
            ];
            if let Some((old, new)) = rehash {
                let u = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key_map(keys::profile(&refresh.contact_id))))
                    .update_expression("SET password_hash = :new")
                    .condition_expression("password_hash = :old")
                    .expression_attribute_values(":new", s(new))
                    .expression_attribute_values(":old", s(old))
                    .build()
                    .map_err(build_err)?;
                items.push(TransactWriteItem::builder().update(u).build());
            }
            Ok(items)
        };
        match self
            .transact("record_login_success", build(rehash)?)
            .await?
        {
            TxOutcome::Ok => Ok(()),
            // The password changed meanwhile: keep the session, skip the rehash.
            TxOutcome::Cancelled(_) if rehash.is_some() => {
                match self.transact("record_login_success", build(None)?).await? {
                    TxOutcome::Ok => Ok(()),
                    TxOutcome::Cancelled(_) => {
                        Err(PortError::Internal("login session write cancelled".into()))
                    }
                }
            }
            TxOutcome::Cancelled(_) => {
                Err(PortError::Internal("login session write cancelled".into()))
            }
        }
    }

    async fn refresh_state(&self, token_hash: &str) -> PortResult<Option<RefreshState>> {
        Ok(self
            .get("refresh_state", keys::refresh(token_hash))
            .await?
            .and_then(|i| refresh_state_from(token_hash, &i)))
    }

    async fn rotate_refresh(
        &self,
        old: &RefreshState,
        new: &RefreshRecord,
        now: i64,
        grace_since: Option<i64>,
    ) -> PortResult<Rotation> {
        let old_key = key_map(keys::refresh(&old.record.token_hash));
        let first = match grace_since {
            None => TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name(&self.table)
                        .set_key(Some(old_key))
                        .update_expression("SET rotated_at = :now, replaced_by = :new")
                        .condition_expression(
                            "attribute_exists(pk) AND attribute_not_exists(rotated_at) AND attribute_not_exists(revoked_at) AND expires_at > :now",
                        )
                        .expression_attribute_values(":now", n(now))
                        .expression_attribute_values(":new", s(&new.token_hash))
                        .build()
                        .map_err(build_err)?,
                )
                .build(),
            Some(since) => TransactWriteItem::builder()
                .condition_check(
                    ConditionCheck::builder()
                        .table_name(&self.table)
                        .set_key(Some(old_key))
                        .condition_expression(
                            "rotated_at >= :since AND attribute_not_exists(revoked_at) AND expires_at > :now",
                        )
                        .expression_attribute_values(":since", n(since))
                        .expression_attribute_values(":now", n(now))
                        .build()
                        .map_err(build_err)?,
                )
                .build(),
        };
        let family = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(keys::family(&old.record.family_id))))
            .condition_expression("attribute_not_exists(revoked_at)")
            .build()
            .map_err(build_err)?;
        let version = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(keys::profile(&old.record.contact_id))))
            .condition_expression("attribute_exists(pk) AND token_version <= :tv")
            .expression_attribute_values(":tv", n(old.record.token_version))
            .build()
            .map_err(build_err)?;
        // Still an active member of the session's team, signed in after any ban.
        let member = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(keys::membership(
                &old.record.contact_id,
                &old.record.team_id,
            ))))
            .condition_expression(
                "#st = :active AND (attribute_not_exists(sessions_valid_after) OR sessions_valid_after < :auth)",
            )
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":active", s("active"))
            .expression_attribute_values(":auth", n(old.record.auth_time))
            .build()
            .map_err(build_err)?;
        let items = vec![
            first,
            TransactWriteItem::builder().condition_check(family).build(),
            TransactWriteItem::builder()
                .condition_check(version)
                .build(),
            TransactWriteItem::builder().condition_check(member).build(),
            self.put(refresh_item(new), Some("attribute_not_exists(pk)"))?,
        ];
        match self.transact("rotate_refresh", items).await? {
            TxOutcome::Ok => Ok(Rotation::Done),
            TxOutcome::Cancelled(reasons) => {
                if reasons
                    .first()
                    .is_some_and(|(c, _)| c == "ConditionalCheckFailed")
                {
                    Ok(Rotation::OldChanged)
                } else {
                    Ok(Rotation::Rejected)
                }
            }
        }
    }

    async fn revoke_family(
        &self,
        family_id: &str,
        token_hash: Option<&str>,
        now: i64,
        until: i64,
    ) -> PortResult<()> {
        let fam = HashMap::from([
            ("revoked_at".to_string(), n(now)),
            ("expires_at".to_string(), n(until.max(now + 60))),
        ]);
        let mut items = vec![self.put(with_key(fam, keys::family(family_id)), None)?];
        if let Some(h) = token_hash {
            let u = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key_map(keys::refresh(h))))
                .update_expression("SET revoked_at = :now")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":now", n(now))
                .build()
                .map_err(build_err)?;
            items.push(TransactWriteItem::builder().update(u).build());
        }
        // A token that vanished meanwhile needs no revoking: a cancel is fine.
        self.transact("revoke_family", items).await?;
        Ok(())
    }

    async fn end_all_sessions(&self, contact_id: &str) -> PortResult<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_map(keys::profile(contact_id))))
            .update_expression(format!("ADD token_version :one REMOVE {PENDING_CHANGE}"))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":one", n(1))
            .send()
            .await
            .map_err(|e| sdk_err("end_all_sessions", e))?;
        Ok(())
    }

    async fn set_first_password(
        &self,
        contact_id: &str,
        hash: &str,
        now: i64,
        notice: &MailJob,
    ) -> PortResult<bool> {
        let u = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(keys::profile(contact_id))))
            .update_expression(
                "SET password_hash = :h, password_changed_at = :now ADD password_version :one",
            )
            .expression_attribute_values(":one", n(1))
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(password_hash)")
            .expression_attribute_values(":h", s(hash))
            .expression_attribute_values(":now", n(now))
            .build()
            .map_err(build_err)?;
        let items = vec![
            TransactWriteItem::builder().update(u).build(),
            self.put(
                job_item(notice, now + 86_400)?,
                Some("attribute_not_exists(pk)"),
            )?,
        ];
        Ok(matches!(
            self.transact("set_first_password", items).await?,
            TxOutcome::Ok
        ))
    }

    async fn change_password(
        &self,
        contact: &Contact,
        new_hash: &str,
        refresh: &RefreshRecord,
        now: i64,
        notice: &MailJob,
    ) -> PortResult<bool> {
        let old = contact.password_hash.clone().unwrap_or_default();
        let u = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(keys::profile(&contact.contact_id))))
            .update_expression(
                format!("SET password_hash = :new, token_version = :next, password_changed_at = :now REMOVE {PENDING_CHANGE} ADD password_version :one"),
            )
            .condition_expression("password_hash = :old AND token_version = :tv")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":new", s(new_hash))
            .expression_attribute_values(":old", s(old))
            .expression_attribute_values(":tv", n(contact.token_version))
            .expression_attribute_values(":next", n(contact.token_version + 1))
            .build()
            .map_err(build_err)?;
        let items = vec![
            TransactWriteItem::builder().update(u).build(),
            self.put(refresh_item(refresh), Some("attribute_not_exists(pk)"))?,
            self.put(
                job_item(notice, now + 86_400)?,
                Some("attribute_not_exists(pk)"),
            )?,
        ];
        Ok(matches!(
            self.transact("change_password", items).await?,
            TxOutcome::Ok
        ))
    }

    async fn update_profile(&self, contact_id: &str, changes: &ProfileChanges) -> PortResult<()> {
        let mut set = vec![];
        let mut remove = vec![];
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_map(keys::profile(contact_id))))
            .condition_expression("attribute_exists(pk)");
        let fields = [
            ("tos_accepted_at", changes.tos_accepted_at.clone()),
            ("tos_version", changes.tos_version.clone()),
        ];
        if changes.cancel_email_change {
            remove.push(PENDING_CHANGE.to_string());
        }
        for (name, change) in fields {
            match change {
                None => {}
                Some(None) => remove.push(name.to_string()),
                Some(Some(v)) => {
                    set.push(format!("{name} = :{name}"));
                    req = req.expression_attribute_values(format!(":{name}"), s(v));
                }
            }
        }
        if set.is_empty() && remove.is_empty() {
            return Ok(());
        }
        let mut expr = String::new();
        if !set.is_empty() {
            expr.push_str(&format!("SET {}", set.join(", ")));
        }
        if !remove.is_empty() {
            expr.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        req.update_expression(expr.trim())
            .send()
            .await
            .map_err(|e| sdk_err("update_profile", e))?;
        Ok(())
    }
}

fn refresh_state_from(hash: &str, item: &Item) -> Option<RefreshState> {
    Some(RefreshState {
        record: RefreshRecord {
            token_hash: hash.to_string(),
            contact_id: get_s(item, "contact_id")?,
            team_id: get_s(item, "team_id")?,
            hub_id: get_s(item, "hub_id"),
            family_id: get_s(item, "family_id")?,
            token_version: get_n(item, "token_version").unwrap_or(0).max(0) as u64,
            amr: get_list_s(item, "amr"),
            auth_time: get_n(item, "auth_time").unwrap_or(0),
            created_at: get_n(item, "created_at").unwrap_or(0),
            expires_at: get_n(item, "expires_at")?,
        },
        rotated_at: get_n(item, "rotated_at"),
        revoked_at: get_n(item, "revoked_at"),
    })
}

pub fn refresh_item(r: &RefreshRecord) -> Item {
    let item = HashMap::from([
        ("contact_id".to_string(), s(&r.contact_id)),
        ("team_id".to_string(), s(&r.team_id)),
        ("hub_id".to_string(), opt_s(&r.hub_id)),
        ("family_id".to_string(), s(&r.family_id)),
        ("token_version".to_string(), n(r.token_version)),
        ("amr".to_string(), list_s(&r.amr)),
        ("auth_time".to_string(), n(r.auth_time)),
        ("created_at".to_string(), n(r.created_at)),
        ("expires_at".to_string(), n(r.expires_at)),
    ]);
    with_key(item, keys::refresh(&r.token_hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancellations_are_read_by_step_not_position() {
        let steps = [Step::Link, Step::ClaimEmail, Step::Profile, Step::Session];
        let old = HashMap::from([("email_change_id".to_string(), s("c1"))]);
        let reasons = vec![
            ("None".to_string(), None),
            ("ConditionalCheckFailed".to_string(), None),
            ("ConditionalCheckFailed".to_string(), Some(old.clone())),
            ("None".to_string(), None),
        ];
        let failed = failed_steps(&steps, &reasons);
        assert_eq!(
            failed,
            vec![(Step::ClaimEmail, None), (Step::Profile, Some(old))]
        );
        // Fewer reasons than steps (a malformed answer) never panics.
        assert!(failed_steps(&steps, &[]).is_empty());
    }
}
