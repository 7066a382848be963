//! Backends out of reach, through the real binary. The key database (docs/keys.md, "Start-up
//! and failures"): at start-up the binary stops with a message naming the database and never
//! its password, at once when the port refuses and 5 s into a silence (a proxy in front of
//! PostgreSQL that says nothing); later, a request whose virtual key must be looked up is a 503
//! unless `allow_requests_on_db_unavailable` lets it through. The rate limiter's Redis
//! (docs/rate-limits.md): a URL that does not parse stops the start; a Redis away does not.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers"
)]

use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{pg_database, post, postgres_up, start_with, write_config, Gateway, BIN};
use http::StatusCode;
use llmgate_testkit::{FaultProxy, MockProvider};
use serde_json::json;

const MASTER: &str = "sk-master-db-outage";
const PASSWORD: &str = "s3cret-db-pass";

fn config(
    name: &str,
    upstream: &MockProvider,
    database_url: &str,
    extra: &str,
) -> std::path::PathBuf {
    write_config(
        name,
        &format!(
            "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/gpt-x\n      \
             api_base: {}\n      api_key: sk-test\n\
             general_settings:\n  master_key: {MASTER}\n  database_url: {database_url}\n{extra}",
            upstream.v1_url()
        ),
    )
}

/// Starts the binary on `config` and waits for it to exit: (exit code, stderr, how long).
async fn run_to_exit(config: &std::path::Path) -> (Option<i32>, String, Duration) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let child = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--num_workers",
            "1",
        ])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::task::spawn_blocking(move || child.wait_with_output()),
    )
    .await
    .expect("the binary still runs 30 s after its start")
    .unwrap()
    .unwrap();
    let took = started.elapsed();
    let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stdout));
    (output.status.code(), text, took)
}

/// The start-up refusal: non-zero before `within` (from the process's start), naming `shown`,
/// never the password.
fn assert_refused(
    (code, text, took): (Option<i32>, String, Duration),
    shown: &str,
    within: Duration,
) {
    assert!(code.is_some_and(|c| c != 0), "exit {code:?}: {text}");
    assert!(took < within, "exited after {took:?}: {text}");
    assert!(
        text.contains("cannot connect to the key database at"),
        "{text}"
    );
    assert!(text.contains(shown), "{text}");
    assert!(!text.contains(PASSWORD), "the password is shown: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_refusing_at_start_up_stops_the_binary_at_once_without_the_password() {
    let upstream = MockProvider::start().await;
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("postgres://llmgate:{PASSWORD}@{closed}/llmgate");
    let config = config("db-refused", &upstream, &url, "");
    // At once: the port refuses. 3 s leaves room for a busy machine's process start.
    let shown = format!("postgres://{closed}/llmgate");
    assert_refused(run_to_exit(&config).await, &shown, Duration::from_secs(3));
}

/// PostgreSQL behind a proxy that accepts and then says nothing: the binary gives up 5 s after
/// it began to connect ("no answer within 5s") and exits; 1 s is left for the process's start
/// and exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_database_at_start_up_stops_the_binary_after_5_s_without_the_password() {
    let upstream = MockProvider::start().await;
    let proxy = FaultProxy::start("127.0.0.1:5432".parse().unwrap())
        .await
        .unwrap();
    proxy.stall();
    let url = format!(
        "postgres://postgres:{PASSWORD}@{}/{}",
        proxy.addr(),
        pg_database()
    );
    let config = config("db-silent", &upstream, &url, "");
    let shown = format!("postgres://{}/{}", proxy.addr(), pg_database());
    let outcome = run_to_exit(&config).await;
    assert!(outcome.1.contains("no answer within 5s"), "{}", outcome.1);
    assert_refused(outcome, &shown, Duration::from_secs(6));
}

/// A key made on an instance with a direct connection; two instances reach PostgreSQL through
/// a proxy that is then cut, and have never seen the key: the one without the setting answers
/// 503 `key_store_unavailable`, the one with `allow_requests_on_db_unavailable: true` 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_lost_later_is_a_503_unless_requests_are_allowed_through() {
    if !postgres_up().await {
        return;
    }
    let upstream = MockProvider::start().await;
    let direct = config("db-direct", &upstream, crate::support::PG_URL.as_str(), "");
    let (_a, a) = start_with(&direct, &[], &[]).await;
    let (status, key) = post(a, "/key/generate", MASTER, &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{key}");
    let key = key["key"].as_str().unwrap().to_owned();

    let proxy = FaultProxy::start("127.0.0.1:5432".parse().unwrap())
        .await
        .unwrap();
    let url = format!("postgres://postgres@{}/{}", proxy.addr(), pg_database());
    let grace = ["--graceful-shutdown-seconds", "1"];
    let closed = config("db-closed", &upstream, &url, "");
    let (_b, b): (Gateway, SocketAddr) = start_with(&closed, &grace, &[]).await;
    let open = config(
        "db-open",
        &upstream,
        &url,
        "  allow_requests_on_db_unavailable: true\n",
    );
    let (_c, c) = start_with(&open, &grace, &[]).await;
    proxy.cut();

    let body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    let (status, answer) = post(b, "/v1/chat/completions", &key, &body).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_eq!(answer["error"]["code"], "key_store_unavailable", "{answer}");
    let (status, answer) = post(c, "/v1/chat/completions", &key, &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

/// docs/rate-limits.md: a Redis URL that does not parse stops the binary at start-up, naming
/// the setting; a Redis that does not answer does not (the failure policy decides per request).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unparsable_redis_url_stops_the_binary_and_an_unreachable_redis_does_not() {
    let upstream = MockProvider::start().await;
    let model = format!(
        "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/gpt-x\n      \
         api_base: {}\n      api_key: sk-test\n",
        upstream.v1_url()
    );
    let bad = write_config(
        "redis-unparsable",
        &format!("{model}router_settings:\n  redis_url: \"redis://:{PASSWORD}@[::1\"\n"),
    );
    let (code, text, took) = run_to_exit(&bad).await;
    assert!(code.is_some_and(|c| c != 0), "exit {code:?}: {text}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(text.contains("router_settings.redis"), "{text}");
    assert!(!text.contains(PASSWORD), "the password is shown: {text}");

    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let away = write_config(
        "redis-away",
        &format!("{model}router_settings:\n  redis_url: redis://{closed}\n"),
    );
    let (_gateway, addr) = start_with(&away, &[], &[]).await;
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    let (status, answer) = post(addr, "/v1/chat/completions", "", &body).await;
    // The default policy is `open`: served although the limiter's Redis is away.
    assert_eq!(status, StatusCode::OK, "{answer}");
}

/// A `database_url` of a kind llmgate does not serve stops the start, naming the setting and
/// never the password (configuration.md: messages never contain a secret's value).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsupported_database_url_stops_the_binary_without_the_password() {
    let upstream = MockProvider::start().await;
    let url = format!("mysql://user:{PASSWORD}@db/llmgate");
    let config = config("db-mysql", &upstream, &url, "");
    let (code, text, _) = run_to_exit(&config).await;
    assert!(code.is_some_and(|c| c != 0), "exit {code:?}: {text}");
    assert!(text.contains("database URL"), "{text}");
    assert!(!text.contains(PASSWORD), "the password is shown: {text}");
}
