//! [`SpendQueue`]: a bounded queue of spend records, drained in batches into a [`SpendSink`] by
//! one writer on its own thread.
//!
//! - **Bounded**: at most `capacity` records wait (a tokio `mpsc` channel: lock-free on the
//!   sending side).
//! - **Batched**: the writer writes when `batch_size` records are waiting, or `interval` after
//!   the oldest waiting record arrived (LiteLLM's `proxy_batch_write_at`), whichever is first.
//!   The first record of a batch wakes it; after that it looks at the queue every 10 ms until
//!   the batch is full or due, so a busy gateway does not wake its thread once per request
//!   (test `a_filling_batch_does_not_wake_the_writer_per_record`).
//! - **Full**: [`QueueFull::Reject`] (the default) reserves each request's place in the queue
//!   before the request goes on; when there is none, the request is answered 503 and counted
//!   (`llmgate_spend_queue_rejected_total`), so a request that is served is always recorded.
//!   [`QueueFull::Drop`] serves it anyway and drops its record, counted
//!   (`llmgate_spend_records_dropped_total`) and logged.
//! - **Its own thread**: the writer runs on a thread with its own tokio runtime, started on
//!   first use, so it outlives the host's runtimes (Pingora stops its own before `run`
//!   returns) and [`SpendQueue::shutdown`] can drain it after the server stopped.
//! - **Shutdown** writes everything queued, retrying a failing sink until `shutdown_timeout`
//!   (or the host's earlier deadline, [`SpendQueue::shutdown_by`]). With a spill directory
//!   ([`SpendQueue::with_spill`]), what the sink still has not taken then is written there
//!   (see `spill.rs`) and replayed by the next writer to start, before anything else; without
//!   one it is dropped and counted. Records still arriving after the shutdown (a stream cut
//!   off by the host) are dropped and counted.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::record::SpendRecord;
use crate::sink::SpendSink;
use crate::spill::Spill;
pub(crate) use crate::status::QueueCounters;

/// What to do with a request when the spend queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueueFull {
    /// Answer 503 (`Retry-After: 1`) before serving it: every served request is recorded.
    #[default]
    Reject,
    /// Serve it and drop its record (counted and logged).
    Drop,
}

/// The queue's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueueConfig {
    /// Records that may wait (for [`QueueFull::Reject`], requests in flight hold a place too).
    pub capacity: usize,
    /// Records per write.
    pub batch_size: usize,
    /// Longest a record waits before it is written.
    pub interval: Duration,
    /// What a full queue does.
    pub on_full: QueueFull,
    /// How long shutdown keeps retrying a failing sink.
    pub shutdown_timeout: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            capacity: 65_536,
            batch_size: 512,
            // LiteLLM's default `proxy_batch_write_at`.
            interval: Duration::from_secs(10),
            on_full: QueueFull::Reject,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

enum Control {
    Flush(oneshot::Sender<()>),
    /// Stop: write what is queued, retrying a failing sink until the deadline (else
    /// `shutdown_timeout` from now).
    Shutdown(oneshot::Sender<()>, Option<Instant>),
}

struct Shared {
    config: QueueConfig,
    tx: mpsc::Sender<SpendRecord>,
    rx: Mutex<Option<mpsc::Receiver<SpendRecord>>>,
    sink: Arc<dyn SpendSink>,
    spill: Option<Spill>,
    control: OnceLock<Option<mpsc::UnboundedSender<Control>>>,
    /// Senders between checking `finished` and sending (see [`Slot::send`]).
    sending: AtomicUsize,
    /// The writer has drained for the last time.
    finished: AtomicBool,
    counters: QueueCounters,
    health: crate::status::Health,
    /// Turns of the writer's loop (a test counts them).
    #[cfg(test)]
    wakes: AtomicUsize,
}

/// The spend queue. Cheap to clone; spawns nothing until the first record (or
/// [`SpendQueue::start`]).
#[derive(Clone)]
pub struct SpendQueue {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SpendQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpendQueue")
            .field("config", &self.shared.config)
            .field("depth", &self.depth())
            .finish_non_exhaustive()
    }
}

/// A place in the queue for one record, taken when the request starts.
pub(crate) struct Slot {
    shared: Arc<Shared>,
    permit: Option<mpsc::OwnedPermit<SpendRecord>>,
}

/// The queue has no place for the request's record ([`QueueFull::Reject`]).
#[derive(Debug)]
pub(crate) struct NoPlace;

impl SpendQueue {
    /// A queue writing into `sink`.
    pub fn new(sink: Arc<dyn SpendSink>, config: QueueConfig) -> Self {
        Self::with_counters(sink, config, None, QueueCounters::default())
    }

    /// A queue writing into `sink` that spills to `dir` what `sink` has not taken by the end of
    /// a shutdown, and replays what an earlier shutdown spilled there when its writer starts.
    /// `sink` must skip records whose request id it already stored (see [`SpendSink`]).
    pub fn with_spill(sink: Arc<dyn SpendSink>, config: QueueConfig, dir: PathBuf) -> Self {
        Self::with_counters(sink, config, Some(dir), QueueCounters::default())
    }

    pub(crate) fn with_counters(
        sink: Arc<dyn SpendSink>,
        mut config: QueueConfig,
        spill: Option<PathBuf>,
        counters: QueueCounters,
    ) -> Self {
        config.capacity = config.capacity.max(1);
        config.batch_size = config.batch_size.clamp(1, config.capacity);
        let (tx, rx) = mpsc::channel(config.capacity);
        SpendQueue {
            shared: Arc::new(Shared {
                config,
                tx,
                rx: Mutex::new(Some(rx)),
                sink,
                spill: spill.map(Spill::new),
                control: OnceLock::new(),
                sending: AtomicUsize::new(0),
                finished: AtomicBool::new(false),
                counters,
                health: Default::default(),
                #[cfg(test)]
                wakes: AtomicUsize::new(0),
            }),
        }
    }

    /// The settings.
    pub fn config(&self) -> &QueueConfig {
        &self.shared.config
    }

    /// Records waiting to be written.
    pub fn depth(&self) -> i64 {
        self.shared.counters.depth.get()
    }

    /// The writer's state, for readiness: records not yet written, and the sink's failure
    /// while it fails.
    pub fn status(&self) -> crate::status::WriterStatus {
        self.shared.health.status(
            self.depth(),
            self.shared.config.capacity,
            self.shared.tx.capacity() == 0,
        )
    }

    /// Records dropped: a full queue under [`QueueFull::Drop`], after shutdown, or unwritable
    /// at shutdown (and not spilled).
    pub fn dropped(&self) -> u64 {
        self.shared.counters.dropped.get()
    }

    /// Records written to the spill directory at shutdown.
    pub fn spilled(&self) -> u64 {
        self.shared.counters.spilled.get()
    }

    /// Spilled records the sink took at a later start (their files removed).
    pub fn replayed(&self) -> u64 {
        self.shared.counters.replayed.get()
    }

    /// Requests refused because the queue was full ([`QueueFull::Reject`]).
    pub fn rejected(&self) -> u64 {
        self.shared.counters.rejected.get()
    }

    /// Starts the writer thread if it is not running. Called on first use; hosts may call it
    /// earlier.
    pub fn start(&self) {
        self.control();
    }

    fn control(&self) -> Option<&mpsc::UnboundedSender<Control>> {
        self.shared
            .control
            .get_or_init(|| spawn_writer(&self.shared))
            .as_ref()
    }

    /// Takes a place for one record: under [`QueueFull::Reject`] a reserved place, or
    /// [`NoPlace`] when the queue is full or shut down.
    pub(crate) fn reserve(&self) -> Result<Slot, NoPlace> {
        self.control();
        let permit = match self.shared.config.on_full {
            QueueFull::Drop => None,
            QueueFull::Reject => match self.shared.tx.clone().try_reserve_owned() {
                Ok(p) => Some(p),
                Err(_) => {
                    self.shared.counters.rejected.inc();
                    return Err(NoPlace);
                }
            },
        };
        Ok(Slot {
            shared: self.shared.clone(),
            permit,
        })
    }

    /// Sends one record (for callers outside the layer: a record built by hand).
    pub fn send(&self, record: SpendRecord) {
        self.control();
        Slot {
            shared: self.shared.clone(),
            permit: None,
        }
        .send(record);
    }

    /// Writes every record queued so far, and returns once they are written (or the writer is
    /// gone).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if let Some(c) = self.control() {
            if c.send(Control::Flush(done)).is_ok() {
                let _ = wait.await;
            }
        }
    }

    /// Stops the writer after it wrote everything queued (retrying a failing sink up to
    /// `shutdown_timeout`). Later records are dropped and counted. Works from any runtime,
    /// even one built only for this call.
    pub async fn shutdown(&self) {
        self.stop(None).await;
    }

    /// [`SpendQueue::shutdown`], but a failing sink is retried only until `deadline` (a host's
    /// grace period for a stop ends then) if that comes before `shutdown_timeout`.
    pub async fn shutdown_by(&self, deadline: std::time::Instant) {
        self.stop(Some(Instant::from_std(deadline))).await;
    }

    async fn stop(&self, deadline: Option<Instant>) {
        let (done, wait) = oneshot::channel();
        if let Some(c) = self.control() {
            if c.send(Control::Shutdown(done, deadline)).is_ok() {
                let _ = wait.await;
            }
        }
    }
}

impl Slot {
    /// Queues the record in its place; without one, in a free place if any, else drops it
    /// (counted).
    pub(crate) fn send(self, record: SpendRecord) {
        let s = &self.shared;
        // Either the writer sees `sending > 0` and waits for this send before its last drain,
        // or this sees `finished` and counts the record: none is lost uncounted.
        s.sending.fetch_add(1, SeqCst);
        let sent = if s.finished.load(SeqCst) {
            false
        } else if let Some(p) = self.permit {
            p.send(record);
            true
        } else {
            s.tx.try_send(record).is_ok()
        };
        if sent {
            s.counters.depth.inc();
        }
        s.sending.fetch_sub(1, SeqCst);
        if !sent {
            s.counters.dropped.inc();
            drop_warning(s.finished.load(SeqCst));
        }
    }
}

/// Logs a dropped record, at most once a second.
fn drop_warning(after_shutdown: bool) {
    static LAST: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if LAST.swap(now, SeqCst) != now {
        if after_shutdown {
            tracing::warn!("spend record dropped: the spend queue was already shut down");
        } else {
            tracing::warn!(
                "spend record dropped: the spend queue is full (see llmgate_spend_records_dropped_total)"
            );
        }
    }
}

mod writer;
use writer::spawn_writer;

#[cfg(test)]
#[path = "queue_tests.rs"]
mod tests;
