//! GCRA, the generic cell rate algorithm: the rate limit every llmgate limiter counts with.
//!
//! A limit of `L` per window `W` (60 s for rpm and tpm, a day for rpd) is a bucket that holds
//! at most `L` units and refills continuously: one unit every `T = W / L`. GCRA keeps a single
//! number per limit, the *theoretical arrival time* `tat`: the moment the bucket would be full
//! again if nothing else arrived. A request of cost `c` (1 for a request, its tokens for tpm) at
//! time `now`:
//!
//! ```text
//! tat' = max(tat, now) + c · T
//! admit  iff  tat' − now ≤ W          (+ ε, a nanosecond, against float rounding)
//! on admit: tat := tat'
//! on deny:  retry after  tat' − now − W
//! remaining = ⌊(W − (tat' − now)) / T⌋  units still admissible now
//! reset     = tat' − now                 until the bucket is full again
//! ```
//!
//! This is a sliding window without its memory: at any moment the units admitted during the
//! last `W` never exceed `L`, a burst of `L` from an idle bucket is admitted at once, and a
//! request is never admitted by accident of a window boundary (fixed windows admit `2L` across
//! one). A cost that exceeds `L` on its own is never admissible. Settling a reservation moves
//! `tat` by `Δc · T` (back for tokens not used, forward for tokens used beyond the estimate).
//!
//! Times are `f64` microseconds since an origin the caller picks (a process-local instant in
//! memory, the Redis server's clock in Redis, where the same formula runs as a Lua script), so
//! the arithmetic is identical in both backends. [`GcraCell`] holds one `tat` in an atomic and
//! updates it with a compare-and-swap loop: no lock.

use std::sync::atomic::{AtomicU64, Ordering};

/// Rounding slack in the admission test, in microseconds (one nanosecond).
pub const EPSILON_US: f64 = 1e-3;

/// The result of one GCRA check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// Whether the cost was admitted (and taken).
    pub admitted: bool,
    /// Units still admissible right now (after this cost, when admitted).
    pub remaining: u64,
    /// Microseconds until the bucket is full again.
    pub reset_us: f64,
    /// When denied: microseconds until the same cost would be admitted (`f64::INFINITY` when
    /// the cost exceeds the limit itself).
    pub retry_after_us: f64,
    /// The new `tat` (unchanged when denied).
    pub tat: f64,
}

/// One GCRA step: checks `cost` against `limit` per `window_us` at `now_us`, given the stored
/// `tat`. Pure; see the module docs for the formula.
pub fn check(tat: f64, now_us: f64, cost: u64, limit: u64, window_us: f64) -> Outcome {
    let limit_f = limit.max(1) as f64;
    let t = window_us / limit_f;
    let base = tat.max(now_us);
    let next = base + cost as f64 * t;
    let admitted = limit > 0 && next - now_us <= window_us + EPSILON_US;
    let level = if admitted { next } else { base } - now_us;
    let remaining = (((window_us - level) / t) + EPSILON_US / t)
        .floor()
        .clamp(0.0, limit_f) as u64;
    Outcome {
        admitted,
        remaining,
        reset_us: level.max(0.0),
        retry_after_us: if admitted {
            0.0
        } else if cost > limit {
            f64::INFINITY
        } else {
            (next - now_us - window_us).max(0.0)
        },
        tat: if admitted { next } else { tat },
    }
}

/// The `tat` after settling `delta` units already admitted: positive takes more (without a
/// check: they were used), negative gives back.
pub fn adjust(tat: f64, now_us: f64, delta: i64, limit: u64, window_us: f64) -> f64 {
    let t = window_us / limit.max(1) as f64;
    if delta >= 0 {
        tat.max(now_us) + delta as f64 * t
    } else {
        tat + delta as f64 * t
    }
}

/// One limit's state: a `tat` in an atomic, updated without a lock.
#[derive(Debug, Default)]
pub struct GcraCell(AtomicU64);

impl GcraCell {
    /// An idle cell (full bucket).
    pub fn new() -> Self {
        GcraCell(AtomicU64::new(0f64.to_bits()))
    }

    /// Checks and, when admitted, takes `cost`.
    pub fn check(&self, now_us: f64, cost: u64, limit: u64, window_us: f64) -> Outcome {
        let mut cur = self.0.load(Ordering::Acquire);
        loop {
            let out = check(f64::from_bits(cur), now_us, cost, limit, window_us);
            if !out.admitted {
                return out;
            }
            match self.0.compare_exchange_weak(
                cur,
                out.tat.to_bits(),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return out,
                Err(seen) => cur = seen,
            }
        }
    }

    /// What [`GcraCell::check`] would answer for `cost`, without taking anything.
    pub fn peek(&self, now_us: f64, cost: u64, limit: u64, window_us: f64) -> Outcome {
        let mut out = check(self.tat(), now_us, cost, limit, window_us);
        out.admitted = false;
        out
    }

    /// Settles `delta` units (see [`adjust`]).
    pub fn adjust(&self, now_us: f64, delta: i64, limit: u64, window_us: f64) {
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                Some(adjust(f64::from_bits(cur), now_us, delta, limit, window_us).to_bits())
            });
    }

    /// The stored `tat`.
    pub fn tat(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Acquire))
    }

    /// Units used in the window at `now_us` (the bucket's level, in units).
    pub fn used(&self, now_us: f64, limit: u64, window_us: f64) -> u64 {
        let t = window_us / limit.max(1) as f64;
        ((self.tat() - now_us).max(0.0) / t).ceil() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: f64 = 60e6;

    #[test]
    fn a_burst_of_exactly_the_limit_then_one_per_interval() {
        for limit in [1u64, 3, 7, 60, 1000, 999_999] {
            let c = GcraCell::new();
            let now = 1e9;
            for i in 0..limit {
                let o = c.check(now, 1, limit, MIN);
                assert!(o.admitted, "limit {limit}: request {i}");
                assert_eq!(o.remaining, limit - i - 1);
            }
            let o = c.check(now, 1, limit, MIN);
            assert!(!o.admitted, "limit {limit}: one over");
            let t = MIN / limit as f64;
            assert!((o.retry_after_us - t).abs() < 1.0, "{o:?}");
            assert!(!c.check(now + t * 0.99, 1, limit, MIN).admitted);
            assert!(c.check(now + t, 1, limit, MIN).admitted);
        }
    }

    #[test]
    fn costs_tokens_and_settles() {
        let c = GcraCell::new();
        let now = 5e6;
        assert!(c.check(now, 600, 1000, MIN).admitted);
        let o = c.check(now, 500, 1000, MIN);
        assert!(!o.admitted && o.remaining == 400, "{o:?}");
        assert!(!c.check(now, 1001, 1000, MIN).admitted);
        assert!(check(0.0, now, 1001, 1000, MIN)
            .retry_after_us
            .is_infinite());
        // 500 of the 600 were not used: given back.
        c.adjust(now, -500, 1000, MIN);
        assert_eq!(c.used(now, 1000, MIN), 100);
        assert!(c.check(now, 900, 1000, MIN).admitted);
        // Used more than reserved: taken without a check.
        c.adjust(now, 50, 1000, MIN);
        assert_eq!(c.used(now, 1000, MIN), 1050);
        assert!(!c.check(now, 1, 1000, MIN).admitted);
        // Half a minute later half the bucket has drained.
        assert_eq!(c.used(now + MIN / 2.0, 1000, MIN), 550);
    }

    #[test]
    fn reset_and_remaining_describe_the_bucket() {
        let o = check(0.0, 100.0, 1, 10, MIN);
        assert_eq!((o.admitted, o.remaining), (true, 9));
        assert!((o.reset_us - MIN / 10.0).abs() < 1e-6);
        let denied = check(100.0 + MIN, 100.0, 1, 10, MIN);
        assert!(!denied.admitted && denied.remaining == 0);
        assert!((denied.reset_us - MIN).abs() < 1e-6);
        assert!(
            !check(0.0, 1.0, 1, 0, MIN).admitted,
            "a zero limit admits nothing"
        );
    }
}
