//! Deployment configuration, read once per cold start from the environment.
//! Every lifetime and limit of the contract is configurable here (see README).

use std::env;

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
    pub ip_per_minute: u32,
    pub login_failures_per_15min: u32,
    pub cors_origins: Vec<String>,
    pub sender_address: String,
    pub cookie_path: String,
    pub cookie_name: String,
    /// How long a warm function caches hub lookups (seconds).
    pub hub_cache_ttl: i64,
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
    pub fn from_env() -> Result<Config, String> {
        let public_base_url = var("PUBLIC_BASE_URL")
            .unwrap_or_else(|| "http://127.0.0.1:3000".into())
            .trim_end_matches('/')
            .to_string();
        let jwt_issuer =
            var("JWT_ISSUER").unwrap_or_else(|| format!("{public_base_url}{API_PREFIX}"));
        Ok(Config {
            table_name: var("TABLE_NAME").ok_or("TABLE_NAME is not set")?,
            jwt_issuer,
            public_base_url,
            jwt_audience: var("JWT_AUDIENCE").unwrap_or_else(|| "contact-api".into()),
            access_ttl: num("ACCESS_TOKEN_TTL_SECONDS", 900)?,
            refresh_ttl: num("REFRESH_TOKEN_TTL_SECONDS", 2_592_000)?,
            refresh_grace: num("REFRESH_REUSE_GRACE_SECONDS", 10)?,
            session_max: num("SESSION_MAX_SECONDS", 7_776_000)?,
            recent_auth: num("RECENT_AUTH_SECONDS", 600)?,
            undo_ttl: num("EMAIL_CHANGE_UNDO_SECONDS", 604_800)?,
            magic_ttl: num("MAGIC_LINK_TTL_SECONDS", 900)?,
            email_cooldown: num("RATE_EMAIL_COOLDOWN_SECONDS", 60)?,
            email_per_hour: num("RATE_EMAIL_PER_HOUR", 5)?,
            ip_per_minute: num("RATE_IP_PER_MINUTE", 30)?,
            login_failures_per_15min: num("RATE_LOGIN_FAILURES_PER_15MIN", 10)?,
            cors_origins: var("CORS_ALLOWED_ORIGINS")
                .map(|v| {
                    v.split(',')
                        .map(|s| s.trim().trim_end_matches('/').to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            sender_address: var("SENDER_ADDRESS").unwrap_or_else(|| "no-reply@example.com".into()),
            cookie_path: var("COOKIE_PATH").unwrap_or_else(|| API_PREFIX.into()),
            cookie_name: "contact_refresh".into(),
            hub_cache_ttl: num("HUB_CACHE_SECONDS", 60)?,
        })
    }

    /// When a session signed in at `auth_time` ends, whatever its rotations.
    pub fn session_end(&self, auth_time: i64) -> i64 {
        auth_time + self.session_max
    }
}
