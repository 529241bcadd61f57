//! The state a function builds once per cold start: its configuration, its clock, and
//! exactly the dependencies its route needs, as types. `App<S, K>` holds a store `S`
//! (something implementing the ports the route uses, or `()` for none) and keys `K`
//! (`KeySet`, or `()`). A handler states what it needs in its signature — for example
//! `login::handle<S: Directory + Contacts + Attempts + Sessions>(app: &App<S, KeySet>, …)`
//! — so wiring a route without the table or the keys does not compile:
//!
//! The same call compiles with the keys (`cargo test --doc` runs all three):
//!
//! ```no_run
//! use contact_auth::{app::App, config::Config, domain::jwt::KeySet, edge::RequestMeta, handlers::jwks};
//! async fn wired(config: Config, keys: KeySet, req: lambda_http::Request, meta: RequestMeta) {
//!     let app = App::new(config).with_keys(keys);
//!     let _ = jwks::handle(&app, req, meta).await;
//! }
//! ```
//!
//! and not without them:
//!
//! ```compile_fail
//! use contact_auth::{app::App, config::Config, domain::jwt::KeySet, edge::RequestMeta, handlers::jwks};
//! async fn wired(config: Config, _keys: KeySet, req: lambda_http::Request, meta: RequestMeta) {
//!     let app = App::new(config);
//!     let _ = jwks::handle(&app, req, meta).await;
//! }
//! ```
//!
//! nor `register` without a table (it needs `Directory + MailJobs`):
//!
//! ```compile_fail
//! use contact_auth::{app::App, config::Config, edge::RequestMeta, handlers::register};
//! async fn wired(config: Config, req: lambda_http::Request, meta: RequestMeta) {
//!     let app = App::new(config);
//!     let _ = register::handle(&app, req, meta).await;
//! }
//! ```

use std::sync::Arc;

use crate::config::Config;
use crate::domain::rate::OverLimit;
use crate::ports::{Clock, SystemClock};

pub struct App<S = (), K = (), M = ()> {
    pub config: Config,
    pub clock: Arc<dyn Clock>,
    pub store: S,
    pub keys: K,
    /// The mail sender: only the mailer function has one.
    pub mailer: M,
    /// This instance's memory of per-IP ceilings at their limit (`flows::limits`).
    pub over_limit: Arc<OverLimit>,
}

impl App {
    /// Configuration and the system clock; no store, no keys.
    pub fn new(config: Config) -> App {
        App {
            config,
            clock: Arc::new(SystemClock),
            store: (),
            keys: (),
            mailer: (),
            over_limit: Arc::default(),
        }
    }
}

impl<S, K, M> App<S, K, M> {
    pub fn with_store<S2>(self, store: S2) -> App<S2, K, M> {
        App {
            config: self.config,
            clock: self.clock,
            store,
            keys: self.keys,
            mailer: self.mailer,
            over_limit: self.over_limit,
        }
    }

    pub fn with_keys<K2>(self, keys: K2) -> App<S, K2, M> {
        App {
            config: self.config,
            clock: self.clock,
            store: self.store,
            keys,
            mailer: self.mailer,
            over_limit: self.over_limit,
        }
    }

    pub fn with_mailer<M2>(self, mailer: M2) -> App<S, K, M2> {
        App {
            config: self.config,
            clock: self.clock,
            store: self.store,
            keys: self.keys,
            mailer,
            over_limit: self.over_limit,
        }
    }

    /// Shares another app's memory of per-IP ceilings (tests: one memory per instance).
    pub fn with_over_limit(mut self, over_limit: Arc<OverLimit>) -> Self {
        self.over_limit = over_limit;
        self
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }
}
