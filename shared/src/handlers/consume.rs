//! `POST /magic/consume`: one read of the link, then one transaction that marks it used
//! (only if unused, unexpired and newest), creates or updates the contact and
//! membership, and stores the refresh token. Exactly one concurrent consume can win.

use lambda_http::Request;
use serde_json::json;

use crate::app::App;
use crate::domain::model::LinkPurpose;
use crate::domain::secret::{hash_token, looks_like_token, new_id};
use crate::edge::{parse_document, HandlerResult, RequestMeta};
use crate::errors::{ApiError, ErrorCode};
use crate::handlers::session::{new_refresh, token_pair_response, SessionSubject};
use crate::ports::{ConsumeAs, Consumed};

pub async fn handle(app: &App, req: Request, _meta: RequestMeta) -> HandlerResult {
    let attrs = parse_document(&req, "magic_link_consumes", false)?;
    attrs.only(&["token"])?;
    let token = attrs.required_str("token")?;
    let invalid = || ApiError::new(ErrorCode::MagicLinkInvalid);
    if !looks_like_token(token.trim()) {
        return Err(invalid());
    }
    let store = app.store()?;
    let now = app.now();
    let (link, contact_tv) = store
        .magic_link(&hash_token(token.trim()))
        .await?
        .ok_or_else(invalid)?;
    if link.used_at.is_some() || link.expires_at <= now {
        return Err(invalid());
    }
    let mut who = match (link.purpose, &link.contact_id) {
        (LinkPurpose::Register, _) => ConsumeAs::NewContact {
            contact_id: new_id(),
        },
        (LinkPurpose::EmailChange, Some(cid)) => {
            let contact = store.contact(cid).await?.ok_or_else(invalid)?;
            ConsumeAs::ChangeEmail {
                contact_id: cid.clone(),
                token_version: contact.token_version,
                old_email_key: contact.email_key,
            }
        }
        (purpose, Some(cid)) => ConsumeAs::Existing {
            contact_id: cid.clone(),
            token_version: contact_tv.unwrap_or(0),
            join: purpose == LinkPurpose::Join,
        },
        (_, None) => return Err(invalid()),
    };
    // At most a few rounds: a lost registration race turns into a join, a moved token
    // version is re-read. Each round is one transaction whose conditions decide.
    for _ in 0..3 {
        let (contact_id, token_version) = match &who {
            ConsumeAs::NewContact { contact_id } => (contact_id.clone(), 0),
            ConsumeAs::Existing {
                contact_id,
                token_version,
                ..
            }
            | ConsumeAs::ChangeEmail {
                contact_id,
                token_version,
                ..
            } => (contact_id.clone(), *token_version),
        };
        let subject = SessionSubject {
            contact_id: contact_id.clone(),
            team_id: link.team_id.clone(),
            hub_id: link.hub_id.clone(),
            token_version,
            amr: vec!["magic_link".into()],
            auth_time: now,
        };
        let refresh = new_refresh(app, &subject, None)?;
        match store
            .consume_magic_link(&link, &who, &refresh.record, now)
            .await?
        {
            Consumed::Done => {
                tracing::info!(contact_id = %contact_id, purpose = ?link.purpose, "magic link consumed");
                return token_pair_response(
                    app,
                    &subject,
                    &refresh,
                    json!({ "redirect_url": link.redirect_url }),
                );
            }
            Consumed::Invalid => return Err(invalid()),
            Consumed::EmailTaken if link.purpose == LinkPurpose::EmailChange => {
                return Err(ApiError::new(ErrorCode::EmailTaken));
            }
            Consumed::EmailTaken => {
                let cid = store
                    .contact_id_by_email(&link.email_key)
                    .await?
                    .ok_or_else(ApiError::internal)?;
                let contact = store.contact(&cid).await?.ok_or_else(invalid)?;
                who = ConsumeAs::Existing {
                    contact_id: cid,
                    token_version: contact.token_version,
                    join: true,
                };
            }
            Consumed::VersionChanged => {
                let contact = store.contact(&contact_id).await?.ok_or_else(invalid)?;
                match &mut who {
                    ConsumeAs::Existing { token_version, .. } => {
                        *token_version = contact.token_version
                    }
                    ConsumeAs::ChangeEmail {
                        token_version,
                        old_email_key,
                        ..
                    } => {
                        *token_version = contact.token_version;
                        *old_email_key = contact.email_key;
                    }
                    ConsumeAs::NewContact { .. } => {}
                }
            }
        }
    }
    Err(ApiError::unavailable())
}
