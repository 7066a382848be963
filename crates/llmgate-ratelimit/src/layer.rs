//! [`RateLimitLayer`]: config only (the store, the global limits, the failure policy); what
//! its services share at run time is in `shared.rs`.

use std::sync::Arc;

use tower::Layer;

use crate::memory::MemoryStore;
use crate::plan::Globals;
use crate::service::RateLimit;
use crate::shared::{FailurePolicy, Shared, Stats};
use crate::store::LimiterStore;

/// Applies [`RateLimit`] to a service. See the crate docs.
#[derive(Debug, Clone)]
pub struct RateLimitLayer {
    store: Arc<dyn LimiterStore>,
    globals: Globals,
    policy: FailurePolicy,
    stats: Arc<Stats>,
}

impl RateLimitLayer {
    /// Counts in `store`.
    pub fn new(store: Arc<dyn LimiterStore>) -> Self {
        RateLimitLayer {
            store,
            globals: Globals::default(),
            policy: FailurePolicy::default(),
            stats: Arc::default(),
        }
    }

    /// Counts in this process's memory ([`MemoryStore`]).
    pub fn in_memory() -> Self {
        Self::new(Arc::new(MemoryStore::new()))
    }

    /// Requests in flight at once per caller (each key, the master key, anonymous callers
    /// together) whose key sets no `max_parallel_requests` of its own
    /// (`general_settings.max_parallel_requests`).
    #[must_use]
    pub fn max_parallel_requests(mut self, limit: Option<u64>) -> Self {
        self.globals.caller_parallel = limit;
        self
    }

    /// Requests in flight at once through this layer, whoever sends them
    /// (`general_settings.global_max_parallel_requests`).
    #[must_use]
    pub fn global_max_parallel_requests(mut self, limit: Option<u64>) -> Self {
        self.globals.global_parallel = limit;
        self
    }

    /// What to do while the store cannot answer.
    #[must_use]
    pub fn on_store_failure(mut self, policy: FailurePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The store the counters live in (readiness pings it).
    pub fn store(&self) -> &Arc<dyn LimiterStore> {
        &self.store
    }

    /// What happens to requests while the store cannot answer.
    pub fn failure_policy(&self) -> FailurePolicy {
        self.policy
    }

    /// The counters of every service this layer builds.
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> RateLimit<S> {
        RateLimit::new(
            inner,
            Arc::new(Shared {
                store: self.store.clone(),
                globals: self.globals,
                policy: self.policy,
                stats: self.stats.clone(),
            }),
        )
    }
}
