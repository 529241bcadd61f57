//! Rate rules. The request handlers build them; the store counts them in the same
//! transaction that writes the mail job, so counting costs no extra round trip.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use ipnet::IpNet;

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

/// The per-IP budgets (README "Limits"): each its own fixed-window counter per source IP
/// (the IPv4 address, the IPv6 /64). The ceiling counts every register, magic, login and
/// code request; login and code attempts also count in their own family. The two mail
/// budgets are counted by the mailer, which alone knows whether an address has an account
/// (the request answers the same either way): strict for mail to *new* addresses (what a
/// mail bomber sends), loose for sign-in mail to members, who are governed by their
/// per-email limits. A hub's trusted egress networks are exempt from all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpBudget {
    /// Every register, magic, login and code request (`RATE_IP_PER_MINUTE`).
    Ceiling,
    /// Password logins and current-password checks (`RATE_IP_LOGIN_PER_MINUTE`).
    Login,
    /// Sign-in code attempts, right or wrong, per hour (`RATE_CODE_ATTEMPTS_PER_IP_HOUR`).
    /// One attacker guessing across many accounts (10 per email an hour) meets this cap. A
    /// right code does not give the attempt back: a refund would let an attacker buy
    /// guesses with codes mailed to their own addresses.
    Code,
    /// Registration mail to an address without an account
    /// (`RATE_IP_NEW_ADDRESS_MAIL_PER_MINUTE`).
    NewAddressMail,
    /// Sign-in and join mail to existing contacts (`RATE_IP_SIGN_IN_MAIL_PER_MINUTE`).
    SignInMail,
}

impl IpBudget {
    fn prefix(self) -> &'static str {
        match self {
            IpBudget::Ceiling => "ip",
            IpBudget::Login => "ip-login",
            IpBudget::Code => "code-ip",
            // One counter for every sign-in job, two limits (`handlers::mailer`).
            IpBudget::NewAddressMail | IpBudget::SignInMail => "ip-link-mail",
        }
    }

    pub fn window(self) -> i64 {
        match self {
            IpBudget::Code => CODE_ATTEMPT_WINDOW,
            _ => IP_WINDOW,
        }
    }

    pub fn limit(self, cfg: &Config) -> u32 {
        match self {
            IpBudget::Ceiling => cfg.ip_per_minute,
            IpBudget::Login => cfg.ip_login_per_minute,
            IpBudget::Code => cfg.code_attempts_per_ip_hour,
            IpBudget::NewAddressMail => cfg.ip_new_address_mail_per_minute,
            IpBudget::SignInMail => cfg.ip_sign_in_mail_per_minute,
        }
    }

    /// The counter's key without its window (`ip#203.0.113.10`).
    pub fn key(self, source_ip: &str) -> String {
        format!("{}#{}", self.prefix(), ip_key(source_ip))
    }

    /// The counter of `source_ip` for the window holding `at`.
    pub fn counter(self, source_ip: &str, at: i64) -> Counter {
        Counter::window(&self.key(source_ip), at, self.window())
    }

    /// The counter with its limit, as `Attempts::reserve_attempts` takes it.
    pub fn reserve(self, cfg: &Config, source_ip: &str, at: i64) -> (Counter, u32) {
        (self.counter(source_ip, at), self.limit(cfg))
    }

    /// The same counter as a rule of a mail-job transaction.
    pub fn rule(self, cfg: &Config, source_ip: &str) -> RateRule {
        RateRule::Window {
            key: self.key(source_ip),
            limit: self.limit(cfg),
            seconds: self.window(),
        }
    }
}

/// The per-IP window of the minute budgets.
const IP_WINDOW: i64 = 60;

/// The per-IP address part of a key: the address for IPv4, the /64 network for IPv6 (one
/// subscriber usually holds a whole /64, so counting single v6 addresses would count
/// nothing). IPv4-mapped IPv6 addresses count as their IPv4 address.
fn ip_key(source_ip: &str) -> String {
    match parse_ip(source_ip) {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        None => source_ip.trim().to_string(),
    }
}

/// The source address, IPv4-mapped IPv6 as IPv4.
fn parse_ip(source_ip: &str) -> Option<IpAddr> {
    match source_ip.trim().parse::<IpAddr>().ok()? {
        IpAddr::V6(v6) => Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)),
        v4 => Some(v4),
    }
}

/// The ceiling counter (every register, magic, login and code request of an IP).
pub fn ip_counter(source_ip: &str, now: i64) -> Counter {
    IpBudget::Ceiling.counter(source_ip, now)
}

/// Whether `source_ip` is inside one of a hub's trusted egress networks (exempt from
/// every per-IP budget). Entries were checked when stored (`trusted_cidr`); one that does
/// not parse never matches.
pub fn trusted(cidrs: &[String], source_ip: &str) -> bool {
    let Some(ip) = parse_ip(source_ip) else {
        return false;
    };
    cidrs
        .iter()
        .filter_map(|c| c.parse::<IpNet>().ok())
        .any(|net| net.contains(&ip))
}

/// The narrowest prefixes a trusted network may have: an IPv4 /16 (65,536 addresses)
/// and an IPv6 /48 (one site). Wider ones would exempt whole providers.
pub const TRUSTED_MIN_PREFIX_V4: u8 = 16;
pub const TRUSTED_MIN_PREFIX_V6: u8 = 48;

/// An operator's trusted egress network, checked and normalised (host bits cleared).
pub fn trusted_cidr(input: &str) -> Result<String, String> {
    let net: IpNet = input
        .trim()
        .parse()
        .map_err(|_| format!("{input:?} is not a CIDR (like 203.0.113.0/24 or 2001:db8:1::/48)"))?;
    let (min, len) = match net {
        IpNet::V4(n) => (TRUSTED_MIN_PREFIX_V4, n.prefix_len()),
        IpNet::V6(n) => (TRUSTED_MIN_PREFIX_V6, n.prefix_len()),
    };
    if len < min {
        return Err(format!(
            "{input:?} is wider than /{min}: trust a network you control, not a provider"
        ));
    }
    Ok(net.trunc().to_string())
}

/// What one function instance remembers of ceiling counters it saw at their limit: the
/// counter's key (window start included) and when its window ends. A fixed window cannot
/// fall back under its limit before it ends, so an entry is never stale, and every further
/// request from that IP in the window answers 429 without a DynamoDB write. Bounded: when
/// full, ended windows are dropped; if none has ended, nothing more is remembered (the
/// table still answers).
#[derive(Debug, Default)]
pub struct OverLimit(Mutex<HashMap<String, i64>>);

/// At most this many remembered counters per instance (a few hundred kB).
pub const OVER_LIMIT_ENTRIES: usize = 4096;

impl OverLimit {
    /// Seconds until `counter`'s window ends, if it was seen at its limit.
    pub fn retry_after(&self, counter: &Counter, now: i64) -> Option<u64> {
        let map = self.0.lock().ok()?;
        let until = *map.get(&counter.key)?;
        (until > now).then(|| (until - now) as u64)
    }

    /// Remembers that `counter` is at its limit until its window ends.
    pub fn remember(&self, counter: &Counter, now: i64) {
        let Ok(mut map) = self.0.lock() else { return };
        if map.len() >= OVER_LIMIT_ENTRIES {
            map.retain(|_, until| *until > now);
            if map.len() >= OVER_LIMIT_ENTRIES {
                return;
            }
        }
        map.insert(counter.key.clone(), counter.expires_at);
    }
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

/// Limits for `POST /register` and `POST /magic` (and an email change's mail): per
/// team+email, and the per-IP ceiling unless the source is a trusted network of the hub.
pub fn send_rules(cfg: &Config, scope: &str, source_ip: &str, trusted: bool) -> Vec<RateRule> {
    let mut rules = vec![
        RateRule::Cooldown {
            key: format!("send-cooldown#{scope}"),
            seconds: cfg.email_cooldown,
        },
        RateRule::Window {
            key: format!("send-hour#{scope}"),
            limit: cfg.email_per_hour,
            seconds: 3600,
        },
    ];
    if !trusted {
        rules.push(IpBudget::Ceiling.rule(cfg, source_ip));
    }
    rules
}

impl RateRule {
    /// The counter's key, without a window.
    pub fn key(&self) -> &str {
        match self {
            RateRule::Cooldown { key, .. } | RateRule::Window { key, .. } => key,
        }
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
        let RateRule::Window { key, seconds, .. } = IpBudget::Ceiling.rule(&cfg, "203.0.113.10")
        else {
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
    fn send_rules_are_the_email_cooldown_the_hourly_email_window_and_the_ip_ceiling() {
        let mut cfg = Config::defaults("t");
        cfg.email_cooldown = 60;
        cfg.email_per_hour = 5;
        cfg.ip_per_minute = 20;
        let per_email = vec![
            RateRule::Cooldown {
                key: "send-cooldown#scope1".into(),
                seconds: 60,
            },
            RateRule::Window {
                key: "send-hour#scope1".into(),
                limit: 5,
                seconds: 3600,
            },
        ];
        let mut all = per_email.clone();
        all.push(RateRule::Window {
            key: "ip#203.0.113.10".into(),
            limit: 20,
            seconds: 60,
        });
        assert_eq!(send_rules(&cfg, "scope1", "203.0.113.10", false), all);
        // A hub's trusted network: the per-email limits only.
        assert_eq!(send_rules(&cfg, "scope1", "203.0.113.10", true), per_email);
    }

    #[test]
    fn every_ip_budget_is_its_own_counter_with_its_own_limit() {
        let mut cfg = Config::defaults("t");
        let budgets = [
            IpBudget::Ceiling,
            IpBudget::Login,
            IpBudget::Code,
            IpBudget::NewAddressMail,
            IpBudget::SignInMail,
        ];
        let keys: std::collections::HashSet<_> = budgets
            .iter()
            .map(|b| b.counter("203.0.113.10", 125).key)
            .collect();
        // The two mail budgets are limits on one counter of every sign-in job (so what is
        // counted does not depend on whether an address has an account).
        assert_eq!(keys.len(), budgets.len() - 1);
        assert_eq!(
            IpBudget::NewAddressMail.key("203.0.113.10"),
            IpBudget::SignInMail.key("203.0.113.10")
        );
        // The defaults of README "Limits".
        let limits: Vec<u32> = budgets.iter().map(|b| b.limit(&cfg)).collect();
        assert_eq!(limits, vec![600, 120, 30, 30, 600]);
        cfg.ip_login_per_minute = 7;
        assert_eq!(IpBudget::Login.reserve(&cfg, "203.0.113.10", 125).1, 7);
        // Minute windows, except codes (an hour); the code counter keeps its old key.
        assert_eq!(IpBudget::Login.counter("203.0.113.10", 125).expires_at, 180);
        assert_eq!(IpBudget::Code.counter("203.0.113.10", 125).expires_at, 3600);
        assert!(IpBudget::Code
            .counter("203.0.113.10", 125)
            .key
            .starts_with("code-ip#203.0.113.10#"));
    }

    #[test]
    fn trusted_networks_match_their_addresses_only() {
        let cidrs = vec!["203.0.113.0/24".to_string(), "2001:db8:1::/48".to_string()];
        assert!(trusted(&cidrs, "203.0.113.10"));
        assert!(trusted(&cidrs, "::ffff:203.0.113.200"));
        assert!(trusted(&cidrs, "2001:db8:1:ffff::1"));
        assert!(!trusted(&cidrs, "203.0.114.1"));
        assert!(!trusted(&cidrs, "2001:db8:2::1"));
        assert!(!trusted(&cidrs, "unknown"));
        assert!(!trusted(&[], "203.0.113.10"));
        assert!(!trusted(&["nonsense".to_string()], "203.0.113.10"));
    }

    #[test]
    fn a_trusted_network_is_checked_and_normalised() {
        assert_eq!(trusted_cidr(" 203.0.113.7/24 ").unwrap(), "203.0.113.0/24");
        assert_eq!(trusted_cidr("198.51.0.0/16").unwrap(), "198.51.0.0/16");
        assert_eq!(trusted_cidr("2001:db8:1::/48").unwrap(), "2001:db8:1::/48");
        assert_eq!(trusted_cidr("203.0.113.9/32").unwrap(), "203.0.113.9/32");
        for wide in [
            "0.0.0.0/0",
            "10.0.0.0/8",
            "198.0.0.0/15",
            "2001:db8::/32",
            "::/0",
        ] {
            assert!(trusted_cidr(wide).is_err(), "{wide}");
        }
        for bad in ["", "203.0.113.7", "example.com/24", "203.0.113.0/33"] {
            assert!(trusted_cidr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_instance_remembers_a_ceiling_until_its_window_ends_and_stays_bounded() {
        let memory = OverLimit::default();
        let c = ip_counter("203.0.113.10", 125);
        assert_eq!(memory.retry_after(&c, 125), None);
        memory.remember(&c, 125);
        assert_eq!(memory.retry_after(&c, 125), Some(55));
        assert_eq!(memory.retry_after(&c, 179), Some(1));
        assert_eq!(memory.retry_after(&c, 180), None);
        // The next window is another counter.
        assert_eq!(
            memory.retry_after(&ip_counter("203.0.113.10", 185), 185),
            None
        );
        // Full: ended windows make room; live ones are never evicted for new ones.
        for i in 0..OVER_LIMIT_ENTRIES {
            memory.remember(
                &ip_counter(&format!("10.0.{}.{}", i / 256, i % 256), 185),
                185,
            );
        }
        let late = ip_counter("198.51.100.1", 185);
        memory.remember(&late, 185);
        assert_eq!(memory.retry_after(&late, 185), None, "full of live windows");
        memory.remember(&late, 240);
        assert_eq!(
            memory.retry_after(&late, 200),
            Some(40),
            "room after they ended"
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
