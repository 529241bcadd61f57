//! `Contacts` on the table: the profile (CONTACT#/PROFILE), the email index (EMAIL#) and
//! memberships (CONTACT#/TEAM#), with the password writes that end sessions.

use aws_sdk_dynamodb::types::{TransactWriteItem, Update};

use super::codec::{contact_from, get_s, job_item, membership_from, n, s, session_from};
use super::keys::{self, key_map};
use super::tx::{Settled, Tx};
use super::{build_err, sdk_err, DynamoStore, Item, JOB_TTL, PENDING_CHANGE};
use crate::domain::email::EmailKey;
use crate::domain::events::{AuthEvent, EventType};
use crate::domain::ids::{ContactId, TeamId};
use crate::domain::model::{Contact, MailJob, Membership, RefreshRecord};
use crate::errors::PortError;
use crate::ports::{AccessState, Contacts, PortResult, ProfileChanges};

/// The items of a password write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PasswordStep {
    Profile,
    Session,
    Notice,
}

/// The profile and the membership among a batch read's items (in any order).
fn contact_and_membership(items: &[Item], id: &ContactId) -> (Option<Contact>, Option<Membership>) {
    let contact = items
        .iter()
        .find(|i| get_s(i, "sk") == Some(keys::profile(id).1))
        .and_then(contact_from);
    let membership = items
        .iter()
        .find(|i| get_s(i, "sk").is_some_and(|sk| sk.starts_with(keys::MEMBERSHIP_PREFIX)))
        .and_then(membership_from);
    (contact, membership)
}

impl Contacts for DynamoStore {
    async fn contact_id_by_email(&self, email_key: &EmailKey) -> PortResult<Option<ContactId>> {
        Ok(self
            .get("contact_id_by_email", keys::email(email_key))
            .await?
            .and_then(|i| get_s(&i, "contact_id"))
            .map(ContactId::from_stored))
    }

    async fn contact(&self, contact_id: &ContactId) -> PortResult<Option<Contact>> {
        Ok(self
            .get("contact", keys::profile(contact_id))
            .await?
            .as_ref()
            .and_then(contact_from))
    }

    async fn membership(
        &self,
        contact_id: &ContactId,
        team_id: &TeamId,
    ) -> PortResult<Option<Membership>> {
        Ok(self
            .get("membership", keys::membership(contact_id, team_id))
            .await?
            .as_ref()
            .and_then(membership_from))
    }

    async fn memberships(&self, contact_id: &ContactId) -> PortResult<Vec<Membership>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :t)")
            .expression_attribute_values(":pk", s(keys::contact_partition(contact_id)))
            .expression_attribute_values(":t", s(keys::MEMBERSHIP_PREFIX))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_err("memberships", e))?;
        Ok(out.items().iter().filter_map(membership_from).collect())
    }

    async fn contact_with_membership(
        &self,
        contact_id: &ContactId,
        team_id: &TeamId,
    ) -> PortResult<(Option<Contact>, Option<Membership>)> {
        let id = contact_id;
        let items = self
            .batch_get(
                "contact_with_membership",
                vec![keys::profile(id), keys::membership(id, team_id)],
            )
            .await?;
        Ok(contact_and_membership(&items, id))
    }

    async fn access_state(
        &self,
        contact_id: &ContactId,
        team_id: &TeamId,
        sid: &str,
    ) -> PortResult<AccessState> {
        let id = contact_id;
        let session_key = keys::session(id, team_id, sid);
        let items = self
            .batch_get(
                "access_state",
                vec![
                    keys::profile(id),
                    keys::membership(id, team_id),
                    session_key.clone(),
                ],
            )
            .await?;
        let (contact, membership) = contact_and_membership(&items, id);
        let session = items
            .iter()
            .find(|i| get_s(i, "sk") == Some(session_key.1.clone()))
            .and_then(session_from);
        Ok((contact, membership, session))
    }

    async fn end_all_sessions(
        &self,
        contact_id: &ContactId,
        team_id: &TeamId,
        now: i64,
    ) -> PortResult<()> {
        let u = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(keys::profile(contact_id))))
            .update_expression(format!("ADD token_version :one REMOVE {PENDING_CHANGE}"))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":one", n(1))
            .build()
            .map_err(build_err)?;
        let ended = AuthEvent::new(EventType::SessionEnded, now, contact_id)
            .team(Some(team_id))
            .reason("logout_everywhere");
        let mut tx = Tx::new();
        tx.push(
            PasswordStep::Profile,
            TransactWriteItem::builder().update(u).build(),
        );
        tx.push(PasswordStep::Profile, self.put_event(&ended)?);
        match self.commit("end_all_sessions", tx).await? {
            Settled::Done => Ok(()),
            Settled::Failed(_) => Err(PortError::Internal("end_all_sessions: no profile".into())),
        }
    }

    async fn set_first_password(
        &self,
        contact_id: &ContactId,
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
        let mut tx = Tx::new();
        tx.push(
            PasswordStep::Profile,
            TransactWriteItem::builder().update(u).build(),
        );
        tx.push(
            PasswordStep::Notice,
            self.put_new(job_item(notice, now + JOB_TTL))?,
        );
        let set =
            AuthEvent::new(EventType::PasswordSet, now, contact_id).team(notice.team_id.as_ref());
        tx.push(PasswordStep::Notice, self.put_event(&set)?);
        password_outcome(self.commit("set_first_password", tx).await?)
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
        let mut tx = Tx::new();
        tx.push(
            PasswordStep::Profile,
            TransactWriteItem::builder().update(u).build(),
        );
        for item in self.new_refresh_items(refresh)? {
            tx.push(PasswordStep::Session, item);
        }
        tx.push(
            PasswordStep::Notice,
            self.put_new(job_item(notice, now + JOB_TTL))?,
        );
        // The change ends every other session (the token version): one `session.ended`
        // without a session id, reason password_change.
        let event = |t| {
            AuthEvent::new(t, now, &contact.contact_id)
                .team(Some(&refresh.team_id))
                .hub(refresh.hub_id.as_ref().map(|h| h.as_str()))
        };
        tx.push(
            PasswordStep::Notice,
            self.put_event(&event(EventType::PasswordChanged))?,
        );
        tx.push(
            PasswordStep::Notice,
            self.put_event(&event(EventType::SessionEnded).reason("password_change"))?,
        );
        password_outcome(self.commit("change_password", tx).await?)
    }

    async fn update_profile(
        &self,
        contact_id: &ContactId,
        changes: &ProfileChanges,
    ) -> PortResult<()> {
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

/// A password write: done (true), refused because the profile moved (false: a password
/// was set meanwhile, or the token version moved), or a server fault (a collided session
/// or job id).
fn password_outcome(settled: Settled<PasswordStep>) -> PortResult<bool> {
    match settled {
        Settled::Done => Ok(true),
        Settled::Failed(failed) => match failed.as_slice() {
            [(PasswordStep::Profile, _)] => Ok(false),
            _ => Err(crate::errors::PortError::Internal(format!(
                "password write cancelled at {:?}",
                failed.iter().map(|(s, _)| *s).collect::<Vec<_>>()
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_moved_profile_is_a_refusal() {
        assert!(password_outcome(Settled::Done).unwrap());
        assert!(!password_outcome(Settled::Failed(vec![(PasswordStep::Profile, None)])).unwrap());
        for other in [PasswordStep::Session, PasswordStep::Notice] {
            assert!(password_outcome(Settled::Failed(vec![(other, None)])).is_err());
        }
    }
}
