//! Rate rules. The request handlers build them; the store counts them in the same
//! transaction that writes the mail job, so counting costs no extra round trip.

use crate::config::Config;
use crate::domain::email::EmailKey;
use crate::domain::secret::hex_sha256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateRule {
    /// At most one event per `seconds` for `key` (sliding: compares the last time).
    Cooldown { key: String, seconds: i64 },
    /// At most `limit` events per fixed window of `seconds` for `key`.
    Window {
        key: String,
        limit: u32,
        seconds: i64,
    },
}

impl RateRule {
    /// Seconds until this rule would allow another event, given the stored state.
    pub fn retry_after(&self, now: i64, last_at: Option<i64>) -> u64 {
        match self {
            RateRule::Cooldown { seconds, .. } => {
                let last = last_at.unwrap_or(now);
                (last + seconds - now).max(1) as u64
            }
            RateRule::Window { seconds, .. } => {
                let start = window_start(now, *seconds);
                (start + seconds - now).max(1) as u64
            }
        }
    }
}

/// A fixed-window counter item: its key (window start included) and when it lapses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    pub key: String,
    pub expires_at: i64,
}

impl Counter {
    pub fn window(key: &str, now: i64, seconds: i64) -> Counter {
        let start = window_start(now, seconds);
        Counter {
            key: format!("{key}#{start}"),
            expires_at: start + seconds,
        }
    }
}

/// Failed logins per team+email: a 15-minute window.
pub const LOGIN_FAILURE_WINDOW: i64 = 900;

pub fn login_failures(scope: &str, now: i64) -> Counter {
    Counter::window(&format!("login-fail#{scope}"), now, LOGIN_FAILURE_WINDOW)
}

/// Sign-in code attempts per email, across all teams: a one-hour window. Only the email
/// (hashed) is in the key, so guesses spread over teams, or at an address without an
/// account, count the same.
pub const CODE_ATTEMPT_WINDOW: i64 = 3600;

pub fn code_attempts(email_key: &EmailKey, now: i64) -> Counter {
    let scope = hex_sha256(format!("code\n{}", email_key.as_str()).as_bytes());
    Counter::window(&format!("code-attempts#{scope}"), now, CODE_ATTEMPT_WINDOW)
}

/// Sign-in code attempts from one IP (v4 address or v6 /64) in the code window, right or
/// wrong: one attacker guessing across many accounts (10 per email an hour) meets this
/// cap. A right code does not give the attempt back: a refund would let an attacker buy
/// guesses with codes mailed to their own addresses.
pub fn code_ip_counter(source_ip: &str, now: i64) -> Counter {
    Counter::window(
        &format!("code-{}", ip_key(source_ip)),
        now,
        CODE_ATTEMPT_WINDOW,
    )
}

/// The per-IP window: register, magic, login and code sign-in count into the same item.
const IP_WINDOW: i64 = 60;

/// The per-IP key: the address for IPv4, the /64 network for IPv6 (one subscriber
/// usually holds a whole /64, so counting single v6 addresses would count nothing).
/// IPv4-mapped IPv6 addresses count as their IPv4 address.
fn ip_key(source_ip: &str) -> String {
    use std::net::IpAddr;
    match source_ip.trim().parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => format!("ip#{v4}"),
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("ip#{v4}"),
            None => {
                let s = v6.segments();
                format!("ip#{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Err(_) => format!("ip#{}", source_ip.trim()),
    }
}

/// The per-IP counter as login reads and counts it (the item `ip_rule` limits).
pub fn ip_counter(source_ip: &str, now: i64) -> Counter {
    Counter::window(&ip_key(source_ip), now, IP_WINDOW)
}

pub fn window_start(now: i64, seconds: i64) -> i64 {
    now - now.rem_euclid(seconds.max(1))
}

/// The scope of per-email limits: the team when known, else the slug as given (so an
/// unknown hub is counted the same way as a known one). The email is hashed so rate
/// items carry no address.
pub fn email_scope(team_or_slug: &str, email_key: &EmailKey) -> String {
    hex_sha256(format!("{team_or_slug}\n{}", email_key.as_str()).as_bytes())
}

/// Limits for `POST /register` and `POST /magic`: per team+email and per source IP.
pub fn send_rules(cfg: &Config, scope: &str, source_ip: &str) -> Vec<RateRule> {
    vec![
        RateRule::Cooldown {
            key: format!("send-cooldown#{scope}"),
            seconds: cfg.email_cooldown,
        },
        RateRule::Window {
            key: format!("send-hour#{scope}"),
            limit: cfg.email_per_hour,
            seconds: 3600,
        },
        ip_rule(cfg, source_ip),
    ]
}

pub fn ip_rule(cfg: &Config, source_ip: &str) -> RateRule {
    RateRule::Window {
        key: ip_key(source_ip),
        limit: cfg.ip_per_minute,
        seconds: IP_WINDOW,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_counts_to_the_window_end_or_cooldown_end() {
        let w = RateRule::Window {
            key: "k".into(),
            limit: 5,
            seconds: 60,
        };
        assert_eq!(w.retry_after(125, None), 55);
        assert_eq!(w.retry_after(179, None), 1);
        let c = RateRule::Cooldown {
            key: "k".into(),
            seconds: 60,
        };
        assert_eq!(c.retry_after(100, Some(90)), 50);
        assert_eq!(c.retry_after(100, Some(10)), 1);
    }

    #[test]
    fn login_counts_the_same_ip_item_register_limits() {
        let cfg = Config::defaults("t");
        let RateRule::Window { key, seconds, .. } = ip_rule(&cfg, "203.0.113.10") else {
            panic!("ip_rule is a window")
        };
        assert_eq!(
            Counter::window(&key, 125, seconds),
            ip_counter("203.0.113.10", 125)
        );
        assert_eq!(ip_counter("203.0.113.10", 125).expires_at, 180);
    }

    #[test]
    fn ipv6_counts_per_64_and_ipv4_per_address() {
        let a = ip_counter("2001:db8:1:2:aaaa::1", 125);
        let b = ip_counter("2001:db8:1:2:ffff:ffff:ffff:ffff", 125);
        let other = ip_counter("2001:db8:1:3::1", 125);
        assert_eq!(a, b);
        assert_ne!(a, other);
        assert!(a.key.starts_with("ip#2001:db8:1:2::/64#"), "{}", a.key);
        assert_ne!(
            ip_counter("203.0.113.10", 125),
            ip_counter("203.0.113.11", 125)
        );
        assert_eq!(
            ip_counter("::ffff:203.0.113.10", 125),
            ip_counter("203.0.113.10", 125)
        );
    }

    #[test]
    fn scope_hides_the_address_and_separates_teams() {
        let key = crate::domain::email::parse_email("m@example.com")
            .unwrap()
            .key;
        let a = email_scope("team_a", &key);
        assert!(!a.contains("example"));
        assert_ne!(a, email_scope("team_b", &key));
    }

    #[test]
    fn send_rules_are_the_email_cooldown_the_hourly_email_window_and_the_ip_window() {
        let mut cfg = Config::defaults("t");
        cfg.email_cooldown = 60;
        cfg.email_per_hour = 5;
        cfg.ip_per_minute = 20;
        assert_eq!(
            send_rules(&cfg, "scope1", "203.0.113.10"),
            vec![
                RateRule::Cooldown {
                    key: "send-cooldown#scope1".into(),
                    seconds: 60
                },
                RateRule::Window {
                    key: "send-hour#scope1".into(),
                    limit: 5,
                    seconds: 3600
                },
                ip_rule(&cfg, "203.0.113.10"),
            ]
        );
    }

    #[test]
    fn code_attempts_count_per_email_for_an_hour_whatever_the_team() {
        let a = EmailKey::from_stored("a@example.com".into());
        let b = EmailKey::from_stored("b@example.com".into());
        let c = code_attempts(&a, 3_700);
        assert_eq!(c, code_attempts(&a, 7_199));
        assert_ne!(c, code_attempts(&a, 7_200));
        assert_ne!(c, code_attempts(&b, 3_700));
        assert_eq!(c.expires_at, 7_200);
        assert!(c.key.starts_with("code-attempts#") && !c.key.contains("example"));
    }
}
