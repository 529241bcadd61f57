//! Pure rules of an email change's undo chain (issue 17).
//!
//! A chain starts with the first change request while no chain is open and stays open for
//! the undo lifetime (7 days) after its newest request. Every undo link of a chain goes
//! to the chain's *origin* (the address before its first change) and restores it; the
//! first undo ends the chain, so every other undo link of the chain dies with it. While a
//! chain is open, a further change needs a sign-in at the origin (a link or code sign-in
//! from before the address first left it) or a password set before the chain began: a
//! session signed in at an address the chain moved to cannot move the account on.

use crate::domain::email::EmailKey;
use crate::domain::jwt::AccessClaims;
use crate::domain::session::recently_authenticated;

/// The open (or lapsed) undo chain on a contact's profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndoChain {
    /// Undo links carry it; an undo is valid only while the profile still has it.
    pub chain_id: String,
    /// The address before the first change (display form): undo links go there and an
    /// undo restores it.
    pub origin_email: String,
    pub origin_key: EmailKey,
    /// A password set or changed at or after this is removed by an undo and cannot
    /// authorise a further change: the undo lifetime (7 days) before the earlier of the
    /// first request and the sign-in of the session that made it. A password younger than
    /// that may have been planted by whoever asked — by the asking session itself, or by
    /// a stolen session that set it and then logged in with it (a later sign-in) — while
    /// its owner was mailed a "password set" notice when it was set and has had 7 days to
    /// act on it.
    pub boundary: i64,
    /// When the first change of the chain was confirmed (the address left the origin).
    pub switched_at: Option<i64>,
    /// The chain is open until then (its newest request + the undo lifetime).
    pub until: i64,
}

impl UndoChain {
    pub fn is_open(&self, now: i64) -> bool {
        now < self.until
    }

    /// Whether a password last set or changed at `changed_at` was set inside the chain
    /// (an undo removes it). A password without a recorded time predates the field, and
    /// so the chain.
    pub fn password_inside(&self, changed_at: Option<i64>) -> bool {
        changed_at.is_some_and(|t| t >= self.boundary)
    }
}

/// The chain a new change request writes: the open one, extended, or a new one that
/// starts from the current address.
pub fn chain_for_request(
    open: Option<&UndoChain>,
    new_chain_id: impl FnOnce() -> String,
    current: (&str, &EmailKey),
    session_auth_time: i64,
    now: i64,
    undo_ttl: i64,
) -> UndoChain {
    match open.filter(|c| c.is_open(now)) {
        Some(chain) => UndoChain {
            until: now + undo_ttl,
            ..chain.clone()
        },
        None => UndoChain {
            chain_id: new_chain_id(),
            origin_email: current.0.to_string(),
            origin_key: current.1.clone(),
            boundary: session_auth_time.min(now) - undo_ttl,
            switched_at: None,
            until: now + undo_ttl,
        },
    }
}

/// How the request proves who it is: a correct `current_password` (checked before), or
/// the access token's sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeProof {
    /// `current_password` was given and was right; when the password was last set.
    CurrentPassword { changed_at: Option<i64> },
    /// No password given: the token's sign-in must do.
    Session,
}

/// Why a change request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeRefusal {
    /// No recent sign-in (and no password).
    NotRecent,
    /// A chain is open and the proof is not from before it (a sign-in at the origin, or
    /// a password set before the chain began).
    ChainOpen,
}

/// May this session request an email change now?
pub fn may_request_change(
    chain: Option<&UndoChain>,
    claims: &AccessClaims,
    proof: ChangeProof,
    password_changed_at: Option<i64>,
    now: i64,
    recent_window: i64,
) -> Result<(), ChangeRefusal> {
    let recent = recently_authenticated(claims, now, recent_window);
    let Some(chain) = chain.filter(|c| c.is_open(now)) else {
        return match proof {
            ChangeProof::CurrentPassword { .. } => Ok(()),
            ChangeProof::Session if recent => Ok(()),
            ChangeProof::Session => Err(ChangeRefusal::NotRecent),
        };
    };
    // A password from before the chain is the origin owner's.
    let old_password = |changed_at: Option<i64>| !chain.password_inside(changed_at);
    match proof {
        ChangeProof::CurrentPassword { changed_at } if old_password(changed_at) => Ok(()),
        ChangeProof::CurrentPassword { .. } => Err(ChangeRefusal::ChainOpen),
        ChangeProof::Session if !recent => Err(ChangeRefusal::NotRecent),
        ChangeProof::Session => {
            // By link or code while the account's address was still the origin.
            let by_mail = claims
                .amr
                .iter()
                .any(|m| matches!(m.as_str(), "magic_link" | "otp"));
            let at_origin = chain.switched_at.is_none_or(|t| claims.auth_time < t);
            let by_old_password =
                claims.amr.iter().any(|m| m == "pwd") && old_password(password_changed_at);
            if (by_mail && at_origin) || by_old_password {
                Ok(())
            } else {
                Err(ChangeRefusal::ChainOpen)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: i64 = 600;
    const NOW: i64 = 1_000_000;

    fn claims(amr: &str, auth_time: i64) -> AccessClaims {
        crate::domain::session::test_claims(&[amr], auth_time)
    }

    fn chain(boundary: i64, switched_at: Option<i64>, until: i64) -> UndoChain {
        UndoChain {
            chain_id: "ch".into(),
            origin_email: "a@example.com".into(),
            origin_key: EmailKey::from_stored("a@example.com".into()),
            boundary,
            switched_at,
            until,
        }
    }

    #[test]
    fn a_request_starts_a_chain_at_the_current_address_or_extends_the_open_one() {
        let key = EmailKey::from_stored("x1@example.com".into());
        let fresh = chain_for_request(
            None,
            || "new".into(),
            ("X1@example.com", &key),
            NOW - 30,
            NOW,
            7 * 86400,
        );
        assert_eq!(fresh.chain_id, "new");
        assert_eq!(fresh.origin_email, "X1@example.com");
        assert_eq!(
            fresh.boundary,
            NOW - 30 - 7 * 86400,
            "7 days before the session's sign-in, which is earlier"
        );
        assert_eq!(fresh.switched_at, None);
        assert_eq!(fresh.until, NOW + 7 * 86400);
        // A clock-skewed auth_time ahead of now: the request time bounds it.
        let skewed = chain_for_request(None, || "n".into(), ("x", &key), NOW + 50, NOW, 10);
        assert_eq!(skewed.boundary, NOW - 10);

        let open = chain(NOW - 100, Some(NOW - 50), NOW + 1);
        let extended = chain_for_request(
            Some(&open),
            || unreachable!("an open chain is kept"),
            ("x1@example.com", &key),
            NOW - 10,
            NOW,
            500,
        );
        assert_eq!(
            extended,
            UndoChain {
                until: NOW + 500,
                ..open.clone()
            }
        );
        // Lapsed at exactly `until`: a new chain from the current address.
        let lapsed = chain(NOW - 100, Some(NOW - 50), NOW);
        let next = chain_for_request(Some(&lapsed), || "n2".into(), ("x1", &key), NOW, NOW, 5);
        assert_eq!(
            (next.chain_id.as_str(), next.origin_email.as_str()),
            ("n2", "x1")
        );
        assert_eq!(next.switched_at, None);
    }

    #[test]
    fn without_an_open_chain_a_recent_sign_in_or_the_password_will_do() {
        use ChangeProof::*;
        let ok = |c: &AccessClaims, p| may_request_change(None, c, p, None, NOW, WINDOW);
        assert_eq!(ok(&claims("magic_link", NOW - 599), Session), Ok(()));
        assert_eq!(
            ok(&claims("magic_link", NOW - 601), Session),
            Err(ChangeRefusal::NotRecent)
        );
        assert_eq!(
            ok(
                &claims("magic_link", NOW - 601),
                CurrentPassword {
                    changed_at: Some(NOW)
                }
            ),
            Ok(())
        );
        // A lapsed chain is no chain.
        let lapsed = chain(NOW - 10, Some(NOW - 5), NOW);
        assert_eq!(
            may_request_change(
                Some(&lapsed),
                &claims("otp", NOW - 1),
                Session,
                None,
                NOW,
                WINDOW
            ),
            Ok(())
        );
    }

    #[test]
    fn while_a_chain_is_open_only_the_origin_or_an_older_password_may_move_the_address() {
        use ChangeProof::*;
        // Chain began at 1000 (boundary), switched to X1 at 2000, open.
        let c = chain(NOW - 2000, Some(NOW - 1000), NOW + 1);
        let may = |cl: &AccessClaims, p, pw| may_request_change(Some(&c), cl, p, pw, NOW, WINDOW);
        // The attacker signed in at X1 after the switch (link or code): refused.
        assert_eq!(
            may(&claims("magic_link", NOW - 10), Session, None),
            Err(ChangeRefusal::ChainOpen)
        );
        // An email-change session never counts.
        assert_eq!(
            may(&claims("email_change", NOW - 10), Session, None),
            Err(ChangeRefusal::NotRecent)
        );
        // A password planted inside the chain (at or after the boundary) does not count,
        // whether given as current_password or used to log in.
        let planted = Some(NOW - 2000);
        assert_eq!(
            may(
                &claims("pwd", NOW - 5),
                CurrentPassword {
                    changed_at: planted
                },
                planted
            ),
            Err(ChangeRefusal::ChainOpen)
        );
        assert_eq!(
            may(&claims("pwd", NOW - 5), Session, planted),
            Err(ChangeRefusal::ChainOpen)
        );
        // A password from before the chain does, either way.
        let older = Some(NOW - 2001);
        assert_eq!(
            may(
                &claims("magic_link", NOW - 9000),
                CurrentPassword { changed_at: older },
                older
            ),
            Ok(())
        );
        assert_eq!(may(&claims("pwd", NOW - 5), Session, older), Ok(()));
        assert_eq!(
            may(&claims("pwd", NOW - 601), Session, older),
            Err(ChangeRefusal::NotRecent)
        );
        // Before the switch, a recent link sign-in was at the origin.
        let pending = chain(NOW - 300, None, NOW + 1);
        assert_eq!(
            may_request_change(
                Some(&pending),
                &claims("magic_link", NOW - 400),
                Session,
                None,
                NOW,
                WINDOW
            ),
            Ok(())
        );
        // Signed in at the origin just before the switch: allowed.
        assert_eq!(
            may(&claims("otp", NOW - 1001), Session, None),
            Err(ChangeRefusal::NotRecent)
        );
        let recent_switch = chain(NOW - 300, Some(NOW - 100), NOW + 1);
        let at = |auth| {
            may_request_change(
                Some(&recent_switch),
                &claims("otp", auth),
                Session,
                None,
                NOW,
                WINDOW,
            )
        };
        assert_eq!(at(NOW - 101), Ok(()));
        // A sign-in at the switch's second is already at the new address.
        assert_eq!(at(NOW - 100), Err(ChangeRefusal::ChainOpen));
    }

    #[test]
    fn a_password_inside_the_chain_is_one_set_at_or_after_its_boundary() {
        let c = chain(100, None, 1000);
        assert!(c.password_inside(Some(100)));
        assert!(c.password_inside(Some(101)));
        assert!(!c.password_inside(Some(99)));
        assert!(!c.password_inside(None));
    }
}
