//! `ses-events`: SES sending events (the stack's configuration set publishes bounces and
//! complaints to an SNS topic, which invokes this function) mark addresses undeliverable
//! (`domain::suppression` decides which). The mailer then sends them nothing — the request
//! that asked for the mail still answers 202 — until the member signs in by password
//! (`handlers::login` lifts it) or an operator lifts it (`contact-auth-admin suppression`).
//!
//! Only SES can publish to the topic (its policy names `ses.amazonaws.com` and this
//! account), and only the topic invokes the function: nobody on the internet can mark an
//! address. Logs carry counts and kinds, never an address.

use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::domain::suppression::{self, Kind};
use crate::errors::PortError;
use crate::metrics::{self, Event};
use crate::ports::Suppressions;

/// The part of an SNS event read here: each record's message (an SES event record).
/// Lenient on purpose: an event that lacks them has nothing to suppress.
#[derive(Debug, Default, Deserialize)]
pub struct SnsEvent {
    #[serde(rename = "Records", default)]
    pub records: Vec<SnsRecord>,
}

#[derive(Debug, Default, Deserialize)]
pub struct SnsRecord {
    #[serde(rename = "Sns", default)]
    pub sns: SnsMessage,
}

#[derive(Debug, Default, Deserialize)]
pub struct SnsMessage {
    #[serde(rename = "Message", default)]
    pub message: String,
}

/// What an invocation did (the function's result; SNS ignores it, the fixtures check it).
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub records: usize,
    /// Addresses marked undeliverable.
    pub suppressed: usize,
    pub bounce_permanent: usize,
    pub bounce_transient: usize,
    pub complaint: usize,
    pub other: usize,
    pub malformed: usize,
}

impl Summary {
    fn count(&mut self, kind: Kind) {
        let n = match kind {
            Kind::PermanentBounce => &mut self.bounce_permanent,
            Kind::TransientBounce => &mut self.bounce_transient,
            Kind::Complaint => &mut self.complaint,
            Kind::Other => &mut self.other,
            Kind::Malformed => &mut self.malformed,
        };
        *n += 1;
    }
}

/// Reads every record and suppresses what it names. A failed write fails the invocation
/// (Lambda retries an SNS invocation twice; suppressing again is harmless).
pub async fn handle<S: Suppressions, K, M>(
    app: &App<S, K, M>,
    event: SnsEvent,
) -> Result<Summary, PortError> {
    let mut summary = Summary {
        records: event.records.len(),
        ..Summary::default()
    };
    for record in &event.records {
        let verdict = suppression::read(&record.sns.message);
        summary.count(verdict.kind);
        metrics::record(Event::SesEvent(verdict.kind.as_str()));
        for (key, reason) in &verdict.suppress {
            app.store.suppress(key, *reason, app.now()).await?;
            summary.suppressed += 1;
        }
        if verdict.kind == Kind::Malformed {
            tracing::warn!("an SNS message that is not an SES event record: ignored");
        }
    }
    tracing::info!(
        records = summary.records,
        suppressed = summary.suppressed,
        complaints = summary.complaint,
        "ses events"
    );
    Ok(summary)
}
