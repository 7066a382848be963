//! Issue 12 items 6, 7, 8 and 13 (library half), through the real gateway: what ends a stream
//! after its head besides its upstream (invalid data, silence, an oversized event, the
//! gateway's cutoff), and the cap on a complete answer. Every case ends with one error event in
//! the client's dialect and a clean end of the body (`rest()` panics on a body error).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers: a failure is the test failing"
)]

use std::time::{Duration, Instant};

use llmgate_tests::{chat_body, Behaviour, Gate, MockProvider, TestGateway};
use serde_json::{json, Value};

/// One deployment `m` of `model` at `base`, with extra `litellm_params` lines.
fn one(model: &str, base: &str, params: &[&str]) -> String {
    let mut y = format!(
        "model_list:\n  - model_name: m\n    litellm_params:\n      model: {model}\n      api_base: {base}\n      api_key: sk-up\n"
    );
    for p in params {
        y.push_str(&format!("      {p}\n"));
    }
    y
}

/// The five dialects' mocks, each with the `model:` that reaches it.
async fn dialects() -> Vec<(&'static str, MockProvider, String)> {
    let openai = MockProvider::start().await;
    let anthropic = MockProvider::start_anthropic().await;
    let gemini = MockProvider::start_gemini().await;
    let ollama = MockProvider::start_ollama().await;
    let bedrock = MockProvider::start_bedrock().await;
    vec![
        ("openai", openai, "openai/gpt-x".to_owned()),
        ("anthropic", anthropic, "anthropic/claude-x".to_owned()),
        ("gemini", gemini, "gemini/gemini-x".to_owned()),
        ("ollama", ollama, "ollama_chat/llama-x".to_owned()),
        ("bedrock", bedrock, "bedrock/anthropic.claude-x".to_owned()),
    ]
}

fn base(name: &str, mock: &MockProvider) -> String {
    if name == "openai" {
        mock.v1_url()
    } else {
        mock.base_url()
    }
}

fn config(name: &str, mock: &MockProvider, model: &str, params: &[&str]) -> String {
    let mut params = params.to_vec();
    let region = "aws_region_name: us-west-2";
    let key = format!("api_key: \"{}\"", llmgate_testkit::bedrock::API_KEY);
    let mut y = one(model, &base(name, mock), &[]);
    if name == "bedrock" {
        y = y.replace("      api_key: sk-up\n", "");
        params.push(region);
        params.push(&key);
        let mut y2 = y.clone();
        for p in &params {
            y2.push_str(&format!("      {p}\n"));
        }
        return y2;
    }
    for p in &params {
        y.push_str(&format!("      {p}\n"));
    }
    y
}

fn stream_body() -> Value {
    let mut body = chat_body("m", "hello there");
    body["stream"] = json!(true);
    body
}

/// The error event that ends an OpenAI stream: the last event, an `error` object, no `[DONE]`.
fn openai_error(events: &[String]) -> Value {
    assert!(!events.iter().any(|e| e == "[DONE]"), "{events:?}");
    let last: Value = serde_json::from_str(events.last().expect("an event")).unwrap();
    assert!(last["error"]["message"].is_string(), "{events:?}");
    last["error"].clone()
}

#[tokio::test]
async fn invalid_upstream_stream_data_ends_every_dialect_with_an_error_event() {
    for (name, mock, model) in dialects().await {
        mock.push(Behaviour::InvalidBody);
        let gw = TestGateway::start(&config(name, &mock, &model, &[])).await;
        let mut s = gw.stream("/v1/chat/completions", &stream_body()).await;
        assert_eq!(s.status, 200, "{name}");
        let events = s.rest().await;
        assert!(
            !events.iter().any(|e| e.contains("this is not json")),
            "{name}: invalid data reached the client: {events:?}"
        );
        let e = openai_error(&events);
        assert!(
            matches!(
                e["code"].as_str(),
                Some("upstream_invalid_stream" | "invalid_upstream_response")
            ),
            "{name}: {e}"
        );
    }
}

#[tokio::test]
async fn invalid_upstream_stream_data_on_messages_is_an_anthropic_error_event() {
    let mock = MockProvider::start().await;
    mock.push(Behaviour::InvalidBody);
    let gw = TestGateway::start(&one("openai/gpt-x", &mock.v1_url(), &[])).await;
    let body = json!({"model": "m", "max_tokens": 10, "stream": true,
        "messages": [{"role": "user", "content": "hi"}]});
    let mut s = gw
        .stream_with(
            "/v1/messages",
            &body,
            &[("anthropic-version", "2023-06-01")],
        )
        .await;
    assert_eq!(s.status, 200);
    let mut events = Vec::new();
    while let Some(e) = s.next_event().await {
        events.push(e);
    }
    let (name, data) = events.last().expect("an event").clone();
    assert_eq!(name, "error", "{events:?}");
    let v: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(v["type"], "error");
    assert!(
        !data.contains("this is not json"),
        "the invalid data reached the client: {data}"
    );
}

/// Reads a stream to its end, returning its events and how long after the call it ended.
async fn timed_rest(gw: &TestGateway, body: &Value) -> (Vec<String>, Duration) {
    let started = Instant::now();
    let mut s = gw.stream("/v1/chat/completions", body).await;
    assert_eq!(s.status, 200);
    let events = tokio::time::timeout(Duration::from_secs(20), s.rest())
        .await
        .expect("the stream must end, not hang");
    (events, started.elapsed())
}

#[tokio::test]
async fn a_silent_upstream_stream_ends_at_the_idle_timeout_in_every_dialect() {
    for (name, mock, model) in dialects().await {
        let gate = Gate::new();
        // The head and the first event, then nothing until the test ends.
        mock.push(Behaviour::gated(&gate, 1));
        let gw =
            TestGateway::start(&config(name, &mock, &model, &["stream_idle_timeout: 1"])).await;
        let (events, took) = timed_rest(&gw, &stream_body()).await;
        let e = openai_error(&events);
        assert_eq!(e["code"], "stream_idle_timeout", "{name}: {events:?}");
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .contains("stream_idle_timeout"),
            "{name}: {e}"
        );
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(5),
            "{name}: {took:?}"
        );
        gate.release();
    }
}

#[tokio::test]
async fn a_trickling_upstream_stream_ends_at_the_idle_timeout() {
    let mock = MockProvider::start().await;
    // One event every 2 s against a 1 s idle timeout.
    mock.push(Behaviour::Ok.paced(Duration::from_secs(2)));
    let gw = TestGateway::start(&one(
        "openai/gpt-x",
        &mock.v1_url(),
        &["stream_idle_timeout: 1"],
    ))
    .await;
    let (events, took) = timed_rest(&gw, &stream_body()).await;
    assert_eq!(openai_error(&events)["code"], "stream_idle_timeout");
    // The first event passed, the second never came in time.
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");

    // Events faster than the idle timeout pass, however long the whole stream takes.
    mock.push(Behaviour::Ok.paced(Duration::from_millis(300)));
    let (events, took) = timed_rest(&gw, &stream_body()).await;
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{events:?}"
    );
    assert!(took > Duration::from_secs(1), "{took:?}");
}

#[tokio::test]
async fn the_idle_timeout_defaults_to_stream_timeout_and_router_settings() {
    let mock = MockProvider::start().await;
    let gate = Gate::new();
    mock.push(Behaviour::gated(&gate, 1));
    let gw = TestGateway::start(&one("openai/gpt-x", &mock.v1_url(), &["stream_timeout: 1"])).await;
    let (events, _) = timed_rest(&gw, &stream_body()).await;
    let e = openai_error(&events);
    assert_eq!(e["code"], "stream_idle_timeout");
    assert!(
        e["message"].as_str().unwrap().contains("`stream_timeout`"),
        "{e}"
    );

    mock.push(Behaviour::gated(&gate, 1));
    let yaml =
        one("openai/gpt-x", &mock.v1_url(), &[]) + "router_settings:\n  stream_idle_timeout: 1\n";
    let gw = TestGateway::start(&yaml).await;
    let (events, _) = timed_rest(&gw, &stream_body()).await;
    assert_eq!(openai_error(&events)["code"], "stream_idle_timeout");
    gate.release();
}

#[tokio::test]
async fn a_silent_stream_on_messages_ends_with_an_anthropic_error_event() {
    let mock = MockProvider::start().await;
    let gate = Gate::new();
    mock.push(Behaviour::gated(&gate, 1));
    let gw = TestGateway::start(&one(
        "openai/gpt-x",
        &mock.v1_url(),
        &["stream_idle_timeout: 1"],
    ))
    .await;
    let body = json!({"model": "m", "max_tokens": 10, "stream": true,
        "messages": [{"role": "user", "content": "hi"}]});
    let mut s = gw
        .stream_with(
            "/v1/messages",
            &body,
            &[("anthropic-version", "2023-06-01")],
        )
        .await;
    let mut events = Vec::new();
    while let Some(e) = tokio::time::timeout(Duration::from_secs(10), s.next_event())
        .await
        .expect("the stream must end")
    {
        events.push(e);
    }
    let (name, data) = events.last().expect("an event").clone();
    assert_eq!(name, "error", "{events:?}");
    assert!(data.contains("no stream event"), "{data}");
    gate.release();
}

#[tokio::test]
async fn cut_streams_ends_every_stream_in_flight_with_an_error_event() {
    let openai = MockProvider::start().await;
    let anthropic = MockProvider::start_anthropic().await;
    let gate = Gate::new();
    openai.set_default(Behaviour::gated(&gate, 1));
    anthropic.set_default(Behaviour::gated(&gate, 1));
    let yaml = format!(
        "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/gpt-x\n      api_base: {}\n      api_key: k\n  - model_name: c\n    litellm_params:\n      model: anthropic/claude-x\n      api_base: {}\n      api_key: k\n",
        openai.v1_url(),
        anthropic.base_url()
    );
    let loaded = llmgate_config::from_yaml(
        &yaml,
        std::path::Path::new("."),
        &std::collections::HashMap::new(),
    )
    .unwrap_or_else(|p| panic!("{p}"));
    let gateway = llmgate::Gateway::new(loaded.config).unwrap();
    let gw = TestGateway::serve(gateway.clone()).await;

    // Chat on an OpenAI-compatible deployment, chat on a native one, and /v1/messages.
    let mut chat = gw.stream("/v1/chat/completions", &stream_body()).await;
    let mut body = stream_body();
    body["model"] = json!("c");
    let mut native = gw.stream("/v1/chat/completions", &body).await;
    let messages_body = json!({"model": "m", "max_tokens": 10, "stream": true,
        "messages": [{"role": "user", "content": "hi"}]});
    let mut messages = gw
        .stream_with(
            "/v1/messages",
            &messages_body,
            &[("anthropic-version", "2023-06-01")],
        )
        .await;
    assert!(chat.next_data().await.is_some());
    assert!(native.next_data().await.is_some());
    assert_eq!(messages.next_event().await.unwrap().0, "message_start");
    gate.wait_for_arrivals(3).await;

    gateway.cut_streams();
    for s in [&mut chat, &mut native] {
        let events = tokio::time::timeout(Duration::from_secs(5), s.rest())
            .await
            .expect("a cut stream ends at once");
        let e = openai_error(&events);
        assert_eq!(e["code"], "gateway_shutting_down", "{events:?}");
        assert_eq!(e["message"], "the gateway is shutting down");
    }
    let mut events = Vec::new();
    while let Some(e) = tokio::time::timeout(Duration::from_secs(5), messages.next_event())
        .await
        .expect("a cut stream ends at once")
    {
        events.push(e);
    }
    let (name, data) = events.last().expect("an event").clone();
    assert_eq!(name, "error", "{events:?}");
    assert!(data.contains("the gateway is shutting down"), "{data}");

    // A stream that starts after the cut ends at once the same way.
    let events = tokio::time::timeout(
        Duration::from_secs(5),
        gw.stream("/v1/chat/completions", &stream_body())
            .await
            .rest(),
    )
    .await
    .expect("ends at once");
    assert_eq!(openai_error(&events)["code"], "gateway_shutting_down");
    gate.release();
}

#[tokio::test]
async fn an_oversized_answer_is_a_502_and_an_oversized_event_ends_the_stream() {
    let mock = MockProvider::start().await;
    let yaml =
        one("openai/gpt-x", &mock.v1_url(), &[]) + "general_settings:\n  max_response_size_mb: 1\n";
    let gw = TestGateway::start(&yaml).await;

    // A 2 MiB answer (with its Content-Length) against a 1 MiB cap.
    let big = "x".repeat(2 * 1024 * 1024);
    let answer = json!({"id": "c", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": big}}]});
    // Every attempt (the error is retryable) gets the same oversized answer.
    mock.set_default(Behaviour::json(200, &answer));
    let e = gw.chat("m", "hi").await.openai_error(502);
    assert_eq!(e["code"], "upstream_response_too_large", "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("max_response_size_mb"),
        "{e}"
    );

    // Under the cap: served.
    mock.set_default(Behaviour::reply("small"));
    assert_eq!(gw.chat("m", "hi").await.status, 200);

    // One stream event of 2 MiB: the stream ends with the error event.
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "content-type",
        http::HeaderValue::from_static("text/event-stream"),
    );
    let chunk = |content: &str| {
        json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": {"content": content}}]})
    };
    let body = format!(
        "data: {}\n\ndata: {}\n\ndata: [DONE]\n\n",
        chunk("a"),
        chunk(&"y".repeat(2 * 1024 * 1024))
    );
    mock.push(Behaviour::Status {
        status: http::StatusCode::OK,
        body: body.into(),
        headers,
    });
    let (events, _) = timed_rest(&gw, &stream_body()).await;
    assert_eq!(
        events.len(),
        2,
        "{:?}",
        events.iter().map(String::len).collect::<Vec<_>>()
    );
    assert_eq!(openai_error(&events)["code"], "upstream_response_too_large");
}

/// A `Write` into a shared buffer, for captured log lines.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// Issue 12 item 5. A current-thread runtime: the gateway, its connections and the mock run on
// this thread, so the thread's log subscriber sees every line they write.
#[tokio::test(flavor = "current_thread")]
async fn an_upstream_echoing_its_key_leaks_it_neither_to_the_client_nor_to_debug_logs() {
    use tracing_subscriber::util::SubscriberInitExt;
    let logs = Captured::default();
    let writer = logs.clone();
    let _guard = tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish()
        .set_default();

    // Tracing caches each call site's interest across threads: a site first reached by
    // another test's thread while this subscriber was being set can keep an interest that
    // leaves it out (the failure line went missing once in a full run). Computed again now.
    tracing::callsite::rebuild_interest_cache();
    let mock = MockProvider::start().await;
    let key = "sk-upstream-secret-0123456789";
    let yaml = one("openai/gpt-x", &mock.v1_url(), &[]).replace("sk-up", key);
    let gw = TestGateway::start(&yaml).await;
    mock.set_default(Behaviour::error(
        401,
        format!("Incorrect API key provided. Authorization: Bearer {key}"),
    ));
    let res = gw.chat("m", "hi").await;
    assert_eq!(res.status, 401, "{}", res.text());
    assert!(
        !res.text().contains(key),
        "client saw the key: {}",
        res.text()
    );
    assert!(res.text().contains("[REDACTED]"), "{}", res.text());
    // The key reached the upstream (so the echo was real).
    assert_eq!(mock.last_request().unwrap().bearer_token(), Some(key));

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("[REDACTED]"),
        "the failure was logged: {logs}"
    );
    assert!(!logs.contains(key), "a log line has the key: {logs}");
}

#[tokio::test]
async fn an_idle_stream_counts_as_its_deployments_failure() {
    let mock = MockProvider::start().await;
    let gate = Gate::new();
    mock.push(Behaviour::gated(&gate, 1));
    let yaml = one("openai/gpt-x", &mock.v1_url(), &["stream_idle_timeout: 1"])
        + "router_settings:\n  allowed_fails: 0\n  cooldown_time: 60\n";
    let gw = TestGateway::start(&yaml).await;
    let (events, _) = timed_rest(&gw, &stream_body()).await;
    assert_eq!(openai_error(&events)["code"], "stream_idle_timeout");
    // The deployment is cooling down: the next request finds none available.
    let res = gw.chat("m", "hi").await;
    assert_eq!(res.status, 503, "{}", res.text());
    gate.release();
}
