//! [`MemoryStore`]: counters in this process, in a sharded map of lock-free cells.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use llmgate_core::window::{self, Outcome, WindowCell};
use tokio::time::Instant;

use crate::store::{Acquire, Check, CheckState, Kind, LimiterStore, Settle, Verdict};

/// Idle counters are swept after this many acquisitions.
const SWEEP_EVERY: u64 = 1 << 14;

#[derive(Debug)]
enum Cell {
    /// The window and the window length it counts in (microseconds).
    Rate(Box<(WindowCell, u64)>),
    Parallel(AtomicU64),
}

/// Counters in memory: exact within one process.
///
/// The map is a [`DashMap`] (shards, each behind its own read-write lock): a check takes a
/// shard's read lock only long enough to find its cell, and the cells themselves are atomics
/// ([`WindowCell`], a counter), so no lock is shared by all requests and none is held across a
/// count. Idle counters (an empty window, no request in flight) are swept now and then, so the
/// map holds only keys in use.
///
/// Time is tokio's clock, so tests can pause and advance it.
#[derive(Debug)]
pub struct MemoryStore {
    /// foldhash, as the metrics' maps: SipHash cost 700 instructions a check for these short
    /// keys. Its seed is random per process.
    cells: DashMap<Arc<str>, Cell, foldhash::fast::RandomState>,
    origin: Instant,
    acquisitions: AtomicU64,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore {
            cells: DashMap::with_hasher(foldhash::fast::RandomState::default()),
            origin: Instant::now(),
            acquisitions: AtomicU64::new(0),
        }
    }

    /// Microseconds on this store's clock (starting at one second).
    fn now_us(&self) -> u64 {
        self.origin.elapsed().as_micros() as u64 + 1_000_000
    }

    /// Counters held (for tests and metrics).
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// Whether no counter is held.
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// Runs `f` on the cell for `check`, creating it if needed.
    fn with_cell<R>(&self, check: &Check, f: impl Fn(&Cell) -> R) -> R {
        if let Some(c) = self.cells.get(&check.key) {
            return f(&c);
        }
        let c = self
            .cells
            .entry(check.key.clone())
            .or_insert_with(|| match check.kind {
                Kind::Rate { window, .. } => Cell::Rate(Box::new((WindowCell::new(), us(window)))),
                Kind::Parallel => Cell::Parallel(AtomicU64::new(0)),
            })
            .downgrade();
        f(&c)
    }

    fn take(&self, check: &Check, now: u64) -> (bool, CheckState) {
        self.with_cell(check, |cell| match (cell, check.kind) {
            (Cell::Rate(g), Kind::Rate { window, cost }) => {
                state_of(g.0.check(now, cost, check.limit, us(window)))
            }
            (Cell::Parallel(n), Kind::Parallel) => {
                let taken = n
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                        (c < check.limit).then_some(c + 1)
                    })
                    .map(|prev| prev + 1);
                let in_use = taken.unwrap_or_else(|c| c);
                let state = CheckState {
                    remaining: check.limit.saturating_sub(in_use),
                    ..CheckState::default()
                };
                (taken.is_ok(), state)
            }
            // A key used with two kinds: a caller bug; deny rather than miscount.
            _ => (false, CheckState::default()),
        })
    }

    fn undo(&self, check: &Check, now: u64) {
        match check.kind {
            Kind::Rate { window, cost } => {
                self.adjust(&check.key, check.limit, window, -(cost as i64), now, now)
            }
            Kind::Parallel => self.release(&check.key),
        }
    }

    /// Settles `delta` units of a reservation made at `at`: given back from its granule, or
    /// counted now.
    fn adjust(&self, key: &str, limit: u64, window: Duration, delta: i64, now: u64, at: u64) {
        let w = us(window);
        if let Some(c) = self.cells.get(key) {
            if let Cell::Rate(g) = &*c {
                if delta < 0 {
                    g.0.give_back(window::granule(at, w), delta.unsigned_abs());
                } else {
                    g.0.add(now, delta as u64, w);
                }
            }
        } else if delta > 0 {
            let check = Check {
                key: key.into(),
                limit,
                kind: Kind::Rate { window, cost: 0 },
            };
            self.with_cell(&check, |c| {
                if let Cell::Rate(g) = c {
                    g.0.add(now, delta as u64, w);
                }
            });
        }
    }

    fn release(&self, key: &str) {
        if let Some(c) = self.cells.get(key) {
            if let Cell::Parallel(n) = &*c {
                let _ = n.fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| c.checked_sub(1));
            }
        }
    }

    /// Drops counters that hold nothing: empty windows and parallel counters at zero. Each
    /// shard is locked in turn, briefly.
    pub fn sweep(&self) {
        let now = self.now_us();
        self.cells.retain(|_, c| match c {
            Cell::Rate(g) => g.0.used(now, g.1) > 0,
            Cell::Parallel(n) => n.load(Ordering::Acquire) > 0,
        });
    }
}

fn us(d: Duration) -> u64 {
    d.as_micros() as u64
}

fn state_of(o: Outcome) -> (bool, CheckState) {
    let retry_after = o
        .retry_after_us
        .filter(|_| !o.admitted)
        .map(Duration::from_micros);
    (
        o.admitted,
        CheckState {
            remaining: o.remaining,
            reset: Duration::from_micros(o.reset_us),
            retry_after,
        },
    )
}

impl LimiterStore for MemoryStore {
    fn acquire(&self, checks: &[Check]) -> Acquire {
        if self.acquisitions.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep();
        }
        let now = self.now_us();
        let mut verdict = Verdict {
            states: Vec::with_capacity(checks.len()),
            at: now,
            ..Verdict::default()
        };
        for (i, check) in checks.iter().enumerate() {
            let (ok, state) = self.take(check, now);
            verdict.states.push(state);
            if !ok {
                for c in &checks[..i] {
                    self.undo(c, now);
                }
                verdict.denied = Some(i);
                // The rest are reported as they stand, without taking them.
                for c in &checks[i + 1..] {
                    verdict.states.push(self.peek(c, now));
                }
                break;
            }
        }
        Acquire::ready(Ok(verdict))
    }

    fn finish(&self, settle: Settle) {
        let now = self.now_us();
        for key in &settle.release {
            self.release(key);
        }
        for (key, limit, window, delta) in &settle.adjust {
            self.adjust(key, *limit, *window, *delta, now, settle.at);
        }
    }
}

impl MemoryStore {
    fn peek(&self, check: &Check, now: u64) -> CheckState {
        match self.cells.get(&check.key).as_deref() {
            Some(Cell::Rate(g)) => match check.kind {
                Kind::Rate { window, cost } => {
                    state_of(g.0.peek(now, cost, check.limit, us(window))).1
                }
                Kind::Parallel => CheckState::default(),
            },
            Some(Cell::Parallel(n)) => CheckState {
                remaining: check.limit.saturating_sub(n.load(Ordering::Acquire)),
                ..CheckState::default()
            },
            None => match check.kind {
                Kind::Rate { window, cost } => {
                    state_of(window::describe(
                        &mut [],
                        now,
                        cost,
                        check.limit,
                        us(window),
                        false,
                    ))
                    .1
                }
                Kind::Parallel => CheckState {
                    remaining: check.limit,
                    ..CheckState::default()
                },
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn passes_the_store_suite() {
        crate::suite::run(Arc::new(MemoryStore::new()), "t:").await;
    }

    #[tokio::test(start_paused = true)]
    async fn idle_counters_are_swept() {
        let s = MemoryStore::new();
        let c = |k: &str, kind| Check {
            key: k.into(),
            limit: 10,
            kind,
        };
        let rate = Kind::Rate {
            window: Duration::from_secs(60),
            cost: 1,
        };
        let _ = s.acquire(&[c("r", rate), c("p", Kind::Parallel)]).await;
        s.sweep();
        assert_eq!(s.len(), 2, "both hold something");
        s.finish(Settle {
            release: vec!["p".into()],
            ..Settle::default()
        });
        s.sweep();
        assert_eq!(s.len(), 1);
        tokio::time::advance(Duration::from_secs(61)).await;
        s.sweep();
        assert!(s.is_empty(), "an empty window is dropped");
    }

    /// The issue's scenario on a simulated clock: `rpm_limit: 30`, a burst of 30, then one
    /// request a second for three minutes. No window of 60 s may hold more than 30 admissions,
    /// and the limit is reached (not merely respected) in the first minute.
    #[tokio::test(start_paused = true)]
    async fn a_burst_then_one_a_second_admits_at_most_the_limit_in_any_minute() {
        let s = MemoryStore::new();
        let c = [Check {
            key: "k".into(),
            limit: 30,
            kind: Kind::Rate {
                window: Duration::from_secs(60),
                cost: 1,
            },
        }];
        let start = Instant::now();
        let mut admitted = Vec::new();
        for _ in 0..30 {
            if s.acquire(&c).await.unwrap().denied.is_none() {
                admitted.push(Duration::ZERO);
            }
        }
        assert_eq!(admitted.len(), 30, "the burst is the whole limit");
        for _ in 0..180 {
            tokio::time::advance(Duration::from_secs(1)).await;
            if s.acquire(&c).await.unwrap().denied.is_none() {
                admitted.push(start.elapsed());
            }
        }
        // Every window [t, t + 60 s) that starts at an admission.
        let worst = admitted
            .iter()
            .map(|&t| {
                admitted
                    .iter()
                    .filter(|&&u| u >= t && u < t + Duration::from_secs(60))
                    .count()
            })
            .max()
            .unwrap();
        assert_eq!(worst, 30, "admissions: {admitted:?}");
        // After the burst has left the window the caller gets its rate back: one a second.
        let last_minute = admitted
            .iter()
            .filter(|&&t| t > Duration::from_secs(120))
            .count();
        assert!(last_minute >= 29, "{last_minute}: {admitted:?}");
    }
}
