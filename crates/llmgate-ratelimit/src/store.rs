//! [`LimiterStore`]: where the counters live (in memory, or Redis behind the `redis` feature).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// What one check counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A rate (a sliding window, see [`llmgate_core::window`]): `cost` units against `limit`
    /// per `window`.
    Rate {
        /// The window (60 s for rpm and tpm).
        window: Duration,
        /// Units this request takes (1 for a request, its estimated tokens for tpm).
        cost: u64,
    },
    /// Requests in flight: taken on admission, given back by [`LimiterStore::finish`].
    Parallel,
}

/// One limit to check for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The counter's key in the store (the store may prefix it).
    pub key: Arc<str>,
    /// The limit.
    pub limit: u64,
    /// What is counted.
    pub kind: Kind,
}

/// One check's state after [`LimiterStore::acquire`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CheckState {
    /// Units (requests, tokens, slots) still available now.
    pub remaining: u64,
    /// Time until the limit is fully replenished (zero for parallel limits).
    pub reset: Duration,
    /// For the denied check: when the same request could pass (`None`: unknown, or never, as
    /// for a cost above the limit itself).
    pub retry_after: Option<Duration>,
}

/// The answer to [`LimiterStore::acquire`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdict {
    /// One state per check, in the order given.
    pub states: Vec<CheckState>,
    /// The first check that denied the request; when set, nothing was taken.
    pub denied: Option<usize>,
    /// Identifies this request's parallel slots to the store, for [`Settle::lease`].
    pub lease: u64,
    /// When the checks were counted, in the store's clock (microseconds), for [`Settle::at`].
    pub at: u64,
}

/// What to do when a request ends: give back its parallel slots and settle its token
/// reservations with the real usage.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settle {
    /// The lease of the [`Verdict`].
    pub lease: u64,
    /// The [`Verdict::at`]: reservations given back are taken out of the granule they were
    /// counted in.
    pub at: u64,
    /// Parallel counters to give one slot back to.
    pub release: Vec<Arc<str>>,
    /// Rate counters to move by `delta` units (negative: given back): key, limit, window, delta.
    pub adjust: Vec<(Arc<str>, u64, Duration, i64)>,
}

impl Settle {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.release.is_empty() && self.adjust.is_empty()
    }
}

/// The store could not answer (Redis down, timed out). The layer applies its
/// [`FailurePolicy`](crate::FailurePolicy).
#[derive(Debug, Clone, thiserror::Error)]
#[error("rate-limit store unavailable: {0}")]
pub struct StoreError(pub String);

type BoxFuture = Pin<Box<dyn Future<Output = Result<Verdict, StoreError>> + Send + 'static>>;

/// A pending or immediate [`Verdict`]: stores that answer without I/O (memory) do not allocate.
pub enum Acquire {
    /// Already decided.
    Ready(Option<Result<Verdict, StoreError>>),
    /// Decided by I/O.
    Pending(BoxFuture),
}

impl Acquire {
    /// An answer known now.
    pub fn ready(r: Result<Verdict, StoreError>) -> Self {
        Acquire::Ready(Some(r))
    }

    /// An answer from a future.
    pub fn pending(f: impl Future<Output = Result<Verdict, StoreError>> + Send + 'static) -> Self {
        Acquire::Pending(Box::pin(f))
    }
}

impl fmt::Debug for Acquire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Acquire::Ready(r) => f.debug_tuple("Ready").field(r).finish(),
            Acquire::Pending(_) => f.write_str("Pending"),
        }
    }
}

impl Future for Acquire {
    type Output = Result<Verdict, StoreError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Acquire::Ready(r) => Poll::Ready(
                r.take()
                    .unwrap_or_else(|| Err(StoreError("acquire polled twice".into()))),
            ),
            Acquire::Pending(f) => f.as_mut().poll(cx),
        }
    }
}

/// Where the limiter's counters live.
///
/// Rules every store keeps (the shared suite in this crate's tests checks them on each backend):
/// - `acquire` is all or nothing: either every check passes and all are taken, or the first
///   failing one is reported in [`Verdict::denied`] and nothing is taken (a store may briefly
///   hold a slot while undoing, so it can deny too much, never admit too much).
/// - Rates follow [`llmgate_core::window`]: never more than `limit` in any span of `window`;
///   counters expire once idle.
/// - `finish` never blocks the caller: a store that needs I/O does it in the background, and
///   counts and logs what fails.
pub trait LimiterStore: Send + Sync + fmt::Debug + 'static {
    /// Checks `checks` together and takes them all, or none.
    fn acquire(&self, checks: &[Check]) -> Acquire;

    /// Gives back parallel slots and settles token reservations (see [`Settle`]).
    fn finish(&self, settle: Settle);

    /// Settlements handed to [`LimiterStore::finish`] and not yet applied (a store that applies
    /// them at once always answers 0). For graceful shutdown, and for tests.
    fn unsettled(&self) -> usize {
        0
    }

    /// Whether the store answers now, for readiness. A store without I/O always does.
    fn ping(&self) -> Ping {
        Box::pin(std::future::ready(Ok(())))
    }

    /// A short name for readiness and logs (`memory`, `redis`).
    fn backend(&self) -> &'static str {
        "memory"
    }

    /// What the store counted about its own faults and repairs, for metrics.
    fn counters(&self) -> StoreCounters {
        StoreCounters::default()
    }
}

/// A store's own counters (all zero for a store without I/O).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreCounters {
    /// Parallel slots freed by the store rather than by their request's release: leases that
    /// expired (an instance died, or a release was lost) and releases sent again after a fault.
    pub slots_reclaimed: u64,
    /// Releases and settlements that could not be sent when their request ended (queued and
    /// sent again once the store answers).
    pub settlements_failed: u64,
    /// Settlements given up on (the retry queue was full, or the store never came back
    /// within the lease); their slots free themselves when the lease ends.
    pub settlements_lost: u64,
}

/// The answer of [`LimiterStore::ping`].
pub type Ping = Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'static>>;
