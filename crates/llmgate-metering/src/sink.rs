//! [`SpendSink`]: where batches of spend records go, and [`MemorySink`], the in-memory one.

use std::sync::{Arc, Mutex};

use llmgate_core::BoxError;

use crate::record::SpendRecord;

/// Where the spend writer sends each batch of records. The SQL store implements it
/// (`llmgate-store`); [`MemorySink`] keeps them in memory.
///
/// The rules a sink keeps:
///
/// - **All or nothing.** `write` stores the whole batch or none of it, and, in the same
///   transaction, adds each record's [`charge`](SpendRecord::charge) to the spend of its key
///   ([`key_token`](SpendRecord::key_token)), so key spend and the spend log never disagree.
/// - **Failures are retried.** On `Err` the writer keeps the batch and calls `write` again with
///   the same records (backing off, up to the batch interval), while new records wait in the
///   queue; so a failed write must have changed nothing. Records are never dropped because a
///   write failed, except at shutdown after [`crate::SpendQueue`]'s deadline (counted, logged).
/// - **Once per request id.** A record whose request id the sink already stored is skipped
///   and charges nothing: the writer may hand a record over twice (a retry after a commit
///   whose answer was lost; a spill file replayed again after a crash, see
///   [`crate::SpendQueue::with_spill`]). The SQL store keeps this rule while it keeps spend
///   logs; [`MemorySink`] keeps every record it is given.
/// - **One call at a time.** The writer never calls `write` concurrently.
///
/// It runs on the spend writer's own thread and runtime, not on the request path.
#[async_trait::async_trait]
pub trait SpendSink: Send + Sync + 'static {
    /// Stores `batch` (1 to the batch size records, oldest first) and charges key spend.
    async fn write(&self, batch: &[SpendRecord]) -> Result<(), BoxError>;
}

/// A sink that keeps every record in memory: for tests, and for library users who read the
/// records themselves.
#[derive(Debug, Clone, Default)]
pub struct MemorySink {
    records: Arc<Mutex<Vec<SpendRecord>>>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of every record written so far, oldest first.
    pub fn records(&self) -> Vec<SpendRecord> {
        self.records.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// How many records were written.
    pub fn len(&self) -> usize {
        self.records.lock().map(|r| r.len()).unwrap_or(0)
    }

    /// Whether none were.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait::async_trait]
impl SpendSink for MemorySink {
    async fn write(&self, batch: &[SpendRecord]) -> Result<(), BoxError> {
        self.records
            .lock()
            .map_err(|_| "the memory sink's lock was poisoned")?
            .extend_from_slice(batch);
        Ok(())
    }
}
