//! The data the domain works with, free of storage types.

use serde::{Deserialize, Serialize};

use crate::domain::email::EmailKey;
use crate::domain::email_change::UndoChain;
use crate::domain::i18n::Locale;
use crate::domain::ids::{ContactId, HubId, TeamId};
use crate::domain::secret::TokenHash;
use crate::domain::session::SessionStart;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hub {
    pub hub_id: HubId,
    pub slug: String,
    pub team_id: TeamId,
    pub title: String,
    pub allowed_redirect_origins: Vec<String>,
    pub registration_enabled: bool,
    /// Egress networks (CIDRs, checked by `domain::rate::trusted_cidr`) exempt from the
    /// per-IP budgets: an office NAT that a whole membership signs in from.
    #[serde(default)]
    pub trusted_cidrs: Vec<String>,
    /// Name, logo, colour, sender name, reply-to, default language, text overrides.
    #[serde(skip)]
    pub branding: crate::domain::branding::Branding,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Team {
    pub team_id: TeamId,
    pub name: String,
    /// The hub named in mail sent for `team_id` requests.
    pub primary_hub_id: Option<HubId>,
    /// The team's own verified sender address (`domain::branding::sender_allowed`).
    #[serde(default)]
    pub sender_address: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobPurpose {
    Register,
    Magic,
    /// Confirm a new address for `contact_id` (PATCH /me), and tell the current address
    /// (with an undo link).
    EmailChange,
    /// Tell the contact's address that a first password was set.
    PasswordSetNotice,
    /// Tell the contact's address that the password was changed.
    PasswordChangeNotice,
    /// Tell a contact's new address, once an email change is confirmed, that it is now
    /// the sign-in address of this account (naming its hubs): someone who confirmed an
    /// unsolicited change sees what happened.
    EmailChangedNotice,
    /// A sign-in of an existing member (link, code or password): the mailer tells the
    /// member when its device and network were not seen in 90 days, with a link that ends
    /// that session and every later one (`change_id` carries the session id).
    NewSignInNotice,
}

/// A mail job: written by `register`/`magic`, consumed by the mailer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailJob {
    pub job_id: String,
    pub purpose: JobPurpose,
    pub slug: Option<String>,
    pub team_id: Option<TeamId>,
    /// As typed (trimmed); the address mail goes to.
    pub email: String,
    pub email_key: EmailKey,
    pub redirect_url: Option<String>,
    pub created_at: i64,
    /// For `EmailChange` and the notices: whose account it is.
    pub contact_id: Option<ContactId>,
    /// For `EmailChange`: the change request this job belongs to (the profile's
    /// `email_change_id`); a newer request or a cancellation makes it stale. For
    /// `NewSignInNotice`: the session (refresh family) the sign-in started.
    pub change_id: Option<String>,
    /// For `EmailChange`: the contact's `password_version` at the request.
    pub pw_version: Option<u64>,
    /// Register/magic: the PKCE `code_challenge` (S256) the link will be bound to.
    pub code_challenge: Option<String>,
    /// Register/magic: the request's source IP, for the mailer's per-IP mail budgets (the
    /// job is deleted once processed).
    pub source_ip: Option<String>,
    /// The language the request asked for (its `locale` attribute): the first choice of
    /// `i18n::choose`.
    pub locale: Option<Locale>,
    /// The request's `Accept-Language` (at most 256 characters): the choice after the
    /// member's stored locale.
    pub accept_language: Option<String>,
}

impl MailJob {
    /// A sign-in or registration job asked for a link lifetime (`magic_ttl`) ago or more:
    /// the member has asked again or given up, so it is dropped, not sent (the mailer and
    /// `redrive` both).
    pub fn sign_in_expired(&self, magic_ttl: i64, now: i64) -> bool {
        matches!(self.purpose, JobPurpose::Register | JobPurpose::Magic)
            && self.created_at + magic_ttl <= now
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MembershipStatus {
    Active,
    Banned,
    Left,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub team_id: TeamId,
    pub joined_at: i64,
    pub status: MembershipStatus,
    /// Set when the member is banned: sessions signed in at or before this time stay
    /// ended after an unban.
    pub sessions_valid_after: Option<i64>,
}

impl Membership {
    /// Whether a session signed in at `auth_time` may act in this team.
    pub fn admits(&self, auth_time: i64) -> bool {
        self.status == MembershipStatus::Active
            && self.sessions_valid_after.is_none_or(|t| auth_time > t)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub contact_id: ContactId,
    pub email: String,
    pub email_key: EmailKey,
    pub email_verified_at: Option<i64>,
    pub password_hash: Option<String>,
    pub token_version: u64,
    pub created_at: i64,
    pub tos_accepted_at: Option<String>,
    pub tos_version: Option<String>,
    pub pending_email: Option<String>,
    /// The pending email change (see `MailJob::change_id`).
    pub email_change_id: Option<String>,
    /// How many times a password was set or changed (0: never). An undo removes the
    /// password when this moved since the email-change request.
    pub password_version: u64,
    /// When the password was last set or changed.
    pub password_changed_at: Option<i64>,
    /// The member's language: from the `locale` of the last register/magic request whose
    /// link signed them in (`i18n::choose`).
    pub locale: Option<Locale>,
    /// The email-change undo chain, while one was started (`domain::email_change`).
    pub undo_chain: Option<UndoChain>,
    /// When SES last reported this contact's address undeliverable (`ports::Suppressions`):
    /// the next password login lifts the suppression.
    pub mail_suppressed_at: Option<i64>,
}

/// What a magic link does when consumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkPurpose {
    /// New email: create the contact (verified) and the membership.
    Register,
    /// Existing contact, not (or no longer) in the team: add the membership.
    Join,
    /// Existing member: plain sign-in.
    SignIn,
    /// Switch the contact's address to this link's (verified) email.
    EmailChange,
    /// Undo an email change (sent to the address being replaced): restore it, end every
    /// session, drop a password set since the change request, cancel pending changes.
    EmailChangeUndo,
    /// "Not you?" of a new-sign-in notice: end the session it names (`change_id`) and
    /// every session of the contact in the team started at or after it; signs nobody in.
    EndSessions,
}

impl LinkPurpose {
    /// Links that take part in "the newest link for a team and email wins".
    pub fn supersedes(self) -> bool {
        matches!(
            self,
            LinkPurpose::Register | LinkPurpose::Join | LinkPurpose::SignIn
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MagicLink {
    pub token_hash: TokenHash,
    pub purpose: LinkPurpose,
    pub team_id: TeamId,
    pub hub_id: Option<HubId>,
    pub email: String,
    pub email_key: EmailKey,
    pub contact_id: Option<ContactId>,
    pub redirect_url: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    /// `EmailChange` / `EmailChangeUndo`: the change request it belongs to;
    /// `EndSessions`: the session it names.
    pub change_id: Option<String>,
    /// `EmailChangeUndo`: the contact's `password_version` when the change was
    /// requested (kept on stored links; the undo decides by the chain's boundary).
    pub pw_version: Option<u64>,
    /// `EmailChangeUndo`: the undo chain it belongs to (`UndoChain::chain_id`).
    pub chain_id: Option<String>,
    /// The id of the link key the mailer made the link with (`code::LinkKey::id`): a link
    /// whose key has left the signing document (a `rotate-key --revoke`, or two
    /// rotations) no longer works.
    pub key_id: Option<String>,
    /// Sign-in links: the keyed hash of the mail's 6-digit code (`code::code_hash`);
    /// `None` for links without a code (email change, undo).
    pub code_hash: Option<String>,
    /// Code attempts so far (at `code::MAX_CODE_ATTEMPTS` the code is dead, the link not).
    pub code_attempts: u32,
    /// The PKCE challenge the link is bound to: it is consumed, by token or by code, only
    /// with the matching `code_verifier`.
    pub code_challenge: Option<String>,
    /// The language the request asked for (`MailJob::locale`): consuming the link stores
    /// it as the member's.
    pub locale: Option<crate::domain::i18n::Locale>,
}

/// Why a link or code did not sign in: `meta.reason` of `magic_link_invalid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRefusal {
    Expired,
    Used,
    /// A newer link for the same team and email was sent (or, for an email-change link,
    /// the change is no longer the pending one).
    Superseded,
    /// No such link (or one that no longer signs anyone in, such as a banned member's).
    Unknown,
    /// A code that does not match a usable link: the only reason a code gets, whatever
    /// the cause, so it never tells whether an email has a link or an account.
    Invalid,
    /// The link is bound to another browser's `code_challenge`.
    VerifierMismatch,
}

impl LinkRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkRefusal::Expired => "expired",
            LinkRefusal::Used => "used",
            LinkRefusal::Superseded => "superseded",
            LinkRefusal::Unknown => "unknown",
            LinkRefusal::Invalid => "invalid",
            LinkRefusal::VerifierMismatch => "verifier_mismatch",
        }
    }
}

/// A refresh token record (only the hash of the token is stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRecord {
    pub token_hash: TokenHash,
    pub contact_id: ContactId,
    pub team_id: TeamId,
    pub hub_id: Option<HubId>,
    pub family_id: String,
    pub token_version: u64,
    pub amr: Vec<String>,
    pub auth_time: i64,
    pub created_at: i64,
    pub expires_at: i64,
    /// Where the session started: set on a family's first token only (its sign-in), which
    /// also records the session (`SessionRecord`).
    pub start: Option<SessionStart>,
    /// A sign-in of an existing member: the new-sign-in notice job, written with the
    /// session (`JobPurpose::NewSignInNotice`).
    pub sign_in_notice: Option<Box<MailJob>>,
}

/// A sign-in session as recorded (one per refresh-token family, `CONTACT#<id>` /
/// `SESSION#<team>#<id>`): created by the sign-in, touched by each rotation, ended with a
/// reason by a logout or a detected reuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub session_id: String,
    pub team_id: TeamId,
    pub created_at: Option<i64>,
    pub last_active_at: Option<i64>,
    pub network: Option<String>,
    pub user_agent: Option<String>,
    pub ended_at: Option<i64>,
    pub ended_reason: Option<String>,
    pub hub_id: Option<String>,
    pub amr: Vec<String>,
    pub auth_time: Option<i64>,
    /// The profile's token version at the sign-in (a later bump ends the session).
    pub token_version: Option<u64>,
    /// When the family's newest refresh token expires (idle end).
    pub refresh_until: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_active_members_signed_in_after_a_ban_are_admitted() {
        let m = |status, sessions_valid_after| Membership {
            team_id: TeamId::from_stored("t"),
            joined_at: 0,
            status,
            sessions_valid_after,
        };
        use MembershipStatus::*;
        assert!(m(Active, None).admits(100));
        assert!(!m(Banned, None).admits(100));
        assert!(!m(Left, None).admits(100));
        // Unbanned: sessions from before (and at) the ban stay ended.
        assert!(m(Active, Some(100)).admits(101));
        assert!(!m(Active, Some(100)).admits(100));
        assert!(!m(Active, Some(100)).admits(99));
        assert!(!m(Banned, Some(100)).admits(101));
    }

    #[test]
    fn only_sign_in_links_supersede_each_other() {
        use LinkPurpose::*;
        for (p, supersedes) in [
            (Register, true),
            (Join, true),
            (SignIn, true),
            (EmailChange, false),
            (EmailChangeUndo, false),
        ] {
            assert_eq!(p.supersedes(), supersedes, "{p:?}");
        }
    }
}
