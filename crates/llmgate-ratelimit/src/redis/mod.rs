//! [`RedisStore`]: counters in Redis, so that every gateway instance sharing it together admits
//! exactly the limit.
//!
//! Each check is one `EVALSHA` of a Lua script (one round trip, atomic on the server, see
//! `scripts.rs`): it reads every counter the request touches, decides with the sliding window
//! of [`llmgate_core::window`] on the Redis server's clock, and writes them all only when every
//! one admits. Rate counters are a hash of granules that expires once the window is empty;
//! parallel counters are a sorted set of the requests in flight, each scored with the end of a
//! short lease ([`RedisConfig::parallel_lease`], 20 s by default).
//!
//! **Leases that heal.** One background task per store (the keeper, started on first use)
//! renews the leases of this instance's requests still in flight, all in one script call every
//! quarter lease, and sends again the settlements (slots given back, tokens settled) that
//! failed while Redis was away, every half second until Redis takes them. So a slot whose
//! release was lost is freed within a second or two of Redis answering again, and at the
//! latest when its lease ends (no instance renews it: its request ended, or its instance
//! died). A request still running when Redis has been away longer than the lease loses its
//! slot (it is not added back: that could resurrect a slot released meanwhile) and stops
//! counting until it ends.
//!
//! The connection is opened on first use (a `redis-rs` `ConnectionManager`, which reconnects).
//! After a failure, checks fail at once for a second instead of each waiting for a timeout;
//! the layer's [`FailurePolicy`](crate::FailurePolicy) decides what a failed check means. Redis
//! Cluster is not supported (a request's keys are in different hash slots).

mod keeper;
mod scripts;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dashmap::DashMap;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script};
use tokio::sync::OnceCell;

use crate::store::{
    Acquire, Check, CheckState, Kind, LimiterStore, Settle, StoreCounters, StoreError, Verdict,
};

/// Seconds subtracted from the Redis clock so microsecond times stay small enough for exact
/// Lua (double) arithmetic: 2023-11-14.
const EPOCH_S: u64 = 1_700_000_000;

/// How long checks fail fast after Redis failed.
const BACKOFF: Duration = Duration::from_secs(1);

/// Settlements kept for sending again while Redis is away; beyond this they are counted lost
/// (their slots free themselves when their lease ends).
const MAX_QUEUED: usize = 100_000;

/// Where and how to reach Redis.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://[:password@]host:port[/db]`.
    pub url: String,
    /// Prepended to every key (default `llmgate:rl:`).
    pub prefix: String,
    /// Connect and response timeout (default 500 ms).
    pub timeout: Duration,
    /// How long a parallel slot lasts unless its instance renews it (default 20 s). The keeper
    /// renews the slots of requests in flight every quarter of it; a slot nobody renews (its
    /// release lost, its instance gone) frees itself at the latest this long after the last
    /// renewal.
    pub parallel_lease: Duration,
}

impl RedisConfig {
    /// Defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            prefix: "llmgate:rl:".into(),
            timeout: Duration::from_millis(500),
            parallel_lease: Duration::from_secs(20),
        }
    }
}

/// Counters in Redis; see the module docs.
#[derive(Debug)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: Client,
    config: RedisConfig,
    conn: OnceCell<ConnectionManager>,
    acquire: Script,
    settle: Script,
    renew: Script,
    instance: u64,
    leases: AtomicU64,
    /// Unix ms until which checks fail fast.
    down_until_ms: AtomicU64,
    /// This instance's parallel slots in flight: lease → the counters' full keys.
    held: DashMap<u64, Vec<String>>,
    /// Settlements that failed, oldest first, sent again by the keeper.
    queued: Mutex<VecDeque<Settle>>,
    keeper: AtomicBool,
    unsettled: AtomicUsize,
    slots_reclaimed: AtomicU64,
    settlements_failed: AtomicU64,
    settlements_lost: AtomicU64,
    /// Unix ms of the last settlement warning (at most one a second).
    last_warn_ms: AtomicU64,
}

impl RedisStore {
    /// A store for `config`. Checks the URL now; connects on first use (inside a runtime).
    pub fn new(config: RedisConfig) -> Result<Self, StoreError> {
        let client = Client::open(config.url.as_str())
            .map_err(|e| StoreError(format!("invalid Redis URL: {e}")))?;
        Ok(RedisStore {
            inner: Arc::new(Inner {
                client,
                config,
                conn: OnceCell::new(),
                acquire: Script::new(scripts::ACQUIRE),
                settle: Script::new(scripts::SETTLE),
                renew: Script::new(scripts::RENEW),
                instance: fastrand::u64(..),
                leases: AtomicU64::new(0),
                down_until_ms: AtomicU64::new(0),
                held: DashMap::new(),
                queued: Mutex::new(VecDeque::new()),
                keeper: AtomicBool::new(false),
                unsettled: AtomicUsize::new(0),
                slots_reclaimed: AtomicU64::new(0),
                settlements_failed: AtomicU64::new(0),
                settlements_lost: AtomicU64::new(0),
                last_warn_ms: AtomicU64::new(0),
            }),
        })
    }

    /// Settlements given up on (see [`StoreCounters::settlements_lost`]).
    pub fn lost_settlements(&self) -> u64 {
        self.inner.settlements_lost.load(Ordering::Relaxed)
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Inner {
    async fn conn(&self) -> Result<ConnectionManager, StoreError> {
        if self.failing_fast() {
            return Err(StoreError("Redis failed less than a second ago".into()));
        }
        self.manager().await
    }

    /// The connection, even while checks fail fast (for the keeper's probe).
    async fn manager(&self) -> Result<ConnectionManager, StoreError> {
        let conn = self
            .conn
            .get_or_try_init(|| async {
                let cfg = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.config.timeout))
                    .set_response_timeout(Some(self.config.timeout))
                    .set_number_of_retries(1);
                self.client.get_connection_manager_with_config(cfg).await
            })
            .await
            .map_err(|e| self.failed(e))?;
        Ok(conn.clone())
    }

    /// Whether checks fail fast now (Redis failed less than [`BACKOFF`] ago).
    fn failing_fast(&self) -> bool {
        unix_ms() < self.down_until_ms.load(Ordering::Relaxed)
    }

    fn failed(&self, e: redis::RedisError) -> StoreError {
        tracing::debug!(error = %e, kind = ?e.kind(), io = e.is_io_error(), "rate-limit Redis call failed");
        self.down_until_ms
            .store(unix_ms() + BACKOFF.as_millis() as u64, Ordering::Relaxed);
        StoreError(e.to_string())
    }

    fn member(&self, lease: u64) -> String {
        format!("{:016x}:{lease}", self.instance)
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.config.prefix)
    }

    async fn acquire(self: Arc<Self>, checks: Vec<Check>) -> Result<Verdict, StoreError> {
        keeper::ensure(&self);
        let mut conn = self.conn().await?;
        let lease = self.leases.fetch_add(1, Ordering::Relaxed);
        let mut inv = self.acquire.prepare_invoke();
        inv.arg(EPOCH_S)
            .arg(self.member(lease))
            .arg(self.config.parallel_lease.as_micros() as u64);
        for c in &checks {
            inv.key(self.key(&c.key));
            match c.kind {
                Kind::Rate { window, cost } => inv
                    .arg("r")
                    .arg(c.limit)
                    .arg(window.as_micros() as u64)
                    .arg(cost),
                Kind::Parallel => inv.arg("p").arg(c.limit).arg(0).arg(1),
            };
        }
        let out: Vec<i64> = match inv.invoke_async(&mut conn).await {
            Ok(out) => out,
            Err(e) => {
                if e.is_timeout() || e.is_connection_dropped() {
                    self.release_unknown(lease, &checks);
                }
                return Err(self.failed(e));
            }
        };
        let verdict = verdict(&out, checks.len(), lease)?;
        self.slots_reclaimed
            .fetch_add(out[2].max(0) as u64, Ordering::Relaxed);
        if verdict.denied.is_none() {
            let parallel: Vec<String> = checks
                .iter()
                .filter(|c| c.kind == Kind::Parallel)
                .map(|c| self.key(&c.key))
                .collect();
            if !parallel.is_empty() {
                self.held.insert(lease, parallel);
            }
        }
        Ok(verdict)
    }

    /// A check whose answer was lost (timed out, connection dropped) may still have run, or
    /// run later (a stalled connection delivers it when it resumes), taking parallel slots that
    /// nobody holds: their release is queued like a failed settlement, so they are freed once
    /// Redis answers instead of when their lease ends. Removing a slot that was never taken
    /// does nothing.
    fn release_unknown(&self, lease: u64, checks: &[Check]) {
        let release: Vec<Arc<str>> = checks
            .iter()
            .filter(|c| c.kind == Kind::Parallel)
            .map(|c| c.key.clone())
            .collect();
        if !release.is_empty() {
            self.enqueue(Settle {
                lease,
                release,
                ..Settle::default()
            });
        }
    }

    /// Sends one settlement; returns the slots it released.
    async fn send(&self, settle: &Settle) -> Result<u64, StoreError> {
        let mut conn = self.conn().await?;
        let mut inv = self.settle.prepare_invoke();
        inv.arg(EPOCH_S)
            .arg(self.member(settle.lease))
            .arg(settle.adjust.len())
            .arg(settle.at);
        for (key, limit, window, delta) in &settle.adjust {
            inv.key(self.key(key))
                .arg(*limit)
                .arg(window.as_micros() as u64)
                .arg(*delta);
        }
        for key in &settle.release {
            inv.key(self.key(key));
        }
        let freed: i64 = inv
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(freed.max(0) as u64)
    }

    async fn settle(self: Arc<Self>, settle: Settle) {
        if let Err(e) = self.send(&settle).await {
            let n = self.settlements_failed.fetch_add(1, Ordering::Relaxed) + 1;
            if self.may_warn() {
                tracing::warn!(error = %e, failed = n, "rate-limit settlement failed: Redis unavailable; sent again when it answers");
            }
            self.enqueue(settle);
        }
        self.unsettled.fetch_sub(1, Ordering::AcqRel);
    }

    /// Queues a settlement that failed, to be sent again. A call that timed out may still
    /// run on Redis later (a stalled connection delivers it when it resumes), so only what is
    /// safe to apply twice is sent again: slot releases (removing a member twice is removing
    /// it once) and tokens used beyond a reservation (counted twice is counted too much, never
    /// too little). Unused tokens are not given back again: the reservation stays counted until
    /// it leaves the window.
    fn enqueue(&self, mut settle: Settle) {
        settle.adjust.retain(|a| a.3 > 0);
        if settle.is_empty() {
            return;
        }
        let mut q = self.queued.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() >= MAX_QUEUED {
            let n = self.settlements_lost.fetch_add(1, Ordering::Relaxed) + 1;
            if self.may_warn() {
                tracing::warn!(lost = n, "rate-limit settlement lost: retry queue full; its slots free themselves when their lease ends");
            }
            return;
        }
        q.push_back(settle);
    }

    /// Whether a warning may be logged now (at most one a second).
    fn may_warn(&self) -> bool {
        let now = unix_ms();
        let last = self.last_warn_ms.load(Ordering::Relaxed);
        now.saturating_sub(last) >= 1000
            && self
                .last_warn_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    fn queued(&self) -> usize {
        self.queued.lock().map_or(0, |q| q.len())
    }
}

/// Reads the ACQUIRE script's answer (see `scripts::ACQUIRE`).
fn verdict(out: &[i64], checks: usize, lease: u64) -> Result<Verdict, StoreError> {
    let bad = || StoreError("unexpected answer from the rate-limit script".into());
    let (head, rest) = (out.get(..3).ok_or_else(bad)?, &out[3..]);
    let states = rest
        .chunks_exact(3)
        .map(|s| CheckState {
            remaining: s[0].max(0) as u64,
            reset: Duration::from_micros(s[1].max(0) as u64),
            retry_after: (s[2] >= 0).then(|| Duration::from_micros(s[2] as u64)),
        })
        .collect::<Vec<_>>();
    if states.len() != checks {
        return Err(bad());
    }
    Ok(Verdict {
        states,
        denied: usize::try_from(head[0])
            .ok()
            .filter(|d| *d > 0)
            .map(|d| d - 1),
        lease,
        at: head[1].max(0) as u64,
    })
}

impl LimiterStore for RedisStore {
    fn acquire(&self, checks: &[Check]) -> Acquire {
        Acquire::pending(self.inner.clone().acquire(checks.to_vec()))
    }

    fn finish(&self, settle: Settle) {
        if !settle.release.is_empty() {
            self.inner.held.remove(&settle.lease);
        }
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                self.inner.unsettled.fetch_add(1, Ordering::AcqRel);
                rt.spawn(self.inner.clone().settle(settle));
            }
            Err(_) => {
                // No runtime to send it from now: the keeper sends it.
                self.inner
                    .settlements_failed
                    .fetch_add(1, Ordering::Relaxed);
                self.inner.enqueue(settle);
            }
        }
    }

    fn unsettled(&self) -> usize {
        self.inner.unsettled.load(Ordering::Acquire) + self.inner.queued()
    }

    fn ping(&self) -> crate::store::Ping {
        let inner = self.inner.clone();
        Box::pin(async move {
            // Past the fail-fast window: readiness asks Redis itself, and a good answer lets
            // requests use it again at once.
            inner.down_until_ms.store(0, Ordering::Relaxed);
            let mut conn = inner.conn().await?;
            redis::cmd("PING")
                .query_async::<()>(&mut conn)
                .await
                .map_err(|e| inner.failed(e))
        })
    }

    fn backend(&self) -> &'static str {
        "redis"
    }

    fn counters(&self) -> StoreCounters {
        let i = &self.inner;
        StoreCounters {
            slots_reclaimed: i.slots_reclaimed.load(Ordering::Relaxed),
            settlements_failed: i.settlements_failed.load(Ordering::Relaxed),
            settlements_lost: i.settlements_lost.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests;
