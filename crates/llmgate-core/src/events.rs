//! The events bus: typed facts the layers emit (a deployment cooled down or recovered, a group
//! with no healthy deployment, a budget threshold, a daily quota nearly used, a backend down or
//! up), for alerting, the UI and metrics to subscribe to.
//!
//! Rules every emitter can rely on:
//! - **Emitting never blocks and never fails.** [`Events::emit`] hands the event to a bounded
//!   broadcast channel ([`DEFAULT_CAPACITY`] events); a subscriber that falls that far behind
//!   loses the oldest events, counted in [`Events::dropped`] (`llmgate_events_dropped_total`).
//! - **Zero cost when nobody listens.** The event is built by a closure that runs only while a
//!   [`Subscription`] exists; [`Events::none`] (the default) has no channel at all.
//! - **No global.** A layer gets its `Events` handle through its settings, from the facade.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use llmgate_core::events::{Event, Events};
//! let events = Events::new();
//! let mut sub = events.subscribe().unwrap();
//! events.emit(|| Event::GroupOutage { group: "gpt".into(), deployments: 2 });
//! assert!(matches!(&*sub.recv().await.unwrap(), Event::GroupOutage { .. }));
//! # }
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

/// Events a subscriber may fall behind by before it loses the oldest.
pub const DEFAULT_CAPACITY: usize = 1024;

/// A backend the gateway depends on, for [`Event::BackendDown`] and [`Event::BackendUp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// The spend writer's sink (the database, for spend records).
    SpendWriter,
    /// The key database.
    Database,
    /// Redis (rate limits, cooldowns, budgets, cache).
    Redis,
}

impl Backend {
    /// `spend_writer`, `database`, `redis`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::SpendWriter => "spend_writer",
            Backend::Database => "database",
            Backend::Redis => "redis",
        }
    }
}

/// Whose budget an [`Event::BudgetThreshold`], [`Event::BudgetExhausted`] or
/// [`Event::SoftBudgetCrossed`] is about.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BudgetOwner {
    /// The key's token (SHA-256 of its secret), never the secret; for a team's or an end
    /// user's budget, `team:<id>` or `end_user:<id>` (one name per budget, for deduplication).
    pub token: String,
    /// The key's alias.
    pub key_alias: Option<String>,
    /// The key's team (the team, for a team's budget).
    pub team_id: Option<String>,
    /// The key's user.
    pub user_id: Option<String>,
    /// Whose budget: a key's (the default), a team's or an end user's.
    pub of: BudgetOf,
    /// The end user, for an end user's budget.
    pub end_user: Option<String>,
}

/// Whose budget a [`BudgetOwner`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BudgetOf {
    /// A virtual key's.
    #[default]
    Key,
    /// A team's (all its keys together).
    Team,
    /// An end user's (the `user` requests name).
    EndUser,
}

/// One deployment's line in an [`Event::DailyReport`].
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRow {
    /// The model group.
    pub group: Arc<str>,
    /// The deployment.
    pub deployment: Arc<str>,
    /// Attempts sent to it in the period.
    pub requests: u64,
    /// Its own failures in the period.
    pub failures: u64,
    /// Its answers' mean latency in the period (time to first byte for streams), if any.
    pub avg_latency: Option<Duration>,
}

/// One fact a layer saw. Names are model group names and deployment ids as configured.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A deployment was taken out of rotation after its own failures.
    DeploymentCooledDown {
        /// Its model group.
        group: Arc<str>,
        /// Its id.
        deployment: Arc<str>,
        /// Why (`rate limited`, `failing`, `misconfigured (auth or model id)`).
        reason: &'static str,
        /// The HTTP status of the failure that tipped it.
        status: u16,
        /// How long it is out.
        cooldown: Duration,
    },
    /// A deployment that had been cooled down answered again.
    DeploymentRecovered {
        /// Its model group.
        group: Arc<str>,
        /// Its id.
        deployment: Arc<str>,
    },
    /// A model group had no deployment to send a request to (every one cooling down or at a
    /// limit).
    GroupOutage {
        /// The group.
        group: Arc<str>,
        /// How many deployments it has.
        deployments: usize,
    },
    /// A group after an [`Event::GroupOutage`] answered again.
    GroupRecovered {
        /// The group.
        group: Arc<str>,
    },
    /// A provider answered 429.
    UpstreamRateLimited {
        /// The model group.
        group: Arc<str>,
        /// The deployment that answered 429.
        deployment: Arc<str>,
    },
    /// A request moved from one model group to a fallback group.
    Fallback {
        /// The group that failed.
        from: Arc<str>,
        /// The group tried next.
        to: Arc<str>,
    },
    /// A response took longer than the slow-response threshold.
    SlowResponse {
        /// The model group.
        group: Arc<str>,
        /// The deployment.
        deployment: Arc<str>,
        /// How long the answer (a stream: until its end) took.
        latency: Duration,
    },
    /// A request (or stream) still running after the hanging threshold (`alerting_threshold`),
    /// told once per attempt.
    RequestHanging {
        /// The model group.
        group: Arc<str>,
        /// The deployment it waits on.
        deployment: Arc<str>,
        /// The caller's key alias, when it used a virtual key with one.
        key_alias: Option<String>,
        /// The request's id.
        request_id: Option<Arc<str>>,
        /// Whether it is a stream (still streaming, or waiting for its first byte).
        stream: bool,
        /// How long it had been running when seen.
        elapsed: Duration,
        /// The threshold it crossed.
        threshold: Duration,
    },
    /// The periodic report on deployments (`daily_reports`): the slowest and the most failing.
    DailyReport {
        /// The period it covers.
        period: Duration,
        /// Up to five deployments with the highest mean latency, slowest first.
        slowest: Vec<ReportRow>,
        /// Up to five deployments with failures, the highest failure rate first.
        failing: Vec<ReportRow>,
        /// This report's number since start (from 1).
        seq: u64,
    },
    /// A key's spend crossed a share of its budget (below 100 %).
    BudgetThreshold {
        /// Whose budget.
        owner: BudgetOwner,
        /// The share crossed, in percent (80 by default).
        percent: u8,
        /// Spend in the period, USD.
        spend: f64,
        /// The budget, USD.
        max: f64,
    },
    /// A key's spend reached its budget.
    BudgetExhausted {
        /// Whose budget.
        owner: BudgetOwner,
        /// Spend in the period, USD.
        spend: f64,
        /// The budget, USD.
        max: f64,
    },
    /// A key's (or a team's or end user's) spend crossed its `soft_budget` (told, never
    /// refused).
    SoftBudgetCrossed {
        /// Whose budget.
        owner: BudgetOwner,
        /// Spend in the period, USD.
        spend: f64,
        /// The soft budget, USD.
        soft_budget: f64,
    },
    /// A deployment used most of its requests per day (`rpd`).
    DailyQuotaNearlyUsed {
        /// The model group.
        group: Arc<str>,
        /// The deployment.
        deployment: Arc<str>,
        /// Requests taken today (UTC).
        used: u64,
        /// Its `rpd`.
        limit: u64,
    },
    /// A backend failed.
    BackendDown {
        /// Which.
        backend: Backend,
        /// The error, shortened.
        error: String,
    },
    /// A backend that had failed answers again.
    BackendUp {
        /// Which.
        backend: Backend,
    },
}

/// The shared channel behind an [`Events`] handle.
#[derive(Debug)]
struct Bus {
    tx: broadcast::Sender<Arc<Event>>,
    dropped: Arc<AtomicU64>,
}

/// A handle to emit events on (cheap to clone). See the module docs.
#[derive(Debug, Clone, Default)]
pub struct Events {
    bus: Option<Arc<Bus>>,
}

impl Events {
    /// A bus holding up to [`DEFAULT_CAPACITY`] events per subscriber.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }

    /// A bus holding up to `capacity` events per subscriber (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Events {
            bus: Some(Arc::new(Bus {
                tx,
                dropped: Arc::default(),
            })),
        }
    }

    /// No bus: every emit is a no-op.
    pub fn none() -> Self {
        Events { bus: None }
    }

    /// Whether anyone listens now.
    pub fn is_heard(&self) -> bool {
        self.bus.as_ref().is_some_and(|b| b.tx.receiver_count() > 0)
    }

    /// Emits the event `make` builds, if anyone listens; never waits.
    pub fn emit(&self, make: impl FnOnce() -> Event) {
        if let Some(bus) = self.bus.as_ref().filter(|b| b.tx.receiver_count() > 0) {
            // Fails only when the last subscriber went away meanwhile: nobody to tell.
            let _ = bus.tx.send(Arc::new(make()));
        }
    }

    /// A new subscription, receiving every event emitted from now on (`None` for
    /// [`Events::none`]).
    pub fn subscribe(&self) -> Option<Subscription> {
        self.bus.as_ref().map(|b| Subscription {
            rx: b.tx.subscribe(),
            dropped: b.dropped.clone(),
        })
    }

    /// Events subscribers lost by falling behind, since start.
    pub fn dropped(&self) -> u64 {
        self.bus
            .as_ref()
            .map_or(0, |b| b.dropped.load(Ordering::Relaxed))
    }
}

/// One subscriber's stream of events.
#[derive(Debug)]
pub struct Subscription {
    rx: broadcast::Receiver<Arc<Event>>,
    dropped: Arc<AtomicU64>,
}

impl Subscription {
    /// The next event; `None` once every [`Events`] handle is gone. Events lost by falling
    /// behind are counted and skipped.
    pub async fn recv(&mut self) -> Option<Arc<Event>> {
        loop {
            match self.rx.recv().await {
                Ok(e) => return Some(e),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    self.dropped.fetch_add(n, Ordering::Relaxed);
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outage(n: usize) -> Event {
        Event::GroupOutage {
            group: "g".into(),
            deployments: n,
        }
    }

    #[tokio::test]
    async fn nothing_is_built_without_a_subscriber() {
        let events = Events::new();
        events.emit(|| unreachable!("built without a subscriber"));
        Events::none().emit(|| unreachable!("built without a bus"));
        assert!(Events::none().subscribe().is_none());
    }

    #[tokio::test]
    async fn a_full_queue_drops_the_oldest_and_counts_them() {
        let events = Events::with_capacity(2);
        let mut sub = events.subscribe().unwrap();
        for n in 0..5 {
            events.emit(|| outage(n));
        }
        assert_eq!(*sub.recv().await.unwrap(), outage(3));
        assert_eq!(events.dropped(), 3);
        assert_eq!(*sub.recv().await.unwrap(), outage(4));
        drop(events);
        assert!(sub.recv().await.is_none(), "ends with the last handle");
    }
}
