//! Pure session rules: when a sign-in counts as recent, and what a presented refresh
//! token's state means (rotate, grace, reuse, invalid).

use crate::domain::jwt::AccessClaims;

/// Whether the access token's sign-in is recent enough for a sensitive change: a magic
/// link, sign-in code or password sign-in less than `recent_auth` seconds ago. A session
/// minted by an email-change link never counts.
pub fn recently_authenticated(claims: &AccessClaims, now: i64, window: i64) -> bool {
    let strong = claims
        .amr
        .iter()
        .any(|m| matches!(m.as_str(), "magic_link" | "otp" | "pwd"));
    let email_change = claims.amr.iter().any(|m| m == "email_change");
    strong && !email_change && now - claims.auth_time < window && claims.auth_time <= now + 60
}

/// The forgotten-password rule: the current password may be omitted within the window of
/// a sign-in by email (link or code), not by password or an email-change link.
pub fn recent_email_sign_in(claims: &AccessClaims, now: i64, window: i64) -> bool {
    claims
        .amr
        .iter()
        .any(|m| matches!(m.as_str(), "magic_link" | "otp"))
        && recently_authenticated(claims, now, window)
}

/// What to do with a presented refresh token, from its stored state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshDecision {
    /// Revoked, expired, or past the session's absolute end.
    Invalid,
    /// Not rotated yet: rotate it.
    Rotate,
    /// Rotated within the grace window (a second tab): a new pair in the same family;
    /// the rotation is conditioned on `rotated_at >= since`.
    Grace { since: i64 },
    /// Rotated longer ago than the grace window: reuse, the family is revoked.
    Reuse,
}

/// The refresh rule. `session_end` is the family's absolute end (sign-in + maximum).
pub fn refresh_decision(
    revoked_at: Option<i64>,
    expires_at: i64,
    session_end: i64,
    rotated_at: Option<i64>,
    now: i64,
    grace: i64,
) -> RefreshDecision {
    if revoked_at.is_some() || expires_at <= now || session_end <= now {
        return RefreshDecision::Invalid;
    }
    match rotated_at {
        None => RefreshDecision::Rotate,
        Some(at) if now - at <= grace => RefreshDecision::Grace { since: now - grace },
        Some(_) => RefreshDecision::Reuse,
    }
}

/// Access claims for the session rules' unit tests (here and in `email_change`).
#[cfg(test)]
pub(crate) fn test_claims(amr: &[&str], auth_time: i64) -> AccessClaims {
    use crate::domain::ids::{ContactId, TeamId};
    AccessClaims {
        iss: "i".into(),
        aud: vec!["a".into()],
        sub: ContactId::from_stored("c"),
        tid: TeamId::from_stored("t"),
        hid: None,
        tv: 0,
        amr: amr.iter().map(|s| s.to_string()).collect(),
        auth_time,
        iat: auth_time,
        exp: auth_time + 900,
        jti: "j".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(amr: &[&str], auth_time: i64) -> AccessClaims {
        test_claims(amr, auth_time)
    }

    #[test]
    fn recent_authentication_window_and_methods() {
        let now = 10_000;
        for amr in ["magic_link", "otp", "pwd"] {
            assert!(
                recently_authenticated(&claims(&[amr], now - 599), now, 600),
                "{amr}"
            );
            assert!(
                !recently_authenticated(&claims(&[amr], now - 600), now, 600),
                "{amr}"
            );
        }
        // A session from an email-change link is never a fresh sign-in.
        assert!(!recently_authenticated(
            &claims(&["email_change"], now),
            now,
            600
        ));
        assert!(!recently_authenticated(
            &claims(&["magic_link", "email_change"], now),
            now,
            600
        ));
        assert!(!recently_authenticated(&claims(&[], now), now, 600));
        // An auth_time far in the future (a forged or skewed clock) does not count.
        assert!(!recently_authenticated(
            &claims(&["pwd"], now + 3600),
            now,
            600
        ));
    }

    #[test]
    fn forgotten_password_needs_an_email_sign_in() {
        let now = 10_000;
        assert!(recent_email_sign_in(
            &claims(&["magic_link"], now - 60),
            now,
            600
        ));
        assert!(recent_email_sign_in(&claims(&["otp"], now - 60), now, 600));
        assert!(!recent_email_sign_in(&claims(&["pwd"], now - 60), now, 600));
        assert!(!recent_email_sign_in(
            &claims(&["email_change"], now - 60),
            now,
            600
        ));
        assert!(!recent_email_sign_in(
            &claims(&["magic_link"], now - 601),
            now,
            600
        ));
    }

    #[test]
    fn refresh_decisions() {
        use RefreshDecision::*;
        let now = 1_000;
        let d = |revoked: Option<i64>, exp: i64, end: i64, rotated: Option<i64>| {
            refresh_decision(revoked, exp, end, rotated, now, 10)
        };
        assert_eq!(d(None, now + 1, now + 1, None), Rotate);
        assert_eq!(d(Some(now - 5), now + 1, now + 1, None), Invalid);
        assert_eq!(d(None, now, now + 100, None), Invalid);
        assert_eq!(d(None, now + 100, now, None), Invalid);
        // Revoked or lapsed wins over the grace window.
        assert_eq!(d(Some(now), now + 100, now + 100, Some(now)), Invalid);
        assert_eq!(
            d(None, now + 100, now + 100, Some(now)),
            Grace { since: now - 10 }
        );
        assert_eq!(
            d(None, now + 100, now + 100, Some(now - 10)),
            Grace { since: now - 10 }
        );
        assert_eq!(d(None, now + 100, now + 100, Some(now - 11)), Reuse);
    }

    #[test]
    fn a_sign_in_up_to_a_minute_in_the_future_is_clock_skew_and_counts() {
        let now = 1_000_000;
        assert!(recently_authenticated(
            &claims(&["pwd"], now + 30),
            now,
            300
        ));
        assert!(recently_authenticated(
            &claims(&["pwd"], now + 60),
            now,
            300
        ));
        assert!(!recently_authenticated(
            &claims(&["pwd"], now + 61),
            now,
            300
        ));
    }
}
