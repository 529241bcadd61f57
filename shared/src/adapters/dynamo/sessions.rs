//! `Sessions` on the table: one RT#<hash> item per refresh token (rotation state
//! included), RTFAMILY#<id> once a family is revoked, and the family's session record
//! (CONTACT#<id> / SESSION#<team>#<family>: created by the sign-in, touched by each
//! rotation, ended with a reason); every rotation checks the family, the session, the
//! profile's token version and the membership in one transaction.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{ConditionCheck, Delete, TransactWriteItem, Update};

use super::codec::{
    job_item, n, refresh_item, refresh_state_from, s, session_from, session_item, SESSION_KEEP,
};
use super::keys::{self, key_map, with_key};
use super::tx::{has, Settled, Tx};
use super::{build_err, DynamoStore, JOB_TTL};
use crate::domain::events::{AuthEvent, EventType};
use crate::domain::ids::{ContactId, TeamId};
use crate::domain::model::{RefreshRecord, SessionRecord};
use crate::domain::secret::TokenHash;
use crate::domain::session::EndReason;
use crate::errors::PortError;
use crate::ports::{Counter, PortResult, RefreshState, Rotation, Sessions, SESSION_LIST_CAP};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LoginStep {
    Session,
    ClearFailures,
    Rehash,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RotateStep {
    /// The presented token: unrotated (or, in the grace window, rotated since then).
    Old,
    /// The family is not revoked.
    Family,
    /// The profile's token version has not moved past the token's.
    Version,
    /// Still an active member, signed in after any ban.
    Member,
    /// The session record: not ended (touched: last active now).
    Live,
    /// The new token's item.
    Session,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RevokeStep {
    Family,
    Token,
    Ended,
}

/// A cancelled rotation: the presented token changed under us (a concurrent rotation:
/// read it again), or the session may not go on.
fn rotation_outcome(settled: Settled<RotateStep>) -> PortResult<Rotation> {
    Ok(match settled {
        Settled::Done => Rotation::Done,
        Settled::Failed(failed) if has(&failed, RotateStep::Old) => Rotation::OldChanged,
        Settled::Failed(failed) if has(&failed, RotateStep::Session) => {
            return Err(PortError::Internal(
                "rotate_refresh: new token collided".into(),
            ))
        }
        Settled::Failed(_) => Rotation::Rejected,
    })
}

impl DynamoStore {
    /// The items a new refresh token writes: the token and, for a family's first token
    /// (a sign-in), its session record.
    pub(super) fn new_refresh_items(
        &self,
        r: &RefreshRecord,
    ) -> PortResult<Vec<TransactWriteItem>> {
        let mut items = vec![self.put_new(refresh_item(r))?];
        if let Some(start) = &r.start {
            items.push(self.put_new(session_item(r, start))?);
            let created = AuthEvent::new(EventType::SessionCreated, r.created_at, &r.contact_id)
                .team(Some(&r.team_id))
                .hub(r.hub_id.as_ref().map(|h| h.as_str()))
                .session(&r.family_id);
            items.push(self.put_event(&created)?);
            if let Some(job) = &r.sign_in_notice {
                items.push(self.put_new(job_item(job, r.created_at + JOB_TTL))?);
            }
        }
        Ok(items)
    }

    /// A rotation's touch of the session record: last active now, kept as long as the
    /// new token plus `SESSION_KEEP` — only while the session has not ended. A family
    /// signed in before sessions were recorded gets its record here (what the token knows;
    /// no network or device).
    fn touch_session(
        &self,
        old: &RefreshRecord,
        new: &RefreshRecord,
        now: i64,
    ) -> PortResult<Update> {
        Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(keys::session(
                &old.contact_id,
                &old.team_id,
                &old.family_id,
            ))))
            .update_expression(
                "SET last_active_at = :now, expires_at = :exp, session_id = if_not_exists(session_id, :sid), team_id = if_not_exists(team_id, :tid), amr = if_not_exists(amr, :amr), auth_time = if_not_exists(auth_time, :auth), created_at = if_not_exists(created_at, :auth), token_version = if_not_exists(token_version, :tv)",
            )
            .condition_expression("attribute_not_exists(ended_at)")
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":exp", n(new.expires_at + SESSION_KEEP))
            .expression_attribute_values(":sid", s(&old.family_id))
            .expression_attribute_values(":tid", s(old.team_id.as_str()))
            .expression_attribute_values(":amr", super::codec::list_s(&old.amr))
            .expression_attribute_values(":auth", n(old.auth_time))
            .expression_attribute_values(":tv", n(old.token_version))
            .build()
            .map_err(build_err)
    }
}

impl DynamoStore {
    /// A revocation's end of the session record: once, with the first reason (a logout
    /// after a detected reuse keeps "reuse"), kept `SESSION_KEEP` past `until`. A family
    /// signed in before sessions were recorded gets its record here (ids and the end only).
    /// With `condition`, the update holds only under it: `LIVE` (a member ending a session
    /// from the list: an unknown or ended one changes nothing) or `NOT_ENDED` (a revocation:
    /// the first end writes the events, a later one only re-revokes).
    #[allow(clippy::too_many_arguments)]
    fn end_session_update(
        &self,
        contact_id: &ContactId,
        team_id: &TeamId,
        session_id: &str,
        reason: EndReason,
        now: i64,
        until: i64,
        condition: Option<&str>,
    ) -> PortResult<Update> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(keys::session(contact_id, team_id, session_id))))
            .update_expression(
                "SET ended_at = if_not_exists(ended_at, :now), ended_reason = if_not_exists(ended_reason, :why), session_id = if_not_exists(session_id, :sid), team_id = if_not_exists(team_id, :tid), expires_at = :exp",
            )
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":why", s(reason.as_str()))
            .expression_attribute_values(":sid", s(session_id))
            .expression_attribute_values(":tid", s(team_id.as_str()))
            .expression_attribute_values(":exp", n(until.max(now) + SESSION_KEEP));
        let update = match condition {
            Some(c) => update.condition_expression(c),
            None => update,
        };
        update.build().map_err(build_err)
    }

    /// The `session.ended` event of a session ended with `reason` (and, for a detected
    /// reuse, `session.reuse_detected` too) — for the transaction that ends it.
    fn ended_events(
        &self,
        contact_id: &ContactId,
        team_id: &TeamId,
        session_id: &str,
        reason: EndReason,
        now: i64,
    ) -> PortResult<Vec<TransactWriteItem>> {
        let event = |t| {
            AuthEvent::new(t, now, contact_id)
                .team(Some(team_id))
                .session(session_id)
                .reason(reason.as_str())
        };
        let mut items = vec![self.put_event(&event(EventType::SessionEnded))?];
        if reason == EndReason::Reuse {
            items.push(self.put_event(&event(EventType::SessionReuseDetected))?);
        }
        Ok(items)
    }

    /// The family's revocation marker: every token of `family_id` is refused from now
    /// (kept until `until`, the family's latest possible end).
    fn revoke_family_item(
        &self,
        family_id: &str,
        now: i64,
        until: i64,
    ) -> PortResult<TransactWriteItem> {
        let fam = HashMap::from([
            ("revoked_at".to_string(), n(now)),
            ("expires_at".to_string(), n(until.max(now + 60))),
        ]);
        self.put(with_key(fam, keys::family(family_id)), None)
    }
}

impl Sessions for DynamoStore {
    async fn record_login_success(
        &self,
        refresh: &RefreshRecord,
        failures: &Counter,
        rehash: Option<(&str, &str)>,
    ) -> PortResult<()> {
        let build = |rehash: Option<(&str, &str)>| -> PortResult<Tx<LoginStep>> {
            let mut tx = Tx::new();
            for item in self.new_refresh_items(refresh)? {
                tx.push(LoginStep::Session, item);
            }
            let clear = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key_map(keys::rate(&failures.key))))
                .build()
                .map_err(build_err)?;
            tx.push(
                LoginStep::ClearFailures,
                TransactWriteItem::builder().delete(clear).build(),
            );
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
                tx.push(
                    LoginStep::Rehash,
                    TransactWriteItem::builder().update(u).build(),
                );
            }
            Ok(tx)
        };
        match self.commit("record_login_success", build(rehash)?).await? {
            Settled::Done => Ok(()),
            // The password changed meanwhile: keep the session, skip the rehash.
            Settled::Failed(f) if f.iter().all(|(s, _)| *s == LoginStep::Rehash) => {
                match self.commit("record_login_success", build(None)?).await? {
                    Settled::Done => Ok(()),
                    Settled::Failed(_) => {
                        Err(PortError::Internal("login session write cancelled".into()))
                    }
                }
            }
            Settled::Failed(_) => Err(PortError::Internal("login session write cancelled".into())),
        }
    }

    async fn sessions(
        &self,
        contact_id: &ContactId,
        team_id: &TeamId,
    ) -> PortResult<Vec<SessionRecord>> {
        let prefix = format!("{}{team_id}#", keys::SESSION_PREFIX);
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
                .expression_attribute_values(":pk", s(keys::contact_partition(contact_id)))
                .expression_attribute_values(":p", s(&prefix))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| super::sdk_err("sessions", e))?;
            found.extend(out.items().iter().filter_map(session_from));
            start = out.last_evaluated_key().cloned();
            if start.is_none() || found.len() >= SESSION_LIST_CAP {
                break;
            }
        }
        found.truncate(SESSION_LIST_CAP);
        Ok(found)
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
        let mut tx = Tx::new();
        tx.push(
            RevokeStep::Ended,
            TransactWriteItem::builder()
                .update(self.end_session_update(
                    contact_id,
                    team_id,
                    session_id,
                    reason,
                    now,
                    until,
                    Some(LIVE),
                )?)
                .build(),
        );
        tx.push(
            RevokeStep::Family,
            self.revoke_family_item(session_id, now, until)?,
        );
        for item in self.ended_events(contact_id, team_id, session_id, reason, now)? {
            tx.push(RevokeStep::Ended, item);
        }
        Ok(match self.commit("end_session", tx).await? {
            Settled::Done => true,
            Settled::Failed(_) => false,
        })
    }

    async fn refresh_state(&self, token_hash: &TokenHash) -> PortResult<Option<RefreshState>> {
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
                        .expression_attribute_values(":new", s(new.token_hash.as_str()))
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
        let mut tx = Tx::new();
        tx.push(RotateStep::Old, first);
        tx.push(
            RotateStep::Family,
            TransactWriteItem::builder().condition_check(family).build(),
        );
        tx.push(
            RotateStep::Version,
            TransactWriteItem::builder()
                .condition_check(version)
                .build(),
        );
        tx.push(
            RotateStep::Member,
            TransactWriteItem::builder().condition_check(member).build(),
        );
        tx.push(
            RotateStep::Live,
            TransactWriteItem::builder()
                .update(self.touch_session(&old.record, new, now)?)
                .build(),
        );
        tx.push(RotateStep::Session, self.put_new(refresh_item(new))?);
        rotation_outcome(self.commit("rotate_refresh", tx).await?)
    }

    async fn revoke_family(
        &self,
        record: &RefreshRecord,
        token_hash: Option<&TokenHash>,
        reason: EndReason,
        now: i64,
        until: i64,
    ) -> PortResult<()> {
        let family_id = record.family_id.as_str();
        // `first`: the session has not ended yet — its end is conditional on that and
        // carries the events. A family whose session already ended (a second logout, a
        // rotated-out token presented again) is revoked again without new events, so a
        // replayed token cannot mint `session.ended` events.
        let build = |token_hash: Option<&TokenHash>, first: bool| -> PortResult<Tx<RevokeStep>> {
            let mut tx = Tx::new();
            tx.push(
                RevokeStep::Family,
                self.revoke_family_item(family_id, now, until)?,
            );
            if let Some(h) = token_hash {
                let u = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key_map(keys::refresh(h))))
                    .update_expression("SET revoked_at = :now")
                    .condition_expression("attribute_exists(pk)")
                    .expression_attribute_values(":now", n(now))
                    .build()
                    .map_err(build_err)?;
                tx.push(
                    RevokeStep::Token,
                    TransactWriteItem::builder().update(u).build(),
                );
            }
            tx.push(
                RevokeStep::Ended,
                TransactWriteItem::builder()
                    .update(self.end_session_update(
                        &record.contact_id,
                        &record.team_id,
                        family_id,
                        reason,
                        now,
                        until,
                        first.then_some(NOT_ENDED),
                    )?)
                    .build(),
            );
            if first {
                for item in
                    self.ended_events(&record.contact_id, &record.team_id, family_id, reason, now)?
                {
                    tx.push(RevokeStep::Ended, item);
                }
            }
            Ok(tx)
        };
        // A token that vanished meanwhile (TTL) needs no revoking, and a session that had
        // ended needs no events; but a cancel undid the whole transaction: once more
        // without what failed.
        let cancelled = || PortError::Internal("revoke_family cancelled".into());
        match self
            .commit("revoke_family", build(token_hash, true)?)
            .await?
        {
            Settled::Done => Ok(()),
            Settled::Failed(f)
                if f.iter()
                    .all(|(s, _)| matches!(s, RevokeStep::Token | RevokeStep::Ended)) =>
            {
                let token = if has(&f, RevokeStep::Token) {
                    None
                } else {
                    token_hash
                };
                let first = !has(&f, RevokeStep::Ended);
                match self.commit("revoke_family", build(token, first)?).await? {
                    Settled::Done => Ok(()),
                    Settled::Failed(_) => Err(cancelled()),
                }
            }
            Settled::Failed(_) => Err(cancelled()),
        }
    }
}

/// `end_session_update`'s conditions: a live record (the member's list), or any record
/// (or none yet: a legacy family) that has not ended (a revocation).
const LIVE: &str = "attribute_exists(pk) AND attribute_not_exists(ended_at)";
const NOT_ENDED: &str = "attribute_not_exists(ended_at)";

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(steps: &[RotateStep]) -> Settled<RotateStep> {
        Settled::Failed(steps.iter().map(|s| (*s, None)).collect())
    }

    #[test]
    fn rotation_outcomes_by_step() {
        assert_eq!(rotation_outcome(Settled::Done).unwrap(), Rotation::Done);
        assert_eq!(
            rotation_outcome(failed(&[RotateStep::Old])).unwrap(),
            Rotation::OldChanged
        );
        // A concurrent rotation wins over everything else: the caller reads again.
        assert_eq!(
            rotation_outcome(failed(&[RotateStep::Old, RotateStep::Family])).unwrap(),
            Rotation::OldChanged
        );
        for step in [
            RotateStep::Family,
            RotateStep::Version,
            RotateStep::Member,
            RotateStep::Live,
        ] {
            assert_eq!(
                rotation_outcome(failed(&[step])).unwrap(),
                Rotation::Rejected,
                "{step:?}"
            );
        }
        assert!(rotation_outcome(failed(&[RotateStep::Session])).is_err());
    }
}
