//! [`SharedDedup`]: deduplication across instances. With one (the facade's is Redis, `SET key
//! NX PX ttl`), an alert that passed this instance's own dedup is sent only if this instance
//! is the first to claim its key within its TTL; the others count it `deduplicated`. A claim
//! that fails (the store away, no answer within [`CLAIM_TIMEOUT`]) fails open: the alert is
//! sent, and the failure counted ([`crate::Alerting::shared_errors`]).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// How long the dispatcher waits for a claim before it sends the alert anyway.
pub const CLAIM_TIMEOUT: Duration = Duration::from_millis(500);

/// A boxed future of a [`SharedDedup`] call.
pub type DedupFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// Claims alert keys across instances. Called only by the dispatcher's task, never on a
/// request's way.
pub trait SharedDedup: Send + Sync {
    /// `true` when this instance is the first to claim `key` within `ttl` (it sends the
    /// alert), `false` when another did.
    fn claim(&self, key: &str, ttl: Duration) -> DedupFuture<'_, bool>;

    /// Forgets `key` (a recovery clears its outage's key, so the next outage is sent at once).
    fn clear(&self, key: &str) -> DedupFuture<'_, ()>;
}
