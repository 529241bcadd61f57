//! `Sessions` on the table: one RT#<hash> item per refresh token (rotation state
//! included), RTFAMILY#<id> once a family is revoked; every rotation checks the family,
//! the profile's token version and the membership in one transaction.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{ConditionCheck, Delete, TransactWriteItem, Update};

use super::codec::{n, refresh_item, refresh_state_from, s};
use super::keys::{self, key_map, with_key};
use super::tx::{has, Settled, Tx};
use super::{build_err, DynamoStore};
use crate::domain::model::RefreshRecord;
use crate::domain::secret::TokenHash;
use crate::errors::PortError;
use crate::ports::{Counter, PortResult, RefreshState, Rotation, Sessions};

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
    /// The new token's item.
    Session,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RevokeStep {
    Family,
    Token,
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

impl Sessions for DynamoStore {
    async fn record_login_success(
        &self,
        refresh: &RefreshRecord,
        failures: &Counter,
        rehash: Option<(&str, &str)>,
    ) -> PortResult<()> {
        let build = |rehash: Option<(&str, &str)>| -> PortResult<Tx<LoginStep>> {
            let mut tx = Tx::new();
            tx.push(LoginStep::Session, self.put_new(refresh_item(refresh))?);
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
        tx.push(RotateStep::Session, self.put_new(refresh_item(new))?);
        rotation_outcome(self.commit("rotate_refresh", tx).await?)
    }

    async fn revoke_family(
        &self,
        family_id: &str,
        token_hash: Option<&TokenHash>,
        now: i64,
        until: i64,
    ) -> PortResult<()> {
        let fam = HashMap::from([
            ("revoked_at".to_string(), n(now)),
            ("expires_at".to_string(), n(until.max(now + 60))),
        ]);
        let mut tx = Tx::new();
        tx.push(
            RevokeStep::Family,
            self.put(with_key(fam, keys::family(family_id)), None)?,
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
        // A token that vanished meanwhile needs no revoking: that cancel is fine.
        match self.commit("revoke_family", tx).await? {
            Settled::Done => Ok(()),
            Settled::Failed(f) if f.iter().all(|(s, _)| *s == RevokeStep::Token) => Ok(()),
            Settled::Failed(_) => Err(PortError::Internal("revoke_family cancelled".into())),
        }
    }
}

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
        for step in [RotateStep::Family, RotateStep::Version, RotateStep::Member] {
            assert_eq!(
                rotation_outcome(failed(&[step])).unwrap(),
                Rotation::Rejected,
                "{step:?}"
            );
        }
        assert!(rotation_outcome(failed(&[RotateStep::Session])).is_err());
    }
}
