//! Deployments' `rpm`, `tpm` and `rpd` counted in Redis (see `docs/routing.md`, "Deployment
//! limits"): the router's [`SharedUsage`] over the rate limiter's Redis store, so every
//! instance on one Redis takes from the same counters, with the same sliding window as keys'
//! limits ([`llmgate_core::window`]) in one script call a request.
//!
//! The counters, under the limiter's prefix (`llmgate:rl:` unless
//! `llmgate_rate_limit_redis_prefix`):
//!
//! ```text
//! deployment:{id}:rpm         requests in any 60 s      (a request takes 1)
//! deployment:{id}:tpm         tokens in any 60 s        (a request reserves 1, settled to its tokens)
//! deployment:{id}:rpd:{day}   requests on UTC day {day}  (days since 1970-01-01)
//! ```
//!
//! `rpd` is a 24-hour window on a key of its own per day: every request of the day stays
//! counted until the key changes at midnight UTC, so it is the day's count.

use std::sync::Arc;
use std::time::Duration;

use llmgate_core::DeploymentSpec;
use llmgate_ratelimit::{Check, Kind, LimiterStore, Settle as LimiterSettle};
use llmgate_router::{Settle, SharedError, SharedUsage, TakeFuture, Taken};

const MINUTE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(86_400);

/// [`SharedUsage`] in the rate limiter's store.
#[derive(Debug)]
pub(crate) struct LimiterUsage {
    store: Arc<dyn LimiterStore>,
}

impl LimiterUsage {
    /// Shares through `store` when it is shared itself (Redis); an in-memory store would
    /// only count twice what the router counts already.
    pub(crate) fn over(store: &Arc<dyn LimiterStore>) -> Option<Arc<dyn SharedUsage>> {
        (store.backend() != "memory").then(|| {
            Arc::new(LimiterUsage {
                store: store.clone(),
            }) as Arc<dyn SharedUsage>
        })
    }
}

fn key(d: &DeploymentSpec, limit: &str) -> Arc<str> {
    format!("deployment:{}:{limit}", d.id).into()
}

fn rate(key: Arc<str>, limit: u64, window: Duration) -> Check {
    Check {
        key,
        limit,
        kind: Kind::Rate { window, cost: 1 },
    }
}

impl SharedUsage for LimiterUsage {
    fn take(&self, d: &DeploymentSpec, day: u64) -> TakeFuture {
        let mut checks = Vec::with_capacity(3);
        let mut names = Vec::with_capacity(3);
        if let Some(rpm) = d.rpm {
            checks.push(rate(key(d, "rpm"), rpm, MINUTE));
            names.push("rpm");
        }
        if let Some(tpm) = d.tpm {
            checks.push(rate(key(d, "tpm"), tpm, MINUTE));
            names.push("tpm");
        }
        if let Some(rpd) = d.rpd {
            checks.push(rate(key(d, &format!("rpd:{day}")), rpd, DAY));
            names.push("rpd");
        }
        let acquire = self.store.acquire(&checks);
        Box::pin(async move {
            let verdict = acquire.await.map_err(|e| SharedError(e.0))?;
            Ok(match verdict.denied {
                None => Taken::Admitted { at: verdict.at },
                Some(i) => Taken::Denied {
                    limit: names.get(i).copied().unwrap_or("rpm"),
                    retry_after: verdict.states.get(i).and_then(|s| s.retry_after),
                },
            })
        })
    }

    fn settle(&self, d: &DeploymentSpec, settle: Settle) {
        let Some(tpm) = d.tpm else { return };
        let delta = i64::try_from(settle.tokens).unwrap_or(i64::MAX) - 1;
        if delta == 0 {
            return;
        }
        self.store.finish(LimiterSettle {
            lease: 0,
            at: settle.at,
            release: Vec::new(),
            adjust: vec![(key(d, "tpm"), tpm, MINUTE, delta)],
        });
    }

    fn backend(&self) -> &'static str {
        self.store.backend()
    }
}
