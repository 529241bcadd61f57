//! The member's session list (`GET /me/sessions`) and what ends its entries
//! (`DELETE /me/sessions/{id}`, `POST /logout-others`): which recorded sessions are still
//! usable, how one is shown, how long its family must stay revoked.

use serde_json::{json, Value};

use crate::app::App;
use crate::domain::jwt::{AccessClaims, KeySet};
use crate::domain::model::{Contact, Membership, SessionRecord};
use crate::domain::session::{device_label, ended_because, recently_authenticated};
use crate::errors::ApiError;
use crate::flows::account::{reauthentication_required, rfc3339};
use crate::ports::{Contacts, Sessions};

/// The contact's sessions in the token's team that can still be used: the caller's own
/// first, then newest first.
pub async fn active_sessions<S: Contacts + Sessions>(
    app: &App<S, KeySet>,
    claims: &AccessClaims,
    contact: &Contact,
    membership: &Membership,
) -> Result<Vec<SessionRecord>, ApiError> {
    let now = app.now();
    let mut list: Vec<SessionRecord> = app
        .store
        .sessions(&claims.sub, &claims.tid)
        .await?
        .into_iter()
        .filter(|s| is_active(app, s, contact, membership, now))
        .collect();
    // The caller's own session first (a device list's "this device"), then the others
    // newest first (equal times: by id, so the order is stable).
    let current = claims.sid.as_deref();
    list.sort_by(|a, b| {
        let key = |s: &SessionRecord| current != Some(s.session_id.as_str());
        (key(a), b.created_at, &b.session_id).cmp(&(key(b), a.created_at, &a.session_id))
    });
    Ok(list)
}

/// Whether a recorded session can still be used, judged against the caller's profile and
/// membership (`domain::session::ended_because`).
pub fn is_active<S, K>(
    app: &App<S, K>,
    s: &SessionRecord,
    contact: &Contact,
    membership: &Membership,
    now: i64,
) -> bool {
    ended_because(
        s,
        contact.token_version,
        Some(membership),
        now,
        app.config.session_max,
    )
    .is_none()
}

/// A session as the API shows it (`sessions` resource): never the address, only its
/// network; the device as a label parsed from the stored User-Agent.
pub fn session_resource(s: &SessionRecord, current: bool) -> Value {
    let time = |t: Option<i64>| t.map(rfc3339).unwrap_or(Value::Null);
    json!({
        "type": "sessions",
        "id": s.session_id,
        "attributes": {
            "current": current,
            "created_at": time(s.created_at),
            "last_active_at": time(s.last_active_at),
            "auth_time": time(s.auth_time),
            "amr": s.amr,
            "hub_id": s.hub_id,
            "network": s.network.as_deref().unwrap_or("unknown"),
            "device": device_label(s.user_agent.as_deref().unwrap_or("")),
        }
    })
}

/// How long an ended session's family stays revoked: until its absolute end (no token of
/// it can outlive that), or a whole session lifetime when the record does not say.
pub fn family_until<S, K>(app: &App<S, K>, s: &SessionRecord) -> i64 {
    let now = app.now();
    s.auth_time
        .map(|t| app.config.session_end(t))
        .unwrap_or(now + app.config.session_max)
        .max(now)
}

/// Ending a session other than the caller's own needs a recent sign-in (a stolen access
/// token of an older sign-in cannot end the owner's other sessions).
pub fn require_recent<S, K>(app: &App<S, K>, claims: &AccessClaims) -> Result<(), ApiError> {
    if recently_authenticated(claims, app.now(), app.config.recent_auth) {
        Ok(())
    } else {
        Err(reauthentication_required())
    }
}
