//! Timeouts and streams: a timed-out attempt falls over after its deadline, a stream fails
//! over only before its first byte, and a stream broken later ends with an error event.

use std::time::Duration;

use llmgate_tests::{chat_body, deployment, Behaviour, MockProvider, TestGateway};
use serde_json::{json, Value};
use tokio::time::Instant;

use super::{config, served};

/// Group `primary` ("primary", with `params`) falls back to group `backup` ("backup").
fn primary_and_backup(
    primary: &MockProvider,
    backup: &MockProvider,
    params: &[&str],
    settings: &str,
) -> String {
    config(
        &[
            deployment("primary", "primary", &primary.v1_url(), params),
            deployment("backup", "backup", &backup.v1_url(), &[]),
        ],
        &format!("router_settings:\n  fallbacks: [{{primary: [backup]}}]\n{settings}"),
    )
}

async fn slow_and_fast() -> (MockProvider, MockProvider) {
    let (slow, fast) = (MockProvider::start().await, MockProvider::start().await);
    slow.set_default(Behaviour::Ok.delayed(Duration::from_secs(30)));
    (slow, fast)
}

fn assert_between(elapsed: Duration, from_s: u64, to_s: u64) {
    assert!(
        elapsed >= Duration::from_secs(from_s) && elapsed < Duration::from_secs(to_s),
        "elapsed {elapsed:?}, expected [{from_s}s, {to_s}s)"
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_primary_with_timeout_3_falls_over_after_3_seconds() {
    let (slow, fast) = slow_and_fast().await;
    let gw = TestGateway::start(&primary_and_backup(&slow, &fast, &["timeout: 3"], "")).await;
    let start = Instant::now();
    let res = gw.chat("primary", "hi").await;
    assert_between(start.elapsed(), 3, 4);
    assert_eq!(served(&res), "backup/2/1");
    assert_eq!((slow.request_count(), fast.request_count()), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_timeout_without_a_fallback_is_a_408_naming_the_setting() {
    let slow = MockProvider::start().await;
    slow.set_default(Behaviour::Ok.delayed(Duration::from_secs(30)));
    let yaml = config(
        &[deployment("gpt", "slow", &slow.v1_url(), &["timeout: 2"])],
        "router_settings:\n  num_retries: 0\n",
    );
    let gw = TestGateway::start(&yaml).await;
    let start = Instant::now();
    let e = gw.chat("gpt", "hi").await.openai_error(408);
    assert_between(start.elapsed(), 2, 3);
    assert_eq!(e["code"], "timeout");
    assert!(e["message"].as_str().unwrap().contains("timeout"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn the_requests_own_timeout_wins() {
    let (slow, fast) = slow_and_fast().await;
    let gw = TestGateway::start(&primary_and_backup(&slow, &fast, &["timeout: 20"], "")).await;
    let mut body = chat_body("primary", "hi");
    body["timeout"] = json!(1);
    let start = Instant::now();
    let res = gw.post("/v1/chat/completions", &body).await;
    assert_between(start.elapsed(), 1, 2);
    assert_eq!(served(&res), "backup/2/1");
    assert!(fast.last_request().unwrap().json.get("timeout").is_none());
}

#[tokio::test(start_paused = true)]
async fn router_settings_timeout_and_litellm_request_timeout_apply_to_deployments_without_one() {
    for (settings, secs) in [
        ("  timeout: 2\n", 2),
        (
            "  num_retries: 2\nlitellm_settings:\n  request_timeout: 4\n",
            4,
        ),
    ] {
        let (slow, fast) = slow_and_fast().await;
        let gw = TestGateway::start(&primary_and_backup(&slow, &fast, &[], settings)).await;
        let start = Instant::now();
        let res = gw.chat("primary", "hi").await;
        assert_between(start.elapsed(), secs, secs + 1);
        assert_eq!(served(&res), "backup/2/1");
    }
}

fn stream_body(model: &str) -> Value {
    let mut body = chat_body(model, "stream please");
    body["stream"] = json!(true);
    body
}

#[tokio::test(start_paused = true)]
async fn a_stream_that_fails_before_its_first_byte_fails_over() {
    let (primary, backup) = (MockProvider::start().await, MockProvider::start().await);
    primary.push(Behaviour::error(429, "Rate limit reached"));
    let gw = TestGateway::start(&primary_and_backup(&primary, &backup, &[], "")).await;

    let mut s = gw
        .stream("/v1/chat/completions", &stream_body("primary"))
        .await;
    assert_eq!(s.status, 200);
    assert_eq!(s.headers["content-type"], "text/event-stream");
    assert_eq!(s.headers["x-llmgate-deployment"], "backup");
    assert_eq!(s.headers["x-llmgate-attempts"], "2");
    assert_eq!(s.headers["x-llmgate-fallbacks"], "1");
    let events = s.rest().await;
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    assert!(
        !events.iter().any(|e| e.contains("\"error\"")),
        "{events:?}"
    );
    assert_eq!((primary.request_count(), backup.request_count()), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_stream_slower_than_stream_timeout_to_its_first_byte_fails_over() {
    let (slow, fast) = slow_and_fast().await;
    let gw = TestGateway::start(&primary_and_backup(
        &slow,
        &fast,
        &["timeout: 60", "stream_timeout: 2"],
        "",
    ))
    .await;
    let start = Instant::now();
    let mut s = gw
        .stream("/v1/chat/completions", &stream_body("primary"))
        .await;
    assert_between(start.elapsed(), 2, 3);
    assert_eq!(s.status, 200);
    assert_eq!(s.headers["x-llmgate-deployment"], "backup");
    assert_eq!(s.rest().await.last().map(String::as_str), Some("[DONE]"));

    // A complete answer from the same deployment is not bound by stream_timeout.
    fast.set_default(Behaviour::Ok.delayed(Duration::from_secs(5)));
    slow.set_default(Behaviour::Ok.delayed(Duration::from_secs(5)));
    let start = Instant::now();
    assert_eq!(served(&gw.chat("primary", "hi").await), "primary/1/0");
    assert_between(start.elapsed(), 5, 6);
}

#[tokio::test(start_paused = true)]
async fn a_stream_cut_after_its_first_event_ends_with_an_error_event() {
    let (primary, backup) = (MockProvider::start().await, MockProvider::start().await);
    primary.push(Behaviour::cut_after(1));
    let gw = TestGateway::start(&primary_and_backup(&primary, &backup, &[], "")).await;

    let read = async {
        let mut s = gw
            .stream("/v1/chat/completions", &stream_body("primary"))
            .await;
        assert_eq!(s.status, 200);
        assert_eq!(s.headers["x-llmgate-deployment"], "primary");
        s.rest().await
    };
    // Virtual time: a hang would trip this at once instead of blocking the test.
    let events = tokio::time::timeout(Duration::from_secs(600), read)
        .await
        .expect("the stream ended");
    let first: Value = serde_json::from_str(&events[0]).unwrap();
    assert_eq!(first["choices"][0]["delta"]["role"], "assistant");
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert!(last["error"]["message"].is_string(), "{events:?}");
    assert!(!events.iter().any(|e| e == "[DONE]"), "{events:?}");
    assert_eq!(
        backup.request_count(),
        0,
        "no failover after the first byte"
    );
}
