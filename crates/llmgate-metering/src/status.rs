//! [`WriterStatus`]: how the spend writer is doing, for `/health/readiness`; and the queue's
//! counters for `/metrics`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::SystemTime;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

/// The queue's counters, shared with the metrics registry.
#[derive(Debug, Clone, Default)]
pub(crate) struct QueueCounters {
    pub(crate) depth: Gauge,
    pub(crate) dropped: Counter,
    pub(crate) rejected: Counter,
    pub(crate) written: Counter,
    pub(crate) write_failures: Counter,
    pub(crate) spilled: Counter,
    pub(crate) replayed: Counter,
}

/// A snapshot of the spend writer ([`crate::SpendQueue::status`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WriterStatus {
    /// Records not yet written: waiting in the queue, or in the batch being written.
    pub unwritten: u64,
    /// How many records the queue holds at most.
    pub capacity: usize,
    /// No place is left: under `QueueFull::Reject` new requests are refused.
    pub full: bool,
    /// Set while writes fail: cleared by the next write that succeeds.
    pub failing: Option<WriteFailure>,
}

/// The sink has been failing since `since`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WriteFailure {
    /// The first failure of this run of failures.
    pub since: SystemTime,
    /// The last error, as the sink reported it.
    pub error: String,
    /// Failed writes in this run.
    pub attempts: u64,
}

/// Kept by the writer, read by readiness. The writer touches the lock only around a failing
/// write, never on the request path.
#[derive(Debug, Default)]
pub(crate) struct Health {
    buffered: AtomicUsize,
    failing: AtomicBool,
    failure: Mutex<Option<WriteFailure>>,
}

impl Health {
    /// The writer holds `n` records it took off the queue.
    pub(crate) fn buffered(&self, n: usize) {
        self.buffered.store(n, Ordering::Relaxed);
    }

    pub(crate) fn failed(&self, error: String) {
        let mut failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        match failure.as_mut() {
            Some(f) => {
                f.error = error;
                f.attempts += 1;
            }
            None => {
                *failure = Some(WriteFailure {
                    since: SystemTime::now(),
                    error,
                    attempts: 1,
                });
            }
        }
        self.failing.store(true, Ordering::Release);
    }

    pub(crate) fn wrote(&self) {
        if self.failing.swap(false, Ordering::AcqRel) {
            *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }

    pub(crate) fn status(&self, queued: i64, capacity: usize, full: bool) -> WriterStatus {
        let buffered = self.buffered.load(Ordering::Relaxed) as u64;
        let failing = if self.failing.load(Ordering::Acquire) {
            self.failure
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        } else {
            None
        };
        WriterStatus {
            unwritten: u64::try_from(queued).unwrap_or(0) + buffered,
            capacity,
            full,
            failing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_lasts_until_a_write_succeeds() {
        let h = Health::default();
        h.buffered(3);
        assert_eq!(h.status(2, 10, false).unwritten, 5);
        assert!(h.status(0, 10, false).failing.is_none());
        h.failed("down".into());
        h.failed("still down".into());
        let f = h.status(0, 10, false).failing.unwrap();
        assert_eq!((f.error.as_str(), f.attempts), ("still down", 2));
        h.wrote();
        assert!(h.status(0, 10, false).failing.is_none());
    }
}
