//! Request lines are written to stderr in batches, not one `write(2)` per request on the
//! worker thread that served it (as Envoy's access log and nginx's `access_log ... flush=` do).
//!
//! - A request's line is copied into [`LINES`]' buffer under a mutex held for that copy only.
//! - A thread of its own (`llmgate-log`) writes the buffer every 50 ms (`--log-flush-ms`,
//!   `LLMGATE_LOG_FLUSH_MS`; `0` writes each line at once, as before), and at once when it holds
//!   [`SOON`] bytes. A line therefore reaches stderr at most that long after its request ended, and a busy gateway makes one `write(2)` per batch. Where stderr is a pipe
//!   to a log collector, the collector also wakes once per batch instead of once per request.
//! - Every other line (warnings, errors, start-up and shutdown; the fmt layer's) is written at
//!   once, after the request lines buffered before it: stderr keeps the order lines were made in.
//! - When stderr does not keep up and the buffer reaches [`FULL`], the request's own thread
//!   writes it, waiting as it did before batching: lines are never dropped.
//! - [`flush`] writes what is buffered; the binary calls it before it exits, and a panic writes
//!   the buffer before its message.
//!
//! Tested by the unit tests below and, through the binary, by `tests/server/logs.rs`
//! (`request_lines_reach_stderr_without_other_lines_and_before_the_exit`,
//! `the_last_request_lines_are_written_at_the_exit`).

use std::io::Write as _;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::Thread;
use std::time::Duration;

/// Bytes buffered that wake the writer thread before its time.
const SOON: usize = 64 * 1024;
/// Bytes buffered past which the request's own thread writes them (stderr is not keeping up).
const FULL: usize = 1024 * 1024;
/// A buffer that grew past this (stderr fell behind) is not kept once written: the two
/// buffers hold at most twice this while the gateway is idle.
const KEEP: usize = 256 * 1024;

/// The process's request lines.
pub(crate) static LINES: Batch = Batch::new(stderr);

/// Writes `bytes` to stderr. As with the fmt layer, a failed write is reported nowhere.
fn stderr(bytes: &[u8]) {
    let _ = std::io::stderr().lock().write_all(bytes);
}

/// Writes every request line buffered so far (the binary calls it before exiting).
pub(crate) fn flush() {
    LINES.flush();
}

/// Lines waiting to be written to `write`.
pub(crate) struct Batch {
    pending: Mutex<Vec<u8>>,
    /// The buffer being written, held while writing: batches reach `write` in the order they
    /// were taken from `pending`, and a line written at once waits for the batch before it.
    writing: Mutex<Vec<u8>>,
    write: fn(&[u8]),
    /// The thread that writes the buffer every so often, once started.
    writer: OnceLock<Thread>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding either lock leaves a buffer that is still valid bytes.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Batch {
    pub(crate) const fn new(write: fn(&[u8])) -> Batch {
        Batch {
            pending: Mutex::new(Vec::new()),
            writing: Mutex::new(Vec::new()),
            write,
            writer: OnceLock::new(),
        }
    }

    /// Starts the thread that writes the buffer `every` so often (once; later calls do
    /// nothing). Until it runs, [`Batch::push`] writes each line itself.
    pub(crate) fn start(&'static self, every: Duration) -> std::io::Result<()> {
        if self.writer.get().is_some() {
            return Ok(());
        }
        let handle = std::thread::Builder::new()
            .name("llmgate-log".into())
            .spawn(move || loop {
                std::thread::park_timeout(every);
                self.flush();
            })?;
        let _ = self.writer.set(handle.thread().clone());
        Ok(())
    }

    /// Buffers `line` (a whole line, newline included).
    pub(crate) fn push(&self, line: &[u8]) {
        let Some(writer) = self.writer.get() else {
            self.write_now(line);
            return;
        };
        let held = {
            let mut pending = lock(&self.pending);
            pending.extend_from_slice(line);
            pending.len()
        };
        if held >= FULL {
            self.flush();
        } else if held >= SOON {
            // No system call unless the writer is asleep.
            writer.unpark();
        }
    }

    /// Writes `line` now, after every line buffered before it.
    pub(crate) fn write_now(&self, line: &[u8]) {
        let mut writing = lock(&self.writing);
        self.take(&mut writing);
        writing.extend_from_slice(line);
        self.write_out(&mut writing);
    }

    /// Writes everything buffered.
    pub(crate) fn flush(&self) {
        let mut writing = lock(&self.writing);
        self.take(&mut writing);
        self.write_out(&mut writing);
    }

    /// [`Batch::flush`] unless a lock is held: a panic's hook runs before the panicking thread
    /// lets go of its locks, and waiting for one it holds would never end.
    fn try_flush(&self) {
        use std::sync::TryLockError;
        let mut writing = match self.writing.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        match self.pending.try_lock() {
            Ok(mut pending) => std::mem::swap(&mut *pending, &mut *writing),
            Err(TryLockError::Poisoned(e)) => std::mem::swap(&mut *e.into_inner(), &mut *writing),
            Err(TryLockError::WouldBlock) => return,
        }
        self.write_out(&mut writing);
    }

    /// Moves the pending lines into `writing` (empty), leaving `pending` with its spare room.
    fn take(&self, writing: &mut Vec<u8>) {
        let mut pending = lock(&self.pending);
        std::mem::swap(&mut *pending, writing);
    }

    fn write_out(&self, writing: &mut Vec<u8>) {
        if !writing.is_empty() {
            (self.write)(writing);
        }
        writing.clear();
        // A burst's buffer is not kept.
        if writing.capacity() > KEEP {
            *writing = Vec::new();
        }
    }
}

/// The fmt layer's writer: each line written at once, after the request lines buffered before
/// it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct AfterBuffered;

impl std::io::Write for AfterBuffered {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        LINES.write_now(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        LINES.flush();
        Ok(())
    }
}

impl tracing_subscriber::fmt::MakeWriter<'_> for AfterBuffered {
    type Writer = AfterBuffered;

    fn make_writer(&self) -> AfterBuffered {
        AfterBuffered
    }
}

/// Writes the buffered lines before a panic's message (then the hook that was installed).
pub(crate) fn flush_on_panic() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        LINES.try_flush();
        previous(info);
    }));
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
