//! `GET /me`: the signed-in contact as a JSON:API `contacts` resource.

use http::StatusCode;
use lambda_http::Request;

use crate::app::App;
use crate::domain::jwt::KeySet;
use crate::edge::{json_response, HandlerResult, RequestMeta, JSONAPI};
use crate::flows::account::contact_resource;
use crate::flows::session::authenticate;
use crate::ports::Contacts;

pub async fn handle<S: Contacts>(
    app: &App<S, KeySet>,
    req: Request,
    _meta: RequestMeta,
) -> HandlerResult {
    let (_claims, contact) = authenticate(app, &req).await?;
    let memberships = app.store.memberships(&contact.contact_id).await?;
    Ok(json_response(
        StatusCode::OK,
        JSONAPI,
        &contact_resource(&contact, &memberships),
    ))
}
