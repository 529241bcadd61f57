//! Sessions: the token pair (access JWT + rotating opaque refresh token), the refresh
//! cookie (built with the `cookie` crate), and Bearer authentication.

use cookie::{Cookie, SameSite};
use http::header::{HeaderValue, AUTHORIZATION, SET_COOKIE};
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};

use crate::app::App;
use crate::domain::jwt::AccessClaims;
use crate::domain::model::{Contact, RefreshRecord};
use crate::domain::secret::{hash_token, new_id, new_token};
use crate::errors::{ApiError, ErrorCode};

/// Who a new session is for.
#[derive(Debug, Clone)]
pub struct SessionSubject {
    pub contact_id: String,
    pub team_id: String,
    pub hub_id: Option<String>,
    pub token_version: u64,
    pub amr: Vec<String>,
    pub auth_time: i64,
}

/// A refresh token made but not yet stored (the caller stores the record in the same
/// write as the rest of its work).
pub struct NewRefresh {
    pub raw: String,
    pub record: RefreshRecord,
}

pub fn new_refresh(
    app: &App,
    who: &SessionSubject,
    family_id: Option<String>,
) -> Result<NewRefresh, ApiError> {
    let raw = new_token()?;
    let now = app.now();
    Ok(NewRefresh {
        record: RefreshRecord {
            token_hash: hash_token(&raw),
            contact_id: who.contact_id.clone(),
            team_id: who.team_id.clone(),
            hub_id: who.hub_id.clone(),
            family_id: family_id.unwrap_or_else(new_id),
            token_version: who.token_version,
            amr: who.amr.clone(),
            auth_time: who.auth_time,
            created_at: now,
            // Rotation never extends a session past its absolute lifetime.
            expires_at: (now + app.config.refresh_ttl).min(app.config.session_end(who.auth_time)),
        },
        raw,
    })
}

pub fn sign_access(app: &App, who: &SessionSubject) -> Result<String, ApiError> {
    let now = app.now();
    let claims = AccessClaims {
        iss: app.config.jwt_issuer.clone(),
        aud: app.config.jwt_audience.clone(),
        sub: who.contact_id.clone(),
        tid: who.team_id.clone(),
        hid: who.hub_id.clone(),
        tv: who.token_version,
        amr: who.amr.clone(),
        auth_time: who.auth_time,
        iat: now,
        exp: now + app.config.access_ttl,
        jti: new_id(),
    };
    app.keys()?.sign(&claims).map_err(|e| {
        tracing::error!(error = %e, "signing failed");
        ApiError::internal()
    })
}

/// The token pair body (plus `extra` fields) with the refresh cookie set.
pub fn token_pair_response(
    app: &App,
    who: &SessionSubject,
    refresh: &NewRefresh,
    extra: Value,
) -> Result<Response<Body>, ApiError> {
    let mut body = token_pair(app, who, refresh)?;
    if let (Some(b), Value::Object(extra)) = (body.as_object_mut(), extra) {
        b.extend(extra);
    }
    let mut resp = crate::edge::json_response(http::StatusCode::OK, "application/json", &body);
    resp.headers_mut()
        .insert(http::header::PRAGMA, HeaderValue::from_static("no-cache"));
    set_refresh_cookie(app, &mut resp, Some(refresh));
    Ok(resp)
}

/// The token pair as JSON: a new access token for `who` and `refresh`.
pub fn token_pair(
    app: &App,
    who: &SessionSubject,
    refresh: &NewRefresh,
) -> Result<Value, ApiError> {
    let access = sign_access(app, who)?;
    Ok(json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": app.config.access_ttl,
        "refresh_token": refresh.raw,
        "refresh_expires_in": refresh.lifetime(app.now()),
    }))
}

impl NewRefresh {
    /// Seconds until this refresh token expires.
    pub fn lifetime(&self, now: i64) -> i64 {
        (self.record.expires_at - now).max(0)
    }
}

/// Sets (or, with None, clears) the refresh cookie: HttpOnly; Secure; SameSite=Strict,
/// scoped to the contact-auth path.
pub fn set_refresh_cookie(app: &App, resp: &mut Response<Body>, value: Option<&NewRefresh>) {
    let (raw, max_age) = match value {
        Some(r) => (
            r.raw.clone(),
            cookie::time::Duration::seconds(r.lifetime(app.now())),
        ),
        None => (String::new(), cookie::time::Duration::ZERO),
    };
    let c = Cookie::build((app.config.cookie_name.clone(), raw))
        .path(app.config.cookie_path.clone())
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Strict)
        .max_age(max_age)
        .build();
    if let Ok(v) = HeaderValue::from_str(&c.to_string()) {
        resp.headers_mut().append(SET_COOKIE, v);
    }
}

/// More than one refresh cookie came with the request (e.g. one tossed in by a sibling
/// domain for another path): nobody can tell which is the member's, so none is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmbiguousCookie;

/// The refresh token from the cookie, if any (an empty value counts as none).
pub fn refresh_cookie(app: &App, req: &Request) -> Result<Option<String>, AmbiguousCookie> {
    let mut found = req
        .headers()
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .filter(|c| c.name() == app.config.cookie_name);
    match (found.next(), found.next()) {
        (None, _) => Ok(None),
        (Some(c), None) => Ok(Some(c.value().to_string()).filter(|v| !v.is_empty())),
        (Some(_), Some(_)) => Err(AmbiguousCookie),
    }
}

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

/// Verifies the Bearer access token: signature, `exp`, `iss`, `aud`, and the contact's
/// token version. Every failure is the same 401 `unauthorized`.
pub async fn authenticate(app: &App, req: &Request) -> Result<(AccessClaims, Contact), ApiError> {
    let unauthorized = || ApiError::new(ErrorCode::Unauthorized);
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(unauthorized)?;
    let (scheme, token) = header.split_once(' ').ok_or_else(unauthorized)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() || token.len() > 4096 {
        return Err(unauthorized());
    }
    let claims = app
        .keys()?
        .verify(
            token.trim(),
            &app.config.jwt_issuer,
            &app.config.jwt_audience,
        )
        .ok_or_else(unauthorized)?;
    if claims.exp <= app.now() {
        return Err(unauthorized());
    }
    // Profile and team membership in one read: a revoked token version, a ban or a
    // removal from the team all end the token here.
    let (contact, membership) = app
        .store()?
        .contact_with_membership(Some(&claims.sub), &claims.tid)
        .await?;
    let contact = contact.ok_or_else(unauthorized)?;
    if claims.tv < contact.token_version || !membership.is_some_and(|m| m.admits(claims.auth_time))
    {
        return Err(unauthorized());
    }
    Ok((claims, contact))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(amr: &[&str], auth_time: i64) -> AccessClaims {
        AccessClaims {
            iss: "i".into(),
            aud: "a".into(),
            sub: "c".into(),
            tid: "t".into(),
            hid: None,
            tv: 0,
            amr: amr.iter().map(|s| s.to_string()).collect(),
            auth_time,
            iat: auth_time,
            exp: auth_time + 900,
            jti: "j".into(),
        }
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
}
