//! The per-IP limits as the request routes apply them: the instance's memory of ceilings
//! at their limit first (`domain::rate::OverLimit`: a 429 without a DynamoDB call), then
//! the table's counters; a ceiling the table refuses is remembered until its window ends.

use crate::app::App;
use crate::domain::rate::{Counter, IpBudget};
use crate::errors::ApiError;
use crate::metrics::{self, Event, Limit};
use crate::ports::{Attempts, Reserved};

/// The ceiling counter of `source_ip` when this instance saw it at its limit: the 429 to
/// answer at once (`None` for a trusted network, which the ceiling does not count).
pub fn remembered<S, K, M>(
    app: &App<S, K, M>,
    trusted: bool,
    source_ip: &str,
    limit: Limit,
    now: i64,
) -> Result<(), ApiError> {
    if trusted {
        return Ok(());
    }
    match app
        .over_limit
        .retry_after(&IpBudget::Ceiling.counter(source_ip, now), now)
    {
        Some(retry_after) => {
            metrics::record(Event::RateLimited(limit));
            tracing::info!("per-IP ceiling reached (remembered by this instance)");
            Err(ApiError::rate_limited(retry_after))
        }
        None => Ok(()),
    }
}

/// After the table refused `refused_keys` (counter keys without their windows): remember
/// the ceiling if it is among them.
pub fn remember_refusal<S, K, M, I: IntoIterator<Item = impl AsRef<str>>>(
    app: &App<S, K, M>,
    refused_keys: I,
    source_ip: &str,
    now: i64,
) {
    let ceiling = IpBudget::Ceiling.counter(source_ip, now);
    let key = IpBudget::Ceiling.key(source_ip);
    if refused_keys
        .into_iter()
        .any(|k| k.as_ref() == key || k.as_ref() == ceiling.key)
    {
        app.over_limit.remember(&ceiling, now);
    }
}

/// Counts one attempt on every counter (all or none, each only below its limit), after
/// the instance's memory: 429 with `Retry-After` when any counter is at its limit.
pub async fn reserve<S: Attempts, K, M>(
    app: &App<S, K, M>,
    counters: &[(Counter, u32)],
    trusted: bool,
    source_ip: &str,
    limit: Limit,
    now: i64,
) -> Result<(), ApiError> {
    remembered(app, trusted, source_ip, limit, now)?;
    match app.store.reserve_attempts(counters, now).await? {
        Reserved::Ok => Ok(()),
        Reserved::Limited {
            retry_after,
            refused,
        } => {
            let keys = refused
                .iter()
                .filter_map(|&i| counters.get(i).map(|(c, _)| c.key.as_str()));
            remember_refusal(app, keys, source_ip, now);
            metrics::record(Event::RateLimited(limit));
            Err(ApiError::rate_limited(retry_after))
        }
    }
}
