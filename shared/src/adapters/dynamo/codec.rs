//! The one codec between domain types and DynamoDB items: attribute helpers, and for
//! each item kind a `*_from` (item -> domain) and an `*_item` (domain -> item), all in
//! the same hand-written style (no serde, so an attribute's name and type are visible
//! here and nowhere else).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::keys::{self, with_key};
use super::Item;
use crate::domain::branding::Branding;
use crate::domain::email::EmailKey;
use crate::domain::email_change::UndoChain;
use crate::domain::events::AuthEvent;
use crate::domain::i18n::Locale;
use crate::domain::ids::{ContactId, HubId, TeamId};
use crate::domain::model::{
    Contact, Hub, JobPurpose, LinkPurpose, MagicLink, MailJob, Membership, MembershipStatus,
    RefreshRecord, SessionRecord,
};
use crate::domain::secret::TokenHash;
use crate::domain::session::SessionStart;
use crate::domain::suppression::Reason;
use crate::ports::RefreshState;

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub fn opt_s<T: AsRef<str>>(v: &Option<T>) -> AttributeValue {
    match v {
        Some(v) => s(v.as_ref()),
        None => AttributeValue::Null(true),
    }
}

pub fn get_s(item: &Item, k: &str) -> Option<String> {
    item.get(k).and_then(|v| v.as_s().ok()).cloned()
}

pub fn get_n(item: &Item, k: &str) -> Option<i64> {
    item.get(k)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

pub fn get_bool(item: &Item, k: &str) -> Option<bool> {
    item.get(k).and_then(|v| v.as_bool().ok()).copied()
}

pub fn get_list_s(item: &Item, k: &str) -> Vec<String> {
    item.get(k)
        .and_then(|v| v.as_l().ok())
        .map(|l| l.iter().filter_map(|v| v.as_s().ok().cloned()).collect())
        .unwrap_or_default()
}

pub fn list_s(v: &[String]) -> AttributeValue {
    AttributeValue::L(v.iter().map(|x| s(x.clone())).collect())
}

pub fn hub_from(item: &Item) -> Option<Hub> {
    Some(Hub {
        hub_id: HubId::from_stored(get_s(item, "hub_id")?),
        slug: get_s(item, "slug")?,
        team_id: TeamId::from_stored(get_s(item, "team_id")?),
        title: get_s(item, "title").unwrap_or_default(),
        allowed_redirect_origins: get_list_s(item, "allowed_redirect_origins"),
        registration_enabled: get_bool(item, "registration_enabled").unwrap_or(true),
        trusted_cidrs: get_list_s(item, "trusted_cidrs"),
        branding: item
            .get("branding")
            .and_then(|v| v.as_m().ok())
            .map(branding_from)
            .unwrap_or_default(),
    })
}

/// A hub's `branding` map: optional strings, and `texts` as locale -> key -> text.
/// Unknown locales and non-string values are skipped (the admin CLI writes valid ones).
fn branding_from(m: &Item) -> Branding {
    let texts = m
        .get("texts")
        .and_then(|v| v.as_m().ok())
        .map(|by_locale| {
            by_locale
                .iter()
                .filter_map(|(tag, v)| {
                    let locale = Locale::from_tag(tag)?;
                    let entries = v
                        .as_m()
                        .ok()?
                        .iter()
                        .filter_map(|(k, t)| Some((k.clone(), t.as_s().ok()?.clone())))
                        .collect();
                    Some((locale, entries))
                })
                .collect()
        })
        .unwrap_or_default();
    Branding {
        display_name: get_s(m, "display_name"),
        logo_url: get_s(m, "logo_url"),
        accent: get_s(m, "accent"),
        sender_name: get_s(m, "sender_name"),
        reply_to: get_s(m, "reply_to"),
        default_locale: get_s(m, "default_locale").and_then(|t| Locale::from_tag(&t)),
        texts,
    }
}

fn branding_item(b: &Branding) -> AttributeValue {
    let mut m: Item = HashMap::new();
    for (k, v) in [
        ("display_name", &b.display_name),
        ("logo_url", &b.logo_url),
        ("accent", &b.accent),
        ("sender_name", &b.sender_name),
        ("reply_to", &b.reply_to),
    ] {
        if let Some(v) = v {
            m.insert(k.to_string(), s(v));
        }
    }
    if let Some(l) = b.default_locale {
        m.insert("default_locale".into(), s(l.tag()));
    }
    if !b.texts.is_empty() {
        let texts = b
            .texts
            .iter()
            .map(|(l, entries)| {
                let inner = entries.iter().map(|(k, t)| (k.clone(), s(t))).collect();
                (l.tag().to_string(), AttributeValue::M(inner))
            })
            .collect();
        m.insert("texts".into(), AttributeValue::M(texts));
    }
    AttributeValue::M(m)
}

pub fn hub_item(h: &Hub) -> Item {
    let mut item = HashMap::from([
        ("hub_id".to_string(), s(h.hub_id.as_str())),
        ("slug".to_string(), s(&h.slug)),
        ("team_id".to_string(), s(h.team_id.as_str())),
        ("title".to_string(), s(&h.title)),
        (
            "allowed_redirect_origins".to_string(),
            list_s(&h.allowed_redirect_origins),
        ),
        (
            "registration_enabled".to_string(),
            AttributeValue::Bool(h.registration_enabled),
        ),
        ("trusted_cidrs".to_string(), list_s(&h.trusted_cidrs)),
    ]);
    // No attribute for no branding: DynamoDB Local's stream serialises an empty map as
    // `{}` without its type, which the SDK cannot parse (the local mailer then stalls).
    if h.branding != Branding::default() {
        item.insert("branding".to_string(), branding_item(&h.branding));
    }
    item
}

pub fn status_str(st: MembershipStatus) -> &'static str {
    match st {
        MembershipStatus::Active => "active",
        MembershipStatus::Banned => "banned",
        MembershipStatus::Left => "left",
    }
}

pub fn membership_from(item: &Item) -> Option<Membership> {
    let status = match get_s(item, "status")?.as_str() {
        "active" => MembershipStatus::Active,
        "banned" => MembershipStatus::Banned,
        _ => MembershipStatus::Left,
    };
    Some(Membership {
        team_id: TeamId::from_stored(get_s(item, "team_id")?),
        joined_at: get_n(item, "joined_at").unwrap_or(0),
        status,
        sessions_valid_after: get_n(item, "sessions_valid_after"),
    })
}

pub fn contact_from(item: &Item) -> Option<Contact> {
    Some(Contact {
        contact_id: ContactId::from_stored(get_s(item, "contact_id")?),
        email: get_s(item, "email")?,
        email_key: EmailKey::from_stored(get_s(item, "email_key")?),
        email_verified_at: get_n(item, "email_verified_at"),
        password_hash: get_s(item, "password_hash"),
        token_version: get_n(item, "token_version").unwrap_or(0).max(0) as u64,
        created_at: get_n(item, "created_at").unwrap_or(0),
        tos_accepted_at: get_s(item, "tos_accepted_at"),
        tos_version: get_s(item, "tos_version"),
        pending_email: get_s(item, "pending_email"),
        email_change_id: get_s(item, "email_change_id"),
        password_version: get_n(item, "password_version").unwrap_or(0).max(0) as u64,
        password_changed_at: get_n(item, "password_changed_at"),
        locale: get_s(item, "locale").and_then(|t| Locale::from_tag(&t)),
        undo_chain: undo_chain_from(item),
        mail_suppressed_at: get_n(item, "mail_suppressed_at"),
    })
}

/// The profile's undo chain (`super::UNDO_CHAIN` names its attributes).
fn undo_chain_from(item: &Item) -> Option<UndoChain> {
    Some(UndoChain {
        chain_id: get_s(item, "undo_chain")?,
        origin_email: get_s(item, "undo_origin_email")?,
        origin_key: EmailKey::from_stored(get_s(item, "undo_origin_key")?),
        boundary: get_n(item, "undo_boundary")?,
        switched_at: get_n(item, "undo_switched_at"),
        until: get_n(item, "undo_until")?,
    })
}

pub fn purpose_str(p: LinkPurpose) -> &'static str {
    match p {
        LinkPurpose::Register => "register",
        LinkPurpose::Join => "join",
        LinkPurpose::SignIn => "sign_in",
        LinkPurpose::EmailChange => "email_change",
        LinkPurpose::EmailChangeUndo => "email_change_undo",
        LinkPurpose::EndSessions => "end_sessions",
    }
}

pub fn magic_from(hash: &TokenHash, item: &Item) -> Option<(MagicLink, Option<u64>)> {
    let purpose = match get_s(item, "purpose")?.as_str() {
        "register" => LinkPurpose::Register,
        "join" => LinkPurpose::Join,
        "sign_in" => LinkPurpose::SignIn,
        "email_change" => LinkPurpose::EmailChange,
        "email_change_undo" => LinkPurpose::EmailChangeUndo,
        "end_sessions" => LinkPurpose::EndSessions,
        _ => return None,
    };
    let link = MagicLink {
        token_hash: hash.clone(),
        purpose,
        team_id: TeamId::from_stored(get_s(item, "team_id")?),
        hub_id: get_s(item, "hub_id").map(HubId::from_stored),
        email: get_s(item, "email")?,
        email_key: EmailKey::from_stored(get_s(item, "email_key")?),
        contact_id: get_s(item, "contact_id").map(ContactId::from_stored),
        redirect_url: get_s(item, "redirect_url"),
        created_at: get_n(item, "created_at").unwrap_or(0),
        expires_at: get_n(item, "expires_at")?,
        used_at: get_n(item, "used_at"),
        change_id: get_s(item, "change_id"),
        pw_version: get_n(item, "pw_version").map(|v| v.max(0) as u64),
        chain_id: get_s(item, "chain_id"),
        key_id: get_s(item, "key_id"),
        code_hash: get_s(item, "code_hash"),
        code_attempts: get_n(item, "code_attempts")
            .unwrap_or(0)
            .clamp(0, u32::MAX as i64) as u32,
        code_challenge: get_s(item, "code_challenge"),
        locale: get_s(item, "locale").and_then(|t| Locale::from_tag(&t)),
    };
    Some((link, get_n(item, "contact_tv").map(|v| v.max(0) as u64)))
}

/// The `kind` attribute of a mail job: the mailer's stream filter (template.yaml
/// `FilterCriteria`) and its record parser look for it.
pub const MAIL_JOB_KIND: &str = "mail_job";

fn job_purpose_str(p: JobPurpose) -> &'static str {
    match p {
        JobPurpose::Register => "register",
        JobPurpose::Magic => "magic",
        JobPurpose::EmailChange => "email_change",
        JobPurpose::PasswordSetNotice => "password_set_notice",
        JobPurpose::PasswordChangeNotice => "password_change_notice",
        JobPurpose::EmailChangedNotice => "email_changed_notice",
        JobPurpose::NewSignInNotice => "new_sign_in_notice",
    }
}

fn job_purpose_from(s: &str) -> Option<JobPurpose> {
    Some(match s {
        "register" => JobPurpose::Register,
        "magic" => JobPurpose::Magic,
        "email_change" => JobPurpose::EmailChange,
        "password_set_notice" => JobPurpose::PasswordSetNotice,
        "password_change_notice" => JobPurpose::PasswordChangeNotice,
        "email_changed_notice" => JobPurpose::EmailChangedNotice,
        "new_sign_in_notice" => JobPurpose::NewSignInNotice,
        _ => return None,
    })
}

pub fn job_item(job: &MailJob, expires_at: i64) -> Item {
    let mut item = HashMap::from([
        ("kind".to_string(), s(MAIL_JOB_KIND)),
        ("job_id".to_string(), s(&job.job_id)),
        ("purpose".to_string(), s(job_purpose_str(job.purpose))),
        ("slug".to_string(), opt_s(&job.slug)),
        ("team_id".to_string(), opt_s(&job.team_id)),
        ("email".to_string(), s(&job.email)),
        ("email_key".to_string(), s(job.email_key.as_str())),
        ("redirect_url".to_string(), opt_s(&job.redirect_url)),
        ("created_at".to_string(), n(job.created_at)),
        ("contact_id".to_string(), opt_s(&job.contact_id)),
        ("change_id".to_string(), opt_s(&job.change_id)),
        ("expires_at".to_string(), n(expires_at)),
    ]);
    if let Some(v) = job.pw_version {
        item.insert("pw_version".into(), n(v));
    }
    if let Some(l) = job.locale {
        item.insert("locale".into(), s(l.tag()));
    }
    if let Some(a) = &job.accept_language {
        item.insert("accept_language".into(), s(a));
    }
    if let Some(ip) = &job.source_ip {
        item.insert("source_ip".into(), s(ip));
    }
    if let Some(c) = &job.code_challenge {
        item.insert("code_challenge".into(), s(c));
    }
    with_key(item, keys::job(&job.job_id))
}

pub fn job_from(item: &Item) -> Option<MailJob> {
    Some(MailJob {
        job_id: get_s(item, "job_id")?,
        purpose: job_purpose_from(&get_s(item, "purpose")?)?,
        slug: get_s(item, "slug"),
        team_id: get_s(item, "team_id").map(TeamId::from_stored),
        email: get_s(item, "email")?,
        email_key: EmailKey::from_stored(get_s(item, "email_key")?),
        redirect_url: get_s(item, "redirect_url"),
        created_at: get_n(item, "created_at").unwrap_or(0),
        contact_id: get_s(item, "contact_id").map(ContactId::from_stored),
        change_id: get_s(item, "change_id"),
        pw_version: get_n(item, "pw_version").map(|v| v.max(0) as u64),
        code_challenge: get_s(item, "code_challenge"),
        source_ip: get_s(item, "source_ip"),
        locale: get_s(item, "locale").and_then(|t| Locale::from_tag(&t)),
        accept_language: get_s(item, "accept_language"),
    })
}

pub fn magic_item(link: &MagicLink, contact_tv: Option<u64>) -> Item {
    let mut item = HashMap::from([
        ("purpose".to_string(), s(purpose_str(link.purpose))),
        ("team_id".to_string(), s(link.team_id.as_str())),
        ("hub_id".to_string(), opt_s(&link.hub_id)),
        ("email".to_string(), s(&link.email)),
        ("email_key".to_string(), s(link.email_key.as_str())),
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
    if let Some(c) = &link.chain_id {
        item.insert("chain_id".into(), s(c));
    }
    if let Some(k) = &link.key_id {
        item.insert("key_id".into(), s(k));
    }
    if let Some(h) = &link.code_hash {
        item.insert("code_hash".into(), s(h));
        item.insert("code_attempts".into(), n(link.code_attempts));
    }
    if let Some(c) = &link.code_challenge {
        item.insert("code_challenge".into(), s(c));
    }
    if let Some(l) = link.locale {
        item.insert("locale".into(), s(l.tag()));
    }
    with_key(item, keys::magic(&link.token_hash))
}

/// A new membership, active from `now`.
pub fn new_membership_item(contact_id: &ContactId, team_id: &TeamId, now: i64) -> Item {
    let item = HashMap::from([
        ("team_id".to_string(), s(team_id.as_str())),
        (
            "status".to_string(),
            s(status_str(MembershipStatus::Active)),
        ),
        ("joined_at".to_string(), n(now)),
    ]);
    with_key(item, keys::membership(contact_id, team_id))
}

/// The email index entry: `email_key` belongs to `contact_id`.
pub fn email_item(contact_id: &ContactId, email_key: &EmailKey) -> Item {
    with_key(
        HashMap::from([("contact_id".to_string(), s(contact_id.as_str()))]),
        keys::email(email_key),
    )
}

/// An undeliverable address (`ports::Suppressions`): why, and since when.
pub fn suppression_item(email_key: &EmailKey, reason: Reason, at: i64) -> Item {
    with_key(
        HashMap::from([
            ("reason".to_string(), s(reason.as_str())),
            ("suppressed_at".to_string(), n(at)),
        ]),
        keys::suppression(email_key),
    )
}

pub fn refresh_state_from(hash: &TokenHash, item: &Item) -> Option<RefreshState> {
    Some(RefreshState {
        record: RefreshRecord {
            token_hash: hash.clone(),
            contact_id: ContactId::from_stored(get_s(item, "contact_id")?),
            team_id: TeamId::from_stored(get_s(item, "team_id")?),
            hub_id: get_s(item, "hub_id").map(HubId::from_stored),
            family_id: get_s(item, "family_id")?,
            token_version: get_n(item, "token_version").unwrap_or(0).max(0) as u64,
            amr: get_list_s(item, "amr"),
            auth_time: get_n(item, "auth_time").unwrap_or(0),
            created_at: get_n(item, "created_at").unwrap_or(0),
            expires_at: get_n(item, "expires_at")?,
            start: None,
            sign_in_notice: None,
        },
        rotated_at: get_n(item, "rotated_at"),
        revoked_at: get_n(item, "revoked_at"),
    })
}

/// The `kind` of an outbox event item (the `events` function's stream filter).
pub const EVENT_KIND: &str = "auth_event";
/// How long an outbox event item is kept (its delivery marks with it): the stream keeps
/// records 24 hours, so a week covers every redelivery.
pub const EVENT_KEEP: i64 = 7 * 86_400;

/// An auth event as its outbox item.
pub fn event_item(e: &AuthEvent) -> Item {
    let mut item = HashMap::from([
        ("kind".to_string(), s(EVENT_KIND)),
        ("event_id".to_string(), s(&e.id)),
        ("type".to_string(), s(e.event_type.as_str())),
        ("at".to_string(), n(e.at)),
        ("contact_id".to_string(), s(e.contact_id.as_str())),
        ("expires_at".to_string(), n(e.at + EVENT_KEEP)),
    ]);
    let mut opt = |k: &str, v: Option<&str>| {
        if let Some(v) = v {
            item.insert(k.to_string(), s(v));
        }
    };
    opt("team_id", e.team_id.as_ref().map(|t| t.as_str()));
    opt("hub_id", e.hub_id.as_deref());
    opt("session_id", e.session_id.as_deref());
    opt("reason", e.reason.as_deref());
    opt("email", e.email.as_deref());
    with_key(item, keys::event(&e.id))
}

/// How long a session's record outlives its last refresh token: a member's sign-ins of
/// the last 90 days are what a new device is compared with.
pub const SESSION_KEEP: i64 = 90 * 86_400;

/// The session a family's first token starts (`RefreshRecord::start`).
pub fn session_item(r: &RefreshRecord, start: &SessionStart) -> Item {
    let item = HashMap::from([
        ("session_id".to_string(), s(&r.family_id)),
        ("team_id".to_string(), s(r.team_id.as_str())),
        ("hub_id".to_string(), opt_s(&r.hub_id)),
        ("amr".to_string(), list_s(&r.amr)),
        ("auth_time".to_string(), n(r.auth_time)),
        ("token_version".to_string(), n(r.token_version)),
        ("created_at".to_string(), n(r.created_at)),
        ("last_active_at".to_string(), n(r.created_at)),
        ("network".to_string(), s(&start.network)),
        ("user_agent".to_string(), s(&start.user_agent)),
        ("expires_at".to_string(), n(r.expires_at + SESSION_KEEP)),
    ]);
    with_key(item, keys::session(&r.contact_id, &r.team_id, &r.family_id))
}

pub fn session_from(item: &Item) -> Option<SessionRecord> {
    Some(SessionRecord {
        session_id: get_s(item, "session_id")?,
        team_id: TeamId::from_stored(get_s(item, "team_id")?),
        created_at: get_n(item, "created_at"),
        last_active_at: get_n(item, "last_active_at"),
        network: get_s(item, "network"),
        user_agent: get_s(item, "user_agent"),
        ended_at: get_n(item, "ended_at"),
        ended_reason: get_s(item, "ended_reason"),
        hub_id: get_s(item, "hub_id"),
        amr: get_list_s(item, "amr"),
        auth_time: get_n(item, "auth_time"),
        token_version: get_n(item, "token_version").map(|v| v.max(0) as u64),
        refresh_until: get_n(item, "expires_at").map(|e| e - SESSION_KEEP),
    })
}

pub fn refresh_item(r: &RefreshRecord) -> Item {
    let item = HashMap::from([
        ("contact_id".to_string(), s(r.contact_id.as_str())),
        ("team_id".to_string(), s(r.team_id.as_str())),
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
    fn a_job_survives_the_round_trip() {
        let job = MailJob {
            job_id: "j1".into(),
            purpose: JobPurpose::EmailChange,
            slug: None,
            team_id: Some(TeamId::from_stored("t")),
            email: "New@Example.com".into(),
            email_key: EmailKey::from_stored("new@example.com".into()),
            redirect_url: None,
            created_at: 42,
            contact_id: Some(ContactId::from_stored("c")),
            change_id: Some("ch".into()),
            pw_version: Some(3),
            code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
            source_ip: Some("203.0.113.10".into()),
            locale: Some(Locale::Fr),
            accept_language: Some("de-CH, de;q=0.9".into()),
        };
        let item = job_item(&job, 99);
        assert_eq!(get_s(&item, "kind").as_deref(), Some(MAIL_JOB_KIND));
        assert_eq!(get_n(&item, "expires_at"), Some(99));
        assert_eq!(job_from(&item), Some(job.clone()));
        for p in [
            JobPurpose::Register,
            JobPurpose::Magic,
            JobPurpose::EmailChange,
            JobPurpose::PasswordSetNotice,
            JobPurpose::PasswordChangeNotice,
            JobPurpose::EmailChangedNotice,
        ] {
            assert_eq!(job_purpose_from(job_purpose_str(p)), Some(p));
        }
    }

    #[test]
    fn a_hub_with_and_without_branding_survives_the_round_trip() {
        let mut hub = Hub {
            hub_id: HubId::from_stored("h"),
            slug: "s".into(),
            team_id: TeamId::from_stored("t"),
            title: "T".into(),
            allowed_redirect_origins: vec![],
            registration_enabled: true,
            trusted_cidrs: vec![],
            branding: Branding::default(),
        };
        let item = hub_item(&hub);
        assert!(
            !item.contains_key("branding"),
            "no empty map (DynamoDB Local streams)"
        );
        assert_eq!(hub_from(&item), Some(hub.clone()));
        hub.branding = Branding {
            display_name: Some("Akademie".into()),
            logo_url: Some("https://cdn.example.org/l.svg".into()),
            accent: Some("#0b6e4f".into()),
            sender_name: Some("A".into()),
            reply_to: Some("a@example.org".into()),
            default_locale: Some(Locale::De),
            texts: [(
                Locale::Nl,
                [("mail.join.action".to_string(), "Doe mee".to_string())].into(),
            )]
            .into(),
        };
        assert_eq!(hub_from(&hub_item(&hub)), Some(hub));
    }

    #[test]
    fn a_link_with_a_code_and_a_binding_survives_the_round_trip() {
        let hash = TokenHash::from_stored("ab".repeat(32));
        let link = MagicLink {
            token_hash: hash.clone(),
            purpose: LinkPurpose::SignIn,
            team_id: TeamId::from_stored("t"),
            hub_id: Some(HubId::from_stored("h")),
            email: "a@example.com".into(),
            email_key: EmailKey::from_stored("a@example.com".into()),
            contact_id: Some(ContactId::from_stored("c")),
            redirect_url: None,
            created_at: 1,
            expires_at: 901,
            used_at: None,
            change_id: None,
            pw_version: None,
            chain_id: Some("chain".into()),
            key_id: Some("kid1".into()),
            code_hash: Some("kh".into()),
            code_attempts: 3,
            code_challenge: Some("ch".into()),
            locale: Some(Locale::Nl),
        };
        let item = magic_item(&link, Some(7));
        assert_eq!(magic_from(&hash, &item), Some((link.clone(), Some(7))));
        // A link without a code stores no attempt counter.
        let plain = MagicLink {
            code_hash: None,
            code_attempts: 0,
            code_challenge: None,
            locale: None,
            ..link
        };
        let item = magic_item(&plain, None);
        assert!(
            !item.contains_key("code_attempts")
                && !item.contains_key("code_challenge")
                && !item.contains_key("locale")
        );
        assert_eq!(magic_from(&hash, &item), Some((plain, None)));
    }
}
