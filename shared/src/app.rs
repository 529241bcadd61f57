//! The state a function builds once per cold start, and the hub cache of a warm function.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::config::Config;
use crate::domain::jwt::KeySet;
use crate::domain::model::Hub;
use crate::errors::PortError;
use crate::ports::{Clock, Mailer, Store, SystemClock};

pub struct App {
    pub config: Config,
    pub store: Option<Arc<dyn Store>>,
    pub keys: Option<Arc<KeySet>>,
    pub mailer: Option<Arc<dyn Mailer>>,
    pub clock: Arc<dyn Clock>,
    hub_cache: Mutex<HashMap<String, (i64, Option<Hub>)>>,
}

impl App {
    pub fn new(config: Config) -> App {
        App {
            config,
            store: None,
            keys: None,
            mailer: None,
            clock: Arc::new(SystemClock),
            hub_cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn with_store(mut self, store: Arc<dyn Store>) -> App {
        self.store = Some(store);
        self
    }

    pub fn with_keys(mut self, keys: Arc<KeySet>) -> App {
        self.keys = Some(keys);
        self
    }

    pub fn with_mailer(mut self, mailer: Arc<dyn Mailer>) -> App {
        self.mailer = Some(mailer);
        self
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> App {
        self.clock = clock;
        self
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The store; a function built without one is a wiring bug, answered as a 500.
    pub fn store(&self) -> Result<&dyn Store, PortError> {
        self.store
            .as_deref()
            .ok_or_else(|| PortError::Internal("store not configured".into()))
    }

    pub fn keys(&self) -> Result<&KeySet, PortError> {
        self.keys
            .as_deref()
            .ok_or_else(|| PortError::Internal("signing keys not configured".into()))
    }

    pub fn mailer(&self) -> Result<&dyn Mailer, PortError> {
        self.mailer
            .as_deref()
            .ok_or_else(|| PortError::Internal("mailer not configured".into()))
    }

    /// Hub by slug, cached (also when absent) for `hub_cache_ttl` seconds.
    pub async fn hub_by_slug_cached(&self, slug: &str) -> Result<Option<Hub>, PortError> {
        let now = self.now();
        if let Ok(cache) = self.hub_cache.lock() {
            if let Some((at, hub)) = cache.get(slug) {
                if now - at < self.config.hub_cache_ttl {
                    return Ok(hub.clone());
                }
            }
        }
        let hub = self.store()?.hub_by_slug(slug).await?;
        if let Ok(mut cache) = self.hub_cache.lock() {
            if cache.len() > 1000 {
                cache.clear();
            }
            cache.insert(slug.to_string(), (now, hub.clone()));
        }
        Ok(hub)
    }
}
