//! The real `llmgate` binary: `check`, and a smoke test that serves a mock model on
//! 127.0.0.1 and stops on SIGTERM. Few on purpose: each one runs the whole binary.

#![allow(clippy::unwrap_used, clippy::panic, reason = "test helpers")]

use std::time::Duration;

use crate::support::{chat, check, send, sigterm, start, text, wait_exit, write_config, DEMO};
use http::StatusCode;
use http_body_util::BodyExt;
use llmgate_testkit::{Behaviour, Gate, MockProvider};

/// Two problems in one file: `check` must name both.
const BAD: &str = r#"
model_list:
  - model_name: first
    litellm_params:
      api_base: http://127.0.0.1:9
  - litellm_params:
      model: openai/second
"#;

#[test]
fn check_accepts_a_good_config() {
    let (status, stdout) = check(&write_config("check-good", DEMO));
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

#[tokio::test]
async fn serves_streams_and_drains_them_on_sigterm() {
    // "slow" streams from a mock upstream that holds its stream after the first event.
    let upstream = MockProvider::start().await;
    let gate = Gate::new();
    upstream.set_default(Behaviour::gated(&gate, 1));
    let config = write_config(
        "smoke",
        &format!(
            "{DEMO}  - model_name: slow\n    litellm_params:\n      model: openai/gpt-4o\n      \
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
