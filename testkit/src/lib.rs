//! Test and tool support for contact-auth, kept out of the product crate (no function
//! binary links it): the admin CLI (`tools/admin`) and the tests depend on it.
//!
//! - `schema`: the local table, created exactly as template.yaml's `ContactTable`;
//! - `seed`: the demo team and hubs of `make dev` and the tests;
//! - `app`: `TestApp`, one table + keys + clock, serving any route in-process through
//!   the same `RouteFn` types the function binaries use (`contact_auth::routes::visit`);
//! - `fixtures`: the typed `setup` steps of an `events/` fixture;
//! - `verdict`: the one comparator of a response against its `.expected.json` (replay
//!   and `make invoke` both use it);
//! - `poll`: the local mailer loop over the table's stream (DynamoDB Local has no
//!   stream trigger);
//! - `password_list`: builds the product's common-password FST;
//! - `OffsetClock`, `config_for_table`.

pub mod app;
pub mod capacity;
pub mod fixtures;
pub mod password_list;
pub mod poll;
pub mod schema;
pub mod seed;
pub mod verdict;

use contact_auth::config::Config;
use contact_auth::ports::{Clock, SystemClock};

/// The system clock shifted by a fixed number of seconds (tests: "16 minutes later").
pub struct OffsetClock(pub i64);

impl Clock for OffsetClock {
    fn now(&self) -> i64 {
        SystemClock.now() + self.0
    }
}

/// A clock stopped at one instant (Unix seconds): boundaries tested to the second without
/// a race against the real clock.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub i64);

impl Clock for FixedClock {
    fn now(&self) -> i64 {
        self.0
    }
}

/// A config for tests: every default, the given table, CORS for the demo origin.
pub fn config_for_table(table: &str) -> Config {
    Config {
        cors_origins: vec!["http://localhost:5173".into()],
        ..Config::defaults(table)
    }
}

/// A signing secret document for tests: an RS256 key made for the tests only
/// (`shared/src/domain/testdata`) and a second one as the published next key.
pub fn test_key_doc() -> String {
    serde_json::json!({
        "signing_secret": "replay-test-signing-secret-0123456789abcdef",
        "signing_key": include_str!("../../shared/src/domain/testdata/test-only-rsa-1.pem"),
        "next_signing_secret": "replay-test-next-signing-secret-0123456789",
        "next_signing_key": include_str!("../../shared/src/domain/testdata/test-only-rsa-2.pem"),
    })
    .to_string()
}
