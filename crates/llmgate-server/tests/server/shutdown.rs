//! Stopping the real `llmgate` binary with real signals loses no spend: SIGTERM and SIGINT
//! drain, write every queued spend record, and only then exit (SIGHUP reloads the config
//! instead, see `reload.rs`); a record the database
//! cannot take by then goes to the spill file, which the next start replays once.
//!
//! The PostgreSQL tests use the machine's server at `postgres://postgres@127.0.0.1:5432/test`,
//! shared with other tests: each run makes its own key and counts only that key's rows.
//!
//! What a second and a third signal do with records the database cannot take: [`hurry`].

#![allow(clippy::unwrap_used, clippy::panic, reason = "test helpers")]

mod crash;
mod hurry;
mod owners;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::PG_URL;
use crate::support::{connect, post, signal, start_with, wait_exit};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use llmgate::auth::KeyStore as _;
use llmgate_store::{LogFilter, Store, StoreOptions};
use llmgate_testkit::{Behaviour, FaultProxy, Gate, MockProvider};
use serde_json::json;
use sqlx::{Connection as _, Executor as _};

const MASTER: &str = "sk-master-shutdown";
const PG_ADDR: &str = "127.0.0.1:5432";

fn test_dir(name: &str) -> PathBuf {
    crate::support::test_dir("shutdown", name)
}

/// A priced model on a mock upstream (which reports usage), a master key, and `extra` general
/// settings (such as a `database_url`).
fn write_config(dir: &Path, upstream: &MockProvider, extra: &str) -> PathBuf {
    let text = format!(
        "model_list:\n  - model_name: priced\n    litellm_params:\n      model: openai/gpt-x\n      \
         api_base: {}\n      api_key: sk-test\n    model_info:\n      \
         input_cost_per_token: 0.000001\n      output_cost_per_token: 0.000002\n\
         general_settings:\n  master_key: {MASTER}\n{extra}",
        upstream.v1_url()
    );
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A new virtual key: (secret, token).
async fn generate_key(addr: SocketAddr) -> (String, String) {
    let alias = format!("shutdown-{}-{}", std::process::id(), uuid_ish());
    let (status, body) = post(addr, "/key/generate", MASTER, &json!({"key_alias": alias})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (
        body["key"].as_str().unwrap().to_owned(),
        body["token"].as_str().unwrap().to_owned(),
    )
}

fn uuid_ish() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// The chat request `body` with `key` on `sender`, answered 200: the cost its answer states.
async fn priced_answer(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    key: &str,
    body: &serde_json::Value,
) -> f64 {
    let request = Request::post("/v1/chat/completions")
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {key}"))
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    sender.ready().await.unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cost: f64 = response.headers()["x-llmgate-response-cost"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    response.into_body().collect().await.unwrap();
    cost
}

/// `n` chat requests with `key` over 10 kept-alive connections, each answered 200; returns the
/// sum of their `x-llmgate-response-cost`.
async fn answered_requests(addr: SocketAddr, key: &str, n: usize) -> f64 {
    const CONNECTIONS: usize = 10;
    let mut tasks = Vec::new();
    for c in 0..CONNECTIONS {
        let key = key.to_owned();
        let count = n / CONNECTIONS + usize::from(c < n % CONNECTIONS);
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(addr).await;
            let mut cost = 0.0;
            for _ in 0..count {
                let body =
                    json!({"model": "priced", "messages": [{"role": "user", "content": "hi"}]});
                cost += priced_answer(&mut sender, &key, &body).await;
            }
            cost
        }));
    }
    let mut total = 0.0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert!(total > 0.0, "the model is priced");
    total
}

/// The key's spend-log rows (count, summed cost) and the key's spend, as stored.
async fn stored(store: &Store, token: &str) -> (usize, f64, f64) {
    let logs = store
        .spend_logs(&LogFilter {
            key_token: Some(token.to_owned()),
            limit: 100_000,
            ..LogFilter::default()
        })
        .await
        .unwrap();
    let mut ids: Vec<_> = logs.iter().map(|l| l.request_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), logs.len(), "a request id stored twice");
    let cost = logs.iter().filter_map(|l| l.cost).sum();
    let key = store.get(token).await.unwrap().unwrap();
    (logs.len(), cost, key.spend)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-9)
}

/// 1,000 answered requests, then `sig` at once: the process exits 0 and every record is stored
/// and charged.
async fn stop_loses_no_spend(name: &str, sig: &str, database: Option<&str>) {
    let (store, token, charged) = answer_then_stop(name, sig, database).await;
    let (rows, cost, spend) = stored(&store, &token).await;
    assert_eq!(rows, 1000, "{sig}: spend rows written");
    assert!(
        close(cost, charged),
        "{sig}: logged {cost}, answered {charged}"
    );
    assert!(
        close(spend, charged),
        "{sig}: key spend {spend}, answered {charged}"
    );
}

async fn open_store(dir: &Path, database: Option<&str>) -> Store {
    match database {
        Some(url) => Store::open(url, &StoreOptions::new()).await.unwrap(),
        None => Store::open_sqlite(&dir.join("llmgate.db"), &StoreOptions::new())
            .await
            .unwrap(),
    }
}

/// 1,000 answered requests with a new key, then `sig`: the store, the key's token, and what
/// the answers said they cost.
async fn answer_then_stop(name: &str, sig: &str, database: Option<&str>) -> (Store, String, f64) {
    let upstream = MockProvider::start().await;
    let dir = test_dir(name);
    let extra = database.map_or(String::new(), |url| format!("  database_url: {url}\n"));
    let config = write_config(&dir, &upstream, &extra);
    let (mut gateway, addr) = start_with(&config, &[], &[]).await;
    let (key, token) = generate_key(addr).await;

    let charged = answered_requests(addr, &key, 1000).await;
    signal(&gateway, sig);
    let status = wait_exit(&mut gateway, Duration::from_secs(20)).await;
    assert!(status.success(), "{sig}: {status}");
    (open_store(&dir, database).await, token, charged)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_writes_every_spend_record_sqlite() {
    stop_loses_no_spend("term-sqlite", "TERM", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_writes_every_spend_record_postgres() {
    if !crate::support::postgres_up().await {
        return;
    }
    stop_loses_no_spend("term-pg", "TERM", Some(PG_URL.as_str())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_writes_every_spend_record() {
    stop_loses_no_spend("int-sqlite", "INT", None).await;
}

/// A stream with `key`, held at `upstream` after its first event until the returned gate is
/// released: answered 200, and open when this returns.
async fn hold_stream(addr: SocketAddr, key: &str, upstream: &MockProvider) -> Gate {
    let gate = Gate::new();
    upstream.set_default(Behaviour::gated(&gate, 1));
    let body = json!({"model": "priced", "stream": true,
        "messages": [{"role": "user", "content": "hi"}]});
    let (status, ()) = tokio::join!(
        async {
            let request = Request::post("/v1/chat/completions")
                .header("host", "127.0.0.1")
                .header("content-type", "application/json")
                .header("authorization", format!("Bearer {key}"))
                .body(Full::new(Bytes::from(body.to_string())))
                .unwrap();
            let response = connect(addr).await.send_request(request).await.unwrap();
            let status = response.status();
            // Hold the stream open: the test ends before it does.
            std::mem::forget(response);
            status
        },
        gate.wait_for_arrivals(1)
    );
    assert_eq!(status, StatusCode::OK);
    gate
}

/// A second signal does not wait for a stream that never ends: the process exits within about
/// a second and a half, with 1, and the records already queued are written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once_and_still_writes_the_queued_records() {
    let upstream = MockProvider::start().await;
    let dir = test_dir("second-signal");
    let config = write_config(&dir, &upstream, "");
    let (mut gateway, addr) = start_with(&config, &[], &[]).await;
    let (key, token) = generate_key(addr).await;
    let charged = answered_requests(addr, &key, 100).await;

    let gate = hold_stream(addr, &key, &upstream).await;

    signal(&gateway, "TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        gateway.0.try_wait().unwrap().is_none(),
        "waits for the stream"
    );
    let second = std::time::Instant::now();
    signal(&gateway, "TERM");
    let status = wait_exit(&mut gateway, Duration::from_secs(5)).await;
    assert_eq!(status.code(), Some(1), "{status}");
    assert!(
        second.elapsed() < Duration::from_secs(3),
        "exited {:?} after the second signal",
        second.elapsed()
    );
    gate.release();

    let store = open_store(&dir, None).await;
    let (rows, cost, spend) = stored(&store, &token).await;
    assert!(
        rows >= 100,
        "the answered requests' records are written: {rows}"
    );
    assert!(
        cost >= charged * (1.0 - 1e-9) && close(spend, cost),
        "{cost} {spend} {charged}"
    );
}

fn spill_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    files
}

/// What keeps the database from taking records at the stop.
enum Fault {
    /// PostgreSQL behind a proxy the test cuts.
    Cut(FaultProxy),
    /// A SQLite file another connection holds a write transaction on (as a backup tool's
    /// might): the gateway's writes wait for it and fail.
    Locked(PathBuf, Option<sqlx::SqliteConnection>),
}

impl Fault {
    async fn start(&mut self) {
        match self {
            Fault::Cut(proxy) => proxy.cut(),
            Fault::Locked(path, held) => {
                let url = format!("sqlite://{}", path.display());
                let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
                conn.execute("BEGIN IMMEDIATE").await.unwrap();
                *held = Some(conn);
            }
        }
    }

    async fn end(&mut self) {
        match self {
            Fault::Cut(proxy) => proxy.restore(),
            Fault::Locked(_, held) => {
                let mut conn = held.take().unwrap();
                conn.execute("ROLLBACK").await.unwrap();
                conn.close().await.unwrap();
            }
        }
    }
}

/// PostgreSQL away at the stop: the records go to the spill file, the exit is still within the
/// grace period; the next start (database back) writes each exactly once, even when the file
/// is replayed twice (a crash before its removal).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_the_database_cannot_take_at_a_stop_are_spilled_and_replayed_once() {
    if !crate::support::postgres_up().await {
        return;
    }
    let upstream = MockProvider::start().await;
    let proxy = FaultProxy::start(PG_ADDR.parse().unwrap()).await.unwrap();
    let dir = test_dir("spill-pg");
    let url = format!(
        "postgres://postgres@{}/{}",
        proxy.addr(),
        crate::support::pg_database()
    );
    let config = write_config(&dir, &upstream, &format!("  database_url: {url}\n"));
    spilled_and_replayed_once(&dir, &config, Fault::Cut(proxy), Some(PG_URL.as_str())).await;
}

/// The same with SQLite, held locked by another connection at the stop. The second replay
/// finds every row already stored: SQLite's retry path (the batch rolled back and its new rows
/// inserted again) through the binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_a_locked_sqlite_file_cannot_take_at_a_stop_are_spilled_and_replayed_once() {
    let upstream = MockProvider::start().await;
    let dir = test_dir("spill-sqlite");
    let config = write_config(&dir, &upstream, "");
    let fault = Fault::Locked(dir.join("llmgate.db"), None);
    spilled_and_replayed_once(&dir, &config, fault, None).await;
}

async fn spilled_and_replayed_once(
    dir: &Path,
    config: &PathBuf,
    mut fault: Fault,
    database: Option<&str>,
) {
    let spill_dir = dir.join("llmgate-spill");
    let grace = ["--graceful-shutdown-seconds", "3"];
    let (mut gateway, addr) = start_with(config, &grace, &[]).await;
    let (key, token) = generate_key(addr).await;
    let charged = answered_requests(addr, &key, 200).await;

    fault.start().await;
    let stopped = std::time::Instant::now();
    signal(&gateway, "TERM");
    let status = wait_exit(&mut gateway, Duration::from_secs(10)).await;
    assert!(status.success(), "{status}");
    // The stop gives up on the database 2.81 s after the signal (0.19 s before the 3 s grace
    // ends), spills and exits; 0.5 s is left for this test's polling on a busy machine.
    assert!(
        stopped.elapsed() < Duration::from_millis(3500),
        "{:?}",
        stopped.elapsed()
    );
    let files = spill_files(&spill_dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "readable by its owner only: {mode:o}");
    let lines = std::fs::read_to_string(&files[0]).unwrap().lines().count();
    assert_eq!(lines, 200);
    let copy = std::fs::read(&files[0]).unwrap();

    fault.end().await;
    let store = open_store(dir, database).await;
    assert_eq!(
        stored(&store, &token).await.0,
        0,
        "nothing reached the database"
    );
    for round in 0..2 {
        let (mut gateway, addr) = start_with(config, &grace, &[]).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !spill_files(&spill_dir).is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: not replayed"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (rows, cost, spend) = stored(&store, &token).await;
        assert_eq!(rows, 200, "round {round}");
        assert!(
            close(cost, charged),
            "round {round}: logged {cost}, answered {charged}"
        );
        assert!(
            close(spend, charged),
            "round {round}: key spend {spend}, answered {charged}"
        );
        let (_, metrics) = crate::support::get(addr, "/metrics").await;
        let replayed = metrics
            .lines()
            .find_map(|l| l.strip_prefix("llmgate_spend_records_replayed_total "))
            .unwrap_or_else(|| panic!("no replayed count in /metrics"));
        // Each round replays the 200 (the second finds them stored, and charges nothing).
        assert_eq!(
            replayed, "200",
            "round {round}: llmgate_spend_records_replayed_total"
        );
        signal(&gateway, "TERM");
        assert!(wait_exit(&mut gateway, Duration::from_secs(10))
            .await
            .success());
        // As if the first replay had crashed before removing the file.
        std::fs::write(spill_dir.join("spend-0000000000000-0-0.jsonl"), &copy).unwrap();
    }
}

/// A stream that outlasts the grace period is cut near its end (`Gateway::cut_streams`), and
/// the process still writes the spend records and exits 0 within the grace period. (This bound
/// also held before the stop was ours, when Pingora cut the stream at the socket at the grace
/// end; what the cut adds, an error event and a record for the stream, is
/// `a_stream_cut_at_the_grace_end_gets_an_error_event_and_is_recorded`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_outlasting_the_grace_period_is_cut_and_the_stop_ends_within_it() {
    let upstream = MockProvider::start().await;
    let dir = test_dir("grace-end");
    let config = write_config(&dir, &upstream, "");
    let grace = ["--graceful-shutdown-seconds", "2"];
    let (mut gateway, addr) = start_with(&config, &grace, &[]).await;
    let (key, token) = generate_key(addr).await;
    let charged = answered_requests(addr, &key, 100).await;

    let gate = Gate::new();
    upstream.set_default(Behaviour::gated(&gate, 1));
    let body = json!({"model": "priced", "stream": true,
        "messages": [{"role": "user", "content": "hi"}]});
    let request = Request::post("/v1/chat/completions")
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {key}"))
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let response = connect(addr).await.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    gate.wait_for_arrivals(1).await;
    let reader = tokio::spawn(async move { response.into_body().collect().await });

    let stopped = std::time::Instant::now();
    signal(&gateway, "TERM");
    let status = wait_exit(&mut gateway, Duration::from_secs(10)).await;
    let took = stopped.elapsed();
    assert!(status.success(), "{status}");
    // Cut 1.5 s in, written, exited by 2 s; 0.4 s for this test's polling on a busy machine.
    assert!(
        took >= Duration::from_millis(1400),
        "waited for the stream: {took:?}"
    );
    assert!(
        took < Duration::from_millis(2400),
        "exited within the grace: {took:?}"
    );
    // The client's stream is over (with an error event once the relays watch the cutoff).
    tokio::time::timeout(Duration::from_secs(2), reader)
        .await
        .expect("the client's stream ended with the process")
        .unwrap()
        .ok();
    gate.release();

    let (rows, cost, spend) = stored(&open_store(&dir, None).await, &token).await;
    assert!(
        rows >= 100,
        "the answered requests' records are written: {rows}"
    );
    assert!(
        cost >= charged * (1.0 - 1e-9) && close(spend, cost),
        "{cost} {spend} {charged}"
    );
}

/// A stream still running when the grace period ends gets the `gateway_shutting_down` error
/// event before its end (not a cut at the socket), and is recorded as cut with a cost
/// (issue 12 item 13).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_cut_at_the_grace_end_gets_an_error_event_and_is_recorded() {
    let upstream = MockProvider::start().await;
    let dir = test_dir("grace-cut-event");
    let config = write_config(&dir, &upstream, "");
    let grace = ["--graceful-shutdown-seconds", "2"];
    let (mut gateway, addr) = start_with(&config, &grace, &[]).await;
    let (key, token) = generate_key(addr).await;
    let gate = Gate::new();
    upstream.set_default(Behaviour::gated(&gate, 1));
    let body = json!({"model": "priced", "stream": true,
        "messages": [{"role": "user", "content": "hi"}]});
    let request = Request::post("/v1/chat/completions")
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {key}"))
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let response = connect(addr).await.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    gate.wait_for_arrivals(1).await;
    let reader = tokio::spawn(async move { response.into_body().collect().await });

    signal(&gateway, "TERM");
    assert!(wait_exit(&mut gateway, Duration::from_secs(10))
        .await
        .success());
    let text = tokio::time::timeout(Duration::from_secs(2), reader)
        .await
        .unwrap()
        .unwrap()
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
        .unwrap_or_default();
    gate.release();
    assert!(
        text.contains("\"error\"") && text.contains("gateway_shutting_down"),
        "an error event before the end: {text}"
    );
    let store = open_store(&dir, None).await;
    let (rows, cost, spend) = stored(&store, &token).await;
    assert_eq!(rows, 1, "the cut stream is recorded");
    assert!(
        cost > 0.0 && close(cost, spend),
        "charged: cost {cost}, key spend {spend}"
    );
    let logs = store
        .spend_logs(&LogFilter {
            key_token: Some(token.clone()),
            limit: 10,
            ..LogFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        logs[0].outcome.as_deref(),
        Some("gateway_shutdown"),
        "{logs:?}"
    );
}
