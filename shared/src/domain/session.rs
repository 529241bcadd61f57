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

/// Where a session started, as it is kept and shown: the network of the address (IPv4
/// /24, IPv6 /48), never the address itself, and the client's User-Agent (control
/// characters dropped, at most 256 characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStart {
    pub network: String,
    pub user_agent: String,
}

impl SessionStart {
    pub fn new(source_ip: &str, user_agent: Option<&str>) -> SessionStart {
        SessionStart {
            network: network_of(source_ip),
            user_agent: user_agent
                .unwrap_or("")
                .chars()
                .filter(|c| !c.is_control())
                .take(256)
                .collect(),
        }
    }
}

/// Why a session ended, as recorded on it (ended by this service's writes; a password
/// change, a logout everywhere, a ban or the absolute lifetime end sessions through the
/// token version, the membership and the clock instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    Logout,
    /// A rotated-out refresh token was presented again: the family is revoked.
    Reuse,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Logout => "logout",
            EndReason::Reuse => "reuse",
        }
    }
}

/// The network an address is shown as: `203.0.113.0/24`, `2001:db8:1::/48`; `unknown` for
/// what is not an address.
pub fn network_of(ip: &str) -> String {
    use std::net::{IpAddr, Ipv6Addr};
    let Ok(addr) = ip.trim().parse::<IpAddr>() else {
        return "unknown".into();
    };
    // An IPv4 client seen through an IPv6 socket (`::ffff:a.b.c.d`) is an IPv4 client.
    // (std only: the sign-in binaries are near their size budget.)
    match addr.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            let [a, b, c, ..] = v6.segments();
            format!("{}/48", Ipv6Addr::new(a, b, c, 0, 0, 0, 0, 0))
        }
    }
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
        sid: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_keeps_the_network_not_the_address() {
        assert_eq!(network_of("203.0.113.77"), "203.0.113.0/24");
        assert_eq!(network_of("2001:db8:1:2:3:4:5:6"), "2001:db8:1::/48");
        assert_eq!(network_of("::ffff:203.0.113.77"), "203.0.113.0/24");
        assert_eq!(network_of("unknown"), "unknown");
        assert_eq!(network_of(""), "unknown");
        let s = SessionStart::new(
            "198.51.100.9",
            Some(&format!("Mozilla/5.0\n{}", "x".repeat(400))),
        );
        assert_eq!(s.network, "198.51.100.0/24");
        assert!(s.user_agent.starts_with("Mozilla/5.0x") && s.user_agent.chars().count() == 256);
        assert_eq!(SessionStart::new("1.2.3.4", None).user_agent, "");
    }

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
