//! Every item key of the table, in one place. Layout (NOTES.md has the story):
//! TEAM#, HUB#, SLUG# (a full copy of the hub), CONTACT#<id> with PROFILE and TEAM#<team>,
//! EMAIL#<key>, JOB#, MAGIC#<hash>, MAGICLATEST#<scope>, RT#<hash>, RTFAMILY#, RATE#,
//! SUPPRESS#<key>; CONTACT#<id> also holds SESSION#<team>#<session id>.
//! Tests and tools that read items go through `contact_auth::adapters::dynamo::keys`.

use std::collections::HashMap;

use super::codec::s;
use super::Item;
use crate::domain::email::EmailKey;
use crate::domain::ids::{ContactId, HubId, TeamId};
use crate::domain::secret::TokenHash;

/// `(pk, sk)`.
pub type Key = (String, String);

pub fn team(id: &TeamId) -> Key {
    (format!("TEAM#{id}"), "TEAM".into())
}
/// A team's auth-event settings (webhook, email opt-in): `ports::EventSettings`.
pub fn event_settings(id: &TeamId) -> Key {
    (format!("TEAM#{id}"), "EVENTS".into())
}
pub fn hub(id: &HubId) -> Key {
    (format!("HUB#{id}"), "HUB".into())
}
pub fn slug(slug: &str) -> Key {
    (format!("SLUG#{slug}"), "SLUG".into())
}
pub fn profile(contact: &ContactId) -> Key {
    (format!("CONTACT#{contact}"), "PROFILE".into())
}
pub fn membership(contact: &ContactId, team: &TeamId) -> Key {
    (
        format!("CONTACT#{contact}"),
        format!("{MEMBERSHIP_PREFIX}{team}"),
    )
}
/// The sort-key prefix of a contact's memberships (a Query reads them all).
pub const MEMBERSHIP_PREFIX: &str = "TEAM#";
/// The partition of everything a contact owns.
pub fn contact_partition(contact: &ContactId) -> String {
    format!("CONTACT#{contact}")
}
pub fn email(key: &EmailKey) -> Key {
    (format!("EMAIL#{}", key.as_str()), "EMAIL".into())
}
/// The partition-key prefix of mail jobs.
pub const JOB_PREFIX: &str = "JOB#";
pub fn job(id: &str) -> Key {
    (format!("{JOB_PREFIX}{id}"), "JOB".into())
}
pub fn magic(hash: &TokenHash) -> Key {
    (format!("MAGIC#{}", hash.as_str()), "MAGIC".into())
}
pub fn magic_latest(scope: &str) -> Key {
    (format!("MAGICLATEST#{scope}"), "MAGICLATEST".into())
}
pub fn refresh(hash: &TokenHash) -> Key {
    (format!("RT#{}", hash.as_str()), "RT".into())
}
pub fn rate(key: &str) -> Key {
    (format!("RATE#{key}"), "RATE".into())
}
/// A sign-in session (a refresh-token family) of `contact` in `team`: in the contact's
/// partition, so one Query lists a member's sessions in a team.
pub fn session(contact: &ContactId, team: &TeamId, session_id: &str) -> Key {
    (
        contact_partition(contact),
        format!("{SESSION_PREFIX}{team}#{session_id}"),
    )
}
/// The sort-key prefix of a contact's sessions.
pub const SESSION_PREFIX: &str = "SESSION#";
/// An address SES reported undeliverable (`ports::Suppressions`).
pub fn suppression(key: &EmailKey) -> Key {
    (format!("SUPPRESS#{}", key.as_str()), "SUPPRESS".into())
}
/// An auth event in the outbox (`domain::events`), read by the `events` function from the
/// table's stream.
pub fn event(id: &str) -> Key {
    (format!("{EVENT_PREFIX}{id}"), "EVENT".into())
}
pub const EVENT_PREFIX: &str = "EVENT#";
pub fn family(id: &str) -> Key {
    (format!("RTFAMILY#{id}"), "RTFAMILY".into())
}

/// The key as item attributes.
pub fn key_map((pk, sk): Key) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

/// `item` with its key attributes.
pub fn with_key(mut item: Item, key: Key) -> Item {
    item.extend(key_map(key));
    item
}
