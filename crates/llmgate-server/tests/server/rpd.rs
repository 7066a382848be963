//! A provider's daily quota (`rpd`) survives restarts of the real binary: the day's count is
//! kept in the database (SQLite beside the config here), written every second and at a stop,
//! and read back at start. So restarting on the same UTC day does not hand out the quota again.

#![allow(clippy::unwrap_used, clippy::panic, reason = "test helpers")]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::{chat, connect, signal, start_with, wait_exit};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use llmgate_testkit::MockProvider;

const MASTER: &str = "sk-master-rpd";

fn test_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("rpd-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_config(dir: &Path, upstream: &MockProvider) -> PathBuf {
    let text = format!(
        "model_list:\n  - model_name: free\n    litellm_params:\n      model: openai/gpt-x\n      \
         api_base: {}\n      api_key: sk-test\n      rpd: 5\n\
         general_settings:\n  master_key: {MASTER}\n",
        upstream.v1_url()
    );
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

async fn ask(addr: SocketAddr) -> StatusCode {
    let request = Request::post("/v1/chat/completions")
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {MASTER}"))
        .body(Full::new(Bytes::from(chat("free", false))))
        .unwrap();
    let response = connect(addr).await.send_request(request).await.unwrap();
    let status = response.status();
    let _ = response.into_body().collect().await;
    status
}

/// Sends requests until one is refused; returns how many were answered.
async fn until_refused(addr: SocketAddr) -> usize {
    for n in 0..10 {
        if ask(addr).await != StatusCode::OK {
            return n;
        }
    }
    panic!("rpd 5 never refused");
}

async fn survives(name: &str, stop: &str, settle: Duration) {
    let upstream = MockProvider::start().await;
    let dir = test_dir(name);
    let config = write_config(&dir, &upstream);
    let (mut gateway, addr) = start_with(&config, &[], &[]).await;
    for _ in 0..3 {
        assert_eq!(ask(addr).await, StatusCode::OK);
    }
    tokio::time::sleep(settle).await;
    signal(&gateway, stop);
    wait_exit(&mut gateway, Duration::from_secs(10)).await;

    let (_gateway, addr) = start_with(&config, &[], &[]).await;
    assert_eq!(until_refused(addr).await, 2, "the quota's other 2 of 5");
    assert_eq!(upstream.request_count(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_quota_survives_a_graceful_restart() {
    survives("term", "TERM", Duration::ZERO).await;
}

/// `kill -9` loses at most the last second: here the count was written before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_quota_survives_a_kill_after_it_was_written() {
    survives("kill", "KILL", Duration::from_millis(1500)).await;
}
