//! [`RetryBudget`]: how many retries and fallbacks the gateway may add, lock-free.
//!
//! Tower's `TpsBudget` has the right rule but takes a mutex on every deposit, i.e. on every
//! request of every worker thread. This budget keeps the rule with atomics only:
//!
//! ```text
//! allowed retries in a window = min_per_sec × ttl + ratio × requests in the window
//! ```
//!
//! The window is `ttl` long; its requests are the deposits of the current window plus the
//! previous one weighted by how much of it still overlaps a sliding `ttl` (so the allowance does
//! not drop to the floor the instant a window rolls over). Counters roll with a compare-and-swap
//! on the window index; a roll racing with a deposit may lose that one deposit, which only makes
//! the budget a little stricter.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::time::Instant;

/// A retry budget; see the module docs. Share it in an `Arc`.
#[derive(Debug)]
pub struct RetryBudget {
    start: Instant,
    ttl_ms: u64,
    /// Retries always allowed per window, whatever the traffic.
    floor: i64,
    /// Allowed retries per request, in thousandths.
    ratio_milli: i64,
    window: AtomicU64,
    deposits: AtomicI64,
    previous: AtomicI64,
    withdrawals: AtomicI64,
}

impl RetryBudget {
    /// At least `min_per_sec` retries a second, plus `ratio` (e.g. 0.2) of the requests, over a
    /// window of `ttl`.
    pub fn new(ttl: Duration, min_per_sec: u32, ratio: f32) -> Self {
        let ttl_ms = (ttl.as_millis() as u64).max(1);
        RetryBudget {
            start: Instant::now(),
            ttl_ms,
            floor: i64::from(min_per_sec) * (ttl_ms as i64) / 1000,
            ratio_milli: (f64::from(ratio.max(0.0)) * 1000.0) as i64,
            window: AtomicU64::new(0),
            deposits: AtomicI64::new(0),
            previous: AtomicI64::new(0),
            withdrawals: AtomicI64::new(0),
        }
    }

    /// Moves to the current window; returns how far into it we are, in thousandths.
    fn roll(&self) -> i64 {
        let elapsed = self.start.elapsed().as_millis() as u64;
        let now = elapsed / self.ttl_ms;
        let seen = self.window.load(Relaxed);
        if now != seen
            && self
                .window
                .compare_exchange(seen, now, Relaxed, Relaxed)
                .is_ok()
        {
            let carried = if now == seen + 1 {
                self.deposits.swap(0, Relaxed)
            } else {
                self.deposits.store(0, Relaxed);
                0
            };
            self.previous.store(carried, Relaxed);
            self.withdrawals.store(0, Relaxed);
        }
        ((elapsed % self.ttl_ms) * 1000 / self.ttl_ms) as i64
    }

    /// Records a request.
    pub fn deposit(&self) {
        self.roll();
        self.deposits.fetch_add(1, Relaxed);
    }

    /// Takes one retry if the budget allows it.
    pub fn withdraw(&self) -> bool {
        let into = self.roll();
        let requests =
            self.deposits.load(Relaxed) + self.previous.load(Relaxed) * (1000 - into) / 1000;
        let allowed = self.floor + requests * self.ratio_milli / 1000;
        if self.withdrawals.fetch_add(1, Relaxed) < allowed {
            true
        } else {
            self.withdrawals.fetch_sub(1, Relaxed);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn floor_plus_a_ratio_of_requests_per_window() {
        let b = RetryBudget::new(Duration::from_secs(10), 1, 0.2);
        // Floor: 1/s over 10 s.
        assert_eq!((0..20).filter(|_| b.withdraw()).count(), 10);
        for _ in 0..50 {
            b.deposit();
        }
        // 20 % of 50 more.
        assert_eq!((0..20).filter(|_| b.withdraw()).count(), 10);
        // Half way into the next window: the floor again, plus half of the previous requests.
        tokio::time::advance(Duration::from_secs(15)).await;
        assert_eq!((0..40).filter(|_| b.withdraw()).count(), 10 + 5);
        // Long idle: only the floor.
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!((0..40).filter(|_| b.withdraw()).count(), 10);
    }

    /// The budget every `FallbackPolicy` starts with: at least 10 a second, plus 20 % of the
    /// requests over a sliding 10 s.
    #[tokio::test(start_paused = true)]
    async fn the_default_is_10_a_second_plus_20_percent_of_requests_over_10_s() {
        let b = crate::FallbackPolicy::default().budget;
        // Floor: 10/s over 10 s, with no requests at all.
        assert_eq!((0..200).filter(|_| b.withdraw()).count(), 100);
        for _ in 0..1_000 {
            b.deposit();
        }
        // 20 % of 1,000 more.
        assert_eq!((0..400).filter(|_| b.withdraw()).count(), 200);
        // 5 s into the next 10 s window: the floor, plus 20 % of the half of the last window's
        // requests the sliding 10 s still covers.
        tokio::time::advance(Duration::from_secs(15)).await;
        assert_eq!((0..400).filter(|_| b.withdraw()).count(), 100 + 100);
        // Past them: the floor alone.
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!((0..400).filter(|_| b.withdraw()).count(), 100);
    }

    #[test]
    fn an_empty_budget_allows_nothing() {
        let b = RetryBudget::new(Duration::from_secs(10), 0, 0.0);
        b.deposit();
        assert!(!b.withdraw());
    }
}
