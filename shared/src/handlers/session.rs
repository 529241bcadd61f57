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
            expires_at: now + app.config.refresh_ttl,
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
    let access = sign_access(app, who)?;
    let mut body = json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": app.config.access_ttl,
        "refresh_token": refresh.raw,
        "refresh_expires_in": app.config.refresh_ttl,
    });
    if let (Some(b), Value::Object(extra)) = (body.as_object_mut(), extra) {
        b.extend(extra);
    }
    let mut resp = crate::edge::json_response(http::StatusCode::OK, "application/json", &body);
    resp.headers_mut()
        .insert(http::header::PRAGMA, HeaderValue::from_static("no-cache"));
    set_refresh_cookie(app, &mut resp, Some(&refresh.raw));
    Ok(resp)
}

/// Sets (or, with None, clears) the refresh cookie: HttpOnly; Secure; SameSite=Strict,
/// scoped to the contact-auth path.
pub fn set_refresh_cookie(app: &App, resp: &mut Response<Body>, value: Option<&str>) {
    let max_age = match value {
        Some(_) => cookie::time::Duration::seconds(app.config.refresh_ttl),
        None => cookie::time::Duration::ZERO,
    };
    let c = Cookie::build((
        app.config.cookie_name.clone(),
        value.unwrap_or("").to_string(),
    ))
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

/// The refresh token from the cookie, if any.
pub fn refresh_cookie(app: &App, req: &Request) -> Option<String> {
    req.headers()
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == app.config.cookie_name && !c.value().is_empty())
        .map(|c| c.value().to_string())
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
    let contact = app
        .store()?
        .contact(&claims.sub)
        .await?
        .ok_or_else(unauthorized)?;
    if claims.tv < contact.token_version {
        return Err(unauthorized());
    }
    Ok((claims, contact))
}
