//! A full spend queue, through the real binary (docs/cost-tracking.md, "A full queue"): with
//! `reject`, a request that finds no place is a 503 `spend_queue_full` with `Retry-After: 1`,
//! no provider is called, and it is counted; with `drop`, requests are served and the records
//! without a place are dropped and counted. The records stay queued because the test holds the
//! SQLite file in a write transaction, so the writer cannot write them.

#![allow(clippy::unwrap_used, clippy::panic, reason = "test helpers")]

use std::net::SocketAddr;

use crate::support::{get, start_with, stop, test_dir};
use http::StatusCode;
use llmgate_testkit::MockProvider;
use sqlx::{Connection as _, Executor as _};

const MASTER: &str = "sk-master-spend-queue";

fn config(name: &str, upstream: &MockProvider, full: &str) -> std::path::PathBuf {
    let path = test_dir("spend-queue", name).join("config.yaml");
    // (The database is `llmgate.db` beside it.)
    let text = format!(
        "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/gpt-x\n      \
         api_base: {}\n      api_key: sk-test\n\
         general_settings:\n  master_key: {MASTER}\n  \
         spend_queue_size: 4\n  spend_queue_full: {full}\n",
        upstream.v1_url()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// One chat request: the status, `Retry-After`, and the error's `code` (if any).
async fn ask(addr: SocketAddr) -> (StatusCode, Option<String>, String) {
    let bearer = format!("Bearer {MASTER}");
    let headers = [
        ("content-type", "application/json"),
        ("authorization", &bearer),
    ];
    let body = crate::support::chat("m", false);
    let response = crate::support::request(
        addr,
        http::Method::POST,
        "/v1/chat/completions",
        &headers,
        body,
    )
    .await;
    let status = response.status();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = crate::support::text(response).await;
    let code = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
        .unwrap_or_default();
    (status, retry, code)
}

/// Holds the database beside `config` in a write transaction until dropped.
async fn lock(config: &std::path::Path) -> sqlx::SqliteConnection {
    let db = config.with_file_name("llmgate.db");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    conn.execute("BEGIN IMMEDIATE").await.unwrap();
    conn
}

/// The value of the sample `name{labels}` on `/metrics` (0 when absent).
async fn metric(addr: SocketAddr, line_start: &str) -> f64 {
    let (_, text) = get(addr, "/metrics").await;
    text.lines()
        .find_map(|l| l.strip_prefix(line_start))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

/// The spend-log rows in the database beside `config`.
async fn rows(config: &std::path::Path) -> usize {
    let db = config.with_file_name("llmgate.db");
    let store = llmgate_store::Store::open_sqlite(&db, &llmgate_store::StoreOptions::new())
        .await
        .unwrap();
    let filter = llmgate_store::LogFilter {
        limit: 1000,
        ..llmgate_store::LogFilter::default()
    };
    store.spend_logs(&filter).await.unwrap().len()
}

/// With the file locked, the writer takes its first batch (1 to 4 records, however many had
/// arrived) and waits on the lock; 4 more fill the queue; the next request is refused. So 5
/// to 8 are served: `spend_queue_size` waiting, and the batch being written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spend_queue_refuses_with_503_and_calls_no_provider() {
    let upstream = MockProvider::start().await;
    let config = config("reject", &upstream, "reject");
    let grace = ["--graceful-shutdown-seconds", "1"];
    let (mut gateway, addr) = start_with(&config, &grace, &[]).await;
    let held = lock(&config).await;
    let mut served = 0;
    let (retry, code) = loop {
        let (status, retry, code) = ask(addr).await;
        if status == StatusCode::OK {
            served += 1;
            assert!(served <= 8, "served past the queue and the batch");
            continue;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{code}");
        break (retry, code);
    };
    assert!(served >= 5, "refused after {served}");
    assert_eq!(retry.as_deref(), Some("1"));
    assert_eq!(code, "spend_queue_full");
    assert_eq!(
        upstream.request_count(),
        served,
        "the refused request reached no provider"
    );
    let refused = "llmgate_gateway_rejections_total{reason=\"spend_queue_full\"} ";
    assert_eq!(metric(addr, refused).await, 1.0);
    // docs/health.md: a full queue under `reject` makes readiness 503.
    let (status, body) = get(addr, "/health/readiness").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["checks"]["spend_writer"]["status"], "full", "{body}");
    drop(held);
    stop(&mut gateway).await;
    assert_eq!(
        rows(&config).await,
        served,
        "every served request's record written"
    );
}

/// With `drop`: 20 requests, all served; what found no place is dropped and counted, and the
/// rest is written once the lock is gone: written and dropped make 20.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_drop_a_full_spend_queue_serves_and_counts_the_dropped_records() {
    let upstream = MockProvider::start().await;
    let config = config("drop", &upstream, "drop");
    let grace = ["--graceful-shutdown-seconds", "1"];
    let (mut gateway, addr) = start_with(&config, &grace, &[]).await;
    let held = lock(&config).await;
    for _ in 0..20 {
        assert_eq!(ask(addr).await.0, StatusCode::OK);
    }
    assert_eq!(upstream.request_count(), 20);
    let dropped = metric(addr, "llmgate_spend_records_dropped_total ").await as usize;
    assert!((12..=15).contains(&dropped), "{dropped} dropped");
    drop(held);
    stop(&mut gateway).await;
    assert_eq!(rows(&config).await + dropped, 20);
}
