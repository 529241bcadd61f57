//! `TestApp`: a table, signing keys and a clock, serving any route in-process. Each
//! request builds the route's own `App<R::Store, R::Keys>` from these parts (the same
//! types its function binary builds at cold start) and runs it through the edge.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use contact_auth::adapters::dynamo::DynamoStore;
use contact_auth::app::App;
use contact_auth::config::Config;
use contact_auth::domain::jwt::KeySet;
use contact_auth::domain::rate::OverLimit;
use contact_auth::handlers::mailer::MailerApp;
use contact_auth::ports::{Clock, SystemClock};
use contact_auth::routes::{visit, Route, RouteFn, VisitRoute};
use contact_auth::runtime::{serve_route, KeysDep, StoreDep};
use lambda_http::{Body, Request, Response};

use crate::OffsetClock;

#[derive(Clone)]
pub struct TestApp {
    pub config: Config,
    pub clock: Arc<dyn Clock>,
    pub store: DynamoStore,
    /// The signing secret document (`{"signing_secret": …}`).
    pub keys_json: String,
    /// One function instance's memory of per-IP ceilings, shared by every request of this
    /// app and its clones (`at`, `shifted`): they act as one warm instance.
    pub over_limit: Arc<OverLimit>,
}

impl TestApp {
    pub fn new(config: Config, store: DynamoStore, keys_json: &str) -> TestApp {
        TestApp {
            config,
            clock: Arc::new(SystemClock),
            store,
            keys_json: keys_json.to_string(),
            over_limit: Arc::default(),
        }
    }

    /// The same parts with the clock `offset` seconds ahead (negative: behind).
    pub fn shifted(&self, offset: i64) -> TestApp {
        TestApp {
            clock: Arc::new(OffsetClock(offset)),
            ..self.clone()
        }
    }

    /// The same parts with the clock stopped at `t` (Unix seconds).
    pub fn at(&self, t: i64) -> TestApp {
        TestApp {
            clock: Arc::new(crate::FixedClock(t)),
            ..self.clone()
        }
    }

    pub fn with_config(&self, config: Config) -> TestApp {
        TestApp {
            config,
            ..self.clone()
        }
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    pub fn keys(&self) -> KeySet {
        // The document was checked when the test built it; a bad one is a test bug.
        KeySet::from_json(&self.keys_json, self.config.access_token_alg)
            .expect("test signing key document")
    }

    /// The parts as a plain `App` with the table and keys (setup steps that write
    /// directly through the ports).
    pub fn app(&self) -> App<DynamoStore, KeySet> {
        App::new(self.config.clone())
            .with_clock(self.clock.clone())
            .with_over_limit(self.over_limit.clone())
            .with_store(self.store.clone())
            .with_keys(self.keys())
    }

    /// The mailer's state on these parts.
    /// The app of a function built with the table only (ses-events), at this app's clock.
    pub fn store_app(&self) -> App<DynamoStore> {
        App::new(self.config.clone())
            .with_clock(self.clock.clone())
            .with_store(self.store.clone())
    }

    pub fn mailer_app<M>(&self, mailer: M) -> MailerApp<DynamoStore, M> {
        App::new(self.config.clone())
            .with_clock(self.clock.clone())
            .with_over_limit(self.over_limit.clone())
            .with_store(self.store.clone())
            .with_keys(self.keys())
            .with_mailer(mailer)
    }

    /// Serves one request of `route`, as its function would.
    pub fn handle(
        &self,
        route: Route,
        req: Request,
    ) -> Pin<Box<dyn Future<Output = Response<Body>> + Send + '_>> {
        visit(route, Serve { app: self, req })
    }
}

struct Serve<'a> {
    app: &'a TestApp,
    req: Request,
}

impl<'a> VisitRoute for Serve<'a> {
    type Output = Pin<Box<dyn Future<Output = Response<Body>> + Send + 'a>>;

    fn visit<R: RouteFn>(self) -> Self::Output {
        Box::pin(async move {
            let parts = self.app;
            let app = App::new(parts.config.clone())
                .with_clock(parts.clock.clone())
                .with_over_limit(parts.over_limit.clone())
                .with_store(R::Store::from_store(parts.store.clone(), &parts.config))
                .with_keys(R::Keys::from_keys(parts.keys()));
            serve_route::<R>(&app, self.req).await
        })
    }
}
