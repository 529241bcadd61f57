//! `POST /magic/consume`: one read of the link, then one transaction that marks it used
//! (only if unused, unexpired and newest), creates or updates the contact and
//! membership, and stores the refresh token. Exactly one concurrent consume can win.

use http::StatusCode;
use lambda_http::Request;
use serde_json::json;

use crate::app::App;
use crate::domain::ids::ContactId;
use crate::domain::jwt::KeySet;
use crate::domain::model::{LinkPurpose, MagicLink};
use crate::domain::secret::RawToken;
use crate::edge::{json_response, parse_document, HandlerResult, RequestMeta};
use crate::errors::{ApiError, ErrorCode};
use crate::flows::session::{new_refresh, token_pair_response, SessionSubject};
use crate::ports::{ConsumeAs, Consumed, Contacts, MagicLinks, UndoEmailChange};

pub async fn handle<S: MagicLinks + Contacts>(
    app: &App<S, KeySet>,
    req: Request,
    _meta: RequestMeta,
) -> HandlerResult {
    let attrs = parse_document(&req, "magic_link_consumes", false)?;
    attrs.only(&["token"])?;
    let token = attrs.required_str("token")?;
    let invalid = || ApiError::new(ErrorCode::MagicLinkInvalid);
    let token = RawToken::parse(token.trim()).ok_or_else(invalid)?;
    let store = &app.store;
    let now = app.now();
    let (link, contact_tv) = store.magic_link(&token.hash()).await?.ok_or_else(invalid)?;
    if link.used_at.is_some() || link.expires_at <= now {
        return Err(invalid());
    }
    if link.purpose == LinkPurpose::EmailChangeUndo {
        return undo_email_change(app, &link, now).await;
    }
    let mut who = match (link.purpose, &link.contact_id) {
        (LinkPurpose::Register, _) => ConsumeAs::NewContact {
            contact_id: ContactId::generate(),
        },
        (LinkPurpose::EmailChange, Some(cid)) => change_email_as(app, &link, cid).await?,
        (purpose, Some(cid)) => ConsumeAs::Existing {
            contact_id: cid.clone(),
            token_version: contact_tv.unwrap_or(0),
            join: purpose == LinkPurpose::Join,
        },
        (_, None) => return Err(invalid()),
    };
    // A session minted by an email-change link is not a fresh sign-in (it does not count
    // as recent authentication): whoever asked for the change already held a session.
    let amr = match link.purpose {
        LinkPurpose::EmailChange => "email_change",
        _ => "magic_link",
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
            amr: vec![amr.into()],
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
                let Some(cid) = store.contact_id_by_email(&link.email_key).await? else {
                    // Taken a moment ago and gone again: let the member retry.
                    return Err(ApiError::unavailable());
                };
                let contact = store.contact(&cid).await?.ok_or_else(invalid)?;
                who = ConsumeAs::Existing {
                    contact_id: cid,
                    token_version: contact.token_version,
                    join: true,
                };
            }
            Consumed::VersionChanged => match &mut who {
                ConsumeAs::Existing { token_version, .. } => {
                    let contact = store.contact(&contact_id).await?.ok_or_else(invalid)?;
                    *token_version = contact.token_version;
                }
                ConsumeAs::ChangeEmail { contact_id, .. } => {
                    let cid = contact_id.clone();
                    who = change_email_as(app, &link, &cid).await?;
                }
                ConsumeAs::NewContact { .. } => {}
            },
        }
    }
    Err(ApiError::unavailable())
}

/// The contact an email-change link moves, as it is now: only while the link's change
/// is the pending one, and never onto the address the contact already has (two pending
/// changes to one address: the first consumed wins, the other link is spent).
async fn change_email_as<S: Contacts, K>(
    app: &App<S, K>,
    link: &MagicLink,
    cid: &ContactId,
) -> Result<ConsumeAs, ApiError> {
    let invalid = || ApiError::new(ErrorCode::MagicLinkInvalid);
    let contact = app.store.contact(cid).await?.ok_or_else(invalid)?;
    let change_id = link.change_id.clone().ok_or_else(invalid)?;
    if contact.email_change_id.as_deref() != Some(change_id.as_str())
        || contact.email_key == link.email_key
    {
        return Err(invalid());
    }
    Ok(ConsumeAs::ChangeEmail {
        contact_id: cid.clone(),
        token_version: contact.token_version,
        old_email_key: contact.email_key,
        change_id,
    })
}

/// An undo link from an email-change notice: restore the address it was sent to, end
/// every session, remove a password set or changed since the change request, cancel
/// pending changes. Signs nobody in: the member signs in again afterwards.
async fn undo_email_change<S: MagicLinks + Contacts, K>(
    app: &App<S, K>,
    link: &MagicLink,
    now: i64,
) -> HandlerResult {
    let invalid = || ApiError::new(ErrorCode::MagicLinkInvalid);
    let store = &app.store;
    let (Some(cid), Some(pw_version)) = (&link.contact_id, link.pw_version) else {
        return Err(invalid());
    };
    for _ in 0..3 {
        let contact = store.contact(cid).await?.ok_or_else(invalid)?;
        let undo = UndoEmailChange {
            contact_id: cid.clone(),
            token_version: contact.token_version,
            current_email_key: contact.email_key.clone(),
            password_version: contact.password_version,
            remove_password: contact.password_hash.is_some()
                && contact.password_version != pw_version,
        };
        match store.undo_email_change(link, &undo, now).await? {
            Consumed::Done => {
                tracing::warn!(contact_id = %cid, password_removed = undo.remove_password, "email change undone; every session ended");
                return Ok(json_response(
                    StatusCode::OK,
                    "application/json",
                    &json!({ "undone": "email_change", "redirect_url": null }),
                ));
            }
            Consumed::Invalid => return Err(invalid()),
            Consumed::EmailTaken => return Err(ApiError::new(ErrorCode::EmailTaken)),
            Consumed::VersionChanged => continue,
        }
    }
    Err(ApiError::unavailable())
}
