use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tower::Layer;

use crate::memory::MemoryStore;
use crate::plan::Globals;
use crate::service::RateLimit;
use crate::store::LimiterStore;

/// What happens to requests while the store cannot answer (Redis down or timing out).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Admit them unlimited (the default): the gateway keeps serving. Each one is counted in
    /// [`Stats::failed_open`] and logged (at most once a second).
    #[default]
    Open,
    /// Refuse them with a 503 (`rate_limiter_unavailable`, `Retry-After: 1`): no request
    /// passes unmetered. Counted in [`Stats::failed_closed`] and logged.
    Closed,
}

/// What the limiter counted, for metrics and tests.
#[derive(Debug, Default)]
pub struct Stats {
    pub(crate) denied: AtomicU64,
    pub(crate) failed_open: AtomicU64,
    pub(crate) failed_closed: AtomicU64,
    pub(crate) last_log_ms: AtomicU64,
}

impl Stats {
    /// Requests answered with a 429.
    pub fn denied(&self) -> u64 {
        self.denied.load(Ordering::Relaxed)
    }
    /// Requests admitted without a check because the store failed ([`FailurePolicy::Open`]).
    pub fn failed_open(&self) -> u64 {
        self.failed_open.load(Ordering::Relaxed)
    }
    /// Requests refused because the store failed ([`FailurePolicy::Closed`]).
    pub fn failed_closed(&self) -> u64 {
        self.failed_closed.load(Ordering::Relaxed)
    }
    /// Store failures, under either policy.
    pub fn store_errors(&self) -> u64 {
        self.failed_open() + self.failed_closed()
    }
}

/// Applies [`RateLimit`] to a service. See the crate docs.
#[derive(Debug, Clone)]
pub struct RateLimitLayer {
    store: Arc<dyn LimiterStore>,
    globals: Globals,
    policy: FailurePolicy,
    stats: Arc<Stats>,
}

pub(crate) struct Shared {
    pub(crate) store: Arc<dyn LimiterStore>,
    pub(crate) globals: Globals,
    pub(crate) policy: FailurePolicy,
    pub(crate) stats: Arc<Stats>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("store", &self.store)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
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
