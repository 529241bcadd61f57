//! `EventStore` on the table: a team's event settings (TEAM#<id> / EVENTS) and the delivery
//! marks on each outbox item (EVENT#<id>: `bus_at`/`bus_outcome`, `webhook_at`/
//! `webhook_outcome`).

use std::collections::HashMap;

use super::codec::{get_bool, get_n, get_s, n, s};
use super::keys::{self, key_map, with_key};
use super::{conditional, sdk_err, DynamoStore};
use crate::domain::ids::TeamId;
use crate::ports::{DeliveryMarks, EventSettings, EventStore, PortResult};

impl EventStore for DynamoStore {
    async fn event_settings(&self, team_id: &TeamId) -> PortResult<Option<EventSettings>> {
        Ok(self
            .get("event_settings", keys::event_settings(team_id))
            .await?
            .map(|i| EventSettings {
                webhook_url: get_s(&i, "webhook_url"),
                webhook_secret: get_s(&i, "webhook_secret"),
                include_email: get_bool(&i, "include_email").unwrap_or(false),
                paused_until: get_n(&i, "paused_until"),
            }))
    }

    async fn pause_webhook(&self, team_id: &TeamId, until: i64) -> PortResult<()> {
        // Only on settings that still exist (a removal meanwhile stays removed).
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_map(keys::event_settings(team_id))))
            .update_expression("SET paused_until = :u")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":u", n(until))
            .send()
            .await;
        // A missing item (settings removed meanwhile) is not an error.
        conditional("pause_webhook", result).map(|_| ())
    }

    async fn event_marks(&self, event_id: &str) -> PortResult<DeliveryMarks> {
        let item = self.get("event_marks", keys::event(event_id)).await?;
        let has = |k: &str| item.as_ref().is_some_and(|i| i.contains_key(k));
        Ok(DeliveryMarks {
            bus: has("bus_at"),
            webhook: has("webhook_at"),
        })
    }

    async fn mark_event(
        &self,
        event_id: &str,
        target: &'static str,
        outcome: &str,
        now: i64,
    ) -> PortResult<()> {
        // Only an item that still exists (a mark never recreates an expired event).
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_map(keys::event(event_id))))
            .update_expression("SET #at = :now, #outcome = :o")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#at", format!("{target}_at"))
            .expression_attribute_names("#outcome", format!("{target}_outcome"))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":o", s(outcome))
            .send()
            .await;
        conditional("mark_event", result).map(|_| ())
    }
}

impl DynamoStore {
    /// Sets (or, with `None`, removes) a team's event settings (contact-auth-admin).
    pub async fn put_event_settings(
        &self,
        team_id: &TeamId,
        settings: Option<&EventSettings>,
    ) -> PortResult<()> {
        let key = keys::event_settings(team_id);
        match settings {
            None => {
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(key_map(key)))
                    .send()
                    .await
                    .map_err(|e| sdk_err("put_event_settings", e))?;
            }
            Some(st) => {
                let mut item = HashMap::from([(
                    "include_email".to_string(),
                    aws_sdk_dynamodb::types::AttributeValue::Bool(st.include_email),
                )]);
                if let Some(u) = &st.webhook_url {
                    item.insert("webhook_url".into(), s(u));
                }
                if let Some(sec) = &st.webhook_secret {
                    item.insert("webhook_secret".into(), s(sec));
                }
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(with_key(item, key)))
                    .send()
                    .await
                    .map_err(|e| sdk_err("put_event_settings", e))?;
            }
        }
        Ok(())
    }
}
