//! What `POST /register` and `POST /magic` share: validate, count, enqueue. The same work for
//! every valid request (one hub read, cacheable; one transactional write), so neither
//! the answer nor its timing says whether the email or the hub exists.

use http::StatusCode;
use lambda_http::Request;

use crate::app::App;
use crate::domain::code::parse_challenge;
use crate::domain::email::parse_email;
use crate::domain::i18n::Locale;
use crate::domain::model::{JobPurpose, MailJob};
use crate::domain::rate::{email_scope, send_rules, trusted};
use crate::domain::redirect::{origin_allowed, parse_redirect};
use crate::domain::secret::new_id;
use crate::domain::target::{parse_target, Target};
use crate::edge::{
    attr_pointer, empty_response, parse_document, Attributes, HandlerResult, RequestMeta,
};
use crate::errors::{ApiError, ErrorCode};
use crate::flows::limits::{remember_refusal, remembered};
use crate::metrics::{self, Event, Limit};
use crate::ports::{Directory, Enqueued, MailJobs};

pub const ATTRIBUTES: &[&str] = &[
    "email",
    "slug",
    "team_id",
    "redirect_url",
    "code_challenge",
    "code_challenge_method",
    "locale",
];

/// The optional same-device binding (PKCE, `S256` only): both attributes or neither.
fn parse_binding(attrs: &Attributes) -> Result<Option<String>, ApiError> {
    let challenge = attrs.optional_str("code_challenge")?;
    let method = attrs.optional_str("code_challenge_method")?;
    match (challenge, method) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(ApiError::validation(
            attr_pointer("code_challenge_method"),
            "code_challenge_method is required with code_challenge and must be \"S256\".",
        )),
        (None, Some(_)) => Err(ApiError::validation(
            attr_pointer("code_challenge"),
            "code_challenge is required with code_challenge_method.",
        )),
        (Some(_), Some(m)) if m != "S256" => Err(ApiError::validation(
            attr_pointer("code_challenge_method"),
            "code_challenge_method must be \"S256\" (the only method).",
        )),
        (Some(c), Some(_)) => parse_challenge(&c).map(Some).ok_or_else(|| {
            ApiError::validation(
                attr_pointer("code_challenge"),
                "code_challenge must be the base64url SHA-256 of a code_verifier (43 characters).",
            )
        }),
    }
}

/// The `locale` attribute: a BCP 47 language tag (`de`, `fr-CH`; at most 35 characters)
/// whose language is used for the mail when supported (en, de, fr, es, nl) and for the
/// member from then on (`i18n::choose`); a well-formed tag of another language falls back
/// to the next choice. A malformed tag is 422.
fn parse_locale(raw: Option<String>) -> Result<Option<Locale>, ApiError> {
    let Some(tag) = raw else { return Ok(None) };
    let well_formed = tag.len() <= 35
        && tag.split('-').enumerate().all(|(i, p)| {
            (1..=8).contains(&p.len())
                && p.bytes().all(|b| b.is_ascii_alphanumeric())
                && (i > 0
                    || (2..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphabetic()))
        });
    if !well_formed {
        return Err(ApiError::validation(
            attr_pointer("locale"),
            "locale must be a language tag such as \"de\" or \"fr-CH\".",
        ));
    }
    Ok(Locale::from_tag(&tag))
}

/// Validates a link request, counts it and writes its mail job (the mailer decides what,
/// if anything, is sent). `purpose` is `Register` or `Magic`.
pub async fn request_link<S: Directory + MailJobs, K>(
    app: &App<S, K>,
    purpose: JobPurpose,
    req: Request,
    meta: RequestMeta,
) -> HandlerResult {
    let doc_type = match purpose {
        JobPurpose::Register => "register_requests",
        _ => "magic_link_requests",
    };
    let attrs = parse_document(&req, doc_type, false)?;
    attrs.reject("password", ErrorCode::PasswordNotAllowed)?;
    attrs.only(ATTRIBUTES)?;
    let email = parse_email(&attrs.required_str("email")?)
        .map_err(|e| ApiError::validation(attr_pointer("email"), e.detail()))?;
    let target = parse_target(attrs.optional_str("slug")?, attrs.optional_str("team_id")?)?;
    let code_challenge = parse_binding(&attrs)?;
    let locale = parse_locale(attrs.optional_str("locale")?)?;
    let redirect = match attrs.optional_str("redirect_url")? {
        None => None,
        Some(_) if matches!(target, Target::Team(_)) => {
            return Err(
                ApiError::new(ErrorCode::RedirectUrlRequiresSlug).at(attr_pointer("redirect_url"))
            )
        }
        Some(r) => Some(
            parse_redirect(&r)
                .map_err(|e| ApiError::validation(attr_pointer("redirect_url"), e.detail()))?,
        ),
    };

    let (scope, slug, team_id, trusted) = match target {
        Target::Slug(slug) => {
            // With a redirect_url the hub is read fresh: a cached answer (also a cached
            // "no such hub") could be up to a minute old, and an origin must be checked
            // against the allowlist as it is now. The mailer checks it again when it
            // builds the mail. Hub existence is no secret here: a known hub's 422 already
            // tells it apart.
            let hub = match &redirect {
                Some(_) => app.store.hub_by_slug(&slug).await?,
                None => app.store.hub_by_slug_cached(&slug, app.now()).await?,
            };
            if let (Some(hub), Some((_, origin))) = (&hub, &redirect) {
                if !origin_allowed(origin, &hub.allowed_redirect_origins) {
                    return Err(ApiError::new(ErrorCode::RedirectUrlNotAllowed)
                        .at(attr_pointer("redirect_url")));
                }
            }
            let scope = match &hub {
                Some(h) => h.team_id.to_string(),
                None => format!("slug:{slug}"),
            };
            // A hub's trusted egress network is exempt from the per-IP ceiling (the
            // mailer applies the hub's current list to its mail budgets again).
            let trusted = hub
                .as_ref()
                .is_some_and(|h| trusted(&h.trusted_cidrs, &meta.source_ip));
            (scope, Some(slug), None, trusted)
        }
        Target::Team(t) => (t.to_string(), None, Some(t), false),
    };

    let now = app.now();
    remembered(app, trusted, &meta.source_ip, Limit::Send, now)?;
    let rules = send_rules(
        &app.config,
        &email_scope(&scope, &email.key),
        &meta.source_ip,
        trusted,
    );
    let job = MailJob {
        job_id: new_id(),
        purpose,
        slug,
        team_id,
        email: email.display,
        email_key: email.key,
        redirect_url: redirect.map(|(url, _)| url),
        created_at: now,
        contact_id: None,
        change_id: None,
        pw_version: None,
        code_challenge,
        source_ip: Some(meta.source_ip.clone()),
        locale,
        accept_language: meta.accept_language.clone(),
    };
    match app.store.enqueue_job(&job, &rules, now).await? {
        Enqueued::Queued => {
            tracing::info!(job_id = %job.job_id, purpose = ?purpose, "mail job queued");
            Ok(empty_response(StatusCode::ACCEPTED))
        }
        Enqueued::Limited {
            retry_after,
            refused,
        } => {
            remember_refusal(app, &refused, &meta.source_ip, now);
            metrics::record(Event::RateLimited(Limit::Send));
            Err(ApiError::rate_limited(retry_after))
        }
        // Only an email change writes a profile beside its job.
        Enqueued::Stale => Err(ApiError::internal()),
    }
}
