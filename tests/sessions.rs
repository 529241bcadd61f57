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
pub(crate) async fn sign_in(
    app: &TestApp,
    email: &str,
) -> Result<(String, String, String), String> {
    sign_in_from(app, email, "203.0.113.77", UA).await
}

/// Signs `email` in by a link from `ip` with User-Agent `ua`: (access, refresh, contact id).
async fn sign_in_from(
    app: &TestApp,
    email: &str,
    ip: &str,
    ua: &str,
) -> Result<(String, String, String), String> {
    let token = put_link(app, email).await?;
    let mut event: Value =
        serde_json::from_str(&fixtures::consume_event(&token)).map_err(|e| e.to_string())?;
    event["headers"]["user-agent"] = json!(ua);
    event["requestContext"]["http"]["sourceIp"] = json!(ip);
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
        sign_in_notice: None,
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

const PHONE_UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

fn sid_of(access: &str) -> String {
    claims(access)["sid"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// GET /me/sessions: (status, body).
async fn list(app: &TestApp, access: &str) -> Result<(u16, Value), String> {
    let resp = app
        .handle(
            Route::MeSessions,
            request(&authed_event("GET", Route::MeSessions, access, Value::Null))?,
        )
        .await;
    Ok((resp.status().as_u16(), body_json(&resp)))
}

/// The ids of the listed sessions, in order.
fn ids(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["id"].as_str().map(str::to_string))
        .collect()
}

/// DELETE /me/sessions/{id}: (status, body, Set-Cookie).
async fn end(app: &TestApp, access: &str, id: &str) -> Result<(u16, Value, String), String> {
    let path = format!("{}/me/sessions/{id}", "/api/v1/contact-auth");
    let mut event: Value = serde_json::from_str(&authed_event(
        "DELETE",
        Route::MeSessionDelete,
        access,
        Value::Null,
    ))
    .map_err(|e| e.to_string())?;
    event["rawPath"] = json!(path);
    event["requestContext"]["http"]["path"] = json!(path);
    event["pathParameters"] = json!({ "id": id });
    let resp = app
        .handle(Route::MeSessionDelete, request(&event.to_string())?)
        .await;
    let cookie = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    Ok((resp.status().as_u16(), body_json(&resp), cookie))
}

/// POST /logout-others: (status, body).
async fn logout_others(app: &TestApp, access: &str) -> Result<(u16, Value), String> {
    let resp = app
        .handle(
            Route::LogoutOthers,
            request(&authed_event(
                "POST",
                Route::LogoutOthers,
                access,
                Value::Null,
            ))?,
        )
        .await;
    Ok((resp.status().as_u16(), body_json(&resp)))
}

/// The session list: active sessions only, newest first, the caller's marked; the network
/// and a device label, never the address; a logged-out session and the sessions before a
/// logout everywhere leave it; another member's list is theirs alone.
pub async fn members_list_their_active_sessions() -> Result<(), String> {
    init()?;
    let app = fresh(&Value::Null).await;
    let t0 = app.now();
    let email = format!(
        "list-{}@example.com",
        contact_auth::domain::secret::new_id()
    );
    let (laptop, _, _) = sign_in(&app.at(t0), &email).await?;
    let (phone, _, _) = sign_in_from(&app.at(t0 + 60), &email, "2001:db8:1:2::9", PHONE_UA).await?;
    let (third, third_rt, _) = sign_in(&app.at(t0 + 120), &email).await?;
    let (status, body) = list(&app.at(t0 + 130), &phone).await?;
    ensure(status == 200, || format!("list {status} {body}"))?;
    ensure(body["meta"]["total"] == 3 && ids(&body).len() == 3, || {
        format!("{body}")
    })?;
    // The caller's own (the phone, signed in second) first, then the third, then the first.
    ensure(
        ids(&body)[0] == sid_of(&phone)
            && ids(&body)[1] == sid_of(&third)
            && ids(&body)[2] == sid_of(&laptop),
        || format!("not own first, then newest first: {body}"),
    )?;
    let current: Vec<_> = body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["attributes"]["current"] == true)
        .collect();
    ensure(
        current.len() == 1 && current[0]["id"] == sid_of(&phone).as_str(),
        || format!("current: {body}"),
    )?;
    let a = &current[0]["attributes"];
    ensure(
        a["network"] == "2001:db8:1::/48"
            && a["device"] == "Safari on iPhone"
            && a["amr"] == json!(["magic_link"]),
        || format!("{a}"),
    )?;
    ensure(
        body["data"][2]["attributes"]["device"] == "Firefox on Linux",
        || format!("{body}"),
    )?;
    ensure(
        !body.to_string().contains("203.0.113.77") && !body.to_string().contains("2001:db8:1:2::9"),
        || "an address was shown".into(),
    )?;
    // A logout ends the third session: it leaves the list.
    let resp = app
        .at(t0 + 140)
        .handle(Route::Logout, request(&fixtures::post_event(
            Route::Logout.path(),
            json!({"data": {"type": "refresh_requests", "attributes": {"refresh_token": third_rt}}}),
        ))?)
        .await;
    ensure(resp.status() == 204, || format!("logout {}", resp.status()))?;
    let (_, body) = list(&app.at(t0 + 141), &phone).await?;
    ensure(body["meta"]["total"] == 2, || {
        format!("after a logout: {body}")
    })?;
    // Another member sees only their own.
    let other = format!(
        "other-{}@example.com",
        contact_auth::domain::secret::new_id()
    );
    let (theirs, _, _) = sign_in(&app.at(t0 + 150), &other).await?;
    let (_, body) = list(&app.at(t0 + 151), &theirs).await?;
    ensure(ids(&body) == vec![sid_of(&theirs)], || {
        format!("another member's list: {body}")
    })?;
    // An idle session whose newest refresh token expired leaves the list (the laptop's
    // refresh token lives 30 days), on both sides of the expiry.
    let before = t0 + 2_592_000 - 1;
    let (_, body) = list(
        &app.at(before),
        &phone_sign_in(&app.at(before), &email).await?,
    )
    .await?;
    ensure(ids(&body).contains(&sid_of(&laptop)), || {
        format!("before the expiry: {body}")
    })?;
    let later = t0 + 2_592_000;
    let fresh_access = phone_sign_in(&app.at(later), &email).await?;
    let (_, body) = list(&app.at(later), &fresh_access).await?;
    ensure(!ids(&body).contains(&sid_of(&laptop)), || {
        format!("after the expiry: {body}")
    })?;
    // Logout everywhere (the token version): none of the earlier sessions is listed.
    let resp = app
        .at(later + 1)
        .handle(
            Route::LogoutEverywhere,
            request(&authed_event(
                "POST",
                Route::LogoutEverywhere,
                &fresh_access,
                Value::Null,
            ))?,
        )
        .await;
    ensure(resp.status() == 204, || {
        format!("logout everywhere {}", resp.status())
    })?;
    let (new_access, _, _) = sign_in(&app.at(later + 2), &email).await?;
    let (_, body) = list(&app.at(later + 3), &new_access).await?;
    ensure(ids(&body) == vec![sid_of(&new_access)], || {
        format!("after logout everywhere: {body}")
    })
}

/// An access token of a new sign-in of `email` from the phone, at `app`'s time (the
/// earlier access tokens have expired by then).
async fn phone_sign_in(app: &TestApp, email: &str) -> Result<String, String> {
    Ok(sign_in_from(app, email, "2001:db8:1:2::9", PHONE_UA)
        .await?
        .0)
}

/// Ending one session: the caller's own is a logout (no recent sign-in needed, cookie
/// cleared); another needs a recent sign-in (403 first, whatever the id), then its refresh
/// and access tokens die at once; an ended, unknown or another member's id is the same 404
/// and changes nothing; of two parallel ends one wins.
pub async fn members_end_one_session() -> Result<(), String> {
    init()?;
    let app = fresh(&Value::Null).await;
    let t0 = app.now();
    let email = format!("end-{}@example.com", contact_auth::domain::secret::new_id());
    let (old, old_rt, _) = sign_in(&app.at(t0), &email).await?;
    let (new, _, _) = sign_in(&app.at(t0 + 100), &email).await?;
    // A stolen access token of a sign-in 10 minutes old (the recent-auth window, both
    // sides) cannot end the owner's other session.
    let (status, body, _) = end(&app.at(t0 + 100 + 600), &new, &sid_of(&old)).await?;
    ensure(
        status == 403 && body["errors"][0]["code"] == "reauthentication_required",
        || format!("not recent: {status} {body}"),
    )?;
    let (status, _, _) = end(
        &app.at(t0 + 100 + 600),
        &new,
        "0f0e0d0c-0b0a-4098-8765-43210fedcba9",
    )
    .await?;
    ensure(status == 403, || {
        format!("not recent, unknown id: {status}")
    })?;
    let (status, body) = refresh_with(&app.at(t0 + 101), &old_rt).await?;
    ensure(status == 200, || {
        format!("the other session must still work: {status} {body}")
    })?;
    let old_rt = body["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let old = body["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    record_secret(&old_rt);
    record_secret(&old);
    // Another member's session id: 404, and theirs still works.
    let other = format!(
        "victim-{}@example.com",
        contact_auth::domain::secret::new_id()
    );
    let (victim, victim_rt, _) = sign_in(&app.at(t0 + 110), &other).await?;
    let (status, body, _) = end(&app.at(t0 + 120), &new, &sid_of(&victim)).await?;
    ensure(
        status == 404 && body["errors"][0]["code"] == "session_not_found",
        || format!("another member's session: {status} {body}"),
    )?;
    let (status, _) = refresh_with(&app.at(t0 + 121), &victim_rt).await?;
    ensure(
        status == 200 && me_status(&app.at(t0 + 121), &victim).await? == 200,
        || "ending another member's session id touched their session".into(),
    )?;
    // Recent: the other session ends, both of its tokens with it.
    let at = t0 + 100 + 599;
    let (status, body, cookie) = end(&app.at(at), &new, &sid_of(&old)).await?;
    ensure(status == 204 && cookie.is_empty(), || {
        format!("end {status} {body} {cookie}")
    })?;
    ensure(me_status(&app.at(at), &old).await? == 401, || {
        "the ended session's access token still works".into()
    })?;
    let (status, _) = refresh_with(&app.at(at), &old_rt).await?;
    ensure(status == 401, || {
        format!("the ended session's refresh token: {status}")
    })?;
    let (status, _, _) = end(&app.at(at), &new, &sid_of(&old)).await?;
    ensure(status == 404, || format!("ending it again: {status}"))?;
    let (_, body) = list(&app.at(at), &new).await?;
    ensure(ids(&body) == vec![sid_of(&new)], || format!("{body}"))?;
    let s = sessions(&app, claims(&new)["sub"].as_str().unwrap_or_default()).await?;
    ensure(
        s.iter().any(|r| {
            r.get("session_id") == Some(&sid_of(&old))
                && r.get("ended_reason").map(String::as_str) == Some("revoked")
        }),
        || format!("no reason recorded: {s:?}"),
    )?;
    // Two parallel ends of one session: exactly one 204.
    let (third, _, _) = sign_in(&app.at(t0 + 200), &email).await?;
    let a = app.at(t0 + 210);
    let third_sid = sid_of(&third);
    let (r1, r2) = tokio::join!(end(&a, &new, &third_sid), end(&a, &new, &third_sid));
    let mut statuses = vec![r1?.0, r2?.0];
    statuses.sort();
    ensure(statuses == vec![204, 404], || {
        format!("parallel ends: {statuses:?}")
    })?;
    // Its own session needs no recent sign-in: a logout, the cookie cleared.
    let late = t0 + 100 + 800;
    let (status, _, cookie) = end(&app.at(late), &new, &sid_of(&new)).await?;
    ensure(status == 204 && cookie.contains("Max-Age=0"), || {
        format!("own: {status} {cookie}")
    })?;
    ensure(me_status(&app.at(late), &new).await? == 401, || {
        "the ended own session's access token still works".into()
    })
}

/// Logout-others ends every other session and counts them, keeps the caller's, needs a
/// recent sign-in, and counts each session once when two run at once.
pub async fn logout_others_ends_every_other_session_once() -> Result<(), String> {
    init()?;
    let app = fresh(&Value::Null).await;
    let t0 = app.now();
    let email = format!(
        "others-{}@example.com",
        contact_auth::domain::secret::new_id()
    );
    let (a, a_rt, _) = sign_in(&app.at(t0), &email).await?;
    let (b, _, _) = sign_in(&app.at(t0 + 10), &email).await?;
    let (me, me_rt, _) = sign_in(&app.at(t0 + 20), &email).await?;
    let (status, body) = logout_others(&app.at(t0 + 20 + 600), &me).await?;
    ensure(
        status == 403 && body["errors"][0]["code"] == "reauthentication_required",
        || format!("not recent: {status} {body}"),
    )?;
    ensure(me_status(&app.at(t0 + 30), &a).await? == 200, || {
        "a refused logout-others ended a session".into()
    })?;
    let at = t0 + 20 + 599;
    let x = app.at(at);
    let (r1, r2) = tokio::join!(logout_others(&x, &me), logout_others(&x, &me));
    let (r1, r2) = (r1?, r2?);
    ensure(r1.0 == 200 && r2.0 == 200, || format!("{r1:?} {r2:?}"))?;
    let total =
        r1.1["meta"]["ended"].as_u64().unwrap_or(99) + r2.1["meta"]["ended"].as_u64().unwrap_or(99);
    ensure(total == 2, || {
        format!("parallel logout-others counted {total}: {r1:?} {r2:?}")
    })?;
    for (name, access) in [("a", &a), ("b", &b)] {
        ensure(me_status(&app.at(at), access).await? == 401, || {
            format!("session {name} survived logout-others")
        })?;
    }
    let (status, _) = refresh_with(&app.at(at), &a_rt).await?;
    ensure(status == 401, || {
        format!("an ended session's refresh token: {status}")
    })?;
    ensure(me_status(&app.at(at), &me).await? == 200, || {
        "the caller's session ended".into()
    })?;
    let (status, _) = refresh_with(&app.at(at + 1), &me_rt).await?;
    ensure(status == 200, || {
        format!("the caller's refresh token: {status}")
    })?;
    let (_, body) = list(&app.at(at + 1), &me).await?;
    ensure(ids(&body) == vec![sid_of(&me)], || format!("{body}"))
}

/// The notices mailed to `email` so far whose subject says "New sign-in".
fn notices(ses: &str, email: &str) -> Result<Vec<Value>, String> {
    Ok(crate::mails_to(ses, email)?
        .into_iter()
        .filter(|m| {
            m["subject"]
                .as_str()
                .is_some_and(|s| s.contains("New sign-in"))
        })
        .collect())
}

/// A sign-in from a device and network new to the member mails a "new sign-in" notice;
/// the first sign-in and a known device and network do not; its one-use "Not you?" link
/// ends that session and every session started after it — not the earlier ones — and
/// signs nobody in; at most 3 notices an hour.
pub async fn a_new_device_gets_a_notice_whose_link_ends_that_session_and_later_ones(
) -> Result<(), String> {
    let ses = init()?;
    let app = fresh(&Value::Null).await;
    let t0 = app.now();
    let email = format!(
        "newdev-{}@example.com",
        contact_auth::domain::secret::new_id()
    );
    // The first sign-in (a registration): no notice.
    let (_, laptop_rt, _) = sign_in(&app.at(t0), &email).await?;
    crate::run_jobs(&app.at(t0)).await?;
    ensure(notices(&ses, &email)?.is_empty(), || {
        "a notice for the first sign-in".into()
    })?;
    // The same device and network an hour later: known, no notice.
    sign_in(&app.at(t0 + 3600), &email).await?;
    crate::run_jobs(&app.at(t0 + 3600)).await?;
    ensure(notices(&ses, &email)?.is_empty(), || {
        "a notice for a known device".into()
    })?;
    // A phone on another network: a notice naming the device and the network only.
    let at = t0 + 7200;
    let (phone, phone_rt, _) =
        sign_in_from(&app.at(at), &email, "2001:db8:1:2::9", PHONE_UA).await?;
    crate::run_jobs(&app.at(at)).await?;
    let got = notices(&ses, &email)?;
    ensure(got.len() == 1, || {
        format!("{} notices for a new device", got.len())
    })?;
    let text = got[0].to_string();
    ensure(
        text.contains("Safari on iPhone")
            && text.contains("2001:db8:1::/48")
            && !text.contains("2001:db8:1:2::9"),
        || format!("the notice: {text}"),
    )?;
    // A session started after the phone's (on the laptop, known: no notice).
    let (later, _, _) = sign_in(&app.at(at + 100), &email).await?;
    crate::run_jobs(&app.at(at + 100)).await?;
    ensure(notices(&ses, &email)?.len() == 1, || {
        "a second notice".into()
    })?;
    // "Not you?": the phone's session and the later one end; the laptop's earlier one not.
    let token = crate::link_in_mail(&ses, &email, "New sign-in")?;
    let (status, body) = fixtures::consume(&app.at(at + 200), &token).await?;
    ensure(
        status == 200 && body["sessions_ended"] == 2 && body.get("access_token").is_none(),
        || format!("the link: {status} {body}"),
    )?;
    for (name, access) in [("phone", &phone), ("later", &later)] {
        ensure(me_status(&app.at(at + 201), access).await? == 401, || {
            format!("the {name} session survived the link")
        })?;
    }
    let (status, _) = refresh_with(&app.at(at + 201), &phone_rt).await?;
    ensure(status == 401, || {
        format!("the phone's refresh token: {status}")
    })?;
    let (status, _) = refresh_with(&app.at(at + 201), &laptop_rt).await?;
    ensure(status == 200, || {
        format!("the laptop's earlier session was ended: {status}")
    })?;
    // One use only.
    let (status, body) = fixtures::consume(&app.at(at + 300), &token).await?;
    ensure(status == 401, || format!("the link again: {status} {body}"))?;
    // At most 3 notices an hour: four new networks in one hour get three.
    let burst = at + 10_000;
    for i in 0..4 {
        sign_in_from(
            &app.at(burst + i),
            &email,
            &format!("198.51.{i}.9"),
            PHONE_UA,
        )
        .await?;
    }
    crate::run_jobs(&app.at(burst + 10)).await?;
    let count = notices(&ses, &email)?.len();
    ensure(count == 1 + 3, || {
        format!("{count} notices after a burst of four")
    })
}
