//! The demo data of `make dev` and the tests: team `team_abc123` with hubs
//! `member-academy` ("Member Academy", primary) and `my-hub` ("My Hub"), both allowing
//! the redirect origin `http://localhost:5173`.

use contact_auth::adapters::dynamo::DynamoStore;
use contact_auth::domain::ids::{HubId, TeamId};
use contact_auth::domain::model::{Hub, Team};
use contact_auth::errors::PortError;

pub const DEMO_TEAM: &str = "team_abc123";

pub async fn seed_demo(store: &DynamoStore) -> Result<(), PortError> {
    store
        .put_team(&Team {
            team_id: TeamId::from_stored(DEMO_TEAM),
            name: "Demo Team".into(),
            primary_hub_id: Some(HubId::from_stored("hub_member_academy")),
            sender_address: None,
        })
        .await?;
    for (id, slug, title) in [
        ("hub_member_academy", "member-academy", "Member Academy"),
        ("hub_my_hub", "my-hub", "My Hub"),
    ] {
        let hub = Hub {
            hub_id: HubId::from_stored(id),
            slug: slug.into(),
            team_id: TeamId::from_stored(DEMO_TEAM),
            title: title.into(),
            allowed_redirect_origins: vec!["http://localhost:5173".into()],
            registration_enabled: true,
            trusted_cidrs: vec![],
            branding: Default::default(),
        };
        if !store.put_hub(&hub).await? {
            return Err(PortError::Internal(format!(
                "slug {slug} belongs to another hub"
            )));
        }
    }
    Ok(())
}
