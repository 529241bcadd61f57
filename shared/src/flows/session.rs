//! Sessions, shared by every route that signs someone in or checks a token: the token
//! pair (access JWT + rotating opaque refresh token), the refresh
//! cookie (built with the `cookie` crate), and Bearer authentication.

use cookie::{Cookie, SameSite};
use http::header::{HeaderValue, AUTHORIZATION, SET_COOKIE};
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};

use crate::app::App;
use crate::domain::email::EmailKey;
use crate::domain::ids::{ContactId, HubId, TeamId};
use crate::domain::jwt::{team_audience, AccessClaims, KeySet};
use crate::domain::model::{Contact, JobPurpose, MailJob, Membership, RefreshRecord};
use crate::domain::secret::{new_id, RawToken};
use crate::domain::session::SessionStart;
use crate::edge::{parse_document, RequestMeta};
use crate::errors::{ApiError, ErrorCode};
use crate::ports::Contacts;

/// Who a new session is for.
#[derive(Debug, Clone)]
pub struct SessionSubject {
    pub contact_id: ContactId,
    pub team_id: TeamId,
    pub hub_id: Option<HubId>,
    pub token_version: u64,
    pub amr: Vec<String>,
    pub auth_time: i64,
}

/// A refresh token made but not yet stored (the caller stores the record in the same
/// write as the rest of its work).
pub struct NewRefresh {
    pub raw: RawToken,
    pub record: RefreshRecord,
}

/// The next refresh token of a session: a rotation names its family; a sign-in starts a
/// new session from where the request came (`SessionStart`), recorded with the token.
pub enum Family {
    Existing(String),
    New(SessionStart),
}

impl Family {
    /// A new session for a sign-in request.
    pub fn start(meta: &RequestMeta) -> Family {
        Family::New(SessionStart::new(
            &meta.source_ip,
            meta.user_agent.as_deref(),
        ))
    }
}

pub fn new_refresh<S, K>(
    app: &App<S, K>,
    who: &SessionSubject,
    family: Family,
) -> Result<NewRefresh, ApiError> {
    let (family_id, start) = match family {
        Family::Existing(id) => (id, None),
        Family::New(start) => (new_id(), Some(start)),
    };
    let raw = RawToken::generate()?;
    let now = app.now();
    Ok(NewRefresh {
        record: RefreshRecord {
            token_hash: raw.hash(),
            contact_id: who.contact_id.clone(),
            team_id: who.team_id.clone(),
            hub_id: who.hub_id.clone(),
            family_id,
            token_version: who.token_version,
            amr: who.amr.clone(),
            auth_time: who.auth_time,
            created_at: now,
            // Rotation never extends a session past its absolute lifetime.
            expires_at: (now + app.config.refresh_ttl).min(app.config.session_end(who.auth_time)),
            start,
            sign_in_notice: None,
        },
        raw,
    })
}

/// The new-sign-in notice of a sign-in by an existing member (`JobPurpose::
/// NewSignInNotice`), written with the session: the mailer decides whether its device and
/// network are new to the member, and mails only then.
pub fn sign_in_notice(
    who: &SessionSubject,
    email: &str,
    email_key: &EmailKey,
    session_id: &str,
    meta: &RequestMeta,
    now: i64,
) -> Box<MailJob> {
    Box::new(MailJob {
        job_id: new_id(),
        purpose: JobPurpose::NewSignInNotice,
        slug: None,
        team_id: Some(who.team_id.clone()),
        email: email.to_string(),
        email_key: email_key.clone(),
        redirect_url: None,
        created_at: now,
        contact_id: Some(who.contact_id.clone()),
        change_id: Some(session_id.to_string()),
        pw_version: None,
        code_challenge: None,
        source_ip: None,
        locale: None,
        accept_language: meta.accept_language.clone(),
    })
}

/// An access token for `who` in session `sid` (the refresh token's family).
pub fn sign_access<S>(
    app: &App<S, KeySet>,
    who: &SessionSubject,
    sid: &str,
) -> Result<String, ApiError> {
    let now = app.now();
    let claims = AccessClaims {
        iss: app.config.jwt_issuer.clone(),
        aud: vec![app.config.jwt_audience.clone(), team_audience(&who.team_id)],
        sub: who.contact_id.clone(),
        tid: who.team_id.clone(),
        hid: who.hub_id.clone(),
        tv: who.token_version,
        amr: who.amr.clone(),
        auth_time: who.auth_time,
        iat: now,
        exp: now + app.config.access_ttl,
        jti: new_id(),
        sid: Some(sid.to_string()),
    };
    app.keys.sign(&claims).map_err(|e| {
        tracing::error!(error = %e, "signing failed");
        ApiError::internal()
    })
}

/// The token pair body (plus `extra` fields) with the refresh cookie set.
pub fn token_pair_response<S>(
    app: &App<S, KeySet>,
    req: &Request,
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
    set_refresh_cookie(app, req, &mut resp, Some(refresh));
    Ok(resp)
}

/// The token pair as JSON: a new access token for `who` and `refresh`.
pub fn token_pair<S>(
    app: &App<S, KeySet>,
    who: &SessionSubject,
    refresh: &NewRefresh,
) -> Result<Value, ApiError> {
    let access = sign_access(app, who, &refresh.record.family_id)?;
    Ok(json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": app.config.access_ttl,
        "refresh_token": refresh.raw.expose(),
        "refresh_expires_in": refresh.lifetime(),
    }))
}

impl NewRefresh {
    /// Seconds this refresh token lives, counted from when it was made (the same clock
    /// read that set its expiry: a second boundary passing during the DynamoDB write must
    /// not make the answer 2591999 instead of the configured 2592000).
    pub fn lifetime(&self) -> i64 {
        (self.record.expires_at - self.record.created_at).max(0)
    }
}

/// The header a frontend on another site sends to use the partitioned cookie (mode C).
pub const REFRESH_COOKIE_HEADER: &str = "refresh-cookie";

/// The refresh cookie this request uses: `(name, partitioned)`. The partitioned one only
/// when the deployment opted in and the request asks with `Refresh-Cookie: partitioned`;
/// otherwise the `SameSite=Strict` one, also when a request asks a deployment that did not
/// opt in.
fn cookie_for<'a, S, K>(app: &'a App<S, K>, req: &Request) -> (&'a str, bool) {
    let asks = req
        .headers()
        .get(REFRESH_COOKIE_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("partitioned"));
    if asks && app.config.partitioned_cookie {
        (&app.config.partitioned_cookie_name, true)
    } else {
        (&app.config.cookie_name, false)
    }
}

/// Sets (or, with None, clears) the request's refresh cookie (`cookie_for`), scoped to
/// the contact-auth path, `HttpOnly; Secure`: `SameSite=Strict`, or for mode C
/// `SameSite=None; Partitioned` (CHIPS: kept per top-level site, so it is not a
/// third-party cookie that follows the member across sites).
pub fn set_refresh_cookie<S, K>(
    app: &App<S, K>,
    req: &Request,
    resp: &mut Response<Body>,
    value: Option<&NewRefresh>,
) {
    let (raw, max_age) = match value {
        Some(r) => (
            r.raw.expose().to_string(),
            cookie::time::Duration::seconds(r.lifetime()),
        ),
        None => (String::new(), cookie::time::Duration::ZERO),
    };
    let (name, partitioned) = cookie_for(app, req);
    let c = Cookie::build((name.to_string(), raw))
        .path(app.config.cookie_path.clone())
        .http_only(true)
        .secure(true)
        .same_site(if partitioned {
            SameSite::None
        } else {
            SameSite::Strict
        })
        .partitioned(partitioned)
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

/// The refresh token from the request's cookie (`cookie_for`), if any (an empty value
/// counts as none).
pub fn refresh_cookie<S, K>(
    app: &App<S, K>,
    req: &Request,
) -> Result<Option<String>, AmbiguousCookie> {
    let (name, _) = cookie_for(app, req);
    let mut found = req
        .headers()
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .filter(|c| c.name() == name);
    match (found.next(), found.next()) {
        (None, _) => Ok(None),
        (Some(c), None) => Ok(Some(c.value().to_string()).filter(|v| !v.is_empty())),
        (Some(_), Some(_)) => Err(AmbiguousCookie),
    }
}

/// The presented refresh token: cookie first, else the body. `Err(AmbiguousCookie)`
/// when several refresh cookies came (the body is still parsed, so a bad body is 4xx).
pub fn presented_refresh_token<S, K>(
    app: &App<S, K>,
    req: &Request,
) -> Result<Result<Option<String>, AmbiguousCookie>, ApiError> {
    let attrs = parse_document(req, "refresh_requests", true)?;
    attrs.only(&["refresh_token"])?;
    let body = attrs.optional_str("refresh_token")?;
    Ok(refresh_cookie(app, req).map(|c| c.or(body).filter(|t| !t.is_empty())))
}

/// Verifies the Bearer access token: signature, `exp`, `iss`, `aud`, and the contact's
/// token version. Every failure is the same 401 `unauthorized`.
pub async fn authenticate<S: Contacts>(
    app: &App<S, KeySet>,
    req: &Request,
) -> Result<(AccessClaims, Contact), ApiError> {
    let (claims, contact, _) = authenticate_member(app, req).await?;
    Ok((claims, contact))
}

/// `authenticate`, with the membership it checked (the session list judges the other
/// sessions against it: a ban boundary).
pub async fn authenticate_member<S: Contacts>(
    app: &App<S, KeySet>,
    req: &Request,
) -> Result<(AccessClaims, Contact, Membership), ApiError> {
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
        .keys
        .verify(
            token.trim(),
            &app.config.jwt_issuer,
            &app.config.jwt_audience,
        )
        .ok_or_else(unauthorized)?;
    if claims.exp <= app.now() {
        return Err(unauthorized());
    }
    // Profile, team membership and session in one read: a revoked token version, a ban,
    // a removal from the team or an ended session (a logout, a detected reuse) all end the
    // token here. A token without `sid` (issued before sessions were recorded, 15 minutes
    // at most) is checked without one (its read names a session that does not exist).
    let (contact, membership, session) = app
        .store
        .access_state(
            &claims.sub,
            &claims.tid,
            claims.sid.as_deref().unwrap_or("none"),
        )
        .await?;
    let contact = contact.ok_or_else(unauthorized)?;
    let live = claims.sid.is_none() || session.is_some_and(|s| s.ended_at.is_none());
    let membership = membership
        .filter(|m| m.admits(claims.auth_time))
        .ok_or_else(unauthorized)?;
    if claims.tv < contact.token_version || !live {
        return Err(unauthorized());
    }
    Ok((claims, contact, membership))
}
