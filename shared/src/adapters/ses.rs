//! The `Mailer` on SES v2 `SendEmail` (simple content: text and HTML parts, which SES
//! sends as multipart/alternative).

use async_trait::async_trait;
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
        SesMailer::new(Client::new(&cfg))
    }
}

fn content(data: &str) -> PortResult<Content> {
    Content::builder()
        .data(data)
        .charset("UTF-8")
        .build()
        .map_err(|_| PortError::Internal("ses content build".into()))
}

#[async_trait]
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
                    _ => PortError::Unavailable(format!("ses send: {code}")),
                }
            })?;
        Ok(())
    }
}
