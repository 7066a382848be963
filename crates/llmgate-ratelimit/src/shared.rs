//! What every service of one [`RateLimitLayer`](crate::RateLimitLayer) shares at run time:
//! the store, the global limits, the failure policy and the counters ([`Stats`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::plan::Globals;
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

/// The runtime state one layer's services share (built by the layer, one `Arc` per service).
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
