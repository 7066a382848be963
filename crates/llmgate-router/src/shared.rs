//! [`SharedUsage`]: where deployments' `rpm`, `tpm` and `rpd` are counted for every instance at
//! once (Redis), so that N gateways together send a provider exactly what its limits allow.
//!
//! The router counts each deployment in this instance's memory first ([`Usage`](crate::usage)),
//! which is all it does without a shared store. With one, a deployment that has a limit is also
//! taken from the shared store before the request is sent:
//!
//! ```text
//! pick (local: cooldowns, context window, local rpm/tpm/rpd)      no I/O
//!   -> deployment without rpm/tpm/rpd: send
//!   -> else SharedUsage::take                                     one round trip
//!        admitted   send; its tokens are settled when the answer ends (SharedUsage::settle)
//!        denied     undo the local take, skip the deployment here for up to a second, pick again
//!        error      send on the local decision (routing never waits for a store that is away);
//!                   counted in ModelTable::shared_errors, shown by /metrics and readiness
//! ```
//!
//! The store keeps the rules of [`llmgate_core::window`]: `rpm` and `tpm` admit no more than the
//! limit in any 60 s; `rpd` counts per UTC day (`day`, days since the epoch). `tpm` is judged
//! the way the local count judges it (a deployment whose last minute holds `tpm` tokens or more
//! is skipped): `take` reserves one token against it and [`Settle`] moves that reservation to
//! the tokens the answer really used.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use llmgate_core::DeploymentSpec;

use crate::pick::Picked;
use crate::table::ModelTable;

/// The answer of [`SharedUsage::take`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// Taken: the request may be sent. `at` is the store's time of the take, handed back in
    /// [`Settle::at`].
    Admitted {
        /// The store's time of the take (its own clock, in microseconds).
        at: u64,
    },
    /// A limit is used up across the instances; nothing was taken.
    Denied {
        /// Which, for the error message: `rpm`, `tpm` or `rpd`.
        limit: &'static str,
        /// When the store expects room again, if it knows.
        retry_after: Option<Duration>,
    },
}

/// A store that could not answer (down, timed out).
#[derive(Debug, Clone, thiserror::Error)]
#[error("shared deployment usage unavailable: {0}")]
pub struct SharedError(pub String);

/// The pending answer of [`SharedUsage::take`].
pub type TakeFuture = Pin<Box<dyn Future<Output = Result<Taken, SharedError>> + Send + 'static>>;

/// What to settle when an attempt that took from the store ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settle {
    /// The [`Taken::Admitted::at`] of the take.
    pub at: u64,
    /// Tokens the answer used (0 when it failed or was abandoned): the one token reserved
    /// against `tpm` becomes this many.
    pub tokens: u64,
}

/// Deployment counters every instance shares; see the module docs.
///
/// Rules an implementation keeps:
/// - `take` is all or nothing: either `rpm` and `rpd` (those the spec sets) are each taken one
///   request, and one token is reserved against `tpm`, or nothing is taken and the first limit
///   used up is named.
/// - Counters are keyed by the deployment's id (`DeploymentSpec::id`, the same on every
///   instance for the same config), `rpd` also by `day`.
/// - `settle` never blocks the caller; what fails is retried or counted by the store.
pub trait SharedUsage: Send + Sync + fmt::Debug + 'static {
    /// Takes one request from `d`'s `rpm` and `rpd` (for UTC day `day`) and reserves one token
    /// against its `tpm`; called only for a deployment that sets at least one of them.
    fn take(&self, d: &DeploymentSpec, day: u64) -> TakeFuture;

    /// Settles an admitted take of `d` when its attempt ends: the tokens it used against `tpm`.
    /// Called only when `d` sets `tpm`.
    fn settle(&self, d: &DeploymentSpec, settle: Settle);

    /// A short name for readiness and logs (`redis`).
    fn backend(&self) -> &'static str;
}

impl ModelTable {
    /// Counts deployments' `rpm`, `tpm` and `rpd` in `store` as well, shared with every
    /// instance on it (see [`SharedUsage`]).
    #[must_use]
    pub fn with_shared_usage(mut self, store: Arc<dyn SharedUsage>) -> Self {
        self.shared = Some(store);
        self
    }

    /// The shared store's name (`redis`), if there is one.
    pub fn shared_backend(&self) -> Option<&'static str> {
        self.shared.as_ref().map(|s| s.backend())
    }

    /// Takes from the shared store that failed, routed on this instance's counters alone.
    pub fn shared_errors(&self) -> u64 {
        self.shared_errors.load(Relaxed)
    }

    /// The store refused `picked`: undo its local take and skip it here for a moment.
    pub(crate) fn shared_denied(
        &self,
        picked: &Picked,
        limit: &'static str,
        retry_after: Option<Duration>,
    ) {
        let usage = &picked.member.state.usage;
        usage.untake_request(picked.local, picked.day);
        usage.block(self.clock.now_us(), limit, retry_after);
        tracing::debug!(deployment = %picked.member.spec.id, limit, "deployment at a shared limit");
    }

    /// The store could not answer: the local decision stands.
    pub(crate) fn shared_failed(&self, e: &SharedError) {
        let n = self.shared_errors.fetch_add(1, Relaxed);
        // The first failure, then one in a thousand: a store that is away fails every take.
        if n.is_multiple_of(1000) {
            tracing::warn!(error = %e, "deployment limits counted on this instance only until the shared store answers");
        }
    }
}
