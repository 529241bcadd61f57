//! Deployment configuration, read once per cold start from the environment.
//! Every lifetime and limit of the contract is configurable here (see README).

use std::env;

use crate::domain::jwt::TokenAlg;

#[derive(Debug, Clone)]
pub struct Config {
    pub table_name: String,
    /// Where the hosted page lives: magic links default to `<public_base_url>/m#token=…`.
    pub public_base_url: String,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub access_ttl: i64,
    pub refresh_ttl: i64,
    /// A rotated-out refresh token still yields a pair for this long (two tabs).
    pub refresh_grace: i64,
    /// Absolute session lifetime: a refresh family ends this long after its sign-in.
    pub session_max: i64,
    /// How long after a sign-in it counts as recent (email change, first password,
    /// password change without the current one).
    pub recent_auth: i64,
    /// How long the undo link in an email-change notice works.
    pub undo_ttl: i64,
    pub magic_ttl: i64,
    pub email_cooldown: i64,
    pub email_per_hour: u32,
    /// The per-IP ceiling: register, magic, login and code requests per minute.
    pub ip_per_minute: u32,
    /// Password logins and current-password checks per source IP per minute.
    pub ip_login_per_minute: u32,
    /// Registration mail to addresses without an account, per source IP per minute
    /// (counted by the mailer; beyond it the mail is not sent, the request said 202).
    pub ip_new_address_mail_per_minute: u32,
    /// Sign-in and join mail to existing contacts, per source IP per minute (mailer).
    pub ip_sign_in_mail_per_minute: u32,
    pub login_failures_per_15min: u32,
    /// Sign-in code attempts per email per hour, across all teams.
    pub code_attempts_per_hour: u32,
    /// Sign-in code attempts per source IP (v4, or v6 /64) per hour.
    pub code_attempts_per_ip_hour: u32,
    /// How many mail jobs of a stream batch the mailer works on at once.
    pub mailer_concurrency: usize,
    /// The SES account's maximum send rate (mails per second), shared by every mailer
    /// instance through the table; 0 turns the governor off.
    pub ses_max_send_rate: u32,
    pub cors_origins: Vec<String>,
    pub sender_address: String,
    pub cookie_path: String,
    pub cookie_name: String,
    /// Refresh mode C (README "Refresh modes"): `REFRESH_COOKIE_PARTITIONED=true` lets a
    /// request that sends `Refresh-Cookie: partitioned` use a `SameSite=None; Partitioned`
    /// cookie of its own name (`partitioned_cookie_name`) instead of the Strict one.
    pub partitioned_cookie: bool,
    pub partitioned_cookie_name: String,
    /// Which team sender addresses mail may go from (`TEAM_SENDER_ADDRESSES`, comma-separated
    /// `name@domain` or `*@domain`; the mailer's IAM grant names the same): a team's address
    /// outside them is ignored (`domain::branding::sender_allowed`).
    pub team_sender_patterns: Vec<String>,
    /// How long a warm function caches hub lookups (seconds).
    pub hub_cache_ttl: i64,
    /// The namespace of the functions' metrics (`METRICS_NAMESPACE`; the stack sets
    /// `ContactAuth/<stack>`).
    pub metrics_namespace: String,
    /// The algorithm access tokens are signed with (`ACCESS_TOKEN_ALG`: RS256, ES256 or
    /// EdDSA; CONTRACT §12). The signing key in the secret must be of this kind.
    pub access_token_alg: TokenAlg,
    /// How long a warm function uses the signing keys it read before it reads the secret
    /// again (`SIGNING_KEY_REFRESH_SECONDS`): the bound on picking up a rotation.
    pub signing_key_refresh: i64,
}

pub const API_PREFIX: &str = "/api/v1/contact-auth";

fn var(name: &str) -> Option<String> {
    env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn num<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match var(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("{name} must be a number")),
    }
}

impl Config {
    /// Every default of the contract (README "Configuration"), for `table_name`.
    pub fn defaults(table_name: &str) -> Config {
        let public_base_url = "http://127.0.0.1:3000".to_string();
        Config {
            table_name: table_name.into(),
            jwt_issuer: format!("{public_base_url}{API_PREFIX}"),
            public_base_url,
            jwt_audience: "contact-api".into(),
            access_ttl: 900,
            refresh_ttl: 2_592_000,
            refresh_grace: 10,
            session_max: 7_776_000,
            recent_auth: 600,
            undo_ttl: 604_800,
            magic_ttl: 900,
            email_cooldown: 60,
            email_per_hour: 5,
            ip_per_minute: 600,
            ip_login_per_minute: 120,
            ip_new_address_mail_per_minute: 30,
            ip_sign_in_mail_per_minute: 600,
            login_failures_per_15min: 10,
            code_attempts_per_hour: 10,
            code_attempts_per_ip_hour: 30,
            mailer_concurrency: 10,
            ses_max_send_rate: 14,
            cors_origins: vec![],
            sender_address: "no-reply@example.com".into(),
            cookie_path: API_PREFIX.into(),
            cookie_name: "contact_refresh".into(),
            partitioned_cookie: false,
            partitioned_cookie_name: "contact_refresh_partitioned".into(),
            team_sender_patterns: Vec::new(),
            hub_cache_ttl: 60,
            metrics_namespace: "ContactAuth/local".into(),
            access_token_alg: TokenAlg::RS256,
            signing_key_refresh: 300,
        }
    }

    /// The defaults, overridden by the environment (README "Configuration").
    pub fn from_env() -> Result<Config, String> {
        let d = Config::defaults(&var("TABLE_NAME").ok_or("TABLE_NAME is not set")?);
        let public_base_url = var("PUBLIC_BASE_URL")
            .map(|v| v.trim_end_matches('/').to_string())
            .unwrap_or(d.public_base_url);
        let jwt_issuer =
            var("JWT_ISSUER").unwrap_or_else(|| format!("{public_base_url}{API_PREFIX}"));
        Ok(Config {
            table_name: d.table_name,
            jwt_issuer,
            public_base_url,
            jwt_audience: var("JWT_AUDIENCE").unwrap_or(d.jwt_audience),
            access_ttl: num("ACCESS_TOKEN_TTL_SECONDS", d.access_ttl)?,
            refresh_ttl: num("REFRESH_TOKEN_TTL_SECONDS", d.refresh_ttl)?,
            refresh_grace: num("REFRESH_REUSE_GRACE_SECONDS", d.refresh_grace)?,
            session_max: num("SESSION_MAX_SECONDS", d.session_max)?,
            recent_auth: num("RECENT_AUTH_SECONDS", d.recent_auth)?,
            undo_ttl: num("EMAIL_CHANGE_UNDO_SECONDS", d.undo_ttl)?,
            magic_ttl: num("MAGIC_LINK_TTL_SECONDS", d.magic_ttl)?,
            email_cooldown: num("RATE_EMAIL_COOLDOWN_SECONDS", d.email_cooldown)?,
            email_per_hour: num("RATE_EMAIL_PER_HOUR", d.email_per_hour)?,
            ip_per_minute: num("RATE_IP_PER_MINUTE", d.ip_per_minute)?,
            ip_login_per_minute: num("RATE_IP_LOGIN_PER_MINUTE", d.ip_login_per_minute)?,
            ip_new_address_mail_per_minute: num(
                "RATE_IP_NEW_ADDRESS_MAIL_PER_MINUTE",
                d.ip_new_address_mail_per_minute,
            )?,
            ip_sign_in_mail_per_minute: num(
                "RATE_IP_SIGN_IN_MAIL_PER_MINUTE",
                d.ip_sign_in_mail_per_minute,
            )?,
            login_failures_per_15min: num(
                "RATE_LOGIN_FAILURES_PER_15MIN",
                d.login_failures_per_15min,
            )?,
            code_attempts_per_hour: num("RATE_CODE_ATTEMPTS_PER_HOUR", d.code_attempts_per_hour)?,
            code_attempts_per_ip_hour: num(
                "RATE_CODE_ATTEMPTS_PER_IP_HOUR",
                d.code_attempts_per_ip_hour,
            )?,
            mailer_concurrency: match num("MAILER_CONCURRENCY", d.mailer_concurrency)? {
                n if n >= 1 => n,
                _ => return Err("MAILER_CONCURRENCY must be at least 1".into()),
            },
            ses_max_send_rate: num("SES_MAX_SEND_RATE", d.ses_max_send_rate)?,
            cors_origins: var("CORS_ALLOWED_ORIGINS")
                .map(|v| {
                    v.split(',')
                        .map(|s| s.trim().trim_end_matches('/').to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or(d.cors_origins),
            sender_address: var("SENDER_ADDRESS").unwrap_or(d.sender_address),
            cookie_path: var("COOKIE_PATH").unwrap_or(d.cookie_path),
            cookie_name: d.cookie_name,
            partitioned_cookie: match var("REFRESH_COOKIE_PARTITIONED").as_deref() {
                None | Some("false") => false,
                Some("true") => true,
                Some(_) => return Err("REFRESH_COOKIE_PARTITIONED must be true or false".into()),
            },
            partitioned_cookie_name: d.partitioned_cookie_name,
            team_sender_patterns: var("TEAM_SENDER_ADDRESSES")
                .map(|v| {
                    v.split(',')
                        .map(|p| p.trim().to_string())
                        .filter(|p| !p.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            hub_cache_ttl: num("HUB_CACHE_SECONDS", d.hub_cache_ttl)?,
            metrics_namespace: var("METRICS_NAMESPACE").unwrap_or(d.metrics_namespace),
            access_token_alg: match var("ACCESS_TOKEN_ALG") {
                None => d.access_token_alg,
                Some(v) => TokenAlg::parse(v.trim())
                    .ok_or("ACCESS_TOKEN_ALG must be RS256, ES256 or EdDSA")?,
            },
            signing_key_refresh: match num("SIGNING_KEY_REFRESH_SECONDS", d.signing_key_refresh)? {
                n if n >= 1 => n,
                _ => return Err("SIGNING_KEY_REFRESH_SECONDS must be at least 1".into()),
            },
        })
    }

    /// When a session signed in at `auth_time` ends, whatever its rotations.
    pub fn session_end(&self, auth_time: i64) -> i64 {
        auth_time + self.session_max
    }
}
