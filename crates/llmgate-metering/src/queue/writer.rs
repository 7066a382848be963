//! The spend queue's writer: one task on its own thread, draining the queue into the sink in
//! batches (see [`super`]).

use std::path::PathBuf;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::{Control, Shared};
use crate::record::SpendRecord;

/// How often the writer looks at the queue while a batch fills (see [`Writer::run`]).
const GLANCE: Duration = Duration::from_millis(10);

pub(super) fn spawn_writer(shared: &Arc<Shared>) -> Option<mpsc::UnboundedSender<Control>> {
    let rx = shared.rx.lock().ok()?.take()?;
    let (control, control_rx) = mpsc::unbounded_channel();
    let writer = Writer {
        rx,
        control: control_rx,
        shared: shared.clone(),
        buf: Vec::with_capacity(shared.config.batch_size),
        stop: None,
        flushed: Vec::new(),
        replaying: Vec::new(),
        replay_left: 0,
    };
    let spawned = std::thread::Builder::new()
        .name("llmgate-spend-writer".into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
            {
                Ok(rt) => rt.block_on(writer.run()),
                Err(e) => tracing::error!(error = %e, "the spend writer cannot start its runtime"),
            }
        });
    match spawned {
        Ok(_) => Some(control),
        Err(e) => {
            tracing::error!(error = %e, "the spend writer thread cannot start; spend records will not be written");
            None
        }
    }
}

struct Writer {
    rx: mpsc::Receiver<SpendRecord>,
    control: mpsc::UnboundedReceiver<Control>,
    shared: Arc<Shared>,
    buf: Vec<SpendRecord>,
    /// A shutdown asked for while a failing batch was being retried, and its deadline.
    stop: Option<(oneshot::Sender<()>, Instant)>,
    /// Flushes asked for meanwhile, answered once the buffer is written.
    flushed: Vec<oneshot::Sender<()>>,
    /// Spill files being replayed (their records are in the buffer): removed once the buffer
    /// is written, or spilled again.
    replaying: Vec<PathBuf>,
    /// Replayed records still at the front of the buffer.
    replay_left: usize,
}

/// `at + d`, or a century on if that overflows the clock (a `QueueConfig` built in code may
/// hold any `Duration`; `Instant + Duration` panics on overflow).
fn later(at: Instant, d: Duration) -> Instant {
    at.checked_add(d)
        .or_else(|| at.checked_add(Duration::from_secs(llmgate_core::seconds::MAX_SECONDS)))
        .unwrap_or(at)
}

impl Writer {
    async fn run(mut self) {
        let config = self.shared.config;
        self.replay().await;
        let mut due: Option<Instant> = None;
        loop {
            if let Some((done, deadline)) = self.stop.take() {
                self.finish(deadline).await;
                let _ = done.send(());
                return;
            }
            let room = config.batch_size.saturating_sub(self.buf.len()).max(1);
            // While a batch fills, the queue is looked at every `GLANCE` rather than on each
            // record's arrival: a busy gateway then wakes this thread a hundred times a second,
            // not once per request.
            let glance = due.map(|d| d.min(later(Instant::now(), GLANCE)));
            #[cfg(test)]
            self.shared.wakes.fetch_add(1, SeqCst);
            tokio::select! {
                biased;
                ctl = self.control.recv() => match ctl {
                    Some(Control::Flush(done)) => {
                        self.take(usize::MAX);
                        self.write_all(None).await;
                        due = None;
                        let _ = done.send(());
                    }
                    Some(Control::Shutdown(done, by)) => {
                        let latest = later(Instant::now(), config.shutdown_timeout);
                        self.finish(by.map_or(latest, |by| by.min(latest))).await;
                        let _ = done.send(());
                        return;
                    }
                    None => {
                        self.finish(later(Instant::now(), config.shutdown_timeout)).await;
                        return;
                    }
                },
                // An empty buffer waits for the first record.
                n = self.rx.recv_many(&mut self.buf, room), if due.is_none() => {
                    self.shared.counters.depth.dec_by(n as i64);
                    if n == 0 {
                        self.finish(later(Instant::now(), config.shutdown_timeout)).await;
                        return;
                    }
                    if self.buf.len() >= config.batch_size {
                        self.write_all(None).await;
                    } else {
                        due = Some(later(Instant::now(), config.interval));
                    }
                }
                () = sleep_until(glance), if glance.is_some() => {
                    self.take(room);
                    if self.buf.len() >= config.batch_size || due.is_some_and(|d| Instant::now() >= d) {
                        self.write_all(None).await;
                        due = None;
                    }
                }
            }
        }
    }

    /// Moves up to `room` queued records into the buffer, without waiting.
    fn take(&mut self, room: usize) {
        let mut n = 0;
        while n < room {
            let Ok(r) = self.rx.try_recv() else { break };
            self.buf.push(r);
            n += 1;
        }
        self.shared.counters.depth.dec_by(n as i64);
    }

    /// The last drain: no more sends after this, then everything written.
    async fn finish(&mut self, deadline: Instant) {
        self.rx.close();
        self.shared.finished.store(true, SeqCst);
        while self.shared.sending.load(SeqCst) != 0 {
            std::thread::yield_now();
        }
        self.take(usize::MAX);
        self.write_all(Some(deadline)).await;
        if !self.buf.is_empty() {
            self.spill();
        }
        self.shared.health.buffered(self.buf.len());
    }

    /// Writes the spill files an earlier shutdown left, before any new record.
    async fn replay(&mut self) {
        let Some(spill) = &self.shared.spill else {
            return;
        };
        let files = spill.pending();
        if files.is_empty() {
            return;
        }
        let records: usize = files.iter().map(|f| f.records.len()).sum();
        tracing::info!(files = files.len(), records, dir = %spill.dir().display(),
            "replaying the spend records an earlier stop spilled");
        for f in files {
            self.replaying.push(f.path);
            self.buf.extend(f.records);
        }
        self.replay_left = records;
        self.write_all(None).await;
    }

    /// The buffer could not be written by the shutdown deadline: to the spill directory, else
    /// dropped (counted).
    fn spill(&mut self) {
        let n = self.buf.len();
        let written = self
            .shared
            .spill
            .as_ref()
            .map(|s| (s.dir(), s.write(&self.buf)));
        match written {
            Some((_, Ok(file))) => {
                self.shared.counters.spilled.inc_by(n as u64);
                tracing::warn!(records = n, file = %file.display(),
                    "spend records could not be written before the shutdown deadline; spilled, the next start writes them");
                // Their unwritten records are in the new file; the rest are stored.
                self.remove_replayed();
            }
            Some((dir, Err(e))) => {
                self.shared.counters.dropped.inc_by(n as u64);
                tracing::error!(lost = n, dir = %dir.display(), error = %e,
                    "spend records could not be written before the shutdown deadline, nor spilled");
            }
            None => {
                self.shared.counters.dropped.inc_by(n as u64);
                tracing::error!(
                    lost = n,
                    "spend records could not be written before the shutdown deadline"
                );
            }
        }
        self.buf.clear();
    }

    /// Removes the spill files being replayed: their records are stored or spilled again.
    fn remove_replayed(&mut self) {
        if let Some(spill) = &self.shared.spill {
            for path in self.replaying.drain(..) {
                spill.remove(&path);
            }
        }
        self.replay_left = 0;
    }

    /// Writes the buffer in batches. A failed batch is retried with backoff until it is
    /// written, or until `deadline` (shutdown); meanwhile records wait in the queue.
    async fn write_all(&mut self, mut deadline: Option<Instant>) {
        let config = self.shared.config;
        while !self.buf.is_empty() {
            let n = self.buf.len().min(config.batch_size);
            let mut backoff = Duration::from_millis(50);
            self.shared.health.buffered(self.buf.len());
            loop {
                // At shutdown, a write still running at the deadline is abandoned: its records
                // are spilled (if it did commit, the replay skips them: once per request id).
                let write = self.shared.sink.write(&self.buf[..n]);
                let written = match deadline {
                    Some(d) => tokio::time::timeout_at(d, write)
                        .await
                        .unwrap_or_else(|_| Err("the shutdown deadline passed".into())),
                    None => write.await,
                };
                match written {
                    Ok(()) => {
                        self.shared.counters.written.inc_by(n as u64);
                        let replayed = n.min(self.replay_left);
                        self.replay_left -= replayed;
                        self.shared.counters.replayed.inc_by(replayed as u64);
                        self.buf.drain(..n);
                        self.shared.health.wrote();
                        self.shared.health.buffered(self.buf.len());
                        break;
                    }
                    Err(e) => {
                        self.shared.counters.write_failures.inc();
                        self.shared.health.failed(e.to_string());
                        tracing::warn!(error = %e, records = n, "spend batch write failed; retrying");
                        let now = Instant::now();
                        // A shutdown does not wait for the sink forever.
                        while let Ok(c) = self.control.try_recv() {
                            match c {
                                Control::Flush(done) => self.flushed.push(done),
                                Control::Shutdown(done, by) => {
                                    let latest = later(now, config.shutdown_timeout);
                                    let by = by.map_or(latest, |by| by.min(latest));
                                    let by = deadline.map_or(by, |d| d.min(by));
                                    self.stop = Some((done, by));
                                    deadline = Some(by);
                                }
                            }
                        }
                        if deadline.is_some_and(|d| now >= d) {
                            return;
                        }
                        let wait = deadline.map_or(backoff, |d| backoff.min(d - now));
                        tokio::time::sleep(wait).await;
                        backoff = (backoff * 2).min(config.interval.max(Duration::from_secs(1)));
                    }
                }
            }
        }
        if !self.replaying.is_empty() {
            self.remove_replayed();
        }
        for done in self.flushed.drain(..) {
            let _ = done.send(());
        }
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
