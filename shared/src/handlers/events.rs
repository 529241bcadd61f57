//! The `events` function: each auth event of the outbox (`domain::events`, read from the
//! table's stream) goes to the EventBridge bus and, when its team has one, to its webhook
//! signed per Standard Webhooks. Delivery is at least once: each target's outcome is
//! marked on the outbox item, so a redelivered stream batch skips what was delivered (a
//! crash between a delivery and its mark can still repeat it; receivers dedupe on the id,
//! the `webhook-id` header and the detail's `id`).

use std::time::Duration;

use serde_json::json;

use crate::config::Config;
use crate::domain::events::{webhook_signature, AuthEvent};
use crate::errors::PortError;
use crate::flows::account::rfc3339;
use crate::ports::{EventBus, EventStore, WebhookOutcome, WebhookRequest, WebhookSender};

/// How long a team's webhook is paused after an event whose every attempt failed: the
/// stream (shared by every team, in order) waits on a dead receiver at most once per pause.
pub const WEBHOOK_PAUSE: i64 = 300;

/// What the events function runs with (no keys, no mailer).
pub struct EventsApp<S, B, W> {
    pub config: Config,
    pub store: S,
    pub bus: B,
    pub webhooks: W,
    /// The pause before each further webhook attempt (backoff): 3 attempts in all by default.
    pub retry_delays: Vec<Duration>,
    pub clock: fn() -> i64,
}

/// How one event's webhook went (the `EventDeliveries` metric's outcome).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookResult {
    /// The team has no webhook.
    None,
    /// Marked delivered by an earlier attempt of this event (a redelivered batch).
    AlreadyDone,
    Delivered,
    /// The receiver answered a 4xx (not retried).
    Rejected,
    /// Every attempt failed (timeouts, connection errors, 408/429/5xx).
    Failed,
    /// Not sent: not https, or a private address (SSRF).
    Refused(&'static str),
    /// Not sent: the team's webhook is paused after an event whose every attempt failed.
    Paused,
}

impl WebhookResult {
    pub fn as_str(&self) -> &'static str {
        match self {
            WebhookResult::None => "none",
            WebhookResult::AlreadyDone => "already_done",
            WebhookResult::Delivered => "delivered",
            WebhookResult::Rejected => "rejected",
            WebhookResult::Failed => "failed",
            WebhookResult::Refused(_) => "refused",
            WebhookResult::Paused => "paused",
        }
    }
}

/// The Standard Webhooks payload of an event: `type`, `timestamp` and `data`.
pub fn webhook_body(event: &AuthEvent, include_email: bool) -> String {
    json!({
        "type": event.event_type.as_str(),
        "timestamp": rfc3339(event.at),
        "data": event.detail(include_email),
    })
    .to_string()
}

/// Delivers one event. Err (the stream retries the batch from it) only when the bus did
/// not take it or the table could not be read; a webhook that keeps failing is marked
/// `failed` and paused for `WEBHOOK_PAUSE` (the team's events meanwhile are marked
/// `paused`, still on the bus), so it does not hold up the events after it.
pub async fn process_event<S: EventStore, B: EventBus, W: WebhookSender>(
    app: &EventsApp<S, B, W>,
    event: &AuthEvent,
) -> Result<WebhookResult, PortError> {
    let settings = match &event.team_id {
        Some(team) => app.store.event_settings(team).await?,
        None => None,
    }
    .unwrap_or_default();
    let marks = app.store.event_marks(&event.id).await?;
    if !marks.bus {
        let detail = event.detail(settings.include_email).to_string();
        app.bus.publish(event.event_type.as_str(), &detail).await?;
        app.store
            .mark_event(&event.id, "bus", "delivered", (app.clock)())
            .await?;
    }
    let (Some(url), Some(secret)) = (&settings.webhook_url, &settings.webhook_secret) else {
        return Ok(WebhookResult::None);
    };
    if marks.webhook {
        return Ok(WebhookResult::AlreadyDone);
    }
    if settings
        .paused_until
        .is_some_and(|until| until > (app.clock)())
    {
        app.store
            .mark_event(&event.id, "webhook", "paused", (app.clock)())
            .await?;
        return Ok(WebhookResult::Paused);
    }
    let body = webhook_body(event, settings.include_email);
    let mut result = WebhookResult::Failed;
    for attempt in 0..=app.retry_delays.len() {
        if attempt > 0 {
            tokio::time::sleep(app.retry_delays[attempt - 1]).await;
        }
        let timestamp = (app.clock)();
        let Some(signature) = webhook_signature(secret, &event.id, timestamp, &body) else {
            result = WebhookResult::Refused("bad_secret");
            break;
        };
        let req = WebhookRequest {
            url: url.clone(),
            id: event.id.clone(),
            timestamp,
            signature,
            body: body.clone(),
        };
        match app.webhooks.send(&req).await {
            WebhookOutcome::Delivered(_) => {
                result = WebhookResult::Delivered;
                break;
            }
            WebhookOutcome::Rejected(status) => {
                tracing::warn!(event_id = %event.id, status, "webhook rejected the event");
                result = WebhookResult::Rejected;
                break;
            }
            WebhookOutcome::Refused(why) => {
                tracing::warn!(event_id = %event.id, why, "webhook target refused");
                result = WebhookResult::Refused(why);
                break;
            }
            WebhookOutcome::Failed(why) => {
                tracing::warn!(event_id = %event.id, attempt, why = %why, "webhook attempt failed");
            }
        }
    }
    if result == WebhookResult::Failed {
        if let Some(team) = &event.team_id {
            app.store
                .pause_webhook(team, (app.clock)() + WEBHOOK_PAUSE)
                .await?;
        }
    }
    app.store
        .mark_event(&event.id, "webhook", result.as_str(), (app.clock)())
        .await?;
    Ok(result)
}
