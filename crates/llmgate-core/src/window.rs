//! The sliding window every llmgate rate limit counts with: keys, models and deployments.
//!
//! A limit of `L` per window `W` (60 s for rpm and tpm) admits **no more than `L` units in any
//! span of `W`**, the way providers count. The window is kept as [`GRANULES`] counters, one per
//! granule of `g = W / 60` (a second for a minute), each tagged with its granule number
//! `⌊t / g⌋`. A request of cost `c` (1 for a request, its tokens for tpm) at time `t`, in
//! granule `n = ⌊t / g⌋`:
//!
//! ```text
//! used   = Σ count of granules tagged n − 60 ..= n + 1     (the last W, rounded out to granules)
//! admit  iff  used + c ≤ L        then the granule n counts c more
//! a granule's units stop counting at  (tag + 61) · g  ≥  tag·g + g + W    (g = ⌈W / 60⌉)
//! deny:  retry after the time when enough of the oldest granules have left for c to fit
//! remaining = L − used (after this cost)      reset = when the newest granule leaves
//! ```
//!
//! Each admitted unit is counted for between `W` and `W + g` after it was admitted, never
//! less: any span of `W` that holds an admission at `t` lies inside what the check at `t`
//! counted, so no span of `W` ever holds more than `L`. The price is that a unit frees up to
//! one granule (1/60 of the window) late: a caller can be told to wait up to a second more than
//! an exact log would say. An idle caller may send its whole limit at once (the burst is `L`),
//! and then nothing more until that burst leaves the window: a burst of 30 against
//! `rpm_limit: 30` followed by one request a second admits exactly 30 in every minute. A cost
//! above `L` alone is never admissible.
//!
//! Token limits reserve an estimate on admission and settle later: [`WindowCell::give_back`]
//! takes unused units out of the granule they were reserved in (if it still counts), and
//! [`WindowCell::add`] counts units used beyond the estimate in the current granule, without a
//! check.
//!
//! Times are microseconds (`u64`) since an origin the caller picks: a process-local instant in
//! memory, the Redis server's clock in Redis, where the same formula runs as a Lua script (the
//! same granules, one hash field per granule). [`WindowCell`] keeps the granules in a ring of
//! atomics, each packing a granule tag (32 bits) and a count (32 bits): a check adds its cost
//! to its granule first, then sums the ring, and takes the cost back out if the sum passed the
//! limit. No lock; concurrent checks near the limit can both see the other's cost and both be
//! denied (the limit is never passed, a caller may be denied a moment early under a race). A
//! granule counts up to 2³² − 1 units (four billion tokens a second for one key): more
//! saturates.

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

/// Granules per window.
pub const GRANULES: u64 = 60;

/// Slots in a [`WindowCell`]'s ring: the window's granules, the one partly out of the window,
/// and one ahead (a check whose clock read a moment later).
pub const SLOTS: usize = GRANULES as usize + 2;

/// The granule length for `window_us`, in microseconds: rounded up, so that 60 granules are
/// never shorter than the window (a unit is never counted for less than `W`).
pub fn granule_us(window_us: u64) -> u64 {
    window_us.div_ceil(GRANULES).max(1)
}

/// The granule `now_us` falls in.
pub fn granule(now_us: u64, window_us: u64) -> u64 {
    now_us / granule_us(window_us)
}

/// Whether units counted in granule `tag` still count at granule `now` (in the window, or one
/// granule ahead of it).
pub fn counts(tag: u64, now: u64) -> bool {
    tag.saturating_add(GRANULES) >= now && tag <= now.saturating_add(1)
}

/// When the units of granule `tag` stop counting, in microseconds.
pub fn leaves_at_us(tag: u64, window_us: u64) -> u64 {
    (tag + GRANULES + 1) * granule_us(window_us)
}

/// The result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Whether the cost was admitted (and taken).
    pub admitted: bool,
    /// Units still admissible now (after this cost, when admitted).
    pub remaining: u64,
    /// Microseconds until nothing counted now counts any more.
    pub reset_us: u64,
    /// When denied: microseconds until the same cost would be admitted, if nothing else is;
    /// `None` when the cost exceeds the limit itself.
    pub retry_after_us: Option<u64>,
    /// The granule the cost was counted in (for [`WindowCell::give_back`]).
    pub granule: u64,
}

/// Describes the window at `now_us` from its counted granules `(tag, count)` (those for which
/// [`counts`] holds, the request's own cost not included): the verdict for `cost` given that
/// it was or was not admitted. Pure; the Redis script computes the same.
pub fn describe(
    granules: &mut [(u64, u64)],
    now_us: u64,
    cost: u64,
    limit: u64,
    window_us: u64,
    admitted: bool,
) -> Outcome {
    let used: u64 = granules.iter().map(|g| g.1).sum();
    let after = if admitted { used + cost } else { used };
    let own = admitted.then(|| granule(now_us, window_us));
    let newest = granules
        .iter()
        .filter(|g| g.1 > 0)
        .map(|g| g.0)
        .chain(own)
        .max();
    let reset_us = newest.map_or(0, |t| leaves_at_us(t, window_us).saturating_sub(now_us));
    let retry_after_us = if admitted {
        Some(0)
    } else if cost > limit || limit == 0 {
        None
    } else {
        granules.sort_unstable_by_key(|g| g.0);
        let mut left = used;
        let mut at = 0;
        for &(tag, n) in granules.iter() {
            left = left.saturating_sub(n);
            if left + cost <= limit {
                at = leaves_at_us(tag, window_us).saturating_sub(now_us);
                break;
            }
        }
        Some(at)
    };
    Outcome {
        admitted,
        remaining: limit.saturating_sub(after),
        reset_us,
        retry_after_us,
        granule: granule(now_us, window_us),
    }
}

const TAG_SHIFT: u32 = 32;
const COUNT_MASK: u64 = (1 << TAG_SHIFT) - 1;

fn pack(tag: u64, count: u64) -> u64 {
    ((tag & COUNT_MASK) << TAG_SHIFT) | count.min(COUNT_MASK)
}

/// The slot's granule, recovered from its 32-bit tag as the granule nearest `now`.
fn unpack(v: u64, now: u64) -> (u64, u64) {
    let tag32 = v >> TAG_SHIFT;
    let diff = (now as u32).wrapping_sub(tag32 as u32) as i32;
    (now.wrapping_sub(diff as i64 as u64), v & COUNT_MASK)
}

/// One limit's window: a ring of [`SLOTS`] atomics, updated without a lock.
#[derive(Debug)]
pub struct WindowCell {
    slots: [AtomicU64; SLOTS],
}

impl Default for WindowCell {
    fn default() -> Self {
        Self::new()
    }
}

impl WindowCell {
    /// An empty window.
    pub fn new() -> Self {
        WindowCell {
            slots: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    fn slot(&self, tag: u64) -> &AtomicU64 {
        &self.slots[(tag % SLOTS as u64) as usize]
    }

    /// Adds `n` to granule `tag` (a slot holding an older granule starts over; one holding a
    /// newer granule, which only a clock read much later can have written, takes the units
    /// itself: counted longer, never shorter). Returns the granule the units went to.
    fn add_at(&self, tag: u64, n: u64) -> u64 {
        let slot = self.slot(tag);
        let mut cur = slot.load(SeqCst);
        loop {
            let (seen, count) = unpack(cur, tag);
            let (to, next) = if seen == tag || (seen > tag && count > 0) {
                (seen, pack(seen, count + n))
            } else {
                (tag, pack(tag, n))
            };
            match slot.compare_exchange_weak(cur, next, SeqCst, SeqCst) {
                Ok(_) => return to,
                Err(v) => cur = v,
            }
        }
    }

    /// The counted granules at `now` (tag, count), into `out`; returns how many.
    fn counted(&self, now: u64, out: &mut [(u64, u64); SLOTS]) -> usize {
        let mut k = 0;
        for s in &self.slots {
            let (tag, count) = unpack(s.load(SeqCst), now);
            if count > 0 && counts(tag, now) {
                out[k] = (tag, count);
                k += 1;
            }
        }
        k
    }

    /// Checks and, when admitted, takes `cost` at `now_us`.
    pub fn check(&self, now_us: u64, cost: u64, limit: u64, window_us: u64) -> Outcome {
        let now = granule(now_us, window_us);
        if cost > limit || limit == 0 {
            return self.peek(now_us, cost, limit, window_us);
        }
        let at = self.add_at(now, cost);
        // One pass over the ring: what counts besides our own cost, and the newest granule
        // that still holds units. A granule has one slot, so `at` is met at most once.
        let mut used = 0u64;
        let mut newest = now;
        for s in &self.slots {
            let (tag, count) = unpack(s.load(SeqCst), now);
            if count == 0 || !counts(tag, now) {
                continue;
            }
            let count = if tag == at {
                count.saturating_sub(cost)
            } else {
                count
            };
            used += count;
            if count > 0 {
                newest = newest.max(tag);
            }
        }
        if used + cost <= limit {
            // What `describe` says of an admitted cost, without a second pass.
            return Outcome {
                admitted: true,
                remaining: limit.saturating_sub(used + cost),
                reset_us: leaves_at_us(newest, window_us).saturating_sub(now_us),
                retry_after_us: Some(0),
                granule: at,
            };
        }
        // Denied: our cost leaves the ring, and the window without it is described.
        self.sub_at(at, cost);
        let mut out = self.peek(now_us, cost, limit, window_us);
        out.granule = at;
        out
    }

    /// What [`WindowCell::check`] would answer for `cost`, without taking anything.
    pub fn peek(&self, now_us: u64, cost: u64, limit: u64, window_us: u64) -> Outcome {
        let now = granule(now_us, window_us);
        let mut buf = [(0, 0); SLOTS];
        let k = self.counted(now, &mut buf);
        describe(&mut buf[..k], now_us, cost, limit, window_us, false)
    }

    fn sub_at(&self, tag: u64, n: u64) {
        let slot = self.slot(tag);
        let _ = slot.fetch_update(SeqCst, SeqCst, |cur| {
            let (seen, count) = unpack(cur, tag);
            (seen == tag).then(|| pack(tag, count.saturating_sub(n)))
        });
    }

    /// Counts `n` units at `now_us` without a check (used beyond a reservation).
    pub fn add(&self, now_us: u64, n: u64, window_us: u64) {
        self.add_at(granule(now_us, window_us), n);
    }

    /// Takes `n` units back out of the granule `at` they were counted in, if it still holds
    /// them (units of a granule that was recycled have left the window already).
    pub fn give_back(&self, at: u64, n: u64) {
        self.sub_at(at, n);
    }

    /// Units counted in the window at `now_us`.
    pub fn used(&self, now_us: u64, window_us: u64) -> u64 {
        let mut buf = [(0, 0); SLOTS];
        let k = self.counted(granule(now_us, window_us), &mut buf);
        buf[..k].iter().map(|g| g.1).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000_000;
    const SEC: u64 = 1_000_000;

    #[test]
    fn a_burst_of_the_limit_then_nothing_until_it_leaves() {
        for limit in [1u64, 3, 7, 60, 1000] {
            let c = WindowCell::new();
            let t0 = 1_000 * SEC + SEC / 2;
            for i in 0..limit {
                let o = c.check(t0, 1, limit, MIN);
                assert!(o.admitted, "limit {limit}: request {i}");
                assert_eq!(o.remaining, limit - i - 1);
            }
            let o = c.check(t0, 1, limit, MIN);
            assert!(!o.admitted, "limit {limit}: one over");
            // The burst's granule leaves 61 granules after its start: 60.5 s after t0.
            assert_eq!(o.retry_after_us, Some(MIN + SEC / 2));
            assert_eq!(o.reset_us, MIN + SEC / 2);
            assert!(!c.check(t0 + MIN, 1, limit, MIN).admitted);
            assert!(c.check(t0 + MIN + SEC / 2, 1, limit, MIN).admitted);
        }
    }

    #[test]
    fn no_span_of_the_window_holds_more_than_the_limit() {
        // Requests every 0.37 s against 10 per 3.7 s (granules of 61.7 ms): any span of the
        // window must hold at most 10 admissions.
        let (w, limit) = (3_700_000u64, 10u64);
        let c = WindowCell::new();
        let admitted: Vec<u64> = (0..400u64)
            .map(|i| 5 * SEC + i * 37_000)
            .filter(|&t| c.check(t, 1, limit, w).admitted)
            .collect();
        for &t in &admitted {
            let n = admitted.iter().filter(|&&u| u >= t && u < t + w).count();
            assert!(n as u64 <= limit, "{n} in the span from {t}");
        }
        assert!(admitted.len() >= 35, "the rate is kept: {}", admitted.len());
    }

    #[test]
    fn costs_tokens_and_settles() {
        let c = WindowCell::new();
        let now = 5 * SEC;
        let r = c.check(now, 600, 1000, MIN);
        assert!(r.admitted);
        let o = c.check(now, 500, 1000, MIN);
        assert!(!o.admitted && o.remaining == 400, "{o:?}");
        assert_eq!(c.check(now, 1001, 1000, MIN).retry_after_us, None);
        // 500 of the 600 were not used: given back from their granule, even later.
        c.give_back(r.granule, 500);
        assert_eq!(c.used(now + 10 * SEC, MIN), 100);
        assert!(c.check(now + 10 * SEC, 900, 1000, MIN).admitted);
        // Used more than reserved: taken without a check.
        c.add(now + 10 * SEC, 50, MIN);
        assert_eq!(c.used(now + 10 * SEC, MIN), 1050);
        assert!(!c.check(now + 10 * SEC, 1, 1000, MIN).admitted);
        // The first 100 leave after the window; the rest 10 s later.
        assert_eq!(c.used(now + MIN + SEC, MIN), 950);
        assert_eq!(c.used(now + MIN + 11 * SEC, MIN), 0);
        // Giving back after the granule left the window changes nothing counted.
        c.give_back(r.granule, 100);
        assert_eq!(c.used(now + MIN + 11 * SEC, MIN), 0);
    }

    #[test]
    fn a_denial_says_when_enough_has_left() {
        let c = WindowCell::new();
        assert!(c.check(0, 4, 10, MIN).admitted);
        assert!(c.check(20 * SEC, 4, 10, MIN).admitted);
        assert!(c.check(40 * SEC, 2, 10, MIN).admitted);
        let o = c.check(50 * SEC, 5, 10, MIN);
        assert!(!o.admitted);
        // When the 4 of granule 0 leave (61 s), 6 + 5 is still over 10; when the 4 of
        // granule 20 leave (81 s, 31 s from now), 2 + 5 fit.
        assert_eq!(o.retry_after_us, Some(31 * SEC));
        assert_eq!(o.remaining, 0);
        assert!(!c.check(80 * SEC, 5, 10, MIN).admitted);
        assert!(c.check(81 * SEC, 5, 10, MIN).admitted);
        assert!(!check_zero());
    }

    /// The check as it was before its one-pass admission: the ring read into a buffer, then
    /// [`describe`]d.
    fn check_reference(c: &WindowCell, now_us: u64, cost: u64, limit: u64, w: u64) -> Outcome {
        let now = granule(now_us, w);
        let mut buf = [(0, 0); SLOTS];
        if cost > limit || limit == 0 {
            let k = c.counted(now, &mut buf);
            return describe(&mut buf[..k], now_us, cost, limit, w, false);
        }
        let at = c.add_at(now, cost);
        let k = c.counted(now, &mut buf);
        if let Some(g) = buf[..k].iter_mut().find(|g| g.0 == at) {
            g.1 = g.1.saturating_sub(cost);
        }
        let used: u64 = buf[..k].iter().map(|g| g.1).sum();
        let admitted = used + cost <= limit;
        if !admitted {
            c.sub_at(at, cost);
        }
        let mut out = describe(&mut buf[..k], now_us, cost, limit, w, admitted);
        out.granule = at;
        out
    }

    #[test]
    fn the_one_pass_check_answers_as_the_described_window_does() {
        // xorshift: the same sequences on every run.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        for _ in 0..200 {
            let (ours, reference) = (WindowCell::new(), WindowCell::new());
            let limit = 1 + next(50);
            let w = [MIN, SEC, 7 * SEC][next(3) as usize];
            let mut t = 1_000 * SEC + next(SEC);
            for _ in 0..300 {
                // Mostly forward in small steps, sometimes a jump past the window, now and
                // then a clock read a little behind the last.
                t = match next(20) {
                    0 => t + w + next(w),
                    1 => t.saturating_sub(next(w / 30)),
                    _ => t + next(w / 20),
                };
                let cost = [0, 1, 1, 2, 5, limit, limit + 1][next(7) as usize];
                let a = ours.check(t, cost, limit, w);
                let b = check_reference(&reference, t, cost, limit, w);
                assert_eq!(a, b, "t {t} cost {cost} limit {limit} window {w}");
                if next(10) == 0 && a.admitted {
                    ours.give_back(a.granule, cost / 2);
                    reference.give_back(b.granule, cost / 2);
                }
            }
        }
    }

    fn check_zero() -> bool {
        WindowCell::new().check(SEC, 1, 0, MIN).admitted
    }

    #[test]
    fn threads_racing_on_one_window_never_pass_the_limit() {
        let c = WindowCell::new();
        let admitted = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let (c, admitted) = (&c, &admitted);
                s.spawn(move || {
                    for i in 0..2000u64 {
                        // Two granules, so the ring is read across slots too.
                        let now = 10 * SEC + (i % 2) * SEC + t;
                        if c.check(now, 1, 100, MIN).admitted {
                            admitted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        let n = admitted.into_inner();
        assert!((90..=100).contains(&n), "{n}");
        assert_eq!(
            c.used(12 * SEC, MIN),
            n,
            "what was counted is what was admitted"
        );
    }

    #[test]
    fn a_window_not_divisible_into_granules_still_counts_a_whole_window() {
        // 1 s = 60 granules of 16 667 µs (rounded up; 60 of 16 666 µs would be 40 µs short):
        // a unit admitted late in its granule still counts a full second later.
        let w = SEC;
        let c = WindowCell::new();
        let t = 16_666 * 11 - 1;
        assert!(c.check(t, 1, 1, w).admitted);
        assert!(!c.check(t + w - 1, 1, 1, w).admitted);
        assert_eq!(c.used(t + w, w), 1, "counted for the whole window");
    }

    #[test]
    fn tags_survive_the_32_bit_wrap() {
        let c = WindowCell::new();
        let g = (1u64 << 32) - 1;
        let t = g * SEC;
        assert!(c.check(t, 1, 1, MIN).admitted);
        assert!(
            !c.check(t + SEC, 1, 1, MIN).admitted,
            "next granule, across the wrap"
        );
        assert!(c.check(t + 61 * SEC, 1, 1, MIN).admitted);
    }
}
