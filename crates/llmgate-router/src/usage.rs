//! [`Usage`]: where a deployment's `rpm`, `tpm` and `rpd` are counted, the one interface the
//! router's picking goes through for them.
//!
//! `rpm` and `tpm` are the sliding window of [`llmgate_core::window`], the same definition the
//! rate-limit layer uses for keys and models: no more than the limit in any 60 s. `rpd` is a
//! quota per UTC day, as providers count it. Counted in this instance's memory (atomics, no
//! lock); a shared backend (Redis) replaces this type's insides without changing its callers.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use llmgate_core::window::WindowCell;

use crate::state::Windowed;

/// A minute, in microseconds.
const MINUTE_US: u64 = 60_000_000;

/// One deployment's usage counters.
#[derive(Debug, Default)]
pub(crate) struct Usage {
    requests: WindowCell,
    tokens: WindowCell,
    daily: Windowed,
    /// Requests taken from `rpd` since they were last handed out to be kept (`daily_sent`).
    unsynced: AtomicU64,
    /// Until when (table microseconds) the shared store said a limit is used up.
    blocked_until_us: AtomicU64,
    /// Which: an index into [`LIMITS`].
    blocked_limit: AtomicU64,
}

/// What one local take took, to undo it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LocalTake {
    /// The rpm granule taken from, if any.
    granule: Option<u64>,
    /// Whether one request was taken from `rpd`.
    daily: bool,
}

/// The limits a shared denial can name.
const LIMITS: [&str; 3] = ["rpm", "tpm", "rpd"];

/// The longest a deployment is skipped here after the shared store denied it: then the store is
/// asked again (another instance's reservations may have been given back meanwhile).
const MAX_BLOCK_US: u64 = 1_000_000;

impl Usage {
    /// Takes one request from `rpm` (when set) and `rpd` (when set) at `now_us` on UTC day
    /// `day`, or says which is used up (and takes nothing).
    pub(crate) fn take_request(
        &self,
        rpm: Option<u64>,
        rpd: Option<u64>,
        now_us: u64,
        day: u64,
    ) -> Result<LocalTake, &'static str> {
        let taken = match rpm {
            Some(rpm) => {
                let o = self.requests.check(now_us, 1, rpm, MINUTE_US);
                if !o.admitted {
                    return Err("at its rpm limit (requests in the last minute)");
                }
                Some(o.granule)
            }
            None => None,
        };
        if let Some(rpd) = rpd {
            if !self.daily.try_take(day, rpd) {
                if let Some(g) = taken {
                    self.requests.give_back(g, 1);
                }
                return Err("at its rpd limit for today (UTC)");
            }
            self.unsynced.fetch_add(1, Relaxed);
        }
        Ok(LocalTake {
            granule: taken,
            daily: rpd.is_some(),
        })
    }

    /// Requests taken from `rpd` on UTC day `day`.
    pub(crate) fn daily_count(&self, day: u64) -> u64 {
        self.daily.count(day)
    }

    /// Undoes a [`Usage::take_request`] (the shared store refused the request).
    pub(crate) fn untake_request(&self, t: LocalTake, day: u64) {
        if let Some(g) = t.granule {
            self.requests.give_back(g, 1);
        }
        if t.daily {
            self.daily.give_back(day);
            // Not yet handed out to be kept, unless a sync took it meanwhile: then the next
            // sync keeps one more than was sent today, a count too high by one, never too low.
            let _ = self
                .unsynced
                .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
        }
    }

    /// Skips the deployment here until `retry_after` from `now_us` (at most a second): the
    /// shared store said `limit` is used up across the instances.
    pub(crate) fn block(&self, now_us: u64, limit: &str, retry_after: Option<Duration>) {
        let for_us = retry_after
            .map_or(MAX_BLOCK_US, |d| d.as_micros() as u64)
            .clamp(1, MAX_BLOCK_US);
        let code = LIMITS.iter().position(|l| *l == limit).unwrap_or(0) as u64;
        self.blocked_limit.store(code, Relaxed);
        self.blocked_until_us
            .fetch_max(now_us.saturating_add(for_us), Relaxed);
    }

    /// The limit the shared store last said is used up, while the deployment is skipped for it.
    pub(crate) fn blocked(&self, now_us: u64) -> Option<&'static str> {
        (self.blocked_until_us.load(Relaxed) > now_us)
            .then(|| LIMITS[self.blocked_limit.load(Relaxed) as usize % LIMITS.len()])
    }

    /// Hands out the `rpd` requests taken since the last call, to be kept.
    pub(crate) fn take_unsynced(&self) -> u64 {
        self.unsynced.swap(0, Relaxed)
    }

    /// Takes back requests handed out but not kept (the write failed).
    pub(crate) fn untake_unsynced(&self, n: u64) {
        self.unsynced.fetch_add(n, Relaxed);
    }

    /// Raises today's `rpd` count to `total` (every instance's requests as kept) plus those
    /// taken here since they were handed out.
    pub(crate) fn raise_daily(&self, day: u64, total: u64) {
        let pending = self.unsynced.load(Relaxed);
        self.daily.raise(day, total.saturating_add(pending));
    }

    /// Requests counted in the last `window_us` (the `rpm` window).
    pub(crate) fn requests(&self, now_us: u64, window_us: u64) -> u64 {
        self.requests.used(now_us, window_us)
    }

    /// Tokens counted in the last minute.
    pub(crate) fn tokens(&self, now_us: u64) -> u64 {
        self.tokens.used(now_us, MINUTE_US)
    }

    /// Counts `n` tokens an answer used.
    pub(crate) fn add_tokens(&self, now_us: u64, n: u64) {
        self.tokens.add(now_us, n, MINUTE_US);
    }
}
