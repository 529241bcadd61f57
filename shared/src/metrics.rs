//! CloudWatch Embedded Metric Format (EMF): the functions' metrics as one JSON log line per
//! request or mail job, on stdout, with no `PutMetricData` call (no permission, no extra
//! round trip). Handlers `record` typed events into the current request's recorder (a
//! tokio task-local set up by `scope`); the edge and the mailer loop write the line when
//! the request or job ends. Dimensions are low-cardinality enums only: never an email,
//! an id, a token, an IP address or a path.
//!
//! The document shape is the one the EMF specification documents:
//! `{"_aws":{"Timestamp":ms,"CloudWatchMetrics":[{"Namespace","Dimensions":[[..]],
//! "Metrics":[{"Name","Unit"}]}]}, "<dimension>":"<value>", "<metric>":<number>}`
//! (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).

use std::cell::RefCell;
use std::future::Future;
use std::time::Duration;

use serde_json::{json, Map, Value};

/// How a member signed in (the `amr` value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    MagicLink,
    Otp,
    Pwd,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::MagicLink => "magic_link",
            Method::Otp => "otp",
            Method::Pwd => "pwd",
        }
    }

    pub fn from_amr(amr: &str) -> Option<Method> {
        match amr {
            "magic_link" => Some(Method::MagicLink),
            "otp" => Some(Method::Otp),
            "pwd" => Some(Method::Pwd),
            _ => None,
        }
    }
}

/// Which family of limits refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// register / magic / email change: per team+email cooldown and hour, per IP.
    Send,
    /// login and current-password checks: failures per team+email, per IP.
    Login,
    /// sign-in codes: attempts per email, per IP.
    Code,
    /// the mailer: registration mail to new addresses, per request IP.
    NewAddressMail,
    /// the mailer: sign-in and join mail, per request IP.
    SignInMail,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Send => "send",
            Limit::Login => "login",
            Limit::Code => "code",
            Limit::NewAddressMail => "new_address_mail",
            Limit::SignInMail => "sign_in_mail",
        }
    }
}

/// Permanent (SES refused the mail for good; dropped) or transient (the job is retried).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    Permanent,
    Transient,
    /// SES refused a send for the account's rate: the mailer waited and tried again.
    Throttled,
    /// SES stopped the account's sending (daily quota, paused, suspended): jobs are parked.
    Paused,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Permanent => "permanent",
            FailureKind::Transient => "transient",
            FailureKind::Throttled => "throttled",
            FailureKind::Paused => "paused",
        }
    }
}

/// Something worth counting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A refused sign-in code, by the hub of the link it was tried against (the hub the
    /// slug named when no link was found; `none` when neither): a per-hub series to alarm
    /// on when one hub's members are being guessed at. Only hubs that exist become
    /// dimension values, so an attacker cannot mint metrics (each is billed).
    WrongCode(String),
    SignIn(Method),
    /// A new contact (a registration link or code consumed).
    Registration,
    /// A wrong password (login, or a current password) or a refused sign-in code.
    FailedLogin(Method),
    RateLimited(Limit),
    RefreshReuse,
    MailSent,
    MailFailed(FailureKind),
    /// A mail job ended (`sent`, `notice`, `nothing`, `dropped`, `already_done`, `failed`).
    MailJob(&'static str),
    /// An SES sending event read by `ses-events` (`domain::suppression::Kind`).
    SesEvent(&'static str),
    /// An auth event handled by the events function, by its webhook's outcome (`none`,
    /// `delivered`, `already_done`, `rejected`, `failed`, `refused`; `bus_failed` when the
    /// bus did not take it and the batch is retried).
    AuthEvent(&'static str),
}

/// Which dependency a call went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependency {
    DynamoDb,
    Ses,
}

/// What one request or job recorded.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Recorder {
    pub events: Vec<Event>,
    pub dynamodb_ms: f64,
    pub dynamodb_calls: u32,
    pub ses_ms: f64,
    pub ses_calls: u32,
}

tokio::task_local! {
    static CURRENT: RefCell<Recorder>;
}

/// Records an event for the current request or job (nothing outside one: tools, tests).
pub fn record(event: Event) {
    let _ = CURRENT.try_with(|r| r.borrow_mut().events.push(event));
}

/// Adds one dependency call's time (the SDK interceptor in `adapters::aws` calls it).
pub fn add_dependency(dep: Dependency, took: Duration) {
    let _ = CURRENT.try_with(|r| {
        let mut r = r.borrow_mut();
        let ms = took.as_secs_f64() * 1000.0;
        match dep {
            Dependency::DynamoDb => {
                r.dynamodb_ms += ms;
                r.dynamodb_calls += 1;
            }
            Dependency::Ses => {
                r.ses_ms += ms;
                r.ses_calls += 1;
            }
        }
    });
}

/// Runs `fut` with a fresh recorder; returns its output and what it recorded.
pub async fn scope<F: Future>(fut: F) -> (F::Output, Recorder) {
    CURRENT
        .scope(RefCell::new(Recorder::default()), async move {
            let out = fut.await;
            let rec = CURRENT.with(|r| r.borrow().clone());
            (out, rec)
        })
        .await
}

/// One EMF document: `values` are (metric, unit, value), all under the same dimensions.
fn document(ns: &str, ts_ms: u64, dims: &[(&str, &str)], values: &[(&str, &str, f64)]) -> Value {
    let mut doc = Map::new();
    let names: Vec<&str> = dims.iter().map(|(k, _)| *k).collect();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": ts_ms,
            "CloudWatchMetrics": [{
                "Namespace": ns,
                "Dimensions": [names],
                "Metrics": values.iter().map(|(n, u, _)| json!({"Name": n, "Unit": u})).collect::<Vec<_>>(),
            }]
        }),
    );
    for (k, v) in dims {
        doc.insert((*k).into(), json!(v));
    }
    for (n, _, v) in values {
        doc.insert((*n).into(), json!(v));
    }
    Value::Object(doc)
}

/// What ended: an HTTP request (with whether it answered 5xx) or a mail job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Request { server_error: bool },
    Job,
}

/// The documents for one request or mail job: its latency (and, for a request, 0 or 1
/// `ServerErrors`, so the average is the 5xx rate), its time in DynamoDB and SES, and one
/// document per event.
pub fn documents(
    ns: &str,
    function: &str,
    ts_ms: u64,
    unit: Unit,
    latency_ms: f64,
    rec: &Recorder,
) -> Vec<Value> {
    let f = [("Function", function)];
    let mut values = match unit {
        Unit::Request { server_error } => vec![
            ("RequestLatency", "Milliseconds", latency_ms),
            (
                "ServerErrors",
                "Count",
                if server_error { 1.0 } else { 0.0 },
            ),
        ],
        Unit::Job => vec![("JobLatency", "Milliseconds", latency_ms)],
    };
    // A dependency's metrics only when it was called: each (metric, function) pair is a
    // custom metric billed per month, and one that only ever says 0 (SES from a function
    // that never sends mail) would cost as much as a useful one (docs/cost.md).
    if rec.dynamodb_calls > 0 {
        values.extend([
            ("DynamoDbLatency", "Milliseconds", rec.dynamodb_ms),
            ("DynamoDbCalls", "Count", f64::from(rec.dynamodb_calls)),
        ]);
    }
    if rec.ses_calls > 0 {
        values.extend([
            ("SesLatency", "Milliseconds", rec.ses_ms),
            ("SesCalls", "Count", f64::from(rec.ses_calls)),
        ]);
    }
    let mut docs = vec![document(ns, ts_ms, &f, &values)];
    for e in &rec.events {
        let (metric, dim): (&str, Option<(&str, &str)>) = match e {
            Event::SignIn(m) => ("SignIns", Some(("Method", m.as_str()))),
            Event::Registration => ("Registrations", None),
            Event::FailedLogin(m) => ("FailedLogins", Some(("Method", m.as_str()))),
            Event::RateLimited(l) => ("RateLimited", Some(("Limit", l.as_str()))),
            Event::RefreshReuse => ("RefreshReuseDetected", None),
            Event::MailSent => ("MailsSent", None),
            Event::MailFailed(k) => ("MailFailures", Some(("Kind", k.as_str()))),
            Event::MailJob(outcome) => ("MailJobs", Some(("Outcome", *outcome))),
            Event::SesEvent(kind) => ("SesEvents", Some(("Kind", *kind))),
            Event::AuthEvent(outcome) => ("AuthEvents", Some(("Webhook", *outcome))),
            Event::WrongCode(hub) => ("WrongCodes", Some(("Hub", hub.as_str()))),
        };
        let mut dims = vec![("Function", function)];
        dims.extend(dim);
        docs.push(document(ns, ts_ms, &dims, &[(metric, "Count", 1.0)]));
    }
    docs
}

/// Writes the documents, one line each, to stdout (outside the tracing envelope: EMF
/// must be a line of its own).
pub fn emit(docs: &[Value]) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for d in docs {
        let _ = writeln!(out, "{d}");
    }
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The EMF rules a document must keep (the specification's): `_aws.Timestamp` in ms,
    /// every metric named in a directive present as a top-level number, every dimension
    /// a top-level string, at most 30 dimensions and 100 metrics per directive.
    pub fn check_emf(d: &Value) -> Result<(), String> {
        let aws = d.get("_aws").ok_or("no _aws")?;
        aws["Timestamp"]
            .as_u64()
            .filter(|t| *t > 1_000_000_000_000)
            .ok_or("Timestamp is not ms")?;
        let dirs = aws["CloudWatchMetrics"]
            .as_array()
            .ok_or("no CloudWatchMetrics")?;
        for dir in dirs {
            dir["Namespace"]
                .as_str()
                .filter(|n| !n.is_empty())
                .ok_or("no Namespace")?;
            for set in dir["Dimensions"].as_array().ok_or("no Dimensions")? {
                let set = set.as_array().ok_or("a dimension set is not an array")?;
                if set.len() > 30 {
                    return Err("too many dimensions".into());
                }
                for name in set {
                    let name = name.as_str().ok_or("dimension name")?;
                    d[name]
                        .as_str()
                        .ok_or(format!("dimension {name} is not a string"))?;
                }
            }
            let metrics = dir["Metrics"].as_array().ok_or("no Metrics")?;
            if metrics.is_empty() || metrics.len() > 100 {
                return Err("1-100 metrics".into());
            }
            for m in metrics {
                let name = m["Name"].as_str().ok_or("metric name")?;
                d[name]
                    .as_f64()
                    .ok_or(format!("metric {name} is not a number"))?;
            }
        }
        Ok(())
    }

    #[test]
    fn documents_are_valid_emf_with_one_line_per_kind_of_event() {
        let rec = Recorder {
            events: vec![
                Event::SignIn(Method::Otp),
                Event::RateLimited(Limit::Code),
                Event::MailFailed(FailureKind::Transient),
            ],
            dynamodb_ms: 12.5,
            dynamodb_calls: 3,
            ses_ms: 0.0,
            ses_calls: 0,
        };
        let docs = documents(
            "ContactAuth/test",
            "magic-consume",
            1_795_687_200_000,
            Unit::Request {
                server_error: false,
            },
            40.0,
            &rec,
        );
        assert_eq!(docs.len(), 4);
        for d in &docs {
            check_emf(d).unwrap_or_else(|e| panic!("{e}: {d}"));
            assert_eq!(d["Function"], "magic-consume");
        }
        assert_eq!(docs[0]["DynamoDbCalls"], 3.0);
        // No SES call: no SES metrics (each would be billed as a custom metric).
        assert!(docs[0].get("SesCalls").is_none() && docs[0].get("SesLatency").is_none());
        assert_eq!(docs[0]["RequestLatency"], 40.0);
        assert_eq!(docs[0]["ServerErrors"], 0.0);
        assert_eq!(docs[1]["SignIns"], 1.0);
        assert_eq!(docs[1]["Method"], "otp");
        assert_eq!(
            docs[1]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Function", "Method"]])
        );
        assert_eq!(docs[2]["Limit"], "code");
        assert_eq!(docs[3]["Kind"], "transient");
        assert!(check_emf(&json!({"_aws": {"Timestamp": 5}})).is_err());
        let job = documents(
            "n",
            "mailer",
            1_795_687_200_000,
            Unit::Job,
            7.0,
            &Recorder {
                events: vec![Event::MailJob("sent")],
                ..Recorder::default()
            },
        );
        job.iter().for_each(|d| check_emf(d).unwrap());
        assert_eq!(job[0]["JobLatency"], 7.0);
        assert!(job[0].get("ServerErrors").is_none());
        assert_eq!(
            (job[1]["MailJobs"].as_f64(), job[1]["Outcome"].as_str()),
            (Some(1.0), Some("sent"))
        );
        let mut broken = docs[1].clone();
        broken.as_object_mut().unwrap().remove("Method");
        assert!(check_emf(&broken).is_err());
    }

    #[test]
    fn events_are_recorded_only_inside_a_scope() {
        record(Event::MailSent);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let ((), rec) = rt.block_on(scope(async {
            record(Event::MailSent);
            add_dependency(Dependency::DynamoDb, Duration::from_millis(4));
            add_dependency(Dependency::DynamoDb, Duration::from_millis(2));
        }));
        assert_eq!(rec.events, vec![Event::MailSent]);
        assert_eq!(rec.dynamodb_calls, 2);
        assert!((rec.dynamodb_ms - 6.0).abs() < 0.01);
        assert_eq!(Method::from_amr("otp"), Some(Method::Otp));
        assert_eq!(Method::from_amr("email_change"), None);
    }
}
