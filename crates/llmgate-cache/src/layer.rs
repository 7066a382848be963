//! [`CacheLayer`]: config only (the store, TTL, mode, endpoints, namespace, per-key entries);
//! what its services share at run time is `plan.rs`'s `Settings`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use llmgate_core::Endpoint;
use tower::Layer;

pub use crate::plan::GroupResolver;
use crate::plan::{index, Settings};
use crate::service::Cache;
use crate::store::CacheStore;

/// LiteLLM's default TTL for cached answers (its in-memory cache's `default_ttl`).
pub const DEFAULT_TTL: Duration = Duration::from_secs(600);

/// Answers larger than this are not stored (LiteLLM's `max_size_per_item`: 1024 KB).
pub const DEFAULT_MAX_ENTRY_BYTES: usize = 1024 * 1024;

/// When the cache applies (`cache_params.mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// Every request of a supported type uses the cache unless it opts out (`default_on`).
    #[default]
    DefaultOn,
    /// Only requests that opt in with `cache: {"use-cache": true}` use it (`default_off`).
    DefaultOff,
}

/// Applies [`Cache`] to a service. See the crate docs.
#[derive(Clone)]
pub struct CacheLayer {
    settings: Settings,
    mode: Mode,
}

impl fmt::Debug for CacheLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheLayer")
            .field("mode", &self.mode)
            .field("settings", &self.settings)
            .finish()
    }
}

impl CacheLayer {
    /// A cache over `store`: on for every endpoint, [`DEFAULT_TTL`], no namespace, entries
    /// shared by all callers.
    pub fn new(store: Arc<dyn CacheStore>) -> Self {
        CacheLayer {
            settings: Settings {
                store,
                ttl: DEFAULT_TTL,
                opt_in: false,
                endpoints: [true; 3],
                namespace: None,
                per_key: false,
                max_entry_bytes: DEFAULT_MAX_ENTRY_BYTES,
                group: None,
            },
            mode: Mode::DefaultOn,
        }
    }

    /// How long answers are kept unless a request asks otherwise (`cache_params.ttl`).
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.settings.ttl = ttl;
        self
    }

    /// When the cache applies (`cache_params.mode`).
    #[must_use]
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self.settings.opt_in = mode == Mode::DefaultOff;
        self
    }

    /// Caches only these endpoints (`cache_params.supported_call_types`).
    #[must_use]
    pub fn endpoints(mut self, endpoints: &[Endpoint]) -> Self {
        self.settings.endpoints = [false; 3];
        for e in endpoints {
            self.settings.endpoints[index(*e)] = true;
        }
        self
    }

    /// Keeps entries under this namespace (`cache_params.namespace`); a request's
    /// `cache.namespace` overrides it.
    #[must_use]
    pub fn namespace(mut self, namespace: Option<&str>) -> Self {
        self.settings.namespace = namespace.filter(|n| !n.is_empty()).map(Arc::from);
        self
    }

    /// Keeps separate entries per virtual key: a key never reads an answer another key's
    /// request stored. Off by default (entries are shared by every caller).
    #[must_use]
    pub fn per_key(mut self, per_key: bool) -> Self {
        self.settings.per_key = per_key;
        self
    }

    /// Answers larger than this many bytes are not stored.
    #[must_use]
    pub fn max_entry_bytes(mut self, bytes: usize) -> Self {
        self.settings.max_entry_bytes = bytes;
        self
    }

    /// How to find a requested model's group (see [`GroupResolver`]).
    #[must_use]
    pub fn model_group(mut self, resolve: GroupResolver) -> Self {
        self.settings.group = Some(resolve);
        self
    }

    /// The store's kind (`local`, `redis`).
    pub fn store_kind(&self) -> &'static str {
        self.settings.store.kind()
    }

    /// The store (readiness pings it).
    pub fn store(&self) -> &Arc<dyn CacheStore> {
        &self.settings.store
    }
}

impl<S> Layer<S> for CacheLayer {
    type Service = Cache<S>;

    fn layer(&self, inner: S) -> Cache<S> {
        Cache {
            inner,
            config: Arc::new(self.settings.clone()),
        }
    }
}

impl<S> Cache<S> {
    /// Wraps `inner` in the cache `config` describes.
    pub fn new(inner: S, config: Arc<CacheLayer>) -> Self {
        Cache {
            inner,
            config: Arc::new(config.settings.clone()),
        }
    }
}
