//! What `kill -9` loses (docs/cost-tracking.md, "What a crash loses"): only the records still
//! queued, at most `proxy_batch_write_at` seconds' worth plus the batch being written. A record
//! older than that is in the database when the process is killed.

use std::time::Duration;

use super::{answered_requests, close, generate_key, open_store, stored, test_dir, write_config};
use crate::support::start_with;
use llmgate_testkit::MockProvider;

/// `proxy_batch_write_at: 1`: 100 answered requests, 2.5 s (the second the records may wait,
/// their write, and a margin for a busy machine), then SIGKILL: all 100 are stored and charged.
/// With the default 10 s they would still be queued, and lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_loses_no_record_older_than_proxy_batch_write_at() {
    let upstream = MockProvider::start().await;
    let dir = test_dir("kill-9");
    let config = write_config(&dir, &upstream, "  proxy_batch_write_at: 1\n");
    let (mut gateway, addr) = start_with(&config, &[], &[]).await;
    let (key, token) = generate_key(addr).await;
    let charged = answered_requests(addr, &key, 100).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    gateway.0.kill().unwrap();
    gateway.0.wait().unwrap();

    let (rows, cost, spend) = stored(&open_store(&dir, None).await, &token).await;
    assert_eq!(rows, 100, "records older than proxy_batch_write_at");
    assert!(close(cost, charged), "logged {cost}, answered {charged}");
    assert!(
        close(spend, charged),
        "key spend {spend}, answered {charged}"
    );
}
