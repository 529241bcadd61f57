//! Issue 19, sessions: one record per refresh-token family, created by the sign-in,
//! touched by each rotation (a second tab's grace rotation keeps one session), ended with
//! a reason by a logout or a detected reuse — and an access token of an ended session is
//! refused at once, not when it expires. Real handlers, DynamoDB Local, stopped clocks.

use aws_sdk_dynamodb::types::AttributeValue;
use contact_auth::adapters::dynamo::keys;
use contact_auth::routes::Route;
use serde_json::{json, Value};
use testkit::app::TestApp;
use testkit::fixtures::{self, body_json, request};

use crate::{authed_event, ensure, fresh, init, put_link, record_secret, refresh_with};

const UA: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";

/// A session record as stored: attribute -> string or number as text.
type Record = std::collections::BTreeMap<String, String>;

/// The session records of `contact`, by session id.
async fn sessions(app: &TestApp, contact: &str) -> Result<Vec<Record>, String> {
    let out = app
        .store
        .client()
        .query()
        .table_name(app.store.table())
        .key_condition_expression("pk = :pk AND begins_with(sk, :s)")
        .expression_attribute_values(":pk", AttributeValue::S(format!("CONTACT#{contact}")))
        .expression_attribute_values(":s", AttributeValue::S(keys::SESSION_PREFIX.into()))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    Ok(out
        .items()
        .iter()
        .map(|i| {
            i.iter()
                .filter_map(|(k, v)| match v {
                    AttributeValue::S(s) => Some((k.clone(), s.clone())),
                    AttributeValue::N(n) => Some((k.clone(), n.clone())),
                    _ => None,
                })
                .collect()
        })
        .collect())
}

/// A JWT's claims (not verified: the handlers do that).
fn claims(jwt: &str) -> Value {
    use base64::Engine;
    jwt.split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}

/// Signs `email` in by a link from 203.0.113.77 with a browser's User-Agent: (access,
/// refresh, contact id).
async fn sign_in(app: &TestApp, email: &str) -> Result<(String, String, String), String> {
    let token = put_link(app, email).await?;
    let mut event: Value =
        serde_json::from_str(&fixtures::consume_event(&token)).map_err(|e| e.to_string())?;
    event["headers"]["user-agent"] = json!(UA);
    event["requestContext"]["http"]["sourceIp"] = json!("203.0.113.77");
    let resp = app
        .handle(Route::MagicConsume, request(&event.to_string())?)
        .await;
    let body = body_json(&resp);
    ensure(resp.status() == 200, || {
        format!("consume: {} {body}", resp.status())
    })?;
    let access = body["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let refresh = body["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    record_secret(&access);
    record_secret(&refresh);
    let contact = claims(&access)["sub"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    Ok((access, refresh, contact))
}

async fn me_status(app: &TestApp, access: &str) -> Result<u16, String> {
    let resp = app
        .handle(
            Route::MeGet,
            request(&authed_event("GET", Route::MeGet, access, Value::Null))?,
        )
        .await;
    Ok(resp.status().as_u16())
}

pub async fn sessions_are_recorded_touched_and_ended() -> Result<(), String> {
    init()?;
    let app = fresh(&Value::Null).await;
    let t0 = app.now();
    let email = format!(
        "sessions-{}@example.com",
        contact_auth::domain::secret::new_id()
    );
    let (access, refresh, contact) = sign_in(&app.at(t0), &email).await?;

    // The sign-in recorded its session: the network, not the address; the device; the
    // access token names it.
    let s = sessions(&app, &contact).await?;
    ensure(s.len() == 1, || {
        format!("{} sessions after one sign-in", s.len())
    })?;
    let sid = claims(&access)["sid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let r = &s[0];
    let field = |r: &Record, k: &str| r.get(k).cloned().unwrap_or_default();
    ensure(!sid.is_empty() && field(r, "session_id") == sid, || {
        format!("sid {sid:?} vs the record {r:?}")
    })?;
    ensure(field(r, "network") == "203.0.113.0/24", || format!("{r:?}"))?;
    ensure(field(r, "user_agent") == UA, || format!("{r:?}"))?;
    ensure(
        field(r, "created_at") == t0.to_string() && field(r, "last_active_at") == t0.to_string(),
        || format!("{r:?}"),
    )?;
    ensure(!format!("{r:?}").contains("203.0.113.77"), || {
        "the full address was stored".into()
    })?;
    ensure(me_status(&app.at(t0), &access).await? == 200, || {
        "GET /me".into()
    })?;

    // A rotation touches it; a second tab's grace rotation keeps one session.
    let (status, body) = refresh_with(&app.at(t0 + 100), &refresh).await?;
    ensure(status == 200, || format!("refresh {status} {body}"))?;
    let newest = body["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    ensure(
        claims(body["access_token"].as_str().unwrap_or_default())["sid"] == sid.as_str(),
        || "a rotation's access token names another session".into(),
    )?;
    let (status, _) = refresh_with(&app.at(t0 + 105), &refresh).await?;
    ensure(status == 200, || format!("grace refresh {status}"))?;
    let s = sessions(&app, &contact).await?;
    ensure(s.len() == 1, || {
        format!("{} sessions after two tabs", s.len())
    })?;
    ensure(
        field(&s[0], "last_active_at") == (t0 + 105).to_string(),
        || format!("not touched: {:?}", s[0]),
    )?;

    // A logout ends it with its reason, and the access token (minutes from expiry) with it.
    let resp = app
        .at(t0 + 200)
        .handle(Route::Logout, request(&fixtures::post_event(
            Route::Logout.path(),
            json!({"data": {"type": "refresh_requests", "attributes": {"refresh_token": newest}}}),
        ))?)
        .await;
    ensure(resp.status() == 204, || format!("logout {}", resp.status()))?;
    let s = sessions(&app, &contact).await?;
    ensure(
        field(&s[0], "ended_at") == (t0 + 200).to_string()
            && field(&s[0], "ended_reason") == "logout",
        || format!("not ended by the logout: {:?}", s[0]),
    )?;
    ensure(me_status(&app.at(t0 + 201), &access).await? == 401, || {
        "an access token of a logged-out session still works".into()
    })?;

    // Reuse of a rotated-out token ends the session as "reuse".
    let (access2, refresh2, _) = sign_in(&app.at(t0 + 300), &email).await?;
    let (status, _) = refresh_with(&app.at(t0 + 310), &refresh2).await?;
    ensure(status == 200, || format!("refresh {status}"))?;
    ensure(me_status(&app.at(t0 + 311), &access2).await? == 200, || {
        "the second session's token".into()
    })?;
    let (status, body) = refresh_with(&app.at(t0 + 400), &refresh2).await?;
    ensure(status == 401, || format!("reuse answered {status} {body}"))?;
    let s = sessions(&app, &contact).await?;
    let sid2 = claims(&access2)["sid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let second = s
        .iter()
        .find(|r| field(r, "session_id") == sid2)
        .ok_or("no record of the second session")?;
    ensure(field(second, "ended_reason") == "reuse", || {
        format!("{second:?}")
    })?;
    ensure(me_status(&app.at(t0 + 401), &access2).await? == 401, || {
        "an access token of a session ended by reuse still works".into()
    })
}

/// A family signed in before sessions were recorded (an RT# item, no record; its tokens
/// had no `sid`): its next rotation records the session, and the new access token (with
/// `sid`) works. A `sid` whose record is gone is refused.
pub async fn a_legacy_family_gets_its_session_at_its_next_rotation() -> Result<(), String> {
    use contact_auth::domain::ids::{ContactId, TeamId};
    use contact_auth::domain::model::RefreshRecord;
    use contact_auth::domain::secret::{new_id, RawToken};
    use contact_auth::ports::{Counter, Sessions};
    init()?;
    let app = fresh(&Value::Null).await;
    let t0 = app.now();
    let email = format!("legacy-{}@example.com", new_id());
    let (_, _, contact) = sign_in(&app.at(t0), &email).await?;
    let raw = RawToken::generate().map_err(|e| e.to_string())?;
    record_secret(raw.expose());
    let family = new_id();
    let legacy = RefreshRecord {
        token_hash: raw.hash(),
        contact_id: ContactId::from_stored(contact.as_str()),
        team_id: TeamId::from_stored(testkit::seed::DEMO_TEAM),
        hub_id: None,
        family_id: family.clone(),
        token_version: 0,
        amr: vec!["magic_link".into()],
        auth_time: t0,
        created_at: t0,
        expires_at: t0 + 3600,
        start: None,
    };
    let unused = Counter {
        key: format!("unused#{family}"),
        expires_at: t0 + 60,
    };
    app.store
        .record_login_success(&legacy, &unused, None)
        .await
        .map_err(|e| e.to_string())?;
    let before = sessions(&app, &contact).await?.len();
    let (status, body) = refresh_with(&app.at(t0 + 50), raw.expose()).await?;
    ensure(status == 200, || format!("legacy refresh {status} {body}"))?;
    let access = body["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    ensure(claims(&access)["sid"] == family.as_str(), || {
        "the rotation's access token does not name the family".into()
    })?;
    let s = sessions(&app, &contact).await?;
    let field = |r: &Record, k: &str| r.get(k).cloned().unwrap_or_default();
    let rec = s
        .iter()
        .find(|r| field(r, "session_id") == family)
        .ok_or("the rotation recorded no session")?;
    ensure(
        s.len() == before + 1
            && field(rec, "last_active_at") == (t0 + 50).to_string()
            && field(rec, "created_at") == t0.to_string()
            && !rec.contains_key("ended_at"),
        || format!("{rec:?}"),
    )?;
    ensure(me_status(&app.at(t0 + 51), &access).await? == 200, || {
        "the legacy family's new access token".into()
    })?;
    // A family revoked before sessions were recorded (its RTFAMILY# item only, no record):
    // its token is refused by the family check (the session check alone would pass it).
    let raw2 = RawToken::generate().map_err(|e| e.to_string())?;
    record_secret(raw2.expose());
    let revoked = RefreshRecord {
        token_hash: raw2.hash(),
        family_id: new_id(),
        ..legacy.clone()
    };
    app.store
        .record_login_success(&revoked, &unused, None)
        .await
        .map_err(|e| e.to_string())?;
    let (fpk, fsk) = keys::family(&revoked.family_id);
    app.store
        .client()
        .put_item()
        .table_name(app.store.table())
        .item("pk", AttributeValue::S(fpk))
        .item("sk", AttributeValue::S(fsk))
        .item("revoked_at", AttributeValue::N(t0.to_string()))
        .item("expires_at", AttributeValue::N((t0 + 3600).to_string()))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let (status, body) = refresh_with(&app.at(t0 + 50), raw2.expose()).await?;
    ensure(status == 401, || {
        format!("a token of a family revoked before sessions were recorded: {status} {body}")
    })?;
    // The record gone (as if never written): the token naming it is refused.
    let (pk, sk) = keys::session(
        &ContactId::from_stored(contact.as_str()),
        &TeamId::from_stored(testkit::seed::DEMO_TEAM),
        &family,
    );
    app.store
        .client()
        .delete_item()
        .table_name(app.store.table())
        .key("pk", AttributeValue::S(pk))
        .key("sk", AttributeValue::S(sk))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    ensure(me_status(&app.at(t0 + 52), &access).await? == 401, || {
        "a token whose session record is missing was accepted".into()
    })
}
