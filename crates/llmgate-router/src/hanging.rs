//! [`Hanging`]: the attempts in flight and when each started, so that one background task
//! ([`Hanging::watch`]) can tell the events bus of each one still running after a threshold
//! ([`Event::RequestHanging`], LiteLLM's `llm_requests_hanging`), once.
//!
//! Cost on the request path, when on (alerting sends `llm_requests_hanging`): no lock and no
//! task per request. An attempt claims a free slot of a fixed table (a thread-local random
//! start, a few compare-and-swaps at most), stores its start time and an `Arc` of what the
//! alert names (group, deployment, key alias, request id), and frees the slot when it ends (a
//! stream: when its body ends or is dropped). With every probed slot taken the attempt is not
//! watched, counted in [`Hanging::unwatched`]. Off, the router has no registry and pays
//! nothing.

use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use llmgate_core::events::{Event, Events};
use llmgate_core::RequestId;
use tokio::time::Instant;

/// Slots in the table by default: attempts watched at once.
pub const DEFAULT_SLOTS: usize = 16_384;

/// Slots an attempt tries before it gives up being watched.
const PROBES: usize = 8;

/// A slot's `started` while its claimant writes it.
const CLAIMING: u64 = u64::MAX;

/// What a hanging alert names.
#[derive(Debug)]
pub(crate) struct Watched {
    pub(crate) group: Arc<str>,
    pub(crate) deployment: Arc<str>,
    pub(crate) key_alias: Option<String>,
    pub(crate) request_id: Option<RequestId>,
    pub(crate) stream: bool,
}

#[derive(Debug, Default)]
struct Slot {
    /// 0: free; [`CLAIMING`]; else milliseconds since the table's base, plus one.
    started: AtomicU64,
    told: AtomicBool,
    info: ArcSwapOption<Watched>,
}

/// The table of attempts in flight (see the module docs). Share it in an `Arc` across model
/// tables (a reload keeps it) and run [`Hanging::watch`] once.
#[derive(Debug)]
pub struct Hanging {
    slots: Box<[Slot]>,
    base: Instant,
    unwatched: AtomicU64,
}

/// An attempt's slot, freed on drop.
#[derive(Debug)]
pub(crate) struct Ticket {
    table: Arc<Hanging>,
    slot: usize,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(s) = self.table.slots.get(self.slot) {
            // The info stays until the slot's next claim replaces it: a scan reads the start,
            // then the info, then the start again, and skips the slot if the start changed.
            s.started.store(0, Release);
        }
    }
}

impl Hanging {
    /// A table of `slots` slots (at least [`PROBES`]).
    pub fn new(slots: usize) -> Arc<Hanging> {
        Arc::new(Hanging {
            slots: (0..slots.max(PROBES)).map(|_| Slot::default()).collect(),
            base: Instant::now(),
            unwatched: AtomicU64::new(0),
        })
    }

    /// Attempts that found no free slot and were not watched, since start.
    pub fn unwatched(&self) -> u64 {
        self.unwatched.load(Relaxed)
    }

    /// Attempts watched now.
    pub fn in_flight(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| !matches!(s.started.load(Relaxed), 0 | CLAIMING))
            .count()
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }

    /// Watches one attempt until the ticket drops.
    pub(crate) fn enter(self: &Arc<Self>, info: Watched) -> Option<Ticket> {
        let n = self.slots.len();
        let first = fastrand::usize(..n);
        for k in 0..PROBES {
            let i = (first + k) % n;
            let s = &self.slots[i];
            if s.started.load(Relaxed) != 0
                || s.started
                    .compare_exchange(0, CLAIMING, Acquire, Relaxed)
                    .is_err()
            {
                continue;
            }
            s.info.store(Some(Arc::new(info)));
            s.told.store(false, Relaxed);
            s.started.store(self.now_ms().saturating_add(1), Release);
            return Some(Ticket {
                table: self.clone(),
                slot: i,
            });
        }
        self.unwatched.fetch_add(1, Relaxed);
        None
    }

    /// Tells `events` of each attempt running for longer than `after` and not told yet;
    /// returns how many it told.
    pub fn scan(&self, events: &Events, after: Duration) -> usize {
        let now = self.now_ms();
        let after_ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX);
        let mut told = 0;
        for s in self.slots.iter() {
            let started = s.started.load(Acquire);
            if matches!(started, 0 | CLAIMING) || now.saturating_sub(started - 1) < after_ms {
                continue;
            }
            let Some(info) = s.info.load_full() else {
                continue;
            };
            // The attempt ended (and maybe another took the slot) meanwhile: not this one.
            if s.started.load(Acquire) != started || s.told.swap(true, AcqRel) {
                continue;
            }
            let elapsed = Duration::from_millis(now.saturating_sub(started - 1));
            events.emit(|| Event::RequestHanging {
                group: info.group.clone(),
                deployment: info.deployment.clone(),
                key_alias: info.key_alias.clone(),
                request_id: info.request_id.as_ref().map(|r| r.0.clone()),
                stream: info.stream,
                elapsed,
                threshold: after,
            });
            told += 1;
        }
        told
    }

    /// Scans every `every` (see [`Hanging::scan_interval`]) until the table is gone.
    pub async fn watch(table: Weak<Hanging>, events: Events, after: Duration, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(t) = table.upgrade() else { return };
            t.scan(&events, after);
        }
    }

    /// How often to scan for a threshold of `after`: a quarter of it, between 50 ms and 5 s,
    /// so an attempt is told at most that long after it crossed the threshold.
    pub fn scan_interval(after: Duration) -> Duration {
        (after / 4).clamp(Duration::from_millis(50), Duration::from_secs(5))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &str) -> Watched {
        Watched {
            group: "g".into(),
            deployment: "d".into(),
            key_alias: Some("app".into()),
            request_id: Some(RequestId(id.into())),
            stream: false,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_attempt_is_told_once_and_an_ended_one_never() {
        let events = Events::new();
        let mut sub = events.subscribe().unwrap();
        let h = Hanging::new(64);
        let long = h.enter(info("long")).unwrap();
        let short = h.enter(info("short")).unwrap();
        assert_eq!(h.in_flight(), 2);
        tokio::time::advance(Duration::from_millis(500)).await;
        drop(short);
        assert_eq!(h.scan(&events, Duration::from_secs(1)), 0, "not yet");
        tokio::time::advance(Duration::from_millis(600)).await;
        assert_eq!(h.scan(&events, Duration::from_secs(1)), 1);
        assert_eq!(h.scan(&events, Duration::from_secs(1)), 0, "told once");
        match &*sub.recv().await.unwrap() {
            Event::RequestHanging {
                request_id,
                key_alias,
                elapsed,
                ..
            } => {
                assert_eq!(request_id.as_deref(), Some("long"));
                assert_eq!(key_alias.as_deref(), Some("app"));
                assert!(*elapsed >= Duration::from_millis(1100), "{elapsed:?}");
            }
            e => panic!("{e:?}"),
        }
        drop(long);
        assert_eq!(h.in_flight(), 0);
        // A slot reused by a new attempt is told anew.
        let again = h.enter(info("again")).unwrap();
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(h.scan(&events, Duration::from_secs(1)), 1);
        drop(again);
    }

    #[tokio::test]
    async fn a_full_table_counts_the_attempts_it_cannot_watch() {
        let h = Hanging::new(PROBES);
        let tickets: Vec<_> = (0..PROBES).map(|_| h.enter(info("x")).unwrap()).collect();
        assert!(h.enter(info("y")).is_none());
        assert_eq!(h.unwatched(), 1);
        drop(tickets);
        assert!(h.enter(info("z")).is_some());
    }
}
