//! `GET /me`: the signed-in contact as a JSON:API `contacts` resource.

use http::StatusCode;
use lambda_http::Request;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::app::App;
use crate::domain::model::{Contact, Membership, MembershipStatus};
use crate::edge::{json_response, HandlerResult, RequestMeta, JSONAPI};
use crate::handlers::session::authenticate;

pub fn rfc3339(secs: i64) -> Value {
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .map(Value::String)
        .unwrap_or(Value::Null)
}

pub fn contact_resource(c: &Contact, memberships: &[Membership]) -> Value {
    let teams: Vec<Value> = memberships
        .iter()
        .filter(|m| m.status == MembershipStatus::Active)
        .map(|m| json!({ "team_id": m.team_id, "joined_at": rfc3339(m.joined_at) }))
        .collect();
    json!({
        "data": {
            "type": "contacts",
            "id": c.contact_id,
            "attributes": {
                "email": c.email,
                "email_verified_at": c.email_verified_at.map(rfc3339).unwrap_or(Value::Null),
                "has_password": c.password_hash.is_some(),
                "created_at": rfc3339(c.created_at),
                "tos_accepted_at": c.tos_accepted_at,
                "tos_version": c.tos_version,
                "pending_email": c.pending_email,
                "team_memberships": teams,
            }
        }
    })
}

pub async fn handle_get(app: &App, req: Request, _meta: RequestMeta) -> HandlerResult {
    let (_claims, contact) = authenticate(app, &req).await?;
    let memberships = app.store()?.memberships(&contact.contact_id).await?;
    Ok(json_response(
        StatusCode::OK,
        JSONAPI,
        &contact_resource(&contact, &memberships),
    ))
}
