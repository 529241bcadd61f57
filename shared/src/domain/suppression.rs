//! Bounces and complaints: what an SES sending event (published by the stack's
//! configuration set to SNS, `handlers::ses_events`) says about the addresses it names.
//!
//! - A **permanent** bounce (the mailbox or domain does not exist, or SES's account-level
//!   suppression list holds the address) and a **complaint** (the recipient marked the
//!   mail as spam) make the address undeliverable: the mailer sends it nothing more until
//!   the member signs in by password, or an operator lifts it.
//! - A transient or undetermined bounce (mailbox full, a greylisting server) changes
//!   nothing: SES already retried it, and the next mail may well arrive. Neither does a
//!   complaint whose feedback type is `not-spam` (a provider's report that it is not one).
//! - What suppression stops depends on why: after a bounce no mail at all goes to the
//!   address (it cannot arrive); after a complaint no mail the member asks for (sign-in,
//!   registration), but security notices — a password set or changed, an email change
//!   and its undo link — still go: the member must learn that their account changed.
//! - Every other event type (delivery, send, …) is ignored.
//!
//! The event record is SES's "event publishing" JSON (`eventType`), or the older identity
//! notification (`notificationType`); both carry the same `bounce` / `complaint` objects.

use serde::Deserialize;

use super::email::{parse_email, EmailKey};

/// Why an address was suppressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Bounce,
    Complaint,
}

/// Whether a mail may go to an address suppressed for `reason` (`None`: not suppressed).
/// `notice`: a security notice (password set or changed, an email change and its undo).
pub fn may_send(reason: Option<Reason>, notice: bool) -> bool {
    match reason {
        None => true,
        Some(Reason::Bounce) => false,
        Some(Reason::Complaint) => notice,
    }
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Bounce => "bounce",
            Reason::Complaint => "complaint",
        }
    }

    pub fn parse(s: &str) -> Option<Reason> {
        match s {
            "bounce" => Some(Reason::Bounce),
            "complaint" => Some(Reason::Complaint),
            _ => None,
        }
    }
}

/// What one event record is, for the metrics (`SesEvents{Kind}`) and the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    PermanentBounce,
    TransientBounce,
    Complaint,
    /// Any other event type (delivery, send, open, …): nothing to do.
    Other,
    /// Not an SES event record (unparseable JSON, no event type).
    Malformed,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::PermanentBounce => "bounce_permanent",
            Kind::TransientBounce => "bounce_transient",
            Kind::Complaint => "complaint",
            Kind::Other => "other",
            Kind::Malformed => "malformed",
        }
    }
}

/// One record read: its kind, and the addresses to suppress (empty unless a permanent
/// bounce or a complaint). An address that does not parse as one the service could have
/// mailed is left out (it cannot match a key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub kind: Kind,
    pub suppress: Vec<(EmailKey, Reason)>,
}

impl Verdict {
    /// A record of `kind` that suppresses nothing.
    fn nothing(kind: Kind) -> Verdict {
        Verdict {
            kind,
            suppress: vec![],
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    event_type: Option<String>,
    notification_type: Option<String>,
    bounce: Option<Bounce>,
    complaint: Option<Complaint>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bounce {
    bounce_type: Option<String>,
    #[serde(default)]
    bounced_recipients: Vec<Recipient>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Complaint {
    #[serde(default)]
    complained_recipients: Vec<Recipient>,
    complaint_feedback_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Recipient {
    email_address: String,
}

/// The identity key of a recipient as SES reports it: a bare address, or one with a
/// display name (`Name <a@b.example>`).
fn recipient_key(raw: &str) -> Option<EmailKey> {
    let bare = match (raw.rfind('<'), raw.rfind('>')) {
        (Some(open), Some(close)) if open < close => &raw[open + 1..close],
        _ => raw,
    };
    parse_email(bare).ok().map(|e| e.key)
}

fn keys(recipients: &[Recipient], reason: Reason) -> Vec<(EmailKey, Reason)> {
    recipients
        .iter()
        .filter_map(|r| recipient_key(&r.email_address))
        .map(|k| (k, reason))
        .collect()
}

/// Reads one SES event record (an SNS message body).
pub fn read(message: &str) -> Verdict {
    let Ok(rec) = serde_json::from_str::<Record>(message) else {
        return Verdict::nothing(Kind::Malformed);
    };
    let Some(event) = rec.event_type.or(rec.notification_type) else {
        return Verdict::nothing(Kind::Malformed);
    };
    match (event.as_str(), rec.bounce, rec.complaint) {
        ("Bounce", Some(b), _) if b.bounce_type.as_deref() == Some("Permanent") => Verdict {
            kind: Kind::PermanentBounce,
            suppress: keys(&b.bounced_recipients, Reason::Bounce),
        },
        ("Bounce", Some(_), _) => Verdict::nothing(Kind::TransientBounce),
        ("Complaint", _, Some(c)) if c.complaint_feedback_type.as_deref() == Some("not-spam") => {
            Verdict::nothing(Kind::Other)
        }
        ("Complaint", _, Some(c)) => Verdict {
            kind: Kind::Complaint,
            suppress: keys(&c.complained_recipients, Reason::Complaint),
        },
        ("Bounce" | "Complaint", _, _) => Verdict::nothing(Kind::Malformed),
        _ => Verdict::nothing(Kind::Other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SES's own example records (Developer Guide, "Examples of event data that Amazon SES
    /// publishes to Amazon SNS"), trimmed to the fields read here plus a few others.
    const BOUNCE: &str = r#"{"eventType":"Bounce","bounce":{"bounceType":"Permanent","bounceSubType":"General","bouncedRecipients":[{"emailAddress":"Recipient@Example.com","action":"failed","status":"5.1.1","diagnosticCode":"smtp; 550 5.1.1 user unknown"}],"timestamp":"2017-08-05T00:41:02.669Z","feedbackId":"0100","reportingMTA":"dsn; mta.example.com"},"mail":{"timestamp":"2017-08-05T00:40:02.012Z","source":"Sender Name <sender@example.com>","messageId":"EXAMPLE","destination":["Recipient@Example.com"]}}"#;
    const COMPLAINT: &str = r#"{"eventType":"Complaint","complaint":{"complainedRecipients":[{"emailAddress":"Jane <jane@example.com>"}],"timestamp":"2017-08-05T00:41:02.669Z","feedbackId":"0100","userAgent":"Mozilla/5.0","complaintFeedbackType":"abuse","arrivalDate":"2017-08-05T00:41:02.669Z"},"mail":{"messageId":"EXAMPLE","destination":["jane@example.com"]}}"#;

    fn key(s: &str) -> EmailKey {
        parse_email(s).unwrap().key
    }

    #[test]
    fn a_bounce_stops_every_mail_and_a_complaint_all_but_security_notices() {
        assert!(may_send(None, false) && may_send(None, true));
        assert!(!may_send(Some(Reason::Bounce), false));
        assert!(!may_send(Some(Reason::Bounce), true));
        assert!(!may_send(Some(Reason::Complaint), false));
        assert!(may_send(Some(Reason::Complaint), true));
    }

    #[test]
    fn a_permanent_bounce_suppresses_each_recipient_by_identity_key() {
        let v = read(BOUNCE);
        assert_eq!(v.kind, Kind::PermanentBounce);
        assert_eq!(
            v.suppress,
            vec![(key("recipient@example.com"), Reason::Bounce)]
        );
    }

    #[test]
    fn a_complaint_suppresses_and_display_names_are_stripped() {
        let v = read(COMPLAINT);
        assert_eq!(v.kind, Kind::Complaint);
        assert_eq!(
            v.suppress,
            vec![(key("jane@example.com"), Reason::Complaint)]
        );
        // A provider's "not spam" report is not a complaint to act on.
        let not_spam = COMPLAINT.replace(r#""abuse""#, r#""not-spam""#);
        assert_eq!(read(&not_spam).kind, Kind::Other);
        assert!(read(&not_spam).suppress.is_empty());
        // The older notification format names the type `notificationType`.
        let old = COMPLAINT.replace("eventType", "notificationType");
        assert_eq!(read(&old).suppress, v.suppress);
    }

    #[test]
    fn transient_and_undetermined_bounces_and_other_events_suppress_nothing() {
        for t in ["Transient", "Undetermined"] {
            let v = read(&BOUNCE.replace("Permanent", t));
            assert_eq!(
                (v.kind, v.suppress.len()),
                (Kind::TransientBounce, 0),
                "{t}"
            );
        }
        let delivery =
            r#"{"eventType":"Delivery","delivery":{"recipients":["a@example.com"]},"mail":{}}"#;
        assert_eq!(read(delivery).kind, Kind::Other);
        assert!(read(delivery).suppress.is_empty());
    }

    #[test]
    fn what_is_not_an_event_record_is_malformed_and_suppresses_nothing() {
        for m in [
            "",
            "not json",
            "[]",
            r#"{"mail":{}}"#,
            r#"{"eventType":"Bounce"}"#,
            r#"{"eventType":"Complaint","bounce":{"bounceType":"Permanent","bouncedRecipients":[{"emailAddress":"a@example.com"}]}}"#,
        ] {
            let v = read(m);
            assert_eq!(v.kind, Kind::Malformed, "{m}");
            assert!(v.suppress.is_empty(), "{m}");
        }
        // A recipient that is not an address is skipped; the others still count.
        let mixed = BOUNCE.replace(
            r#"[{"emailAddress":"Recipient@Example.com""#,
            r#"[{"emailAddress":"nobody"},{"emailAddress":"Recipient@Example.com""#,
        );
        assert_eq!(read(&mixed).suppress.len(), 1);
    }
}
