//! Operator writes (the admin CLI and test setup; no function calls them): teams, hubs
//! with their slug items, membership status and bans.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};

use super::codec::{hub_item, n, s};
use super::keys::{self, key_map, with_key};
use super::tx::{Settled, Tx};
use super::{build_err, conditional, sdk_err, DynamoStore};
use crate::domain::ids::{ContactId, TeamId};
use crate::domain::model::{Hub, Team};
use crate::ports::PortResult;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HubStep {
    Hub,
    /// The slug item: free, or already this hub's.
    Slug,
}

impl DynamoStore {
    pub async fn put_team(&self, team: &Team) -> PortResult<()> {
        let mut item = HashMap::from([
            ("team_id".to_string(), s(team.team_id.as_str())),
            ("name".to_string(), s(&team.name)),
        ]);
        if let Some(h) = &team.primary_hub_id {
            item.insert("primary_hub_id".into(), s(h.as_str()));
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(with_key(item, keys::team(&team.team_id))))
            .send()
            .await
            .map_err(|e| sdk_err("put_team", e))?;
        Ok(())
    }

    /// Writes the hub and its slug item together (the slug item carries a copy of
    /// the hub so a slug lookup is one read). Fails if the slug belongs to another hub.
    pub async fn put_hub(&self, hub: &Hub) -> PortResult<bool> {
        let item = hub_item(hub);
        let hub_put = self.put(with_key(item.clone(), keys::hub(&hub.hub_id)), None)?;
        let slug_put = {
            let p = Put::builder()
                .table_name(&self.table)
                .set_item(Some(with_key(item, keys::slug(&hub.slug))))
                .condition_expression("attribute_not_exists(pk) OR hub_id = :h")
                .expression_attribute_values(":h", s(hub.hub_id.as_str()))
                .build()
                .map_err(build_err)?;
            TransactWriteItem::builder().put(p).build()
        };
        let mut tx = Tx::new();
        tx.push(HubStep::Hub, hub_put);
        tx.push(HubStep::Slug, slug_put);
        match self.commit("put_hub", tx).await? {
            Settled::Done => Ok(true),
            Settled::Failed(_) => Ok(false),
        }
    }

    /// Admin: bans (or unbans) an existing member. A ban also ends the member's sessions
    /// in the team for good: `sessions_valid_after` = now, which refresh and every
    /// authenticated route check, so an unban does not bring them back. False when the
    /// contact has no membership in the team.
    pub async fn set_banned(
        &self,
        contact_id: &ContactId,
        team_id: &TeamId,
        banned: bool,
        now: i64,
    ) -> PortResult<bool> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_map(keys::membership(contact_id, team_id))))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#st", "status");
        req = if banned {
            req.update_expression("SET #st = :st, sessions_valid_after = :now")
                .expression_attribute_values(":st", s("banned"))
                .expression_attribute_values(":now", n(now))
        } else {
            req.update_expression("SET #st = :st")
                .expression_attribute_values(":st", s("active"))
        };
        conditional("set_banned", req.send().await)
    }
}
