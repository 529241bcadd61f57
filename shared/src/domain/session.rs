//! Pure session rules: when a sign-in counts as recent, and what a presented refresh
//! token's state means (rotate, grace, reuse, invalid).

use crate::domain::jwt::AccessClaims;
use crate::domain::model::{Membership, MembershipStatus, SessionRecord};

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
    /// The member ended it from their session list (`DELETE /me/sessions/{id}`).
    Revoked,
    /// The member ended every other session (`POST /logout-others`).
    LogoutOthers,
    /// The "Not you?" link of a new-sign-in notice ended it (and every later session).
    NotYou,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Logout => "logout",
            EndReason::Reuse => "reuse",
            EndReason::Revoked => "revoked",
            EndReason::LogoutOthers => "logout_others",
            EndReason::NotYou => "not_you",
        }
    }
}

/// Whether a recorded session can still be used, and if not why: the reason written on it
/// (logout, reuse, revoked, logout_others), or one derived from the state that ends
/// sessions without touching their records — a token-version bump (`token_version`: a
/// password change or a logout everywhere), the membership (`ban`, or a removal:
/// `membership`), the clock (`expired`: the absolute lifetime from `auth_time`, or the
/// newest refresh token's expiry). `None`: active. A record written before these fields
/// existed is judged on what it has.
pub fn ended_because(
    s: &SessionRecord,
    profile_token_version: u64,
    membership: Option<&Membership>,
    now: i64,
    session_max: i64,
) -> Option<String> {
    if let Some(reason) = &s.ended_reason {
        return Some(reason.clone());
    }
    if s.ended_at.is_some() {
        return Some("ended".into());
    }
    if s.token_version.is_some_and(|tv| tv < profile_token_version) {
        return Some("token_version".into());
    }
    match membership {
        None => return Some("membership".into()),
        Some(m) if m.status != MembershipStatus::Active => return Some("ban".into()),
        Some(m) if !m.admits(s.auth_time.unwrap_or(i64::MIN)) => return Some("ban".into()),
        Some(_) => {}
    }
    let absolute = s.auth_time.map(|t| t + session_max);
    if absolute.is_some_and(|end| end <= now) || s.refresh_until.is_some_and(|end| end <= now) {
        return Some("expired".into());
    }
    None
}

/// How far back a sign-in's device and network count as seen (`new_device`).
pub const NEW_DEVICE_WINDOW: i64 = 90 * 86_400;

/// Whether sign-in `this` is from a device and network new to the member, which earns a
/// new-sign-in notice: never the member's first sign-in (within a minute of the account's
/// creation); otherwise new unless another session of the member, active in the 90 days
/// before it, started from the same device label and the same network (/24, /48).
pub fn new_device(this: &SessionRecord, others: &[SessionRecord], contact_created_at: i64) -> bool {
    let Some(at) = this.created_at else {
        return false;
    };
    if at - contact_created_at < 60 {
        return false;
    }
    let label = device_label(this.user_agent.as_deref().unwrap_or(""));
    let network = this.network.as_deref().unwrap_or("unknown");
    !others.iter().any(|o| {
        o.session_id != this.session_id
            && o.created_at.is_some_and(|c| c <= at)
            && o.last_active_at
                .or(o.created_at)
                .is_some_and(|seen| at - seen <= NEW_DEVICE_WINDOW)
            && o.network.as_deref().unwrap_or("unknown") == network
            && device_label(o.user_agent.as_deref().unwrap_or("")) == label
    })
}

/// The browser family and the system a session started on, from its User-Agent
/// (`device_label` joins them: "Firefox on Linux", "Safari on iPhone", "curl"; "Unknown
/// device" when nothing is recognised; a mail joins them in its language).
/// Called when sessions are listed or a new-sign-in notice is mailed, never in a sign-in.
///
/// Hand-written, not a UA-parsing crate: the label needs a browser family and an OS,
/// which an ordered list of tokens gives (every Chromium browser also says "Chrome/" and
/// "Safari/", so the more specific tokens come first), and a parser crate brings a regex
/// engine that took the mailer and the session list over the 6 MB bootstrap budget
/// (woothee: +0.5 MB each).
pub fn device_parts(user_agent: &str) -> (Option<&'static str>, Option<&'static str>) {
    const BROWSERS: &[(&str, &str)] = &[
        ("Edg/", "Edge"),
        ("EdgA/", "Edge"),
        ("EdgiOS/", "Edge"),
        ("OPR/", "Opera"),
        ("OPiOS/", "Opera"),
        ("SamsungBrowser/", "Samsung Internet"),
        ("Vivaldi/", "Vivaldi"),
        ("YaBrowser/", "Yandex Browser"),
        ("DuckDuckGo/", "DuckDuckGo"),
        ("FxiOS/", "Firefox"),
        ("Firefox/", "Firefox"),
        ("CriOS/", "Chrome"),
        ("Chromium/", "Chromium"),
        ("HeadlessChrome/", "Chrome"),
        ("Chrome/", "Chrome"),
        ("Version/", "Safari"),
        ("Trident/", "Internet Explorer"),
        ("MSIE ", "Internet Explorer"),
        ("curl/", "curl"),
        ("Wget/", "Wget"),
        ("PostmanRuntime/", "Postman"),
        ("okhttp/", "OkHttp"),
        ("python-requests/", "Python"),
        ("python-urllib", "Python"),
        ("Go-http-client/", "Go"),
        ("node", "Node.js"),
    ];
    const SYSTEMS: &[(&str, &str)] = &[
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Android", "Android"),
        ("CrOS", "ChromeOS"),
        ("Windows", "Windows"),
        ("Macintosh", "macOS"),
        ("Mac OS X", "macOS"),
        ("Linux", "Linux"),
        ("FreeBSD", "FreeBSD"),
    ];
    // The first 512 bytes are enough for every token above; a longer header is cut.
    let ua = user_agent
        .char_indices()
        .take_while(|(i, _)| *i < 512)
        .map(|(_, c)| c)
        .collect::<String>();
    let find = |list: &[(&str, &'static str)]| {
        list.iter()
            .find(|(token, _)| ua.contains(token))
            .map(|(_, name)| *name)
    };
    (find(BROWSERS), find(SYSTEMS))
}

/// The label of `device_parts`, in English (the session list's `device`).
pub fn device_label(user_agent: &str) -> String {
    match device_parts(user_agent) {
        (Some(b), Some(o)) => format!("{b} on {o}"),
        (Some(b), None) => b.to_string(),
        (None, Some(o)) => o.to_string(),
        (None, None) => "Unknown device".into(),
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

    fn record() -> SessionRecord {
        SessionRecord {
            session_id: "s".into(),
            team_id: crate::domain::ids::TeamId::from_stored("t"),
            created_at: Some(1_000),
            last_active_at: Some(1_000),
            network: None,
            user_agent: None,
            ended_at: None,
            ended_reason: None,
            hub_id: None,
            amr: vec!["pwd".into()],
            auth_time: Some(1_000),
            token_version: Some(2),
            refresh_until: Some(5_000),
        }
    }

    fn member(status: MembershipStatus, after: Option<i64>) -> Membership {
        Membership {
            team_id: crate::domain::ids::TeamId::from_stored("t"),
            joined_at: 0,
            status,
            sessions_valid_after: after,
        }
    }

    #[test]
    fn a_session_ends_by_its_record_its_version_its_membership_or_the_clock() {
        let active = member(MembershipStatus::Active, None);
        let at = |s: &SessionRecord, tv, m: Option<&Membership>, now| {
            ended_because(s, tv, m, now, 3_000)
        };
        assert_eq!(at(&record(), 2, Some(&active), 2_000), None);
        let logged_out = SessionRecord {
            ended_at: Some(1_500),
            ended_reason: Some("logout".into()),
            ..record()
        };
        assert_eq!(
            at(&logged_out, 2, Some(&active), 2_000).as_deref(),
            Some("logout")
        );
        // A password change or logout everywhere: the profile's version moved past it.
        assert_eq!(
            at(&record(), 3, Some(&active), 2_000).as_deref(),
            Some("token_version")
        );
        assert_eq!(at(&record(), 1, Some(&active), 2_000), None);
        // A ban, an unban that ended the sessions before it, a removal.
        let banned = member(MembershipStatus::Banned, None);
        assert_eq!(
            at(&record(), 2, Some(&banned), 2_000).as_deref(),
            Some("ban")
        );
        let unbanned_at_signin = member(MembershipStatus::Active, Some(1_000));
        assert_eq!(
            at(&record(), 2, Some(&unbanned_at_signin), 2_000).as_deref(),
            Some("ban")
        );
        let unbanned_before = member(MembershipStatus::Active, Some(999));
        assert_eq!(at(&record(), 2, Some(&unbanned_before), 2_000), None);
        assert_eq!(at(&record(), 2, None, 2_000).as_deref(), Some("membership"));
        // Both clocks, on both sides: the absolute end (auth_time + max) and the newest
        // refresh token's expiry.
        assert_eq!(at(&record(), 2, Some(&active), 3_999), None);
        let long = SessionRecord {
            refresh_until: Some(9_000),
            ..record()
        };
        assert_eq!(at(&long, 2, Some(&active), 3_999), None);
        assert_eq!(
            at(&long, 2, Some(&active), 4_000).as_deref(),
            Some("expired")
        );
        let idle = SessionRecord {
            refresh_until: Some(1_800),
            ..record()
        };
        assert_eq!(at(&idle, 2, Some(&active), 1_799), None);
        assert_eq!(
            at(&idle, 2, Some(&active), 1_800).as_deref(),
            Some("expired")
        );
    }

    #[test]
    fn device_labels_are_short_and_never_empty() {
        assert_eq!(
            device_label("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"),
            "Firefox on Linux"
        );
        assert_eq!(
            device_label("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"),
            "Safari on iPhone"
        );
        for (ua, label) in [
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", "Edge on Windows"),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "Chrome on macOS"),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15", "Safari on macOS"),
            ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", "Chrome on Android"),
            ("Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36", "Samsung Internet on Android"),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1", "Chrome on iPhone"),
            ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "Chrome on ChromeOS"),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 OPR/114.0.0.0", "Opera on Windows"),
            ("curl/8.5.0", "curl"),
            ("Mozilla/5.0 (X11; Linux x86_64)", "Linux"),
            ("SomethingElse/1.0", "Unknown device"),
        ] {
            assert_eq!(device_label(ua), label, "{ua}");
        }
        assert_eq!(device_label(""), "Unknown device");
        assert_eq!(device_label("\u{0}\u{1}"), "Unknown device");
        assert!(!device_label(&"x".repeat(256)).is_empty());
    }

    #[test]
    fn a_device_and_network_unseen_for_90_days_is_new_never_the_first_sign_in() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
        let at = |id: &str, created: i64, net: &str, ua: &str| SessionRecord {
            session_id: id.into(),
            created_at: Some(created),
            last_active_at: Some(created),
            network: Some(net.into()),
            user_agent: Some(ua.into()),
            ..record()
        };
        let day = 86_400;
        let t = 200 * day;
        let this = at("now", t, "203.0.113.0/24", firefox);
        // The first sign-in (the account is a minute old at most): never.
        assert!(!new_device(&this, &[], t - 59));
        // Nothing seen before: new.
        assert!(new_device(&this, &[], t - 60));
        // The same label and network within 90 days: seen; on both sides of the window.
        let seen = at("old", t - NEW_DEVICE_WINDOW, "203.0.113.0/24", firefox);
        assert!(!new_device(&this, std::slice::from_ref(&seen), 0));
        let too_old = at("old", t - NEW_DEVICE_WINDOW - 1, "203.0.113.0/24", firefox);
        assert!(new_device(&this, &[too_old], 0));
        // Another network, or another device, on the same day: new.
        assert!(new_device(
            &this,
            &[at("o", t - day, "198.51.100.0/24", firefox)],
            0
        ));
        assert!(new_device(
            &this,
            &[at("o", t - day, "203.0.113.0/24", "curl/8.5.0")],
            0
        ));
        // A newer browser version is the same device label.
        let older_version = firefox.replace("133.0", "128.0");
        assert!(!new_device(
            &this,
            &[at("o", t - day, "203.0.113.0/24", &older_version)],
            0
        ));
        // Itself, or a session that started after it, does not count.
        assert!(new_device(
            &this,
            &[this.clone(), at("later", t + 1, "203.0.113.0/24", firefox)],
            0
        ));
    }
}
