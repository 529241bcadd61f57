//! `WebhookSender` over HTTPS (reqwest, rustls with ring, Mozilla's roots compiled in).
//! Before each attempt the host is resolved and every address checked
//! (`domain::events::webhook_address_allowed`); the connection then goes to the checked
//! address only (no second lookup a rebinding DNS server could answer differently), with
//! no redirects, no proxy, and time limits (2 s to resolve, 4 s a request). `EVENTS_WEBHOOK_DEV=1` (local stacks only; the
//! template never sets it) also allows plain http to loopback.

use std::time::Duration;

use crate::domain::events::webhook_address_allowed;
use crate::ports::{WebhookOutcome, WebhookRequest, WebhookSender};

pub struct HttpWebhooks {
    /// Plain http and loopback allowed (local stacks only).
    dev: bool,
}

impl HttpWebhooks {
    pub fn new(dev: bool) -> HttpWebhooks {
        HttpWebhooks { dev }
    }

    pub fn from_env() -> HttpWebhooks {
        HttpWebhooks {
            dev: std::env::var("EVENTS_WEBHOOK_DEV").is_ok_and(|v| v == "1"),
        }
    }
}

/// Why a URL is not a webhook target, before any lookup.
pub fn url_problem(url: &str, dev: bool) -> Result<(url::Url, String, u16), &'static str> {
    let parsed = url::Url::parse(url).map_err(|_| "not_a_url")?;
    match parsed.scheme() {
        "https" => {}
        "http" if dev => {}
        _ => return Err("not_https"),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("credentials_in_url");
    }
    let host = parsed.host_str().ok_or("no_host")?.to_string();
    let port = parsed.port_or_known_default().ok_or("no_port")?;
    Ok((parsed, host, port))
}

impl WebhookSender for HttpWebhooks {
    async fn send(&self, req: &WebhookRequest) -> WebhookOutcome {
        let (url, host, port) = match url_problem(&req.url, self.dev) {
            Ok(u) => u,
            Err(why) => return WebhookOutcome::Refused(why),
        };
        let lookup_host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        // A slow name server must not stall the stream either.
        let lookup = tokio::net::lookup_host((lookup_host.as_str(), port));
        let addrs: Vec<std::net::SocketAddr> =
            match tokio::time::timeout(Duration::from_secs(2), lookup).await {
                Ok(Ok(a)) => a.collect(),
                Ok(Err(e)) => return WebhookOutcome::Failed(format!("lookup: {e}")),
                Err(_) => return WebhookOutcome::Failed("lookup: timeout".into()),
            };
        let Some(first) = addrs.first().copied() else {
            return WebhookOutcome::Failed("lookup: no address".into());
        };
        // Every address the name has must be public: one private answer is enough to refuse.
        if addrs
            .iter()
            .any(|a| !webhook_address_allowed(a.ip(), self.dev))
        {
            return WebhookOutcome::Refused("private_address");
        }
        let client = match reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(4))
            .connect_timeout(Duration::from_secs(2))
            .resolve(&lookup_host, first)
            .user_agent("contact-auth-webhooks/1")
            // A proxy would resolve the name itself, undoing the check above.
            .no_proxy()
            .build()
        {
            Ok(c) => c,
            Err(e) => return WebhookOutcome::Failed(format!("client: {e}")),
        };
        let sent = client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &req.id)
            .header("webhook-timestamp", req.timestamp.to_string())
            .header("webhook-signature", &req.signature)
            .body(req.body.clone())
            .send()
            .await;
        match sent {
            Ok(resp) => {
                let status = resp.status().as_u16();
                match status {
                    200..=299 => WebhookOutcome::Delivered(status),
                    408 | 429 | 500..=599 => WebhookOutcome::Failed(format!("status {status}")),
                    _ => WebhookOutcome::Rejected(status),
                }
            }
            Err(e) => WebhookOutcome::Failed(if e.is_timeout() {
                "timeout".into()
            } else {
                "connection failed".into()
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_urls_without_credentials_are_targets() {
        assert!(url_problem("https://hooks.example.com/auth", false).is_ok());
        assert_eq!(
            url_problem("http://hooks.example.com/", false).err(),
            Some("not_https")
        );
        assert!(url_problem("http://127.0.0.1:9/", true).is_ok());
        assert_eq!(url_problem("ftp://x/", true).err(), Some("not_https"));
        assert_eq!(
            url_problem("https://u:p@x.example/", false).err(),
            Some("credentials_in_url")
        );
        assert_eq!(url_problem("not a url", false).err(), Some("not_a_url"));
    }
}
