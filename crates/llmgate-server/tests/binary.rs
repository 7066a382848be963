//! The real `llmgate` binary: `check`, and a smoke test that serves a mock model on
//! 127.0.0.1 and stops on SIGTERM. Few on purpose: each one runs the whole binary.

#![allow(clippy::unwrap_used, clippy::panic, reason = "test helpers")]

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use llmgate_testkit::{Behaviour, Gate, MockProvider};
use tokio::net::TcpStream;

const BIN: &str = env!("CARGO_BIN_EXE_llmgate");

const GOOD: &str = r#"
model_list:
  - model_name: demo
    litellm_params:
      model: openai/demo
      mock_response: "hello"
"#;

/// Two problems in one file: `check` must name both.
const BAD: &str = r#"
model_list:
  - model_name: first
    litellm_params:
      api_base: http://127.0.0.1:9
  - litellm_params:
      model: openai/second
"#;

fn write_config(name: &str, text: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("llmgate-server-{}-{name}.yaml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

fn check(config: &PathBuf) -> (ExitStatus, String) {
    let output = Command::new(BIN)
        .args(["check", "--config"])
        .arg(config)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    (output.status, stdout)
}

#[test]
fn check_accepts_a_good_config() {
    let (status, stdout) = check(&write_config("check-good", GOOD));
    assert!(status.success(), "{status}: {stdout}");
    assert!(stdout.contains("valid"), "{stdout}");
}

#[test]
fn check_lists_every_problem_and_exits_1() {
    let (status, stdout) = check(&write_config("check-bad", BAD));
    assert_eq!(status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("invalid"), "{stdout}");
    assert!(
        stdout.contains("model_name"),
        "names the missing model_name: {stdout}"
    );
    assert!(
        stdout.contains("model"),
        "names the missing model: {stdout}"
    );
    assert!(
        stdout.lines().count() >= 3,
        "one line per problem: {stdout}"
    );
}

/// The child, killed if the test fails before it stops on its own.
struct Gateway(Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start the binary on a free port. The port is found by binding `127.0.0.1:0` and letting go,
/// so another process could take it in between: then the binary exits and we try again.
async fn start(config: &PathBuf) -> (Gateway, SocketAddr) {
    for _ in 0..3 {
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let child = Command::new(BIN)
            .arg("--config")
            .arg(config)
            .args(["--host", "127.0.0.1", "--port", &addr.port().to_string()])
            .args(["--num_workers", "1", "--graceful-shutdown-seconds", "30"])
            .env("RUST_LOG", "warn")
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

async fn connect(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

async fn send(addr: SocketAddr, body: String) -> http::Response<Incoming> {
    let request = Request::post("/v1/chat/completions")
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    connect(addr).await.send_request(request).await.unwrap()
}

fn chat(model: &str, stream: bool) -> String {
    serde_json::json!({
        "model": model,
        "stream": stream,
        "messages": [{"role": "user", "content": "hi"}],
    })
    .to_string()
}

async fn text(response: http::Response<Incoming>) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn sigterm(gateway: &Gateway) {
    let pid = gateway.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
}

async fn wait_exit(gateway: &mut Gateway, within: Duration) -> ExitStatus {
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

#[tokio::test]
async fn serves_streams_and_drains_them_on_sigterm() {
    // "slow" streams from a mock upstream that holds its stream after the first event.
    let upstream = MockProvider::start().await;
    let gate = Gate::new();
    upstream.set_default(Behaviour::gated(&gate, 1));
    let config = write_config(
        "smoke",
        &format!(
            "{GOOD}  - model_name: slow\n    litellm_params:\n      model: openai/gpt-4o\n      \
             api_base: {}\n      api_key: sk-test\n",
            upstream.v1_url()
        ),
    );
    let (mut gateway, addr) = start(&config).await;

    let response = send(addr, chat("demo", false)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = text(response).await;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["choices"][0]["message"]["content"], "hello", "{body}");

    let response = send(addr, chat("demo", true)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let body = text(response).await;
    assert!(body.starts_with("data: "), "{body}");
    assert!(body.trim_end().ends_with("data: [DONE]"), "{body}");

    // A stream in flight: its first event is through, the rest waits at the upstream.
    let response = send(addr, chat("slow", true)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = response.into_body();
    let first = tokio::time::timeout(Duration::from_secs(10), stream.frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let first = String::from_utf8(first.into_data().unwrap().to_vec()).unwrap();
    assert!(first.starts_with("data: "), "{first}");
    gate.wait_for_arrivals(1).await;

    // SIGTERM: the process waits for the stream instead of cutting it.
    sigterm(&gateway);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        gateway.0.try_wait().unwrap().is_none(),
        "exited with a stream in flight"
    );

    gate.release();
    let rest = stream.collect().await.unwrap().to_bytes();
    let rest = String::from_utf8(rest.to_vec()).unwrap();
    assert!(rest.trim_end().ends_with("data: [DONE]"), "{rest}");

    // Drained: it exits well before the 30 s bound.
    let status = wait_exit(&mut gateway, Duration::from_secs(10)).await;
    assert!(status.success(), "{status}");
}
