//! Config reload through the real `llmgate` binary and real signals: SIGHUP under load (no
//! failed request, no cut stream, each config's models answering right after its reload), an
//! invalid or restart-only config through SIGHUP changing nothing, `POST /config/reload`'s 400
//! listing every problem, and `--watch-config` (`LLMGATE_WATCH_CONFIG=1`) picking up a change.

#![allow(clippy::unwrap_used, clippy::panic, reason = "test helpers")]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{chat, connect, get, post, send, signal, start_with};
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use llmgate_testkit::{Behaviour, MockProvider};
use serde_json::json;

const MASTER: &str = "sk-master-reload";

/// A directory of its own per test: the config (and a SQLite database beside it).
fn test_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("llmgate-reload-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `text` beside `path` and renames it into place, as an editor or a deploy tool does.
fn replace(path: &Path, text: &str) {
    let next = path.with_extension("next");
    std::fs::write(&next, text).unwrap();
    std::fs::rename(&next, path).unwrap();
}

fn entry(name: &str, base: &str, params: &str) -> String {
    format!(
        "  - model_name: {name}\n    litellm_params:\n      model: openai/{name}\n      api_base: {base}\n      api_key: sk-{name}\n{params}"
    )
}

/// `llmgate_config_reloads_total{result="<result>"}` now.
pub(crate) async fn reloads(addr: SocketAddr, result: &str) -> u64 {
    let (_, text) = get(addr, "/metrics").await;
    let start = format!("llmgate_config_reloads_total{{result=\"{result}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&start))
        .unwrap_or_else(|| panic!("no {start} in /metrics"))
        .trim()
        .parse()
        .unwrap()
}

/// Waits until `result` has been counted `n` times.
pub(crate) async fn wait_reloads(addr: SocketAddr, result: &str, n: u64, within: Duration) {
    let deadline = Instant::now() + within;
    while reloads(addr, result).await < n {
        assert!(
            Instant::now() < deadline,
            "reload {n} ({result}) not seen within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn status(addr: SocketAddr, model: &str) -> u16 {
    send(addr, chat(model, false)).await.status().as_u16()
}

/// What the load saw.
#[derive(Default)]
struct Tally {
    answered: AtomicU64,
    failed: AtomicU64,
    streams: AtomicU64,
    cut: AtomicU64,
}

/// Sends chat requests to `model` one after another on one kept-alive connection until `stop`.
async fn requests(addr: SocketAddr, model: &'static str, stop: Arc<AtomicBool>, t: Arc<Tally>) {
    let mut sender = connect(addr).await;
    while !stop.load(Ordering::Relaxed) {
        let request = Request::post("/v1/chat/completions")
            .header("host", "127.0.0.1")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(chat(model, false))))
            .unwrap();
        sender.ready().await.unwrap();
        let res = sender.send_request(request).await.unwrap();
        let ok = res.status() == 200;
        let body = res.into_body().collect().await.unwrap().to_bytes();
        if ok {
            t.answered.fetch_add(1, Ordering::Relaxed);
        } else {
            t.failed.fetch_add(1, Ordering::Relaxed);
            eprintln!("failed: {}", String::from_utf8_lossy(&body));
        }
    }
}

/// Opens slow streams to `model` one after another until `stop`; each must end with `[DONE]`
/// and no error event.
async fn streams(addr: SocketAddr, model: &'static str, stop: Arc<AtomicBool>, t: Arc<Tally>) {
    while !stop.load(Ordering::Relaxed) {
        let res = send(addr, chat(model, true)).await;
        let ok = res.status() == 200;
        let text = crate::support::text(res).await;
        if ok && text.contains("data: [DONE]") && !text.contains("\"error\"") {
            t.streams.fetch_add(1, Ordering::Relaxed);
        } else {
            t.cut.fetch_add(1, Ordering::Relaxed);
            eprintln!("cut: {text}");
        }
    }
}

/// The check: while a bounded load runs (request loops, hundreds a second, and dozens
/// of slow streams always open), 20 SIGHUPs alternate two configs that add and remove a model
/// and change limits. No request fails, no stream is cut, and each config's own model answers
/// (and the other's is gone) as soon as its reload is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_sighups_under_load_fail_no_request_and_cut_no_stream() {
    let fast = MockProvider::start().await;
    let slow = MockProvider::start().await;
    slow.set_default(Behaviour::Ok.paced(Duration::from_millis(150)));
    let config = |own: &str, rpm: u64, parallel: u64| {
        format!(
            "model_list:\n{}{}{}general_settings:\n  max_parallel_requests: {parallel}\n",
            entry("stable", &fast.v1_url(), &format!("      rpm: {rpm}\n")),
            entry("slow", &slow.v1_url(), ""),
            entry(own, &fast.v1_url(), ""),
        )
    };
    let configs = [
        ("only-a", "only-b", config("only-a", 1_000_000, 1000)),
        ("only-b", "only-a", config("only-b", 2_000_000, 2000)),
    ];
    let dir = test_dir("load");
    let path = dir.join("config.yaml");
    std::fs::write(&path, &configs[0].2).unwrap();
    let (mut gateway, addr) = start_with(&path, &["--num_workers", "2"], &[]).await;

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let mut load = Vec::new();
    for _ in 0..8 {
        load.push(tokio::spawn(requests(
            addr,
            "stable",
            stop.clone(),
            tally.clone(),
        )));
    }
    for _ in 0..24 {
        load.push(tokio::spawn(streams(
            addr,
            "slow",
            stop.clone(),
            tally.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let began = Instant::now();
    let answered_before = tally.answered.load(Ordering::Relaxed);

    for i in 1..=20u64 {
        let (own, other, text) = &configs[(i % 2) as usize];
        replace(&path, text);
        signal(&gateway, "HUP");
        wait_reloads(addr, "ok", i, Duration::from_secs(10)).await;
        assert_eq!(status(addr, own).await, 200, "reload {i}: {own}");
        assert_eq!(status(addr, other).await, 400, "reload {i}: {other}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = began.elapsed();
    let answered = tally.answered.load(Ordering::Relaxed) - answered_before;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    assert!(gateway_alive(&mut gateway), "SIGHUP stopped the process");
    assert_eq!(tally.failed.load(Ordering::Relaxed), 0, "failed requests");
    assert_eq!(tally.cut.load(Ordering::Relaxed), 0, "cut streams");
    let rate = answered as f64 / elapsed.as_secs_f64();
    eprintln!(
        "{answered} requests in {elapsed:?} ({rate:.0}/s), {} streams, across 20 reloads",
        tally.streams.load(Ordering::Relaxed)
    );
    assert!(
        rate >= 100.0,
        "the load was too light to prove anything: {rate:.0}/s"
    );
    assert!(tally.streams.load(Ordering::Relaxed) >= 24);
    assert_eq!(reloads(addr, "invalid").await, 0);
}

/// Whether the binary still runs (a process that exited is reaped here, so it is not mistaken
/// for a live one).
fn gateway_alive(gateway: &mut crate::support::Gateway) -> bool {
    gateway.0.try_wait().unwrap().is_none()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_or_restart_only_config_through_sighup_changes_nothing() {
    let mock = MockProvider::start().await;
    let dir = test_dir("invalid");
    let path = dir.join("config.yaml");
    let good = format!("model_list:\n{}", entry("a", &mock.v1_url(), ""));
    std::fs::write(&path, &good).unwrap();
    let (mut gateway, addr) = start_with(&path, &[], &[]).await;

    replace(
        &path,
        &format!(
            "model_list:\n{}  - model_name: c\n    litellm_params:\n      api_base: x\nrouter_settings:\n  routing_strategy: nonsense\n",
            entry("b", &mock.v1_url(), "")
        ),
    );
    signal(&gateway, "HUP");
    wait_reloads(addr, "invalid", 1, Duration::from_secs(10)).await;
    assert_eq!(status(addr, "a").await, 200);
    assert_eq!(status(addr, "b").await, 400);

    replace(
        &path,
        &format!(
            "model_list:\n{}general_settings:\n  llmgate_max_connections: 7\n",
            entry("b", &mock.v1_url(), "")
        ),
    );
    signal(&gateway, "HUP");
    wait_reloads(addr, "refused", 1, Duration::from_secs(10)).await;
    assert_eq!(status(addr, "a").await, 200);
    assert_eq!(status(addr, "b").await, 400);
    assert_eq!(reloads(addr, "ok").await, 0);
    assert!(gateway_alive(&mut gateway));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_config_reload_lists_every_problem_and_applies_a_good_file() {
    let mock = MockProvider::start().await;
    let dir = test_dir("api");
    let path = dir.join("config.yaml");
    let master = format!("general_settings:\n  master_key: {MASTER}\n");
    let with = |entries: &str| format!("model_list:\n{entries}{master}");
    std::fs::write(&path, with(&entry("a", &mock.v1_url(), ""))).unwrap();
    let (_gateway, addr) = start_with(&path, &[], &[]).await;

    replace(
        &path,
        &format!(
            "{}router_settings:\n  routing_strategy: nonsense\n  num_retries: many\n",
            with(&entry("b", &mock.v1_url(), ""))
        ),
    );
    let (code, body) = post(addr, "/config/reload", MASTER, &json!({})).await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["error"]["code"], "config_invalid");
    let problems = body["error"]["problems"].as_array().unwrap();
    assert!(problems.len() >= 2, "{problems:?}");
    assert!(problems
        .iter()
        .any(|p| p.as_str().unwrap().contains("routing_strategy")));
    assert!(problems
        .iter()
        .any(|p| p.as_str().unwrap().contains("num_retries")));

    replace(&path, &with(&entry("b", &mock.v1_url(), "")));
    let (code, body) = post(addr, "/config/reload", MASTER, &json!({})).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["models_added"], json!(["b"]));
    assert_eq!(body["models_removed"], json!(["a"]));
    let (code, _) = post(
        addr,
        "/v1/chat/completions",
        MASTER,
        &serde_json::from_str(&chat("b", false)).unwrap(),
    )
    .await;
    assert_eq!(code, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_config_reloads_a_changed_file_within_seconds() {
    let mock = MockProvider::start().await;
    let dir = test_dir("watch");
    let path = dir.join("config.yaml");
    std::fs::write(
        &path,
        format!("model_list:\n{}", entry("a", &mock.v1_url(), "")),
    )
    .unwrap();
    let (_gateway, addr) = start_with(&path, &[], &[("LLMGATE_WATCH_CONFIG", "1")]).await;
    assert_eq!(status(addr, "b").await, 400);

    let changed = Instant::now();
    replace(
        &path,
        &format!("model_list:\n{}", entry("b", &mock.v1_url(), "")),
    );
    wait_reloads(addr, "ok", 1, Duration::from_secs(6)).await;
    assert_eq!(status(addr, "b").await, 200);
    assert_eq!(status(addr, "a").await, 400);
    eprintln!("reloaded {:?} after the change", changed.elapsed());
    // Nothing changed since: no second reload.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    assert_eq!(reloads(addr, "ok").await, 1);
}

/// With `--model` there is no file: SIGHUP is logged and changes nothing, and never stops the
/// process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_without_a_config_file_changes_nothing() {
    let mock = MockProvider::start().await;
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let child = std::process::Command::new(crate::support::BIN)
        .args(["--model", "openai/solo", "--api_base", &mock.v1_url()])
        .args(["--host", "127.0.0.1", "--port", &addr.port().to_string()])
        .args(["--num_workers", "1"])
        .env("RUST_LOG", "warn")
        .env_remove("CONFIG_FILE_PATH")
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut gateway = crate::support::Gateway(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < deadline, "llmgate --model did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status(addr, "solo").await, 200);
    signal(&gateway, "HUP");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(gateway_alive(&mut gateway), "SIGHUP stopped the process");
    assert_eq!(status(addr, "solo").await, 200);
    assert_eq!(reloads(addr, "ok").await, 0);
    assert_eq!(reloads(addr, "invalid").await, 0);
}
