//! The `Mailer` on SES v2 `SendEmail` (simple content: text and HTML parts, which SES
//! sends as multipart/alternative).

use aws_sdk_sesv2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use aws_sdk_sesv2::Client;
use std::sync::atomic::{AtomicI64, Ordering};

use aws_config::retry::RetryConfig;

use crate::errors::PortError;
use crate::ports::{Clock, Mailer, OutgoingMail, PortResult, SystemClock};

pub struct SesMailer {
    client: Client,
    /// Unix seconds until which this instance does not call SES: set when SES said the
    /// account's sending stopped (daily quota, paused, suspended), so a batch parks its
    /// jobs after one refused call instead of one per job.
    paused_until: AtomicI64,
    /// The configuration set every send names (`SES_CONFIGURATION_SET`; the stack's
    /// publishes bounces and complaints to the `ses-events` function). None locally.
    configuration_set: Option<String>,
}

/// How long an instance stops calling SES after it said the account's sending stopped.
pub const PAUSE_SECONDS: i64 = 60;

impl SesMailer {
    pub fn new(client: Client) -> Self {
        SesMailer {
            client,
            paused_until: AtomicI64::new(0),
            configuration_set: std::env::var("SES_CONFIGURATION_SET")
                .ok()
                .filter(|s| !s.is_empty()),
        }
    }

    /// SES retries are the mailer's (`handlers::mailer`: the send-rate governor, waiting
    /// on throttling, parking on a stopped account), so the SDK's are off.
    fn config(url: Option<&str>) -> aws_sdk_sesv2::Config {
        let cfg = super::aws::sdk_config(super::aws::Service::SesV2);
        let mut b = aws_sdk_sesv2::config::Builder::from(&cfg)
            .retry_config(RetryConfig::disabled())
            .interceptor(super::aws::DependencyTimer(crate::metrics::Dependency::Ses));
        if let Some(url) = url {
            b = b.endpoint_url(url);
        }
        b.build()
    }

    pub async fn from_env() -> Self {
        SesMailer::new(Client::from_conf(SesMailer::config(None)))
    }

    /// The same client with another endpoint (tests and the load scenario: the SES gate).
    pub fn for_endpoint(url: &str) -> Self {
        SesMailer::new(Client::from_conf(SesMailer::config(Some(url))))
    }
}

fn content(data: &str) -> PortResult<Content> {
    Content::builder()
        .data(data)
        .charset("UTF-8")
        .build()
        .map_err(|_| PortError::Internal("ses content build".into()))
}

impl Mailer for SesMailer {
    async fn send(&self, mail: &OutgoingMail) -> PortResult<()> {
        if self.paused_until.load(Ordering::Relaxed) > SystemClock.now() {
            return Err(PortError::Paused(
                "ses send: paused by this instance".into(),
            ));
        }
        let message = Message::builder()
            .subject(content(&mail.subject)?)
            .body(
                Body::builder()
                    .text(content(&mail.text)?)
                    .html(content(&mail.html)?)
                    .build(),
            )
            .build();
        let res = self
            .client
            .send_email()
            .from_email_address(&mail.from)
            .set_reply_to_addresses(mail.reply_to.clone().map(|r| vec![r]))
            .destination(Destination::builder().to_addresses(&mail.to).build())
            .content(EmailContent::builder().simple(message).build())
            .set_configuration_set_name(self.configuration_set.clone())
            .send()
            .await;
        let err = match res {
            Ok(_) => return Ok(()),
            Err(SdkError::TimeoutError(_) | SdkError::DispatchFailure(_)) => {
                return Err(PortError::Unavailable("ses send: unreachable".into()))
            }
            Err(e) => classify(e.code().unwrap_or("none"), e.message().unwrap_or("")),
        };
        if matches!(err, PortError::Paused(_)) {
            self.paused_until
                .store(SystemClock.now() + PAUSE_SECONDS, Ordering::Relaxed);
        }
        Err(err)
    }
}

/// What an SES v2 `SendEmail` error means for the mailer, from its code and message (the
/// message only picks the kind; it is never logged, since it can echo request data):
/// - refused for good — the message or an address (`MessageRejected`: e.g. a bad header;
///   `BadRequestException`), or the sender is not verified: the mail is dropped;
/// - the account's send rate (`TooManyRequestsException`, `ThrottlingException`,
///   "Maximum sending rate exceeded"): wait and send again;
/// - the account's sending stopped — "Daily message quota exceeded",
///   `LimitExceededException`, `SendingPausedException`, `AccountSuspendedException`:
///   the job is parked (kept, alarmed on) for `contact-auth-admin redrive`;
/// - anything else (server errors): transient, the stream retries the job.
pub fn classify(code: &str, message: &str) -> PortError {
    const PERMANENT: &[&str] = &[
        "MessageRejected",
        "BadRequestException",
        "MailFromDomainNotVerifiedException",
        "NotFoundException",
    ];
    const STOPPED: &[&str] = &[
        "LimitExceededException",
        "SendingPausedException",
        "AccountSuspendedException",
    ];
    const RATE: &[&str] = &[
        "TooManyRequestsException",
        "ThrottlingException",
        "Throttling",
    ];
    if PERMANENT.contains(&code) {
        PortError::Permanent(format!("ses send: {code}"))
    } else if STOPPED.contains(&code) || message.contains("Daily message quota") {
        PortError::Paused(format!("ses send: {code}"))
    } else if RATE.contains(&code) {
        PortError::Throttled(format!("ses send: {code}"))
    } else {
        PortError::Unavailable(format!("ses send: {code}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_ses_refusal() {
        for code in [
            "MessageRejected",
            "BadRequestException",
            "MailFromDomainNotVerifiedException",
        ] {
            assert!(
                matches!(classify(code, ""), PortError::Permanent(_)),
                "{code}"
            );
        }
        for (code, msg) in [
            ("TooManyRequestsException", "Maximum sending rate exceeded."),
            ("ThrottlingException", "Maximum sending rate exceeded."),
        ] {
            assert!(
                matches!(classify(code, msg), PortError::Throttled(_)),
                "{code}"
            );
        }
        for (code, msg) in [
            ("TooManyRequestsException", "Daily message quota exceeded."),
            ("ThrottlingException", "Daily message quota exceeded"),
            ("LimitExceededException", ""),
            ("SendingPausedException", ""),
            ("AccountSuspendedException", ""),
        ] {
            assert!(
                matches!(classify(code, msg), PortError::Paused(_)),
                "{code} {msg}"
            );
        }
        for code in ["InternalFailure", "none"] {
            assert!(
                matches!(classify(code, ""), PortError::Unavailable(_)),
                "{code}"
            );
        }
    }
}
