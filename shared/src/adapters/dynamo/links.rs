//! `MagicLinks` on the table: MAGIC#<hash> per link, MAGICLATEST#<scope> naming the
//! newest sign-in link per team and email, and the transactions that consume a link
//! (registration, join, sign-in, email change) or undo an email change.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    ConditionCheck, Delete, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};

use super::codec::{
    email_item, get_s, job_item, magic_from, magic_item, n, new_membership_item, s,
};
use super::keys::{self, key_map, with_key};
use super::tx::{has, Settled, Tx};
use super::{build_err, conditional, DynamoStore, Item, JOB_TTL, PENDING_CHANGE, UNDO_CHAIN};
use crate::domain::email::EmailKey;
use crate::domain::events::{AuthEvent, EventType};
use crate::domain::ids::{ContactId, TeamId};
use crate::domain::model::{LinkRefusal, MagicLink, RefreshRecord};
use crate::domain::rate::email_scope;
use crate::domain::secret::TokenHash;
use crate::errors::PortError;
use crate::ports::{ConsumeAs, Consumed, MagicLinks, PortResult, UndoEmailChange};

/// What each item of a consume or undo transaction is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkStep {
    /// The link: unused and unexpired.
    Link,
    /// The link is still the newest for its team and email.
    Newest,
    Profile,
    ClaimEmail,
    ReleaseEmail,
    Membership,
    Session,
    /// The email-changed notice job (a collided job id is a fault).
    Notice,
}

/// Why the link item's condition failed, from the item as it was (`ALL_OLD`): used, or
/// else expired; no item at all (TTL-deleted in between) is unknown.
fn link_refusal(failed: &[(LinkStep, Option<Item>)]) -> LinkRefusal {
    let old = failed
        .iter()
        .find(|(step, _)| *step == LinkStep::Link)
        .and_then(|(_, old)| old.as_ref());
    match old {
        Some(item) if item.contains_key("used_at") => LinkRefusal::Used,
        Some(item) if !item.is_empty() => LinkRefusal::Expired,
        _ => LinkRefusal::Unknown,
    }
}

/// What a cancelled consume means, read by step (`who` says which steps were written;
/// `link_key` is the address the link was mailed to).
fn consume_outcome(
    who: &ConsumeAs,
    link_key: Option<&str>,
    failed: &[(LinkStep, Option<Item>)],
) -> PortResult<Consumed> {
    let profile_old = failed
        .iter()
        .find(|(step, _)| *step == LinkStep::Profile)
        .map(|(_, old)| old.clone());
    let profile_failed = profile_old.is_some();
    Ok(match who {
        _ if has(failed, LinkStep::Link) => Consumed::Refused(link_refusal(failed)),
        _ if has(failed, LinkStep::Newest) => Consumed::Refused(LinkRefusal::Superseded),
        ConsumeAs::NewContact { .. } if has(failed, LinkStep::ClaimEmail) => Consumed::EmailTaken,
        ConsumeAs::NewContact { .. } => {
            return Err(PortError::Internal("consume transaction cancelled".into()))
        }
        ConsumeAs::ChangeEmail { change_id, .. } => {
            // A change that is no longer pending (newer request, cancelled, ended by
            // logout-everywhere or a password change) is an invalid link.
            let still_pending = profile_old
                .flatten()
                .as_ref()
                .and_then(|o| get_s(o, "email_change_id"))
                .is_some_and(|c| &c == change_id);
            if profile_failed && !still_pending {
                Consumed::Refused(LinkRefusal::Superseded)
            } else if has(failed, LinkStep::ClaimEmail) {
                Consumed::EmailTaken
            } else if profile_failed || has(failed, LinkStep::ReleaseEmail) {
                Consumed::VersionChanged
            } else if has(failed, LinkStep::Notice) {
                return Err(PortError::Internal(
                    "email-changed notice id collided".into(),
                ));
            } else {
                // The membership is no longer active (a ban): the link signs nobody in.
                Consumed::Refused(LinkRefusal::Unknown)
            }
        }
        // The link's address is no longer the contact's (an email change or an undo since
        // the mail): it signs nobody in. Else the version moved: read it again.
        ConsumeAs::Existing { .. } if profile_failed => {
            let address = profile_old
                .flatten()
                .as_ref()
                .and_then(|o| get_s(o, "email_key"));
            match (address, link_key) {
                (Some(now), Some(sent)) if now != sent => {
                    Consumed::Refused(LinkRefusal::Superseded)
                }
                _ => Consumed::VersionChanged,
            }
        }
        ConsumeAs::Existing { .. } => Consumed::Refused(LinkRefusal::Unknown),
    })
}

/// What a cancelled undo means.
fn undo_outcome(failed: &[(LinkStep, Option<Item>)]) -> Consumed {
    if has(failed, LinkStep::Link) {
        Consumed::Refused(link_refusal(failed))
    } else if has(failed, LinkStep::ClaimEmail) {
        Consumed::EmailTaken
    } else {
        Consumed::VersionChanged
    }
}

impl DynamoStore {
    /// The email index entry for `email_key`, only if no contact holds it yet.
    fn claim_email(
        &self,
        contact_id: &ContactId,
        email_key: &EmailKey,
    ) -> PortResult<TransactWriteItem> {
        self.put_new(email_item(contact_id, email_key))
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
            // The item as found says why it failed (used or expired: `link_refusal`).
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(build_err)?;
        Ok(TransactWriteItem::builder().update(mark).build())
    }

    /// Deletes the email index entry for `email_key`, only if `contact_id` holds it.
    fn release_email(
        &self,
        contact_id: &ContactId,
        email_key: &EmailKey,
    ) -> PortResult<TransactWriteItem> {
        let release = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(keys::email(email_key))))
            .condition_expression("contact_id = :c")
            .expression_attribute_values(":c", s(contact_id.as_str()))
            .build()
            .map_err(build_err)?;
        Ok(TransactWriteItem::builder().delete(release).build())
    }

    /// A transaction condition: the contact is an active member of the team.
    fn active_member_check(
        &self,
        contact_id: &ContactId,
        team_id: &TeamId,
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
}

/// The events a link's sign-in commits with it (`session.created` comes with the session's
/// items): a registration creates the contact and its membership, a join the membership,
/// an email-change link confirms the change.
fn consume_events(link: &MagicLink, who: &ConsumeAs, now: i64) -> Vec<AuthEvent> {
    let event = |t, contact: &ContactId| {
        AuthEvent::new(t, now, contact)
            .team(Some(&link.team_id))
            .hub(link.hub_id.as_ref().map(|h| h.as_str()))
            .email(&link.email)
    };
    match who {
        ConsumeAs::NewContact { contact_id } => vec![
            event(EventType::ContactCreated, contact_id),
            event(EventType::MembershipCreated, contact_id),
        ],
        ConsumeAs::Existing {
            contact_id,
            join: true,
            ..
        } => vec![event(EventType::MembershipCreated, contact_id)],
        ConsumeAs::Existing { .. } => vec![],
        // The confirmation ends every other session (the token version).
        ConsumeAs::ChangeEmail { contact_id, .. } => vec![
            event(EventType::EmailChangeConfirmed, contact_id),
            AuthEvent::new(EventType::SessionEnded, now, contact_id)
                .team(Some(&link.team_id))
                .reason("email_change"),
        ],
    }
}

impl MagicLinks for DynamoStore {
    async fn put_magic_link(&self, link: &MagicLink, contact_tv: Option<u64>) -> PortResult<bool> {
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(magic_item(link, contact_tv)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        conditional("put_magic_link", res)
    }

    async fn make_newest(&self, link: &MagicLink) -> PortResult<()> {
        let scope = email_scope(link.team_id.as_str(), &link.email_key);
        let latest = HashMap::from([
            ("token_hash".to_string(), s(link.token_hash.as_str())),
            ("created_at".to_string(), n(link.created_at)),
            ("expires_at".to_string(), n(link.expires_at)),
        ]);
        // Out-of-order mail jobs: an older link never replaces a newer one.
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(with_key(latest, keys::magic_latest(&scope))))
            .condition_expression("attribute_not_exists(pk) OR created_at <= :c")
            .expression_attribute_values(":c", n(link.created_at))
            .send()
            .await;
        // A newer link already is the newest: nothing to do.
        conditional("make_newest", res).map(|_| ())
    }

    async fn newest_link(
        &self,
        scope: &str,
        placeholder: &TokenHash,
    ) -> PortResult<Option<(MagicLink, Option<u64>)>> {
        let pointer = self
            .get("newest_link", keys::magic_latest(scope))
            .await?
            .and_then(|i| get_s(&i, "token_hash"))
            .map(TokenHash::from_stored);
        // No pointer: read the placeholder link, which never exists, so the work is the
        // same as for a real one.
        let hash = pointer.clone().unwrap_or_else(|| placeholder.clone());
        let link = self.magic_link(&hash).await?;
        Ok(link.filter(|_| pointer.is_some()))
    }

    async fn reserve_code_attempt(&self, token_hash: &TokenHash, max: u32) -> PortResult<bool> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_map(keys::magic(token_hash))))
            .update_expression("SET code_attempts = code_attempts + :one")
            .condition_expression("attribute_exists(code_hash) AND code_attempts < :max")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(max))
            .send()
            .await;
        conditional("reserve_code_attempt", res)
    }

    async fn magic_link(
        &self,
        token_hash: &TokenHash,
    ) -> PortResult<Option<(MagicLink, Option<u64>)>> {
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
        let mut tx = Tx::new();
        tx.push(LinkStep::Link, self.mark_link_used(link, now)?);
        if link.purpose.supersedes() {
            // Still the newest link for this team and email.
            let newest = ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(key_map(keys::magic_latest(&email_scope(
                    link.team_id.as_str(),
                    &link.email_key,
                )))))
                .condition_expression("token_hash = :h")
                .expression_attribute_values(":h", s(link.token_hash.as_str()))
                .build()
                .map_err(build_err)?;
            tx.push(
                LinkStep::Newest,
                TransactWriteItem::builder().condition_check(newest).build(),
            );
        }

        match who {
            ConsumeAs::NewContact { contact_id } => {
                let profile = HashMap::from([
                    ("contact_id".to_string(), s(contact_id.as_str())),
                    ("email".to_string(), s(&link.email)),
                    ("email_key".to_string(), s(link.email_key.as_str())),
                    ("email_verified_at".to_string(), n(now)),
                    ("token_version".to_string(), n(0)),
                    ("created_at".to_string(), n(now)),
                    ("last_sign_in_at".to_string(), n(now)),
                ]);
                let mut profile = profile;
                if let Some(l) = link.locale {
                    profile.insert("locale".into(), s(l.tag()));
                }
                tx.push(
                    LinkStep::Profile,
                    self.put_new(with_key(profile, keys::profile(contact_id)))?,
                );
                tx.push(
                    LinkStep::ClaimEmail,
                    self.claim_email(contact_id, &link.email_key)?,
                );
                tx.push(
                    LinkStep::Membership,
                    self.put_new(new_membership_item(contact_id, &link.team_id, now))?,
                );
            }
            ConsumeAs::Existing {
                contact_id,
                token_version,
                join,
            } => {
                // Only while the link's address is still the contact's: a link mailed to an
                // address an email change or an undo has since moved the account away from
                // signs nobody in (it would outlive the sessions those changes end).
                // A link asked for in a language makes it the member's (`i18n::choose`).
                let (set_locale, locale) = match link.locale {
                    Some(l) => (", locale = :loc", Some(s(l.tag()))),
                    None => ("", None),
                };
                let mut touch = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key_map(keys::profile(contact_id))))
                    .update_expression(format!(
                        "SET last_sign_in_at = :now, email_verified_at = if_not_exists(email_verified_at, :now){set_locale}"
                    ))
                    .condition_expression(
                        "attribute_exists(pk) AND token_version = :tv AND email_key = :lk",
                    )
                    .expression_attribute_values(":now", n(now))
                    .expression_attribute_values(":tv", n(*token_version))
                    .expression_attribute_values(":lk", s(link.email_key.as_str()))
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    );
                if let Some(v) = locale {
                    touch = touch.expression_attribute_values(":loc", v);
                }
                let touch = touch.build().map_err(build_err)?;
                tx.push(
                    LinkStep::Profile,
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
                        .expression_attribute_values(":t", s(link.team_id.as_str()))
                        .expression_attribute_values(":now", n(now))
                        .build()
                        .map_err(build_err)?;
                    tx.push(
                        LinkStep::Membership,
                        TransactWriteItem::builder().update(u).build(),
                    );
                } else {
                    tx.push(
                        LinkStep::Membership,
                        self.active_member_check(contact_id, &link.team_id)?,
                    );
                }
            }
            ConsumeAs::ChangeEmail {
                contact_id,
                token_version,
                old_email_key,
                change_id,
                notice,
            } => {
                // The new address must be free; release the old one; switch the profile
                // (only while this change is the pending one); still a member.
                tx.push(
                    LinkStep::ClaimEmail,
                    self.claim_email(contact_id, &link.email_key)?,
                );
                tx.push(
                    LinkStep::ReleaseEmail,
                    self.release_email(contact_id, old_email_key)?,
                );
                // Every other session ends (token version + 1); the chain records when the
                // address first left its origin (`domain::email_change`).
                let switch = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key_map(keys::profile(contact_id))))
                    .update_expression(
                        format!("SET email = :e, email_key = :k, email_verified_at = :now, last_sign_in_at = :now, token_version = :next, undo_switched_at = if_not_exists(undo_switched_at, :now) REMOVE {PENDING_CHANGE}"),
                    )
                    .expression_attribute_values(":next", n(*token_version + 1))
                    .condition_expression(
                        "attribute_exists(pk) AND email_key = :old AND token_version = :tv AND email_change_id = :cid",
                    )
                    .expression_attribute_values(":e", s(&link.email))
                    .expression_attribute_values(":k", s(link.email_key.as_str()))
                    .expression_attribute_values(":old", s(old_email_key.as_str()))
                    .expression_attribute_values(":now", n(now))
                    .expression_attribute_values(":tv", n(*token_version))
                    .expression_attribute_values(":cid", s(change_id))
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    )
                    .build()
                    .map_err(build_err)?;
                tx.push(
                    LinkStep::Profile,
                    TransactWriteItem::builder().update(switch).build(),
                );
                tx.push(
                    LinkStep::Membership,
                    self.active_member_check(contact_id, &link.team_id)?,
                );
                tx.push(
                    LinkStep::Notice,
                    self.put_new(job_item(notice, now + JOB_TTL))?,
                );
            }
        }
        for item in self.new_refresh_items(refresh)? {
            tx.push(LinkStep::Session, item);
        }
        for event in consume_events(link, who, now) {
            tx.push(LinkStep::Session, self.put_event(&event)?);
        }

        match self.commit("consume_magic_link", tx).await? {
            Settled::Done => Ok(Consumed::Done),
            Settled::Failed(failed) => consume_outcome(who, Some(link.email_key.as_str()), &failed),
        }
    }

    async fn use_link(&self, link: &MagicLink, now: i64) -> PortResult<bool> {
        let mut tx = Tx::new();
        tx.push(LinkStep::Link, self.mark_link_used(link, now)?);
        Ok(matches!(self.commit("use_link", tx).await?, Settled::Done))
    }

    async fn undo_email_change(
        &self,
        link: &MagicLink,
        undo: &UndoEmailChange,
        now: i64,
    ) -> PortResult<Consumed> {
        let cid = &undo.contact_id;
        let origin = &undo.origin_key;
        let mut tx = Tx::new();
        tx.push(LinkStep::Link, self.mark_link_used(link, now)?);
        if &undo.current_email_key != origin {
            tx.push(
                LinkStep::ReleaseEmail,
                self.release_email(cid, &undo.current_email_key)?,
            );
            // The origin is free (its index item went at the confirm; a contact that
            // registered it since keeps it: the undo answers 409).
            tx.push(LinkStep::ClaimEmail, self.claim_email(cid, origin)?);
        }
        // Ends the chain (every other undo link of it) and any pending change.
        let mut remove = vec![PENDING_CHANGE, UNDO_CHAIN];
        if undo.remove_password {
            remove.push("password_hash, password_changed_at");
        }
        let pw_cond = match undo.password_version {
            0 => "attribute_not_exists(password_version)",
            _ => "password_version = :pv",
        };
        // The profile still carries the link's chain (no undo since).
        let chain_cond = match undo.chain_id {
            Some(_) => "undo_chain = :chain AND ",
            None => "",
        };
        let mut u = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(keys::profile(cid))))
            .update_expression(format!(
                "SET email = :e, email_key = :k, token_version = :next REMOVE {}",
                remove.join(", ")
            ))
            .condition_expression(format!(
                "attribute_exists(pk) AND token_version = :tv AND email_key = :cur AND {chain_cond}{pw_cond}"
            ))
            .expression_attribute_values(":e", s(&undo.origin_email))
            .expression_attribute_values(":k", s(origin.as_str()))
            .expression_attribute_values(":cur", s(undo.current_email_key.as_str()))
            .expression_attribute_values(":tv", n(undo.token_version))
            .expression_attribute_values(":next", n(undo.token_version + 1));
        if undo.password_version > 0 {
            u = u.expression_attribute_values(":pv", n(undo.password_version));
        }
        if let Some(chain) = &undo.chain_id {
            u = u.expression_attribute_values(":chain", s(chain));
        }
        tx.push(
            LinkStep::Profile,
            TransactWriteItem::builder()
                .update(u.build().map_err(build_err)?)
                .build(),
        );
        let undone = AuthEvent::new(EventType::EmailChangeUndone, now, cid)
            .team(Some(&link.team_id))
            .hub(link.hub_id.as_ref().map(|h| h.as_str()))
            .email(&undo.origin_email);
        tx.push(LinkStep::Profile, self.put_event(&undone)?);
        // The undo ends every session (the token version).
        let ended = AuthEvent::new(EventType::SessionEnded, now, cid)
            .team(Some(&link.team_id))
            .reason("email_change_undone");
        tx.push(LinkStep::Profile, self.put_event(&ended)?);
        Ok(match self.commit("undo_email_change", tx).await? {
            Settled::Done => Consumed::Done,
            Settled::Failed(failed) => undo_outcome(&failed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(steps: &[LinkStep]) -> Vec<(LinkStep, Option<Item>)> {
        steps.iter().map(|s| (*s, None)).collect()
    }

    fn change() -> ConsumeAs {
        ConsumeAs::ChangeEmail {
            contact_id: ContactId::from_stored("c"),
            token_version: 1,
            old_email_key: EmailKey::from_stored("old@example.com".into()),
            change_id: "ch1".into(),
            notice: Box::new(crate::domain::model::MailJob {
                job_id: "j".into(),
                purpose: crate::domain::model::JobPurpose::EmailChangedNotice,
                slug: None,
                team_id: None,
                email: "new@example.com".into(),
                email_key: EmailKey::from_stored("new@example.com".into()),
                redirect_url: None,
                created_at: 0,
                contact_id: None,
                change_id: None,
                pw_version: None,
                code_challenge: None,
                source_ip: None,
                locale: None,
                accept_language: None,
            }),
        }
    }

    #[test]
    fn consume_outcomes_by_step() {
        use LinkStep::*;
        let new = ConsumeAs::NewContact {
            contact_id: ContactId::from_stored("c"),
        };
        let existing = ConsumeAs::Existing {
            contact_id: ContactId::from_stored("c"),
            token_version: 0,
            join: false,
        };
        // A used, expired or superseded link is refused with its reason, whoever it was
        // for; the link's own condition says used or expired from the item it found.
        let used = HashMap::from([("used_at".to_string(), n(5))]);
        let unused = HashMap::from([("expires_at".to_string(), n(5))]);
        for who in [&new, &existing, &change()] {
            assert_eq!(
                consume_outcome(who, None, &f(&[Newest, Profile])).unwrap(),
                Consumed::Refused(LinkRefusal::Superseded)
            );
            assert_eq!(
                consume_outcome(who, None, &[(Link, Some(used.clone())), (Newest, None)]).unwrap(),
                Consumed::Refused(LinkRefusal::Used)
            );
            assert_eq!(
                consume_outcome(who, None, &[(Link, Some(unused.clone())), (Profile, None)])
                    .unwrap(),
                Consumed::Refused(LinkRefusal::Expired)
            );
            assert_eq!(
                consume_outcome(who, None, &f(&[Link])).unwrap(),
                Consumed::Refused(LinkRefusal::Unknown)
            );
        }
        assert_eq!(
            consume_outcome(&new, None, &f(&[ClaimEmail])).unwrap(),
            Consumed::EmailTaken
        );
        assert!(consume_outcome(&new, None, &f(&[Session])).is_err());
        assert_eq!(
            consume_outcome(&existing, None, &f(&[Profile])).unwrap(),
            Consumed::VersionChanged
        );
        assert_eq!(
            consume_outcome(&existing, None, &f(&[Membership])).unwrap(),
            Consumed::Refused(LinkRefusal::Unknown)
        );
        // The profile moved away from the link's address (an email change or an undo
        // since): refused; the same address with another version: read again.
        let at = |k: &str| {
            vec![(
                Profile,
                Some(HashMap::from([("email_key".to_string(), s(k))])),
            )]
        };
        assert_eq!(
            consume_outcome(&existing, Some("x1@example.com"), &at("a@example.com")).unwrap(),
            Consumed::Refused(LinkRefusal::Superseded)
        );
        assert_eq!(
            consume_outcome(&existing, Some("a@example.com"), &at("a@example.com")).unwrap(),
            Consumed::VersionChanged
        );
    }

    #[test]
    fn an_email_change_that_is_no_longer_pending_is_invalid() {
        use LinkStep::*;
        let old = |cid: &str| HashMap::from([("email_change_id".to_string(), s(cid))]);
        // The profile failed and no longer carries this change: invalid.
        let moved = vec![(Profile, Some(old("ch2")))];
        assert_eq!(
            consume_outcome(&change(), None, &moved).unwrap(),
            Consumed::Refused(LinkRefusal::Superseded)
        );
        let gone = vec![(Profile, Some(HashMap::new()))];
        assert_eq!(
            consume_outcome(&change(), None, &gone).unwrap(),
            Consumed::Refused(LinkRefusal::Superseded)
        );
        // Still pending, but the new address is taken.
        let taken = vec![(ClaimEmail, None), (Profile, Some(old("ch1")))];
        assert_eq!(
            consume_outcome(&change(), None, &taken).unwrap(),
            Consumed::EmailTaken
        );
        // Still pending; the version or the old address moved: read again.
        let version = vec![(Profile, Some(old("ch1")))];
        assert_eq!(
            consume_outcome(&change(), None, &version).unwrap(),
            Consumed::VersionChanged
        );
        assert_eq!(
            consume_outcome(&change(), None, &f(&[ReleaseEmail])).unwrap(),
            Consumed::VersionChanged
        );
        assert_eq!(
            consume_outcome(&change(), None, &f(&[Membership])).unwrap(),
            Consumed::Refused(LinkRefusal::Unknown)
        );
        assert!(consume_outcome(&change(), None, &f(&[Notice])).is_err());
    }

    #[test]
    fn undo_outcomes_by_step() {
        use LinkStep::*;
        assert_eq!(
            undo_outcome(&[(Link, Some(HashMap::from([("used_at".to_string(), n(1))])))]),
            Consumed::Refused(LinkRefusal::Used)
        );
        assert_eq!(
            undo_outcome(&f(&[Link, Profile])),
            Consumed::Refused(LinkRefusal::Unknown)
        );
        assert_eq!(undo_outcome(&f(&[ClaimEmail])), Consumed::EmailTaken);
        assert_eq!(undo_outcome(&f(&[Profile])), Consumed::VersionChanged);
        assert_eq!(undo_outcome(&f(&[ReleaseEmail])), Consumed::VersionChanged);
    }
}
