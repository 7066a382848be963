use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use llmgate_core::Endpoint;
use tower::Layer;

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

/// Resolves the model name a client sent to its model group (aliases followed), so requests
/// for an alias and for its group share entries. `None` keeps the name as sent.
pub type GroupResolver = Arc<dyn Fn(&str) -> Option<Arc<str>> + Send + Sync>;

/// Applies [`Cache`] to a service. See the crate docs.
#[derive(Clone)]
pub struct CacheLayer {
    pub(crate) store: Arc<dyn CacheStore>,
    pub(crate) ttl: Duration,
    pub(crate) mode: Mode,
    pub(crate) endpoints: [bool; 3],
    pub(crate) namespace: Option<Arc<str>>,
    pub(crate) per_key: bool,
    pub(crate) max_entry_bytes: usize,
    pub(crate) group: Option<GroupResolver>,
}

impl fmt::Debug for CacheLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheLayer")
            .field("store", &self.store)
            .field("ttl", &self.ttl)
            .field("mode", &self.mode)
            .field("endpoints", &self.endpoints)
            .field("namespace", &self.namespace)
            .field("per_key", &self.per_key)
            .field("max_entry_bytes", &self.max_entry_bytes)
            .finish_non_exhaustive()
    }
}

impl CacheLayer {
    /// A cache over `store`: on for every endpoint, [`DEFAULT_TTL`], no namespace, entries
    /// shared by all callers.
    pub fn new(store: Arc<dyn CacheStore>) -> Self {
        CacheLayer {
            store,
            ttl: DEFAULT_TTL,
            mode: Mode::DefaultOn,
            endpoints: [true; 3],
            namespace: None,
            per_key: false,
            max_entry_bytes: DEFAULT_MAX_ENTRY_BYTES,
            group: None,
        }
    }

    /// How long answers are kept unless a request asks otherwise (`cache_params.ttl`).
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// When the cache applies (`cache_params.mode`).
    #[must_use]
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Caches only these endpoints (`cache_params.supported_call_types`).
    #[must_use]
    pub fn endpoints(mut self, endpoints: &[Endpoint]) -> Self {
        self.endpoints = [false; 3];
        for e in endpoints {
            self.endpoints[index(*e)] = true;
        }
        self
    }

    /// Keeps entries under this namespace (`cache_params.namespace`); a request's
    /// `cache.namespace` overrides it.
    #[must_use]
    pub fn namespace(mut self, namespace: Option<&str>) -> Self {
        self.namespace = namespace.filter(|n| !n.is_empty()).map(Arc::from);
        self
    }

    /// Keeps separate entries per virtual key: a key never reads an answer another key's
    /// request stored. Off by default (entries are shared by every caller).
    #[must_use]
    pub fn per_key(mut self, per_key: bool) -> Self {
        self.per_key = per_key;
        self
    }

    /// Answers larger than this many bytes are not stored.
    #[must_use]
    pub fn max_entry_bytes(mut self, bytes: usize) -> Self {
        self.max_entry_bytes = bytes;
        self
    }

    /// How to find a requested model's group (see [`GroupResolver`]).
    #[must_use]
    pub fn model_group(mut self, resolve: GroupResolver) -> Self {
        self.group = Some(resolve);
        self
    }

    /// The store's kind (`local`, `redis`).
    pub fn store_kind(&self) -> &'static str {
        self.store.kind()
    }

    /// The store (readiness pings it).
    pub fn store(&self) -> &Arc<dyn CacheStore> {
        &self.store
    }

    pub(crate) fn caches(&self, e: Endpoint) -> bool {
        self.endpoints[index(e)]
    }
}

fn index(e: Endpoint) -> usize {
    match e {
        Endpoint::ChatCompletions => 0,
        Endpoint::Completions => 1,
        Endpoint::Embeddings => 2,
    }
}

impl<S> Layer<S> for CacheLayer {
    type Service = Cache<S>;

    fn layer(&self, inner: S) -> Cache<S> {
        Cache::new(inner, Arc::new(self.clone()))
    }
}
