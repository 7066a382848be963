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
         spend_queue_size: 1\n  spend_queue_full: {full}\n",
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

/// `spend_queue_size: 1` (so batches of 1), the file locked: the writer takes the first
/// record and waits on the lock, a second fills the queue, and the next request is refused.
/// Asked again after a pause (the writer has taken its batch by then), it is refused again:
/// the queue stays full. So 2 are served, each refusal is a 503 with `Retry-After: 1` that
/// reaches no provider and is counted, readiness says `full`, and once the lock is gone both
/// records are written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spend_queue_refuses_with_503_and_calls_no_provider() {
    let upstream = MockProvider::start().await;
    let config = config("reject", &upstream, "reject");
    let grace = ["--graceful-shutdown-seconds", "1"];
    let (mut gateway, addr) = start_with(&config, &grace, &[]).await;
    let held = lock(&config).await;
    let (mut served, mut refused, mut in_a_row) = (0, 0, 0);
    while in_a_row < 2 {
        let (status, retry, code) = ask(addr).await;
        if status == StatusCode::OK {
            served += 1;
            assert!(served <= 2, "served past the queue and the batch");
            in_a_row = 0;
            continue;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{code}");
        assert_eq!(retry.as_deref(), Some("1"));
        assert_eq!(code, "spend_queue_full");
        refused += 1;
        in_a_row += 1;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(
        served, 2,
        "the batch being written and the queue's one place"
    );
    assert_eq!(
        upstream.request_count(),
        served,
        "a refused request reached a provider"
    );
    let counted = "llmgate_gateway_rejections_total{reason=\"spend_queue_full\"} ";
    assert_eq!(metric(addr, counted).await, f64::from(refused));
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
    // One record in the writer's batch, one in the queue's place: the other 18 dropped.
    let dropped = metric(addr, "llmgate_spend_records_dropped_total ").await as usize;
    assert_eq!(dropped, 18);
    drop(held);
    stop(&mut gateway).await;
    assert_eq!(rows(&config).await + dropped, 20);
}
