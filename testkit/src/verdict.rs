//! The one comparator of an answer against its `<case>.expected.json`, used by the
//! replay tests (in-process responses) and by `make invoke` (the Lambda response JSON
//! that `cargo lambda invoke` prints, through `contact-auth-admin verdict`).
//!
//! Expected-file fields (tools/gen-events.mjs writes them):
//! - HTTP: `status`; for errors `code` (and `pointer`), checked with the whole JSON:API
//!   error envelope (status as a string, `meta.request_id` = `X-Request-ID`, media type);
//!   `headers` (names that must be present), `header_values` (name -> exact value),
//!   `header_contains` (name -> substrings), `body` (JSON pointer -> exact value),
//!   `body_strings` (pointers holding a non-empty string), `body_empty`.
//! - Mailer: `to`, `emails` (how many mails to `to`), `subject` (of the last one, which
//!   must carry the hosted-page link in both parts).
//! - Other event functions (ses-events): `body`, JSON pointers into the function's result
//!   (its summary), and no `status`; `writes` as below. A fixture without `writes` must
//!   leave the table as it was (replay).
//! - Setup and sending: `setup`, `clock_offset`, `repeat`, `vary_email`, `config`.
//! - Side effects (replay only: `make invoke` has no table snapshot): `writes`, the items
//!   the request must have changed (`missing_writes`): a revocation, a version bump, a job.
//!   A mailer fixture that expects no mail also requires that no mail went to anyone.

use std::collections::BTreeMap;

use lambda_http::Body;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    pub status: Option<u16>,
    pub code: Option<String>,
    pub pointer: Option<String>,
    #[serde(default)]
    pub headers: Vec<String>,
    #[serde(default)]
    pub header_values: BTreeMap<String, String>,
    #[serde(default)]
    pub header_contains: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub body: BTreeMap<String, Value>,
    #[serde(default)]
    pub body_strings: Vec<String>,
    #[serde(default)]
    pub body_empty: bool,
    pub to: Option<String>,
    pub emails: Option<usize>,
    pub subject: Option<String>,
    /// Mailer: mail jobs still in the table after the event (default 0: every job the
    /// event named was processed and retired; 1 for a record the mailer must ignore).
    pub jobs_left: Option<usize>,
    /// events: how many entries the bus (the stack's EventBridge stand-in) must have
    /// received for this fixture's event ids.
    pub bus_events: Option<usize>,
    #[serde(default)]
    pub setup: Value,
    #[serde(default)]
    pub clock_offset: i64,
    pub repeat: Option<u32>,
    #[serde(default)]
    pub vary_email: bool,
    #[serde(default)]
    pub config: Value,
    #[serde(default)]
    pub writes: Vec<RequiredWrite>,
}

/// An item the request must have written: some item whose `pk` starts with `pk` (and
/// whose `sk` is `sk`, when given) differs after the request — added, changed or deleted —
/// and, when `attr` is given, that attribute's value differs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequiredWrite {
    pub pk: String,
    pub sk: Option<String>,
    pub attr: Option<String>,
}

/// A table as (pk, sk) -> attribute -> value (as text).
pub type Snapshot = BTreeMap<(String, String), BTreeMap<String, String>>;

/// The required writes the request did not make.
pub fn missing_writes(
    required: &[RequiredWrite],
    before: &Snapshot,
    after: &Snapshot,
) -> Vec<String> {
    required
        .iter()
        .filter(|w| {
            !before.keys().chain(after.keys()).any(|k| {
                let (old, new) = (before.get(k), after.get(k));
                k.0.starts_with(&w.pk)
                    && w.sk.as_ref().is_none_or(|sk| &k.1 == sk)
                    && old != new
                    && w.attr
                        .as_ref()
                        .is_none_or(|a| old.and_then(|i| i.get(a)) != new.and_then(|i| i.get(a)))
            })
        })
        .map(|w| format!("no required write {w:?}"))
        .collect()
}

impl Expected {
    pub fn parse(text: &str) -> Result<Expected, String> {
        serde_json::from_str(text).map_err(|e| format!("expected file: {e}"))
    }
}

/// An HTTP answer, however it was obtained. Header names are lower case; a header may
/// appear several times (Set-Cookie).
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Observed {
    pub fn from_response(resp: &http::Response<Body>) -> Observed {
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = match resp.body() {
            Body::Text(t) => t.clone(),
            Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
            _ => String::new(),
        };
        Observed {
            status: resp.status().as_u16(),
            headers,
            body,
        }
    }

    /// The API Gateway (payload 2.0) response a function returns to Lambda.
    pub fn from_lambda_json(v: &Value) -> Result<Observed, String> {
        let status = v["statusCode"]
            .as_u64()
            .ok_or("the response has no statusCode")? as u16;
        let mut headers: Vec<(String, String)> = v["headers"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default();
        for (k, vals) in v["multiValueHeaders"].as_object().into_iter().flatten() {
            for val in vals.as_array().into_iter().flatten() {
                let pair = (
                    k.to_ascii_lowercase(),
                    val.as_str().unwrap_or("").to_string(),
                );
                if !headers.contains(&pair) {
                    headers.push(pair);
                }
            }
        }
        for c in v["cookies"].as_array().into_iter().flatten() {
            headers.push(("set-cookie".into(), c.as_str().unwrap_or("").to_string()));
        }
        let raw = v["body"].as_str().unwrap_or("");
        let body = if v["isBase64Encoded"].as_bool() == Some(true) {
            base64_decode(raw).ok_or("the body is not base64")?
        } else {
            raw.to_string()
        };
        Ok(Observed {
            status,
            headers,
            body,
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

fn base64_decode(s: &str) -> Option<String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
    String::from_utf8(bytes).ok()
}

/// Everything in `obs` that differs from `exp` (empty: as expected).
pub fn check_http(exp: &Expected, obs: &Observed) -> Vec<String> {
    let mut problems = vec![];
    let body = obs.json();
    match exp.status {
        Some(want) if want != obs.status => {
            problems.push(format!(
                "status {}, want {want}; body {}",
                obs.status, obs.body
            ));
            return problems;
        }
        None => problems.push("the expected file has no status".into()),
        _ => {}
    }
    let rid = obs.header("x-request-id");
    if rid.is_none_or(str::is_empty) {
        problems.push("no X-Request-ID".into());
    }
    if let Some(code) = &exp.code {
        let e = &body["errors"][0];
        if e["code"] != code.as_str() {
            problems.push(format!("code {}, want {code}", e["code"]));
        }
        if e["status"].as_str() != Some(obs.status.to_string().as_str()) {
            problems.push(format!(
                "errors[0].status {} is not the string {}",
                e["status"], obs.status
            ));
        }
        if e["meta"]["request_id"].as_str() != rid {
            problems.push("meta.request_id differs from X-Request-ID".into());
        }
        if e["title"].as_str().is_none_or(str::is_empty)
            || e["detail"].as_str().is_none_or(str::is_empty)
        {
            problems.push("an error needs a title and a detail".into());
        }
        if obs.header("content-type") != Some("application/vnd.api+json") {
            problems.push(format!(
                "error content-type {:?}",
                obs.header("content-type")
            ));
        }
        if let Some(p) = &exp.pointer {
            if e["source"]["pointer"] != p.as_str() {
                problems.push(format!("pointer {}, want {p}", e["source"]["pointer"]));
            }
        }
    }
    for h in &exp.headers {
        if obs.header(h).is_none() {
            problems.push(format!("missing header {h}"));
        }
    }
    for (h, want) in &exp.header_values {
        let got: Vec<&str> = obs
            .headers
            .iter()
            .filter(|(k, _)| k == h)
            .map(|(_, v)| v.as_str())
            .collect();
        if got != [want.as_str()] {
            problems.push(format!("header {h} {got:?}, want {want:?}"));
        }
    }
    for (h, parts) in &exp.header_contains {
        let got = obs.header(h).unwrap_or("");
        for part in parts {
            if !got.contains(part.as_str()) {
                problems.push(format!("header {h} {got:?} lacks {part:?}"));
            }
        }
    }
    for (ptr, want) in &exp.body {
        match body.pointer(ptr) {
            Some(got) if got == want => {}
            got => problems.push(format!("body {ptr} = {got:?}, want {want}")),
        }
    }
    for ptr in &exp.body_strings {
        if body
            .pointer(ptr)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            problems.push(format!("body {ptr} is not a non-empty string"));
        }
    }
    if exp.body_empty && !obs.body.is_empty() {
        problems.push(format!("the body must be empty: {}", obs.body));
    }
    problems
}

/// Everything in an event function's result (`out`) that differs from `exp`.
pub fn check_event(exp: &Expected, out: &Value) -> Vec<String> {
    let mut problems = vec![];
    if exp.status.is_some() || exp.emails.is_some() {
        problems.push("an event function's expected file names no status and no emails".into());
    }
    if exp.body.is_empty() {
        problems.push("the expected file names no result (body)".into());
    }
    for (ptr, want) in &exp.body {
        match out.pointer(ptr) {
            Some(got) if got == want => {}
            got => problems.push(format!("result {ptr} = {got:?}, want {want}")),
        }
    }
    problems
}

/// What a mailer run did: stream records it failed, and the new mails to `to` (as the
/// SES sink stores them), oldest first.
pub struct MailObserved {
    pub batch_item_failures: usize,
    pub new_mails: Vec<Value>,
    /// Mails sent to anyone during the event, when known (the replay counts the sink).
    pub mails_to_anyone: Option<usize>,
}

pub fn check_mail(exp: &Expected, obs: &MailObserved) -> Vec<String> {
    let mut problems = vec![];
    if obs.batch_item_failures > 0 {
        problems.push(format!("{} batch item failures", obs.batch_item_failures));
    }
    let want = exp.emails.unwrap_or(0);
    if obs.new_mails.len() != want {
        problems.push(format!("{} mails sent, want {want}", obs.new_mails.len()));
    }
    // "Sends nothing" means to nobody, not only to the fixture's address.
    if let Some(n) = obs.mails_to_anyone.filter(|n| want == 0 && *n > 0) {
        problems.push(format!("{n} mails sent to someone, want none"));
    }
    if let (Some(subject), Some(m)) = (&exp.subject, obs.new_mails.last()) {
        if m["subject"] != subject.as_str() {
            problems.push(format!("subject {}, want {subject}", m["subject"]));
        }
        let text = m["body"]["text"].as_str().unwrap_or("");
        let html = m["body"]["html"].as_str().unwrap_or("");
        let hosted = |part: &str| part.contains("/m?") && part.contains("#token=");
        if !hosted(text) || !hosted(html) {
            problems.push("the mail lacks the hosted-page link in both parts".into());
        }
    }
    problems
}

/// The raw tokens in a mail's text part (for the secrets-in-logs check).
pub fn tokens_in_mail(mail: &Value) -> Vec<String> {
    let text = mail["body"]["text"].as_str().unwrap_or("");
    text.split("#token=")
        .skip(1)
        .map(|t| t.chars().take(43).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_required_write_must_have_happened_to_the_named_item_and_attribute() {
        let item = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let key = |pk: &str, sk: &str| (pk.to_string(), sk.to_string());
        let before: Snapshot = BTreeMap::from([
            (
                key("CONTACT#c", "PROFILE"),
                item(&[("token_version", "1"), ("email", "a")]),
            ),
            (key("RT#x", "RT"), item(&[("family_id", "f")])),
        ]);
        let mut after = before.clone();
        let w = |pk: &str, sk: Option<&str>, attr: Option<&str>| RequiredWrite {
            pk: pk.into(),
            sk: sk.map(Into::into),
            attr: attr.map(Into::into),
        };
        let tv = w("CONTACT#", Some("PROFILE"), Some("token_version"));
        let family = w("RTFAMILY#", None, None);
        // Nothing written: both missing.
        assert_eq!(
            missing_writes(&[tv.clone(), family.clone()], &before, &after).len(),
            2
        );
        // Another attribute of the profile changed: the version bump is still missing.
        after.insert(
            key("CONTACT#c", "PROFILE"),
            item(&[("token_version", "1"), ("email", "b")]),
        );
        assert_eq!(
            missing_writes(std::slice::from_ref(&tv), &before, &after).len(),
            1
        );
        after.insert(
            key("CONTACT#c", "PROFILE"),
            item(&[("token_version", "2"), ("email", "b")]),
        );
        assert!(missing_writes(&[tv], &before, &after).is_empty());
        // An added item counts; so does a deleted one.
        after.insert(key("RTFAMILY#f", "RTFAMILY"), item(&[("revoked_at", "5")]));
        assert!(missing_writes(&[family], &before, &after).is_empty());
        after.remove(&key("RT#x", "RT"));
        assert!(missing_writes(&[w("RT#", Some("RT"), None)], &before, &after).is_empty());
        assert_eq!(
            missing_writes(&[w("RT#", Some("OTHER"), None)], &before, &after).len(),
            1
        );
    }

    #[test]
    fn no_mail_means_no_mail_to_anyone() {
        let exp = Expected::default();
        let obs = |anyone| MailObserved {
            batch_item_failures: 0,
            new_mails: vec![],
            mails_to_anyone: anyone,
        };
        assert!(check_mail(&exp, &obs(Some(0))).is_empty());
        assert!(check_mail(&exp, &obs(None)).is_empty());
        assert_eq!(check_mail(&exp, &obs(Some(1))).len(), 1);
    }

    fn obs(status: u16, headers: &[(&str, &str)], body: &str) -> Observed {
        Observed {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.into(),
        }
    }

    #[test]
    fn every_field_can_fail() {
        let exp = Expected::parse(
            &json!({
                "status": 200,
                "header_values": {"cache-control": "no-store"},
                "header_contains": {"set-cookie": ["HttpOnly"]},
                "body": {"/token_type": "Bearer"},
                "body_strings": ["/access_token"],
                "headers": ["pragma"]
            })
            .to_string(),
        )
        .unwrap();
        let good = obs(
            200,
            &[
                ("x-request-id", "r1"),
                ("cache-control", "no-store"),
                ("set-cookie", "a=b; HttpOnly"),
                ("pragma", "no-cache"),
            ],
            r#"{"token_type":"Bearer","access_token":"x"}"#,
        );
        assert!(
            check_http(&exp, &good).is_empty(),
            "{:?}",
            check_http(&exp, &good)
        );
        let mut bad = good.clone();
        bad.status = 201;
        assert_eq!(check_http(&exp, &bad).len(), 1);
        let mut bad = good.clone();
        bad.headers[1].1 = "public".into();
        bad.headers[2].1 = "a=b".into();
        bad.headers.remove(3);
        bad.body = r#"{"token_type":"bearer","access_token":""}"#.into();
        assert_eq!(
            check_http(&exp, &bad).len(),
            5,
            "{:?}",
            check_http(&exp, &bad)
        );
        let empty = Expected::parse(r#"{"status": 202, "body_empty": true}"#).unwrap();
        let not_empty = obs(202, &[("x-request-id", "r")], "{}");
        assert_eq!(check_http(&empty, &not_empty).len(), 1);
        // Unknown fields in an expected file are typos.
        assert!(Expected::parse(r#"{"status": 200, "bdy": {}}"#).is_err());
    }

    #[test]
    fn error_envelopes_are_checked_whole() {
        let exp = Expected::parse(
            r#"{"status": 422, "code": "validation_error", "pointer": "/data/attributes/email"}"#,
        )
        .unwrap();
        let body = json!({"errors": [{"status": "422", "code": "validation_error", "title": "T",
            "detail": "D", "source": {"pointer": "/data/attributes/email"},
            "meta": {"request_id": "r1"}}]});
        let good = obs(
            422,
            &[
                ("x-request-id", "r1"),
                ("content-type", "application/vnd.api+json"),
            ],
            &body.to_string(),
        );
        assert!(
            check_http(&exp, &good).is_empty(),
            "{:?}",
            check_http(&exp, &good)
        );
        let mut bad = good.clone();
        bad.headers[0].1 = "r2".into();
        bad.headers[1].1 = "application/json".into();
        assert_eq!(check_http(&exp, &bad).len(), 2);
    }

    #[test]
    fn lambda_responses_are_read_with_cookies_and_base64() {
        let v = json!({"statusCode": 200, "headers": {"X-Request-ID": "r"},
            "cookies": ["contact_refresh=x; HttpOnly"], "body": "eyJhIjoxfQ==", "isBase64Encoded": true});
        let o = Observed::from_lambda_json(&v).unwrap();
        assert_eq!(o.header("x-request-id"), Some("r"));
        assert_eq!(o.header("set-cookie"), Some("contact_refresh=x; HttpOnly"));
        assert_eq!(o.body, r#"{"a":1}"#);
    }
}
