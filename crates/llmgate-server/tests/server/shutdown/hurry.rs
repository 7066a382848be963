//! A second signal writes the queued spend records for at most a second and spills the rest;
//! a third exits at once and loses them. Both with the SQLite file held locked by another
//! connection, so that the records cannot be written at the stop, and a stream held open, so
//! that the first signal's drain waits.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{
    answered_requests, close, generate_key, hold_stream, open_store, spill_files, stored, test_dir,
    write_config, Fault,
};
use crate::support::{signal, start_with, wait_exit, Gateway};
use llmgate_testkit::{Gate, MockProvider};

/// A gateway that answered 100 requests with a new key, then had its SQLite file locked and a
/// stream held open, and was sent SIGTERM (it is draining, waiting for the stream).
struct Draining {
    dir: PathBuf,
    config: PathBuf,
    gateway: Gateway,
    token: String,
    charged: f64,
    lock: Fault,
    _gate: Gate,
    _upstream: MockProvider,
}

async fn draining(name: &str) -> Draining {
    let upstream = MockProvider::start().await;
    let dir = test_dir(name);
    let config = write_config(&dir, &upstream, "");
    let (mut gateway, addr) = start_with(&config, &[], &[]).await;
    let (key, token) = generate_key(addr).await;
    let charged = answered_requests(addr, &key, 100).await;
    let mut lock = Fault::Locked(dir.join("llmgate.db"), None);
    lock.start().await;
    let gate = hold_stream(addr, &key, &upstream).await;

    signal(&gateway, "TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        gateway.0.try_wait().unwrap().is_none(),
        "waits for the stream"
    );
    Draining {
        dir,
        config,
        gateway,
        token,
        charged,
        lock,
        _gate: gate,
        _upstream: upstream,
    }
}

/// The number of records in the spill files of `dir`.
fn spilled(dir: &Path) -> usize {
    spill_files(&dir.join("llmgate-spill"))
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap().lines().count())
        .sum()
}

/// The second signal: the stream is cut at once, the records are tried for at most 1 s (the
/// file is locked), then spilled, and the process exits with 1. The next start replays them:
/// every answered request stored and charged once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_writes_for_at_most_a_second_and_spills_the_rest() {
    let mut d = draining("hurry-spill").await;
    let second = Instant::now();
    signal(&d.gateway, "TERM");
    let status = wait_exit(&mut d.gateway, Duration::from_secs(10)).await;
    let took = second.elapsed();
    assert_eq!(status.code(), Some(1), "{status}");
    // 0.25 s for the cut stream at most, 1 s of tries, the spill; 1 s left for a busy machine.
    assert!(took < Duration::from_millis(2500), "exited {took:?} after");
    let lines = spilled(&d.dir);
    // The 100 answers, and the cut stream's record.
    assert!(lines >= 100, "{lines} records spilled");

    d.lock.end().await;
    let store = open_store(&d.dir, None).await;
    assert_eq!(stored(&store, &d.token).await.0, 0, "nothing was written");
    let (mut gateway, _addr) = start_with(&d.config, &[], &[]).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while spilled(&d.dir) > 0 {
        assert!(Instant::now() < deadline, "not replayed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (rows, cost, spend) = stored(&store, &d.token).await;
    assert_eq!(rows, lines, "every spilled record stored once");
    assert!(
        cost >= d.charged * (1.0 - 1e-9) && close(spend, cost),
        "logged {cost}, key spend {spend}, answered {}",
        d.charged
    );
    signal(&gateway, "TERM");
    assert!(wait_exit(&mut gateway, Duration::from_secs(10))
        .await
        .success());
}

/// The third signal, while the second's writes wait on the locked file: the process exits at
/// once with 1, before the second's second of tries is over, and spills nothing: what was
/// queued is lost, as docs/cost-tracking.md says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_third_signal_exits_at_once_and_loses_what_is_queued() {
    let mut d = draining("hurry-third").await;
    let second = Instant::now();
    signal(&d.gateway, "TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        d.gateway.0.try_wait().unwrap().is_none(),
        "the second signal's writes take up to 1 s"
    );
    signal(&d.gateway, "TERM");
    let status = wait_exit(&mut d.gateway, Duration::from_secs(10)).await;
    let took = second.elapsed();
    assert_eq!(status.code(), Some(1), "{status}");
    assert!(
        took < Duration::from_millis(1000),
        "exited {took:?} after the second signal: the third did not cut its writes short"
    );
    assert_eq!(spilled(&d.dir), 0, "a third signal spills nothing");
    d.lock.end().await;
    let store = open_store(&d.dir, None).await;
    assert_eq!(stored(&store, &d.token).await.0, 0, "nothing was written");
}
