use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use llmgate_core::BoxError;

use super::*;
use crate::queue::{QueueConfig, QueueFull, SpendQueue};
use crate::sink::{MemorySink, SpendSink};

fn record(i: usize) -> SpendRecord {
    SpendRecord {
        request_id: Arc::from(format!("req-{i}")),
        key_token: Some("tok".into()),
        key_alias: Some("alias".into()),
        team_id: Some("team".into()),
        user_id: None,
        end_user: None,
        requested_model: "m".into(),
        model_group: Some(Arc::from("g")),
        deployment: Some(Arc::from("g-0")),
        provider: Some("openai".into()),
        upstream_model: Some(Arc::from("gpt-x")),
        endpoint: "/chat/completions",
        tokens: Tokens {
            prompt: 10,
            completion: 5,
            cache_read: 1,
            cache_creation: 2,
            reasoning: 3,
        },
        cost: Some(0.1 + i as f64 * 1e-7),
        status: 200,
        // Not the outcome `status` implies, so a round trip shows it is carried.
        outcome: crate::record::Outcome::ClientClosed,
        error_class: Some(llmgate_core::FailureClass::ClientClosed),
        usage_estimated: i.is_multiple_of(2),
        stream: true,
        cache_hit: false,
        attempts: 2,
        fallbacks: 1,
        start_time: UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456),
        end_time: UNIX_EPOCH + Duration::from_micros(1_700_000_001_123_456),
        latency: Duration::from_micros(1_000_000),
        time_to_first_token: Some(Duration::from_micros(250)),
        tags: vec!["a".into()],
        error_message: None,
        messages: None,
        response: None,
    }
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("llmgate-spill-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    d
}

/// Skips request ids it has stored (as the SQL sink does); fails while `failing`.
#[derive(Default)]
struct Idempotent {
    inner: MemorySink,
    seen: Mutex<std::collections::HashSet<String>>,
    failing: AtomicBool,
}

#[async_trait::async_trait]
impl SpendSink for Idempotent {
    async fn write(&self, batch: &[SpendRecord]) -> Result<(), BoxError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err("store down".into());
        }
        let new: Vec<_> = {
            let mut seen = self.seen.lock().unwrap();
            batch
                .iter()
                .filter(|r| seen.insert(r.request_id.to_string()))
                .cloned()
                .collect()
        };
        self.inner.write(&new).await
    }
}

fn config() -> QueueConfig {
    QueueConfig {
        capacity: 100,
        batch_size: 4,
        interval: Duration::from_secs(3600),
        on_full: QueueFull::Reject,
        shutdown_timeout: Duration::from_millis(200),
    }
}

#[test]
fn a_record_survives_the_spill_file_unchanged() {
    let spill = Spill::new(dir("roundtrip"));
    let records: Vec<_> = (0..3).map(record).collect();
    let path = spill.write(&records).unwrap();
    assert!(is_spill_file(&path));
    let pending = spill.pending();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].records, records);
    spill.remove(&path);
    assert!(spill.pending().is_empty());
    // A line that does not parse is skipped, the others kept.
    fs::write(spill.dir().join("spend-1-1-1.jsonl"), "{not json\n").unwrap();
    assert!(spill.pending()[0].records.is_empty());
}

#[tokio::test]
async fn unwritable_records_are_spilled_and_replayed_once_by_the_next_writer() {
    let d = dir("replay");
    let dead = Arc::new(Idempotent::default());
    dead.failing.store(true, Ordering::SeqCst);
    let q = SpendQueue::with_spill(dead.clone(), config(), d.clone());
    for i in 0..10 {
        q.send(record(i));
    }
    q.shutdown().await;
    assert_eq!((q.spilled(), q.dropped()), (10, 0));
    let spill = Spill::new(d.clone());
    let files = spill.pending();
    assert_eq!(files.len(), 1);
    // A crash after the replay but before the file's removal replays it again: keep a copy.
    let copy = d.join("spend-0-copy.jsonl");
    fs::copy(&files[0].path, &copy).unwrap();

    let sink = Arc::new(Idempotent::default());
    let q = SpendQueue::with_spill(sink.clone(), config(), d.clone());
    q.send(record(10));
    q.flush().await;
    assert_eq!(sink.inner.len(), 11, "the spilled ten and the new one");
    assert_eq!(q.replayed(), 20, "both files' records went to the sink");
    assert!(spill.pending().is_empty(), "replayed files are removed");
    let mut ids: Vec<_> = sink
        .inner
        .records()
        .iter()
        .map(|r| r.request_id.to_string())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 11, "each record stored once");
    q.shutdown().await;
}

#[tokio::test]
async fn records_replayed_but_unwritten_at_the_next_stop_are_spilled_again() {
    let d = dir("again");
    let spill = Spill::new(d.clone());
    spill
        .write(&(0..6).map(record).collect::<Vec<_>>())
        .unwrap();
    let dead = Arc::new(Idempotent::default());
    dead.failing.store(true, Ordering::SeqCst);
    let q = SpendQueue::with_spill(dead.clone(), config(), d.clone());
    q.start();
    q.send(record(6));
    q.shutdown().await;
    let files = spill.pending();
    assert_eq!(
        files.len(),
        1,
        "the old file replaced by one holding everything"
    );
    assert_eq!(files[0].records.len(), 7);
}
