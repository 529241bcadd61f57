//! `Directory` on the table: HUB#, SLUG# (a full copy of the hub: one read per slug
//! lookup) and TEAM# items.

use super::codec::{get_s, hub_from};
use super::{keys, DynamoStore};
use crate::domain::ids::{HubId, TeamId};
use crate::domain::model::{Hub, Team};
use crate::ports::{Directory, PortResult};

impl Directory for DynamoStore {
    async fn hub_by_slug(&self, slug: &str) -> PortResult<Option<Hub>> {
        Ok(self
            .get("hub_by_slug", keys::slug(slug))
            .await?
            .as_ref()
            .and_then(hub_from))
    }

    async fn hub(&self, hub_id: &HubId) -> PortResult<Option<Hub>> {
        Ok(self
            .get("hub", keys::hub(hub_id))
            .await?
            .as_ref()
            .and_then(hub_from))
    }

    async fn team(&self, team_id: &TeamId) -> PortResult<Option<Team>> {
        Ok(self.get("team", keys::team(team_id)).await?.map(|i| Team {
            team_id: get_s(&i, "team_id").map_or_else(|| team_id.clone(), TeamId::from_stored),
            name: get_s(&i, "name").unwrap_or_default(),
            primary_hub_id: get_s(&i, "primary_hub_id").map(HubId::from_stored),
            sender_address: get_s(&i, "sender_address"),
        }))
    }
}
