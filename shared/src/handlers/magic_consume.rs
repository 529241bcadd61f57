//! `POST /magic/consume`: find the link — by its token, or by the 6-digit code of the
//! newest link for a team and email (v1.1) — check its same-device binding, then one
//! transaction that marks it used (only if unused, unexpired and newest), creates or
//! updates the contact and membership, and stores the refresh token. Exactly one
//! concurrent consume can win, whether by token or by code. A refusal says why in
//! `meta.reason` (`LinkRefusal`).

use http::StatusCode;
use lambda_http::Request;
use serde_json::json;

use crate::app::App;
use crate::domain::code::{
    binding_satisfied, code_matches, placeholder, CodeVerifier, SignInCode, MAX_CODE_ATTEMPTS,
    NO_CODE_HASH,
};
use crate::domain::email::parse_email;
use crate::domain::ids::ContactId;
use crate::domain::jwt::KeySet;
use crate::domain::model::{JobPurpose, LinkPurpose, LinkRefusal, MagicLink, MailJob};
use crate::domain::rate::{code_attempts, email_scope, trusted, IpBudget};
use crate::domain::secret::{new_id, RawToken, TokenHash};
use crate::domain::target::{parse_target, Target};
use crate::edge::{
    attr_pointer, json_response, parse_document, Attributes, HandlerResult, RequestMeta,
};
use crate::errors::{ApiError, ErrorCode};
use crate::flows::limits::reserve;
use crate::flows::session::{
    new_refresh, sign_in_notice, token_pair_response, Family, SessionSubject,
};
use crate::metrics::{self, Event, Limit};
use crate::ports::{
    Attempts, ConsumeAs, Consumed, Contacts, Directory, MagicLinks, Sessions, UndoEmailChange,
};

/// Attributes of a consume: `token`, or `email` + `code` + `slug`/`team_id`; either way
/// an optional `code_verifier`.
const ATTRIBUTES: &[&str] = &["token", "email", "code", "slug", "team_id", "code_verifier"];

pub async fn handle<S: MagicLinks + Contacts + Directory + Attempts + Sessions>(
    app: &App<S, KeySet>,
    req: Request,
    meta: RequestMeta,
) -> HandlerResult {
    let attrs = parse_document(&req, "magic_link_consumes", false)?;
    attrs.only(ATTRIBUTES)?;
    let verifier = match attrs.optional_str("code_verifier")? {
        None => None,
        Some(v) => Some(CodeVerifier::parse(&v).ok_or_else(|| {
            ApiError::validation(
                attr_pointer("code_verifier"),
                "code_verifier must be 43-128 characters of A-Z, a-z, 0-9, '-', '.', '_' and '~'.",
            )
        })?),
    };
    // `null` counts as absent, as everywhere.
    let by_code = ["email", "code", "slug", "team_id"]
        .iter()
        .any(|a| attrs.0.get(*a).is_some_and(|v| !v.is_null()));
    let now = app.now();
    let (link, contact_tv, amr) = match attrs.optional_str("token")? {
        Some(_) if by_code => {
            return Err(ApiError::validation(
                "/data/attributes",
                "Give either token, or email and code with slug or team_id.",
            ))
        }
        Some(token) => {
            let (link, tv) = link_by_token(app, &token, now).await?;
            (link, tv, "magic_link")
        }
        None if by_code => {
            let (link, tv) = link_by_code(app, &attrs, &meta, now).await?;
            (link, tv, "otp")
        }
        None => {
            return Err(ApiError::validation(
                attr_pointer("token"),
                "token is required.",
            ))
        }
    };
    // A link bound to a browser's challenge (PKCE) signs in only with its verifier, by
    // token or by code; a refusal writes nothing, so the right browser can still use it.
    if !binding_satisfied(link.code_challenge.as_deref(), verifier.as_ref()) {
        tracing::info!(purpose = ?link.purpose, "magic link refused: verifier mismatch");
        return Err(ApiError::link_refused(LinkRefusal::VerifierMismatch));
    }
    if link.purpose == LinkPurpose::EmailChangeUndo {
        return undo_email_change(app, &link, now).await;
    }
    if link.purpose == LinkPurpose::EndSessions {
        return end_sessions(app, &link, now).await;
    }
    consume_link(app, &req, &link, contact_tv, amr, &meta, now).await
}

/// The "Not you? End that session" link of a new-sign-in notice: used once (first, so two
/// presses cannot both act), it ends the session it names and every session of the contact
/// in the team started at or after it — each end conditional, with its event — and signs
/// nobody in: `{"sessions_ended": n}`. The member signs in again (and changes the password).
async fn end_sessions<S: MagicLinks + Sessions>(
    app: &App<S, KeySet>,
    link: &MagicLink,
    now: i64,
) -> HandlerResult {
    use crate::domain::session::EndReason;
    let (Some(cid), Some(sid)) = (&link.contact_id, &link.change_id) else {
        return Err(ApiError::link_refused(LinkRefusal::Unknown));
    };
    if !app.store.use_link(link, now).await? {
        return Err(ApiError::link_refused(LinkRefusal::Used));
    }
    let sessions = app.store.sessions(cid, &link.team_id).await?;
    // From the named session's start (or, its record gone, from the link's making).
    let from = sessions
        .iter()
        .find(|s| &s.session_id == sid)
        .and_then(|s| s.created_at)
        .unwrap_or(link.created_at);
    let mut ended = 0usize;
    for s in sessions
        .iter()
        .filter(|s| s.ended_at.is_none() && s.created_at.is_some_and(|c| c >= from))
    {
        let until = crate::flows::sessions::family_until(app, s);
        if app
            .store
            .end_session(
                cid,
                &link.team_id,
                &s.session_id,
                EndReason::NotYou,
                now,
                until,
            )
            .await?
        {
            ended += 1;
        }
    }
    tracing::warn!(contact_id = %cid, ended, "sessions ended by a new-sign-in notice's link");
    Ok(json_response(
        StatusCode::OK,
        "application/json",
        &json!({ "sessions_ended": ended }),
    ))
}

/// The link a token names, if it can still be used; else why not (the token's holder has
/// the mail, so used / expired / unknown tells them nothing new).
async fn link_by_token<S: MagicLinks>(
    app: &App<S, KeySet>,
    token: &str,
    now: i64,
) -> Result<(MagicLink, Option<u64>), ApiError> {
    let Some(token) = RawToken::parse(token.trim()) else {
        return Err(ApiError::link_refused(LinkRefusal::Unknown));
    };
    let (link, tv) = app
        .store
        .magic_link(&token.hash())
        .await?
        .ok_or(ApiError::link_refused(LinkRefusal::Unknown))?;
    if link.used_at.is_some() {
        return Err(ApiError::link_refused(LinkRefusal::Used));
    }
    // A link whose key left the signing document (`rotate-key --revoke`, or two
    // rotations) is as good as expired: the page offers a new one.
    if link.expires_at <= now || !app.keys.link().knows(link.key_id.as_deref()) {
        return Err(ApiError::link_refused(LinkRefusal::Expired));
    }
    Ok((link, tv))
}

/// The newest link for a team and email, if `code` is its code. Every attempt is counted
/// before the code is compared — per email across teams and per IP (429 past either),
/// then on the link (its 5th wrong code kills the code, not the link) — and costs the
/// same reads, writes and comparisons whether or not the email has a link. Every failure
/// is `invalid`: nothing here tells whether an email has a link or an account.
async fn link_by_code<S: MagicLinks + Directory + Attempts>(
    app: &App<S, KeySet>,
    attrs: &Attributes,
    meta: &RequestMeta,
    now: i64,
) -> Result<(MagicLink, Option<u64>), ApiError> {
    let email = parse_email(&attrs.required_str("email")?)
        .map_err(|e| ApiError::validation(attr_pointer("email"), e.detail()))?;
    let code = SignInCode::parse(&attrs.required_str("code")?).ok_or_else(|| {
        ApiError::validation(
            attr_pointer("code"),
            "code must be the 6 digits from the email (spaces and hyphens are ignored).",
        )
    })?;
    let target = parse_target(attrs.optional_str("slug")?, attrs.optional_str("team_id")?)?;
    let store = &app.store;
    let (scope, slug_hub, trusted) = match target {
        // A stale cached "no such hub" only fails this attempt (no redirect is involved).
        Target::Slug(slug) => match store.hub_by_slug_cached(&slug, now).await? {
            Some(hub) => (
                hub.team_id.to_string(),
                Some(hub.hub_id),
                trusted(&hub.trusted_cidrs, &meta.source_ip),
            ),
            None => (format!("slug:{slug}"), None, false),
        },
        Target::Team(team) => (team.to_string(), None, false),
    };
    let mut counters = vec![(
        code_attempts(&email.key, now),
        app.config.code_attempts_per_hour,
    )];
    if !trusted {
        counters.push(IpBudget::Ceiling.reserve(&app.config, &meta.source_ip, now));
        counters.push(IpBudget::Code.reserve(&app.config, &meta.source_ip, now));
    }
    reserve(app, &counters, trusted, &meta.source_ip, Limit::Code, now).await?;
    let no_link = TokenHash::from_stored(placeholder(&app.keys.link().active, "link", &email.key));
    let found = store
        .newest_link(&email_scope(&scope, &email.key), &no_link)
        .await?;
    let hash = found.as_ref().map_or(&no_link, |(l, _)| &l.token_hash);
    let reserved = store.reserve_code_attempt(hash, MAX_CODE_ATTEMPTS).await?;
    let stored = found
        .as_ref()
        .and_then(|(l, _)| l.code_hash.as_deref())
        .unwrap_or(NO_CODE_HASH);
    let matches = code_matches(&app.keys.link(), hash, &code, stored);
    match found {
        Some((link, tv))
            if reserved
                && matches
                && link.used_at.is_none()
                && link.expires_at > now
                && link.purpose.supersedes() =>
        {
            // Like a successful login: the member's own success clears the count.
            store.reset_counter(&counters[0].0).await?;
            Ok((link, tv))
        }
        found => {
            let hub = found
                .and_then(|(l, _)| l.hub_id)
                .or(slug_hub)
                .map_or("none".to_string(), |h| h.to_string());
            metrics::record(Event::WrongCode(hub));
            metrics::record(Event::FailedLogin(metrics::Method::Otp));
            tracing::info!("sign-in code refused");
            Err(ApiError::link_refused(LinkRefusal::Invalid))
        }
    }
}

/// Signs in with a usable link: one transaction per round (see below).
async fn consume_link<S: MagicLinks + Contacts>(
    app: &App<S, KeySet>,
    req: &Request,
    link: &MagicLink,
    contact_tv: Option<u64>,
    amr: &str,
    meta: &RequestMeta,
    now: i64,
) -> HandlerResult {
    let store = &app.store;
    let invalid = || ApiError::link_refused(LinkRefusal::Unknown);
    let mut who = match (link.purpose, &link.contact_id) {
        (LinkPurpose::Register, _) => ConsumeAs::NewContact {
            contact_id: ContactId::generate(),
        },
        (LinkPurpose::EmailChange, Some(cid)) => change_email_as(app, link, cid).await?,
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
        _ => amr,
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
            } => (contact_id.clone(), *token_version),
            // Confirming an email change ends every other session (the transaction moves
            // the token version on by one); this one is issued at the new version.
            ConsumeAs::ChangeEmail {
                contact_id,
                token_version,
                ..
            } => (contact_id.clone(), token_version + 1),
        };
        let subject = SessionSubject {
            contact_id: contact_id.clone(),
            team_id: link.team_id.clone(),
            hub_id: link.hub_id.clone(),
            token_version,
            amr: vec![amr.into()],
            auth_time: now,
        };
        let mut refresh = new_refresh(app, &subject, Family::start(meta))?;
        // A sign-in of an existing member (not a registration, not an email change's
        // session): the new-device check and notice, written with the session.
        if matches!(who, ConsumeAs::Existing { .. }) {
            refresh.record.sign_in_notice = Some(sign_in_notice(
                &subject,
                &link.email,
                &link.email_key,
                &refresh.record.family_id,
                meta,
                now,
            ));
        }
        match store
            .consume_magic_link(link, &who, &refresh.record, now)
            .await?
        {
            Consumed::Done => {
                // An email-change session is not a sign-in (its amr maps to no method).
                if let Some(method) = metrics::Method::from_amr(amr) {
                    metrics::record(Event::SignIn(method));
                }
                if matches!(who, ConsumeAs::NewContact { .. }) {
                    metrics::record(Event::Registration);
                }
                tracing::info!(contact_id = %contact_id, purpose = ?link.purpose, "magic link consumed");
                return token_pair_response(
                    app,
                    req,
                    &subject,
                    &refresh,
                    json!({ "redirect_url": link.redirect_url }),
                );
            }
            // By code, every failure is `invalid` (see `link_by_code`).
            Consumed::Refused(_) if amr == "otp" => {
                return Err(ApiError::link_refused(LinkRefusal::Invalid))
            }
            Consumed::Refused(reason) => return Err(ApiError::link_refused(reason)),
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
                    who = change_email_as(app, link, &cid).await?;
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
    let refused = ApiError::link_refused;
    let contact = app
        .store
        .contact(cid)
        .await?
        .ok_or(refused(LinkRefusal::Unknown))?;
    let change_id = link
        .change_id
        .clone()
        .ok_or(refused(LinkRefusal::Unknown))?;
    if contact.email_change_id.as_deref() != Some(change_id.as_str()) {
        // A newer change request, or the change was cancelled.
        return Err(refused(LinkRefusal::Superseded));
    }
    if contact.email_key == link.email_key {
        // Another link already moved the contact to this address.
        return Err(refused(LinkRefusal::Used));
    }
    // "This address is now on this account", to the new address, naming its hubs.
    let notice = MailJob {
        job_id: new_id(),
        purpose: JobPurpose::EmailChangedNotice,
        slug: None,
        team_id: Some(link.team_id.clone()),
        email: link.email.clone(),
        email_key: link.email_key.clone(),
        redirect_url: None,
        created_at: app.now(),
        contact_id: Some(cid.clone()),
        change_id: Some(change_id.clone()),
        pw_version: None,
        code_challenge: None,
        source_ip: None,
        locale: None,
        accept_language: None,
    };
    Ok(ConsumeAs::ChangeEmail {
        contact_id: cid.clone(),
        token_version: contact.token_version,
        old_email_key: contact.email_key,
        change_id,
        notice: Box::new(notice),
    })
}

/// An undo link from an email-change notice: restore the address its chain started from,
/// end every session, remove a password set or changed inside the chain, cancel pending
/// changes, and end the chain (every other undo link of it dies). Signs nobody in: the
/// member signs in again afterwards. The answer says whether the password was removed.
async fn undo_email_change<S: MagicLinks + Contacts, K>(
    app: &App<S, K>,
    link: &MagicLink,
    now: i64,
) -> HandlerResult {
    let invalid = || ApiError::link_refused(LinkRefusal::Unknown);
    let store = &app.store;
    let Some(cid) = &link.contact_id else {
        return Err(invalid());
    };
    for _ in 0..3 {
        let contact = store.contact(cid).await?.ok_or_else(invalid)?;
        let has_password = contact.password_hash.is_some();
        let (origin_email, origin_key, chain_id, remove_password) = match &link.chain_id {
            // Only while the profile still carries the link's chain: an undo since ended it.
            Some(id) => {
                let Some(chain) = contact.undo_chain.clone().filter(|c| &c.chain_id == id) else {
                    return Err(ApiError::link_refused(LinkRefusal::Superseded));
                };
                let remove = has_password && chain.password_inside(contact.password_changed_at);
                (
                    chain.origin_email,
                    chain.origin_key,
                    Some(chain.chain_id),
                    remove,
                )
            }
            // Mailed before undo chains existed: as then, restore the address it was sent
            // to and drop a password set or changed since the request (its version moved).
            None => (
                link.email.clone(),
                link.email_key.clone(),
                None,
                has_password
                    && link
                        .pw_version
                        .is_some_and(|v| v != contact.password_version),
            ),
        };
        let undo = UndoEmailChange {
            contact_id: cid.clone(),
            token_version: contact.token_version,
            current_email_key: contact.email_key.clone(),
            password_version: contact.password_version,
            remove_password,
            origin_email,
            origin_key,
            chain_id,
        };
        match store.undo_email_change(link, &undo, now).await? {
            Consumed::Done => {
                tracing::warn!(contact_id = %cid, password_removed = undo.remove_password, "email change undone; every session ended");
                return Ok(json_response(
                    StatusCode::OK,
                    "application/json",
                    &json!({
                        "undone": "email_change",
                        "password_removed": undo.remove_password,
                        "redirect_url": null,
                    }),
                ));
            }
            Consumed::Refused(reason) => return Err(ApiError::link_refused(reason)),
            Consumed::EmailTaken => return Err(ApiError::new(ErrorCode::EmailTaken)),
            Consumed::VersionChanged => continue,
        }
    }
    Err(ApiError::unavailable())
}
