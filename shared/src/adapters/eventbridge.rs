//! `EventBus` on Amazon EventBridge: one `PutEvents` entry per event, source
//! `contact-auth`, on the bus `EVENT_BUS_NAME` (template parameter `EventBusName`;
//! `default` when unset). Locally `AWS_ENDPOINT_URL_EVENTBRIDGE` points it at the stack's
//! events sink (tools/events-sink.mjs).

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;

use super::aws::{sdk_config, Service};
use crate::errors::PortError;
use crate::ports::{EventBus, PortResult};

/// The `source` of every event this service publishes.
pub const EVENT_SOURCE: &str = "contact-auth";

pub struct EventBridgeBus {
    client: Client,
    bus: String,
}

impl EventBridgeBus {
    pub fn from_env() -> EventBridgeBus {
        EventBridgeBus {
            client: Client::new(&sdk_config(Service::EventBridge)),
            bus: std::env::var("EVENT_BUS_NAME")
                .ok()
                .filter(|b| !b.trim().is_empty())
                .unwrap_or_else(|| "default".into()),
        }
    }
}

impl EventBridgeBus {
    /// The same bus at another endpoint (tests: the stack's EventBridge stand-in).
    pub fn for_endpoint(url: &str) -> EventBridgeBus {
        let conf = aws_sdk_eventbridge::config::Builder::from(&sdk_config(Service::EventBridge))
            .endpoint_url(url)
            .build();
        EventBridgeBus {
            client: Client::from_conf(conf),
            bus: "default".into(),
        }
    }
}

impl EventBus for EventBridgeBus {
    async fn publish(&self, detail_type: &str, detail: &str) -> PortResult<()> {
        let entry = PutEventsRequestEntry::builder()
            .source(EVENT_SOURCE)
            .detail_type(detail_type)
            .detail(detail)
            .event_bus_name(&self.bus)
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| {
                PortError::Unavailable(format!(
                    "put_events: {}",
                    aws_sdk_eventbridge::error::DisplayErrorContext(e)
                ))
            })?;
        if out.failed_entry_count() > 0 {
            let code = out
                .entries()
                .iter()
                .filter_map(|e| e.error_code())
                .next()
                .unwrap_or("unknown");
            return Err(PortError::Unavailable(format!(
                "put_events: entry failed ({code})"
            )));
        }
        Ok(())
    }
}
