use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use llmgate_core::BoxError;

use super::*;
use crate::cost::Tokens;
use crate::sink::MemorySink;

fn record(i: usize) -> SpendRecord {
    let t = SystemTime::UNIX_EPOCH;
    SpendRecord {
        request_id: Arc::from(format!("req-{i}")),
        key_token: None,
        key_alias: None,
        team_id: None,
        user_id: None,
        end_user: None,
        requested_model: "m".into(),
        model_group: None,
        deployment: None,
        provider: None,
        upstream_model: None,
        endpoint: "/v1/chat/completions",
        tokens: Tokens::default(),
        cost: Some(0.0),
        status: 200,
        outcome: crate::Outcome::Success,
        error_class: None,
        usage_estimated: false,
        stream: false,
        cache_hit: false,
        attempts: 1,
        fallbacks: 0,
        start_time: t,
        end_time: t,
        latency: Duration::ZERO,
        time_to_first_token: None,
        tags: Vec::new(),
        error_message: None,
        messages: None,
        response: None,
    }
}

/// Records batch sizes; fails while `failing` is set.
#[derive(Default)]
struct Batches {
    sizes: Mutex<Vec<usize>>,
    inner: MemorySink,
    failing: AtomicBool,
}

#[async_trait::async_trait]
impl SpendSink for Batches {
    async fn write(&self, batch: &[SpendRecord]) -> Result<(), BoxError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err("store down".into());
        }
        self.sizes.lock().unwrap().push(batch.len());
        self.inner.write(batch).await
    }
}

/// The request ids `sink` stored, in order.
fn ids(sink: &Batches) -> Vec<String> {
    let records = sink.inner.records();
    records.iter().map(|r| r.request_id.to_string()).collect()
}

/// The ids of `record(0)` to `record(n - 1)`.
fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("req-{i}")).collect()
}

fn config(capacity: usize, batch_size: usize) -> QueueConfig {
    QueueConfig {
        capacity,
        batch_size,
        interval: Duration::from_secs(3600),
        on_full: QueueFull::Reject,
        shutdown_timeout: Duration::from_millis(300),
    }
}

#[tokio::test]
async fn writes_full_batches_at_once_and_the_rest_on_flush() {
    let sink = Arc::new(Batches::default());
    let q = SpendQueue::new(sink.clone(), config(100, 3));
    for i in 0..7 {
        q.send(record(i));
    }
    // Two full batches go without waiting for the (hour-long) interval.
    for _ in 0..200 {
        if sink.inner.len() == 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(sink.inner.len(), 6);
    q.flush().await;
    assert_eq!(*sink.sizes.lock().unwrap(), [3, 3, 1]);
    assert_eq!(ids(&sink), names(7));
    assert_eq!(q.depth(), 0);
    q.shutdown().await;
}

/// Records that arrive one by one while a batch fills do not each wake the writer: it looks at
/// the queue every 10 ms instead. Every record is still written, in order.
#[tokio::test]
async fn a_filling_batch_does_not_wake_the_writer_per_record() {
    let sink = Arc::new(Batches::default());
    let mut c = config(1000, 1000);
    c.interval = Duration::from_millis(500);
    let q = SpendQueue::new(sink.clone(), c);
    q.start();
    let sent = 100;
    for i in 0..sent {
        q.send(record(i));
        // Longer than the writer takes to go back to sleep: each record finds it idle.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let wakes = q.shared.wakes.load(SeqCst);
    assert!(
        wakes < sent / 2,
        "the writer woke {wakes} times for {sent} records"
    );
    q.flush().await;
    assert_eq!(sink.inner.len(), sent);
    assert_eq!(ids(&sink), names(sent));
    q.shutdown().await;
}

#[tokio::test]
async fn the_interval_writes_a_partial_batch() {
    let sink = Arc::new(Batches::default());
    let mut c = config(100, 50);
    c.interval = Duration::from_millis(30);
    let q = SpendQueue::new(sink.clone(), c);
    q.send(record(0));
    q.send(record(1));
    for _ in 0..200 {
        if sink.inner.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(*sink.sizes.lock().unwrap(), [2]);
    q.shutdown().await;
}

#[tokio::test]
async fn reject_reserves_places_and_refuses_when_full() {
    let sink = Arc::new(Batches::default());
    let q = SpendQueue::new(sink.clone(), config(2, 1));
    let a = q.reserve().unwrap();
    let b = q.reserve().unwrap();
    assert!(q.reserve().is_err());
    assert_eq!(q.rejected(), 1);
    a.send(record(0));
    b.send(record(1));
    q.flush().await;
    assert_eq!(sink.inner.len(), 2);
    // Written records free their places.
    assert!(q.reserve().is_ok());
    q.shutdown().await;
}

#[tokio::test]
async fn a_failing_sink_is_retried_until_it_recovers_and_nothing_is_lost() {
    let sink = Arc::new(Batches::default());
    sink.failing.store(true, Ordering::SeqCst);
    let mut c = config(10, 2);
    c.on_full = QueueFull::Drop;
    let q = SpendQueue::new(sink.clone(), c);
    for i in 0..30 {
        q.send(record(i));
    }
    // The writer holds one batch while the queue fills; the rest were dropped, counted.
    let dropped = q.dropped();
    assert!((18..=20).contains(&dropped), "{dropped}");
    tokio::time::sleep(Duration::from_millis(120)).await;
    sink.failing.store(false, Ordering::SeqCst);
    q.flush().await;
    assert_eq!(sink.inner.len() as u64 + dropped, 30);
    assert_eq!(q.dropped(), dropped);
    q.shutdown().await;
}

#[tokio::test]
async fn shutdown_drains_gives_up_on_a_dead_sink_and_counts_late_records() {
    let sink = Arc::new(Batches::default());
    let q = SpendQueue::new(sink.clone(), config(100, 10));
    for i in 0..25 {
        q.send(record(i));
    }
    q.shutdown().await;
    assert_eq!(sink.inner.len(), 25);
    q.send(record(99));
    assert_eq!(q.dropped(), 1);
    assert!(q.reserve().is_err());

    let dead = Arc::new(Batches::default());
    dead.failing.store(true, Ordering::SeqCst);
    let q = SpendQueue::new(dead.clone(), config(100, 10));
    for i in 0..5 {
        q.send(record(i));
    }
    let started = std::time::Instant::now();
    q.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(q.dropped(), 5);
    assert!(dead.inner.is_empty());
}

/// Notes when each write is tried (tokio's clock) and fails the first `fail` tries.
struct Timed {
    tries: Mutex<Vec<tokio::time::Instant>>,
    fail: usize,
}

#[async_trait::async_trait]
impl SpendSink for Timed {
    async fn write(&self, _batch: &[SpendRecord]) -> Result<(), BoxError> {
        let mut tries = self.tries.lock().unwrap();
        tries.push(tokio::time::Instant::now());
        if tries.len() <= self.fail {
            return Err("store down".into());
        }
        Ok(())
    }
}

/// docs/cost-tracking.md: a failed write is retried, the wait doubling from 50 ms up to
/// `proxy_batch_write_at` (at least 1 s), until it succeeds. The writer sleeps on the real
/// clock (its own thread), so each wait may run late by a quarter, not early.
#[tokio::test]
async fn a_failed_write_is_retried_doubling_up_to_the_interval_or_1_s() {
    for (interval, cap, fail) in [(3000, 3000, 7), (100, 1000, 6)] {
        let sink = Arc::new(Timed {
            tries: Mutex::new(Vec::new()),
            fail,
        });
        let mut c = config(10, 1);
        c.interval = Duration::from_millis(interval);
        let q = SpendQueue::new(sink.clone(), c);
        q.send(record(0));
        q.flush().await;
        let tries = sink.tries.lock().unwrap().clone();
        assert_eq!(
            tries.len(),
            fail + 1,
            "written at the try after the failures"
        );
        let waits: Vec<u64> = tries
            .windows(2)
            .map(|w| u64::try_from((w[1] - w[0]).as_millis()).unwrap())
            .collect();
        for (i, wait) in waits.iter().enumerate() {
            let expected = (50u64 << i).min(cap);
            assert!(
                (expected..expected + expected / 4 + 20).contains(wait),
                "interval {interval} ms: waits {waits:?}, the {i}th should be {expected} ms"
            );
        }
        q.shutdown().await;
    }
}
