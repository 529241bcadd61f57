//! `Suppressions` on the table: SUPPRESS#<email key> (reason, time) per undeliverable
//! address, and the `mail_suppressed_at` flag on the profile of the contact that has it.

use super::codec::{get_s, n, s, suppression_item};
use super::keys::{self, key_map};
use super::{conditional, sdk_err, DynamoStore};
use crate::domain::email::EmailKey;
use crate::domain::ids::ContactId;
use crate::domain::suppression::Reason;
use crate::ports::{PortResult, Suppressions};

impl Suppressions for DynamoStore {
    async fn suppressed(&self, key: &EmailKey) -> PortResult<Option<Reason>> {
        // An item whose reason is unreadable counts as a bounce (the stricter one).
        Ok(self
            .get("suppressed", keys::suppression(key))
            .await?
            .map(|i| {
                get_s(&i, "reason")
                    .and_then(|r| Reason::parse(&r))
                    .unwrap_or(Reason::Bounce)
            }))
    }

    async fn suppress(&self, key: &EmailKey, reason: Reason, at: i64) -> PortResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(suppression_item(key, reason, at)))
            .send()
            .await
            .map_err(|e| sdk_err("suppress", e))?;
        // The contact that has the address now (if any): flag its profile, only while the
        // profile still has this address (it may have moved since the index was read).
        let Some(contact) = self
            .get("suppress_owner", keys::email(key))
            .await?
            .and_then(|i| get_s(&i, "contact_id"))
            .map(ContactId::from_stored)
        else {
            return Ok(());
        };
        let flagged = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_map(keys::profile(&contact))))
            .update_expression("SET mail_suppressed_at = :at")
            .condition_expression("email_key = :key")
            .expression_attribute_values(":at", n(at))
            .expression_attribute_values(":key", s(key.as_str()))
            .send()
            .await;
        conditional("suppress_flag", flagged).map(|_| ())
    }

    async fn lift_suppression(
        &self,
        key: &EmailKey,
        contact: Option<&ContactId>,
    ) -> PortResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_map(keys::suppression(key))))
            .send()
            .await
            .map_err(|e| sdk_err("lift_suppression", e))?;
        let Some(contact) = contact else {
            return Ok(());
        };
        // Only the flag (a profile that is gone is not created by this write).
        let cleared = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_map(keys::profile(contact))))
            .update_expression("REMOVE mail_suppressed_at")
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        conditional("lift_suppression_flag", cleared).map(|_| ())
    }
}
