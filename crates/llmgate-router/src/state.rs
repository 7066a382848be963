//! What the router knows about each deployment while it runs: in flight, cooldown, recent
//! failures, latency, and its rpm/tpm/rpd usage ([`Usage`]). All atomics, no locks: every
//! request reads them, so they stay off any shared mutex.
//!
//! Time comes from tokio's clock (`tokio::time::Instant`), so tests can pause and advance it.
//! The failure counter resets at each minute of the table's life (`allowed_fails` per minute);
//! rpm and tpm are sliding windows and rpd a UTC day (see `usage.rs`).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use crate::usage::Usage;

/// The table's clock: milliseconds since it was built, and the UTC day.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    base: Instant,
    /// Unix milliseconds at `base`.
    base_unix_ms: u64,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Clock {
            base: Instant::now(),
            base_unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
        }
    }

    /// Milliseconds since the table was built (never 0, so 0 can mean "never").
    pub(crate) fn now_ms(&self) -> u64 {
        self.base.elapsed().as_millis() as u64 + 1
    }

    /// Microseconds since the table was built, for the usage windows.
    pub(crate) fn now_us(&self) -> u64 {
        self.base.elapsed().as_micros() as u64 + 1_000
    }

    /// Table milliseconds as Unix milliseconds.
    pub(crate) fn unix_ms(&self, table_ms: u64) -> u64 {
        self.base_unix_ms.saturating_add(table_ms)
    }

    /// Unix milliseconds as table milliseconds (0 for a time before the table was built).
    pub(crate) fn table_ms(&self, unix_ms: u64) -> u64 {
        unix_ms.saturating_sub(self.base_unix_ms)
    }

    pub(crate) fn minute(&self, now_ms: u64) -> u64 {
        now_ms / 60_000
    }

    pub(crate) fn day(&self, now_ms: u64) -> u64 {
        (self.base_unix_ms + now_ms) / 86_400_000
    }
}

/// A counter that resets when its window (a minute or day index) changes.
#[derive(Debug, Default)]
pub(crate) struct Windowed {
    window: AtomicU64,
    count: AtomicU64,
}

impl Windowed {
    fn roll(&self, window: u64) {
        let seen = self.window.load(Relaxed);
        if seen != window
            && self
                .window
                .compare_exchange(seen, window, Relaxed, Relaxed)
                .is_ok()
        {
            self.count.store(0, Relaxed);
        }
    }

    /// Adds `n` in `window`; returns the new count.
    pub(crate) fn add(&self, window: u64, n: u64) -> u64 {
        self.roll(window);
        self.count.fetch_add(n, Relaxed) + n
    }

    /// Raises the count in `window` to at least `n` (a count from elsewhere, never lowering).
    pub(crate) fn raise(&self, window: u64, n: u64) {
        self.roll(window);
        self.count.fetch_max(n, Relaxed);
    }

    /// The count in `window` (0 once the window has moved on).
    pub(crate) fn count(&self, window: u64) -> u64 {
        if self.window.load(Relaxed) == window {
            self.count.load(Relaxed)
        } else {
            0
        }
    }

    /// Takes back one added in `window` (nothing once the window has moved on).
    pub(crate) fn give_back(&self, window: u64) {
        if self.window.load(Relaxed) == window {
            let _ = self
                .count
                .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
        }
    }

    /// Adds 1 unless that would pass `limit`; true when added.
    pub(crate) fn try_take(&self, window: u64, limit: u64) -> bool {
        self.roll(window);
        if self.count.fetch_add(1, Relaxed) < limit {
            true
        } else {
            self.count.fetch_sub(1, Relaxed);
            false
        }
    }
}

/// Why a deployment is cooling down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CooldownReason {
    /// It answered 429.
    RateLimited,
    /// It failed more often this minute than `allowed_fails` allows.
    Failing,
    /// Its credentials or model id are wrong (401, 403, 404).
    Misconfigured,
    /// The background health check found it unhealthy.
    Unhealthy,
}

impl CooldownReason {
    /// A small number standing for the reason (for messages between instances).
    pub fn code(self) -> u32 {
        match self {
            CooldownReason::RateLimited => 1,
            CooldownReason::Failing => 2,
            CooldownReason::Misconfigured => 3,
            CooldownReason::Unhealthy => 4,
        }
    }

    /// The reason [`CooldownReason::code`] stands for.
    pub fn from_code(c: u32) -> Option<Self> {
        Some(match c {
            1 => CooldownReason::RateLimited,
            2 => CooldownReason::Failing,
            3 => CooldownReason::Misconfigured,
            4 => CooldownReason::Unhealthy,
            _ => return None,
        })
    }

    /// Whether it was started by the deployment's own failures (a 429, errors past
    /// `allowed_fails`), not by its config or a health check.
    pub(crate) fn by_failures(self) -> bool {
        matches!(self, CooldownReason::RateLimited | CooldownReason::Failing)
    }

    /// A short description, for errors and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            CooldownReason::RateLimited => "rate limited",
            CooldownReason::Failing => "failing",
            CooldownReason::Misconfigured => "misconfigured (auth or model id)",
            CooldownReason::Unhealthy => "failed its health check",
        }
    }
}

/// One deployment's live state.
#[derive(Debug, Default)]
pub struct DeploymentState {
    pub(crate) in_flight: AtomicU32,
    cooldown_until_ms: AtomicU64,
    cooldown_reason: AtomicU32,
    pub(crate) fails: Windowed,
    pub(crate) usage: Usage,
    /// Exponentially weighted latency of complete answers, in microseconds (0: none yet).
    pub(crate) latency_us: AtomicU64,
    latency_at_ms: AtomicU64,
    /// The same for the time to a stream's first byte.
    pub(crate) ttft_us: AtomicU64,
    ttft_at_ms: AtomicU64,
    /// Cooled down after its own failures and not answered since (its next answer is told as
    /// a recovery).
    pub(crate) down: AtomicBool,
    /// The UTC day its nearly used `rpd` was last told (0: never).
    pub(crate) quota_told_day: AtomicU64,
    /// Counts since start, for reports ([`DeploymentState::totals`]).
    pub(crate) totals: Totals,
}

/// Weight of a new sample in the latency average.
const EWMA_NEW: f64 = 0.3;

fn ewma(cell: &AtomicU64, at: &AtomicU64, sample: Duration, now_ms: u64) {
    let s = sample.as_micros().max(1) as u64;
    let old = cell.load(Relaxed);
    let new = if old == 0 {
        s
    } else {
        (old as f64 * (1.0 - EWMA_NEW) + s as f64 * EWMA_NEW) as u64
    };
    cell.store(new.max(1), Relaxed);
    at.store(now_ms, Relaxed);
}

/// A deployment's counts since start: attempts sent to it, its own failures (those that count
/// against it), and its answers' latency (time to first byte for streams).
#[derive(Debug, Default)]
pub(crate) struct Totals {
    pub(crate) attempts: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) answers: AtomicU64,
    pub(crate) latency_us: AtomicU64,
}

/// A snapshot of [`DeploymentState::totals`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeploymentTotals {
    /// Attempts sent to it.
    pub attempts: u64,
    /// Its own failures (an error that counts against it: 5xx, 429, timeouts, wrong key).
    pub failures: u64,
    /// Answers (heads for streams) timed.
    pub answers: u64,
    /// Their latencies summed, microseconds.
    pub latency_us: u64,
}

impl DeploymentState {
    /// Its counts since start.
    pub fn totals(&self) -> DeploymentTotals {
        let t = &self.totals;
        DeploymentTotals {
            attempts: t.attempts.load(Relaxed),
            failures: t.failures.load(Relaxed),
            answers: t.answers.load(Relaxed),
            latency_us: t.latency_us.load(Relaxed),
        }
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Relaxed)
    }

    /// When the cooldown ends (table milliseconds) and why, if it is cooling down at `now_ms`.
    pub(crate) fn cooling(&self, now_ms: u64) -> Option<(u64, CooldownReason)> {
        let until = self.cooldown_until_ms.load(Relaxed);
        (until > now_ms).then(|| {
            let reason = CooldownReason::from_code(self.cooldown_reason.load(Relaxed))
                .unwrap_or(CooldownReason::Failing);
            (until, reason)
        })
    }

    /// Takes the deployment out of rotation until `now_ms + for_`.
    pub(crate) fn cool_down(&self, now_ms: u64, for_: Duration, reason: CooldownReason) {
        let for_ms = u64::try_from(for_.as_millis()).unwrap_or(u64::MAX);
        let until = now_ms.saturating_add(for_ms);
        // A later end wins: never shorten a running cooldown.
        let prev = self.cooldown_until_ms.fetch_max(until, Relaxed);
        if until > prev {
            self.cooldown_reason.store(reason.code(), Relaxed);
        }
    }

    /// Ends a cooldown (a passing health check).
    pub(crate) fn clear_cooldown(&self) {
        self.cooldown_until_ms.store(0, Relaxed);
    }

    /// Records a complete answer's latency.
    pub(crate) fn record_latency(&self, d: Duration, now_ms: u64) {
        ewma(&self.latency_us, &self.latency_at_ms, d, now_ms);
    }

    /// Records a stream's time to first byte.
    pub(crate) fn record_ttft(&self, d: Duration, now_ms: u64) {
        ewma(&self.ttft_us, &self.ttft_at_ms, d, now_ms);
    }

    /// The recent latency (time to first byte for streams) in microseconds, if measured within
    /// `ttl`.
    pub(crate) fn latency(&self, stream: bool, now_ms: u64, ttl: Duration) -> Option<u64> {
        let (cell, at) = if stream {
            (&self.ttft_us, &self.ttft_at_ms)
        } else {
            (&self.latency_us, &self.latency_at_ms)
        };
        let v = cell.load(Relaxed);
        let age = now_ms.saturating_sub(at.load(Relaxed));
        (v > 0 && age <= ttl.as_millis() as u64).then_some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_reset_and_limits_hold() {
        let w = Windowed::default();
        assert!(w.try_take(1, 2));
        assert!(w.try_take(1, 2));
        assert!(!w.try_take(1, 2));
        assert_eq!(w.add(1, 0), 2);
        assert!(w.try_take(2, 2), "a new window starts empty");
        assert_eq!(w.add(2, 0), 1);
    }

    #[test]
    fn cooldowns_only_grow() {
        let s = DeploymentState::default();
        s.cool_down(100, Duration::from_secs(10), CooldownReason::RateLimited);
        s.cool_down(100, Duration::from_secs(1), CooldownReason::Failing);
        assert_eq!(
            s.cooling(5_000),
            Some((10_100, CooldownReason::RateLimited))
        );
        assert_eq!(s.cooling(10_100), None);
    }
}
