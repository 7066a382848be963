//! Graceful shutdown: count the requests in flight, and on SIGTERM or SIGINT let them finish.
//!
//! Pingora's own SIGTERM handling stops accepting connections and then sleeps for the whole
//! `grace_period_seconds`, busy or idle. [`Signals`] keeps Pingora's behaviour as the upper
//! bound (the grace period is our `--graceful-shutdown-seconds`) and ends the process as soon as
//! no request is in flight, so an idle gateway stops at once and a streaming one stops when its
//! last stream ends. A second signal during the wait exits at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora_core::server::{ShutdownSignal, ShutdownSignalWatch};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::Notify;

/// How long the count must stay at zero before the process exits: covers a request whose
/// header was just read on a kept-alive connection but which is not counted yet.
const SETTLE: Duration = Duration::from_millis(50);

/// The number of requests being served, shared by the host and the shutdown watcher.
#[derive(Clone, Default, Debug)]
pub struct InFlight(Arc<Counter>);

#[derive(Default, Debug)]
struct Counter {
    count: AtomicUsize,
    idle: Notify,
}

impl InFlight {
    /// Count one request until the returned guard drops.
    pub fn enter(&self) -> InFlightGuard {
        self.0.count.fetch_add(1, Ordering::AcqRel);
        InFlightGuard(self.clone())
    }

    /// Requests in flight now.
    pub fn count(&self) -> usize {
        self.0.count.load(Ordering::Acquire)
    }

    /// Resolves once no request is in flight.
    pub async fn idle(&self) {
        loop {
            let notified = self.0.idle.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if self.count() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Counts one request in flight while it lives.
#[derive(Debug)]
pub struct InFlightGuard(InFlight);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if self.0 .0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0 .0.idle.notify_waiters();
        }
    }
}

/// Pingora's shutdown trigger: SIGTERM and SIGINT both mean "drain, then exit".
pub struct Signals {
    in_flight: InFlight,
    grace: Duration,
}

impl Signals {
    /// Drain `in_flight` for at most `grace` after the first signal.
    pub fn new(in_flight: InFlight, grace: Duration) -> Self {
        Self { in_flight, grace }
    }
}

#[async_trait]
impl ShutdownSignalWatch for Signals {
    async fn recv(&self) -> ShutdownSignal {
        let (mut term, mut int) = match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(term), Ok(int)) => (term, int),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM/SIGINT; stop the process with SIGKILL");
                return std::future::pending().await;
            }
        };
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(
            signal = name,
            in_flight = self.in_flight.count(),
            grace_seconds = self.grace.as_secs(),
            "shutting down: no new connections; waiting for the requests in flight"
        );
        // Runs on Pingora's server runtime, which lives until the grace period ends.
        tokio::spawn(exit_when_drained(self.in_flight.clone(), term, int));
        ShutdownSignal::GracefulTerminate
    }
}

/// Exit the process once nothing is in flight, or at once on a second signal. If neither
/// happens, Pingora ends the process when the grace period is over.
async fn exit_when_drained(in_flight: InFlight, mut term: Signal, mut int: Signal) {
    let drained = async {
        loop {
            in_flight.idle().await;
            tokio::time::sleep(SETTLE).await;
            if in_flight.count() == 0 {
                return;
            }
        }
    };
    tokio::select! {
        () = drained => {
            tracing::info!("all requests finished; exiting");
            std::process::exit(0);
        }
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::warn!(
        in_flight = in_flight.count(),
        "second signal: exiting without waiting for the requests in flight"
    );
    std::process::exit(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_resolves_when_the_last_guard_drops() {
        let in_flight = InFlight::default();
        in_flight.idle().await; // nothing in flight: at once
        let first = in_flight.enter();
        let second = in_flight.enter();
        assert_eq!(in_flight.count(), 2);
        let waiter = tokio::spawn({
            let in_flight = in_flight.clone();
            async move { in_flight.idle().await }
        });
        drop(first);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(second);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(in_flight.count(), 0);
    }
}
