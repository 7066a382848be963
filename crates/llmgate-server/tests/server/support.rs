//! Helpers for the tests that run the real `llmgate` binary: write a config, start the binary on
//! a free port, talk HTTP/1.1 to it, send it signals, wait for it to exit. Every module of
//! this test binary uses them as `crate::support`.

#![allow(clippy::unwrap_used, clippy::panic, reason = "test helpers")]

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

pub const BIN: &str = env!("CARGO_BIN_EXE_llmgate");

/// The smallest config that serves: the model `demo` answering "hello" (LiteLLM's
/// `mock_response`), no provider needed.
pub const DEMO: &str = r#"
model_list:
  - model_name: demo
    litellm_params:
      model: openai/demo
      mock_response: "hello"
"#;

/// Writes `text` to a config file of its own: every module of this one test binary shares the
/// process id, so two tests that pick the same `name` get different files by the counter.
pub fn write_config(name: &str, text: &str) -> PathBuf {
    static WRITTEN: AtomicUsize = AtomicUsize::new(0);
    let n = WRITTEN.fetch_add(1, Ordering::Relaxed);
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "llmgate-server-{}-{n}-{name}.yaml",
        std::process::id()
    ));
    std::fs::write(&path, text).unwrap();
    path
}

/// The PostgreSQL database the tests share: `LLMGATE_TEST_PG_URL`, else the machine's `test` (a
/// branch that adds a migration runs its tests on a database of its own).
pub static PG_URL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    std::env::var("LLMGATE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
});

/// An empty directory of its own for one test: `<module>-<pid>-<name>` in the target's tmp dir.
pub fn test_dir(module: &str, name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{module}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn check(config: &PathBuf) -> (ExitStatus, String) {
    let output = Command::new(BIN)
        .args(["check", "--config"])
        .arg(config)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    (output.status, stdout)
}

/// The child, killed if the test fails before it stops on its own.
pub struct Gateway(pub Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start the binary on a free port. The port is found by binding `127.0.0.1:0` and letting go,
/// so another process could take it in between: then the binary exits and we try again.
pub async fn start(config: &PathBuf) -> (Gateway, SocketAddr) {
    start_with(config, &[], &[]).await
}

/// [`start`] with extra command-line arguments and environment variables. It passes
/// `--num_workers 1` and `--graceful-shutdown-seconds 30` unless `args` give their own.
pub async fn start_with(
    config: &PathBuf,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Gateway, SocketAddr) {
    for _ in 0..3 {
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let child = Command::new(BIN)
            .arg("--config")
            .arg(config)
            .args(["--host", "127.0.0.1", "--port", &addr.port().to_string()])
            .args(defaults(args))
            .args(args)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let mut gateway = Gateway(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if gateway.0.try_wait().unwrap().is_some() {
                break; // lost the port (or failed): try another
            }
            if TcpStream::connect(addr).await.is_ok() {
                return (gateway, addr);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!("llmgate did not start");
}

/// The arguments [`start_with`] adds unless `args` set them.
fn defaults(args: &[&str]) -> Vec<&'static str> {
    let mut out = Vec::new();
    for (flag, value) in [
        ("--num_workers", "1"),
        ("--graceful-shutdown-seconds", "30"),
    ] {
        if !args.iter().any(|a| a.starts_with(flag)) {
            out.extend([flag, value]);
        }
    }
    out
}

pub async fn connect(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

pub async fn send(addr: SocketAddr, body: String) -> http::Response<Incoming> {
    let request = Request::post("/v1/chat/completions")
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    connect(addr).await.send_request(request).await.unwrap()
}

/// A request of `method` to `path` with `headers` (besides `host`) and `body`, on a new
/// connection: the response.
pub async fn request(
    addr: SocketAddr,
    method: http::Method,
    path: &str,
    headers: &[(&str, &str)],
    body: String,
) -> http::Response<Incoming> {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(Bytes::from(body))).unwrap();
    connect(addr).await.send_request(request).await.unwrap()
}

/// A name no earlier run used (process id and time): for Redis prefixes, cache namespaces,
/// deployment ids, end users; the machine's Redis and PostgreSQL outlive test runs.
pub fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{}-{nanos}", std::process::id())
}

/// SIGTERM, and the exit within 20 s with status 0.
pub async fn stop(gateway: &mut Gateway) {
    signal(gateway, "TERM");
    let status = wait_exit(gateway, Duration::from_secs(20)).await;
    assert!(status.success(), "{status}");
}

pub fn chat(model: &str, stream: bool) -> String {
    serde_json::json!({
        "model": model,
        "stream": stream,
        "messages": [{"role": "user", "content": "hi"}],
    })
    .to_string()
}

pub async fn text(response: http::Response<Incoming>) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

pub fn sigterm(gateway: &Gateway) {
    signal(gateway, "TERM");
}

/// Send the signal `name` (`TERM`, `INT`, `HUP`, `QUIT`, ...) to the binary with `kill`.
pub fn signal(gateway: &Gateway, name: &str) {
    let pid = gateway.0.id().to_string();
    assert!(Command::new("kill")
        .args([&format!("-{name}"), &pid])
        .status()
        .unwrap()
        .success());
}

pub async fn wait_exit(gateway: &mut Gateway, within: Duration) -> ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = gateway.0.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "llmgate still running after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether something listens on `addr` (the machine's PostgreSQL or Redis). Tests that need it
/// print a line and return when not, so the suite passes where only the embedded defaults are.
pub async fn service_up(addr: &str, name: &str) -> bool {
    let up = tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(addr))
        .await
        .is_ok_and(|c| c.is_ok());
    if !up {
        // `.ci/run` sets it when it has the machine's backends running: a skip there is a failure.
        let key = if name.contains("Redis") {
            "redis"
        } else {
            "postgres"
        };
        assert!(
            !std::env::var("LLMGATE_REQUIRE_BACKENDS")
                .unwrap_or_default()
                .contains(key),
            "no {name} on {addr}, and LLMGATE_REQUIRE_BACKENDS requires it"
        );
        eprintln!("skipped: no {name} on {addr}");
    }
    up
}

/// [`service_up`] for PostgreSQL on 127.0.0.1:5432.
pub async fn postgres_up() -> bool {
    service_up("127.0.0.1:5432", "PostgreSQL").await
}

/// [`service_up`] for Redis on 127.0.0.1:6379.
pub async fn redis_up() -> bool {
    service_up("127.0.0.1:6379", "Redis").await
}

/// POSTs `body` as JSON to `path` with `Authorization: Bearer <bearer>`: the status and the
/// answer as JSON (null when it is not).
pub async fn post(
    addr: SocketAddr,
    path: &str,
    bearer: &str,
    body: &serde_json::Value,
) -> (http::StatusCode, serde_json::Value) {
    let request = Request::post(path)
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {bearer}"))
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let response = connect(addr).await.send_request(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

/// GETs `path`: the status and the body as text.
pub async fn get(addr: SocketAddr, path: &str) -> (http::StatusCode, String) {
    get_with(addr, path, "").await
}

/// [`get`] with `bearer` as the key (none when empty).
pub async fn get_with(addr: SocketAddr, path: &str, bearer: &str) -> (http::StatusCode, String) {
    let mut request = Request::get(path).header("host", "127.0.0.1");
    if !bearer.is_empty() {
        request = request.header("authorization", format!("Bearer {bearer}"));
    }
    let request = request.body(Full::new(Bytes::new())).unwrap();
    let response = connect(addr).await.send_request(request).await.unwrap();
    let status = response.status();
    (status, text(response).await)
}

/// The PostgreSQL database tests use: the last path segment of `LLMGATE_TEST_PG_URL`, else
/// `test` (for tests that reach it through a fault proxy, under their own address).
pub fn pg_database() -> String {
    std::env::var("LLMGATE_TEST_PG_URL")
        .ok()
        .and_then(|url| {
            let db = url.rsplit('/').next()?.split('?').next()?.to_owned();
            (!db.is_empty()).then_some(db)
        })
        .unwrap_or_else(|| "test".to_owned())
}

/// What the budget tests' mock answers: with [`ask_priced`]'s prompt, one request costs
/// [`PRICED_COST`] at the model `priced`'s prices.
pub const PRICED_REPLY: &str = "one two three four five six seven eight nine ten";
/// The cost of one [`ask_priced`] answered with [`PRICED_REPLY`].
pub const PRICED_COST: f64 = 0.000_021;

/// Three gateway processes on one config: the model `priced` at the mock (which answers
/// [`PRICED_REPLY`] after `delay`), `master` as the master key, the database at [`PG_URL`],
/// and `extra` at the end of `general_settings`.
pub async fn three_priced(
    name: &str,
    master: &str,
    extra: &str,
    delay: Duration,
) -> (llmgate_testkit::MockProvider, Vec<(Gateway, SocketAddr)>) {
    let upstream = llmgate_testkit::MockProvider::start().await;
    upstream.set_default(llmgate_testkit::Behaviour::reply(PRICED_REPLY).delayed(delay));
    let config = write_config(
        name,
        &format!(
            "model_list:\n  - model_name: priced\n    litellm_params:\n      model: openai/gpt-x\n      \
             api_base: {}\n      api_key: sk-test\n    model_info:\n      \
             input_cost_per_token: 0.000001\n      output_cost_per_token: 0.000002\n\
             general_settings:\n  master_key: {master}\n  database_url: {}\n{extra}",
            upstream.v1_url(),
            PG_URL.as_str()
        ),
    );
    let mut gateways = Vec::new();
    for _ in 0..3 {
        gateways.push(start_with(&config, &[], &[]).await);
    }
    (upstream, gateways)
}

/// One chat request for the model `priced` ("hi", 10 tokens at most), as `user` when given:
/// what the budget tests send.
pub async fn ask_priced(
    addr: SocketAddr,
    key: &str,
    user: Option<&str>,
) -> (http::StatusCode, serde_json::Value) {
    let mut body = serde_json::json!({
        "model": "priced",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
    });
    if let Some(user) = user {
        body["user"] = serde_json::json!(user);
    }
    post(addr, "/v1/chat/completions", key, &body).await
}

/// How many of the requests were answered 200; every other answer must be the 400
/// `budget_exceeded`.
pub async fn count_paid(
    tasks: Vec<tokio::task::JoinHandle<(http::StatusCode, serde_json::Value)>>,
) -> usize {
    let mut paid = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            http::StatusCode::OK => paid += 1,
            http::StatusCode::BAD_REQUEST => {
                assert_eq!(body["error"]["code"], "budget_exceeded", "{body}")
            }
            other => panic!("{other}: {body}"),
        }
    }
    paid
}
