//! Graceful stop: count the requests in flight, and on SIGTERM or SIGINT let them finish,
//! write every spend record, then exit. (SIGHUP reloads the config instead: [`crate::reload`].)
//!
//! Pingora's own SIGTERM handling stops accepting connections and then sleeps for the whole
//! grace period, busy or idle, before its `run` returns. [`Signals`] takes over the stop: at
//! the first signal Pingora stops accepting, and a task of ours ([`stop`]) runs the stop to its
//! end and exits the process itself, before Pingora's own (longer) grace timer could:
//!
//! 1. **Drain**: wait until no request is in flight (an idle gateway stops at once).
//! 2. **Cutoff**: if streams are still running [`cut_lead`] before the grace period ends, end
//!    them ([`llmgate::Gateway::cut_streams`]: each gets an error event in its client's
//!    dialect and is metered) and give them half of that lead to finish.
//! 3. **Flush**: write every queued spend record ([`llmgate::Gateway::shutdown_by`]),
//!    retrying a failing database until the grace period's last moments; what still cannot be
//!    written is left to the spend writer's spill file, which the next start replays.
//! 4. **Exit** with 0.
//!
//! SIGQUIT hands the listening sockets to a new process and then runs the same stop, waiting
//! for the client connections too ([`crate::upgrade`]).
//!
//! A second signal (SIGTERM or SIGINT) during the drain cuts the streams at once, gives them [`HURRY_STREAMS`], writes the
//! spend records for at most [`HURRY_WRITE`] (spilling the rest) and exits with 1. A third
//! signal exits at once, with 1, losing what is still queued.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use llmgate::OpenConnections;
use pingora_core::server::{ShutdownSignal, ShutdownSignalWatch};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::Notify;

use crate::upgrade::Handover;

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

/// After a second signal: how long cut streams get to end.
pub const HURRY_STREAMS: Duration = Duration::from_millis(250);
/// After a second signal: how long the spend writer may try the database before it spills.
pub const HURRY_WRITE: Duration = Duration::from_secs(1);
/// Pingora's own grace timer runs this much longer than ours: ours always ends the process
/// first; Pingora's is a backstop only.
pub const PINGORA_BACKSTOP: Duration = Duration::from_secs(5);

/// How long before the grace period ends the streams still running are cut: 1 s, or a quarter
/// of a grace period shorter than 4 s. Half of it is left for them to end and be metered, the
/// rest for writing their records.
pub fn cut_lead(grace: Duration) -> Duration {
    (grace / 4).min(Duration::from_secs(1))
}

/// Pingora's shutdown trigger: SIGTERM and SIGINT mean "drain, flush, exit";
/// SIGQUIT means "hand the listening sockets over, then drain, flush, exit".
pub struct Signals {
    in_flight: InFlight,
    grace: Duration,
    gateway: llmgate::Gateway,
    handover: Option<Handover>,
}

impl Signals {
    /// Drain `in_flight` for at most `grace` after the first signal, then write `gateway`'s
    /// spend records and exit.
    pub fn new(in_flight: InFlight, grace: Duration, gateway: llmgate::Gateway) -> Self {
        Self {
            in_flight,
            grace,
            gateway,
            handover: None,
        }
    }

    /// On SIGQUIT, hand the listening sockets over as `handover` says. Without it SIGQUIT is
    /// ignored.
    #[must_use]
    pub fn hand_over(mut self, handover: Handover) -> Self {
        self.handover = Some(handover);
        self
    }

    /// The stop, its grace period starting now.
    fn stop(&self, connections: Option<OpenConnections>) -> Stop {
        Stop::new(
            self.in_flight.clone(),
            self.gateway.clone(),
            self.grace,
            connections,
        )
    }

    /// After SIGQUIT: whether a new process waits for the sockets; if not, says so.
    async fn partner_ready(&self) -> Option<&Handover> {
        let Some(handover) = &self.handover else {
            tracing::warn!("SIGQUIT ignored: this process cannot hand its sockets over");
            return None;
        };
        let sock = handover.sock().display();
        tracing::info!(%sock, "SIGQUIT: looking for a new process (llmgate --upgrade) waiting on the upgrade socket");
        if handover.partner_waiting().await {
            return Some(handover);
        }
        tracing::error!(
            %sock,
            wait_seconds = crate::upgrade::PARTNER_WAIT.as_secs(),
            "SIGQUIT: no new process is waiting on the upgrade socket; still serving. Start \
             `llmgate --upgrade` with the same --host, --port and --upgrade_sock, then send SIGQUIT again"
        );
        None
    }
}

/// The two stop signals, listened to together.
struct StopSignals {
    term: Signal,
    int: Signal,
}

impl StopSignals {
    fn listen() -> std::io::Result<Self> {
        Ok(StopSignals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// The next stop signal's name.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

#[async_trait]
impl ShutdownSignalWatch for Signals {
    async fn recv(&self) -> ShutdownSignal {
        let mut signals = match StopSignals::listen() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM/SIGINT; stop the process with SIGKILL");
                return std::future::pending().await;
            }
        };
        let mut quit = match signal(SignalKind::quit()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGQUIT; stop the process with SIGKILL");
                return std::future::pending().await;
            }
        };
        let (name, handover) = loop {
            tokio::select! {
                name = signals.next() => break (name, None),
                _ = quit.recv() => {
                    if let Some(handover) = self.partner_ready().await {
                        break ("SIGQUIT", Some(handover));
                    }
                }
            }
        };
        // Runs on Pingora's server runtime, which lives until Pingora's (longer) grace timer
        // ends; `stop` exits the process before that.
        let Some(handover) = handover else {
            tracing::info!(
                signal = name,
                in_flight = self.in_flight.count(),
                grace_seconds = self.grace.as_secs(),
                "shutting down: no new connections; waiting for the requests in flight"
            );
            tokio::spawn(self.stop(None).run(signals));
            return ShutdownSignal::GracefulTerminate;
        };
        tracing::info!(
            sock = %handover.sock().display(),
            "SIGQUIT: handing the listening sockets to the new process; accepting for 5 s more"
        );
        let accepting_stopped = handover.accepting_stopped();
        let connections = handover.connections();
        let in_flight = self.in_flight.clone();
        let grace = self.grace;
        let gateway = self.gateway.clone();
        tokio::spawn(async move {
            accepting_stopped.await;
            tracing::info!(
                in_flight = in_flight.count(),
                connections = connections.count(),
                grace_seconds = grace.as_secs(),
                "upgrade: no longer accepting; waiting for the requests in flight and the open connections"
            );
            Stop::new(in_flight, gateway, grace, Some(connections))
                .run(signals)
                .await;
        });
        ShutdownSignal::GracefulUpgrade
    }
}

/// One stop, from the first signal to the process's exit.
struct Stop {
    in_flight: InFlight,
    gateway: llmgate::Gateway,
    /// When the grace period ends.
    end: Instant,
    /// [`cut_lead`] of the grace period.
    lead: Duration,
    /// After an upgrade, the client connections, which the drain waits for too.
    connections: Option<OpenConnections>,
}

impl Stop {
    /// A stop whose grace period starts now.
    fn new(
        in_flight: InFlight,
        gateway: llmgate::Gateway,
        grace: Duration,
        connections: Option<OpenConnections>,
    ) -> Self {
        Self {
            in_flight,
            gateway,
            end: Instant::now() + grace,
            lead: cut_lead(grace),
            connections,
        }
    }

    /// Drain (cutting streams near the end, or at once on a second signal), write the spend
    /// records, exit. A third signal exits at once.
    async fn run(self, mut signals: StopSignals) {
        let cut_at = self.end - self.lead;
        let mut hurried = false;
        tokio::select! {
            () = drained(&self.in_flight, self.connections.as_ref()) => {
                tracing::info!("all requests finished; writing the spend records");
            }
            () = tokio::time::sleep_until(cut_at.into()) => {
                self.cut(self.end - self.lead / 2).await;
            }
            name = signals.next() => {
                tracing::warn!(signal = name, in_flight = self.in_flight.count(),
                    "second signal: cutting the requests in flight and exiting");
                hurried = true;
                self.cut(Instant::now() + HURRY_STREAMS).await;
            }
        }
        let write_by = if hurried {
            Instant::now() + HURRY_WRITE
        } else {
            self.end - self.lead / 4
        };
        tokio::select! {
            () = self.gateway.shutdown_by(write_by) => {}
            name = signals.next() => {
                tracing::warn!(signal = name, "another signal: exiting without writing the spend records still queued");
                crate::logging::flush();
                std::process::exit(1);
            }
        }
        tracing::info!("llmgate stopped");
        // The request lines of the last requests, when `info` lines are filtered out.
        crate::logging::flush();
        std::process::exit(if hurried { 1 } else { 0 });
    }

    /// Ends the streams still running and waits until `until` for them to be done.
    async fn cut(&self, until: Instant) {
        let left = self.in_flight.count();
        if left > 0 {
            tracing::warn!(
                in_flight = left,
                "grace period ending: cutting the streams still running"
            );
        }
        self.gateway.cut_streams();
        if tokio::time::timeout_at(until.into(), drained(&self.in_flight, None))
            .await
            .is_err()
        {
            tracing::warn!(
                in_flight = self.in_flight.count(),
                "requests still running after the cutoff; exiting without them"
            );
        }
    }
}

/// Resolves once nothing has been in flight for [`SETTLE`] (and, given `connections`, none is
/// open either; they are looked at every [`SETTLE`]).
async fn drained(in_flight: &InFlight, connections: Option<&OpenConnections>) {
    loop {
        in_flight.idle().await;
        tokio::time::sleep(SETTLE).await;
        if in_flight.count() == 0 && connections.map_or(0, OpenConnections::count) == 0 {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_cut_a_second_before_the_end_or_a_quarter_of_a_short_grace() {
        assert_eq!(cut_lead(Duration::from_secs(30)), Duration::from_secs(1));
        assert_eq!(cut_lead(Duration::from_secs(4)), Duration::from_secs(1));
        assert_eq!(cut_lead(Duration::from_secs(2)), Duration::from_millis(500));
        assert_eq!(cut_lead(Duration::ZERO), Duration::ZERO);
    }

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
