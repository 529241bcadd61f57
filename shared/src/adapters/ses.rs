//! The `Mailer` on SES v2 `SendEmail` (simple content: text and HTML parts, which SES
//! sends as multipart/alternative).

use aws_sdk_sesv2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use aws_sdk_sesv2::Client;

use crate::errors::PortError;
use crate::ports::{Mailer, OutgoingMail, PortResult};

pub struct SesMailer {
    client: Client,
}

impl SesMailer {
    pub fn new(client: Client) -> Self {
        SesMailer { client }
    }

    pub async fn from_env() -> Self {
        let cfg = super::aws::sdk_config(super::aws::Service::SesV2);
        let conf = aws_sdk_sesv2::config::Builder::from(&cfg)
            .interceptor(super::aws::DependencyTimer(crate::metrics::Dependency::Ses))
            .build();
        SesMailer::new(Client::from_conf(conf))
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
        let message = Message::builder()
            .subject(content(&mail.subject)?)
            .body(
                Body::builder()
                    .text(content(&mail.text)?)
                    .html(content(&mail.html)?)
                    .build(),
            )
            .build();
        self.client
            .send_email()
            .from_email_address(&mail.from)
            .destination(Destination::builder().to_addresses(&mail.to).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map_err(|e| {
                let code = e.code().unwrap_or("none").to_string();
                match e {
                    SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
                        PortError::Unavailable("ses send: unreachable".into())
                    }
                    _ => classify(&code),
                }
            })?;
        Ok(())
    }
}

/// SES v2 `SendEmail` error codes that no retry can fix: the message or an address is
/// refused (`MessageRejected`: e.g. an undeliverable address or a bad header;
/// `BadRequestException`: a malformed request), or the sender is not verified. Everything
/// else — throttling, quotas, a paused or suspended account, server errors — may pass
/// later and is retried (and lands in the mailer's failure destination if it never does).
pub fn classify(code: &str) -> PortError {
    const PERMANENT: &[&str] = &[
        "MessageRejected",
        "BadRequestException",
        "MailFromDomainNotVerifiedException",
        "NotFoundException",
    ];
    if PERMANENT.contains(&code) {
        PortError::Permanent(format!("ses send: {code}"))
    } else {
        PortError::Unavailable(format!("ses send: {code}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permanent_and_transient_failures() {
        for code in [
            "MessageRejected",
            "BadRequestException",
            "MailFromDomainNotVerifiedException",
        ] {
            assert!(matches!(classify(code), PortError::Permanent(_)), "{code}");
        }
        for code in [
            "TooManyRequestsException",
            "LimitExceededException",
            "SendingPausedException",
            "AccountSuspendedException",
            "InternalFailure",
            "none",
        ] {
            assert!(
                matches!(classify(code), PortError::Unavailable(_)),
                "{code}"
            );
        }
    }
}
