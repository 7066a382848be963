//! Streams: forwarded event by event, never buffered; broken upstream streams end cleanly.

use llmgate_tests::{chat_body, config_for, Behaviour, Gate, MockProvider, TestGateway};
use serde_json::{json, Value};

#[tokio::test]
async fn first_event_reaches_the_client_before_the_upstream_finishes() {
    let mock = MockProvider::start().await;
    let gate = Gate::new();
    mock.push(Behaviour::gated(&gate, 2));
    let gw = TestGateway::start(&config_for(&[("gpt", &mock.v1_url())], None)).await;

    let mut body = chat_body("gpt", "stream please");
    body["stream"] = json!(true);
    let mut s = gw.stream("/v1/chat/completions", &body).await;
    assert_eq!(s.status, 200);
    assert_eq!(s.headers["content-type"], "text/event-stream");

    // The upstream is holding the rest of its stream until the gate opens.
    let first: Value = serde_json::from_str(&s.next_data().await.unwrap()).unwrap();
    assert_eq!(first["object"], "chat.completion.chunk");
    assert_eq!(first["choices"][0]["delta"]["role"], "assistant");
    assert!(!gate.is_released());
    gate.release();

    let rest = s.rest().await;
    assert_eq!(rest.last().map(String::as_str), Some("[DONE]"));
    let text: String = std::iter::once(first)
        .chain(
            rest.iter()
                .filter(|d| *d != "[DONE]")
                .map(|d| serde_json::from_str(d).unwrap()),
        )
        .filter_map(|c: Value| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(text, "mock reply to: stream please");
}

#[tokio::test]
async fn usage_chunk_only_when_the_client_asked() {
    let mock = MockProvider::start().await;
    let gw = TestGateway::start(&config_for(&[("gpt", &mock.v1_url())], None)).await;
    let mut body = chat_body("gpt", "count me");
    body["stream"] = json!(true);

    let events = gw.stream("/v1/chat/completions", &body).await.rest().await;
    assert!(
        !events.iter().any(|e| e.contains("\"usage\":{")),
        "usage chunk sent to a client that did not ask: {events:?}"
    );
    // The gateway asked the upstream for usage anyway (metering needs it).
    assert_eq!(
        mock.last_request().unwrap().json["stream_options"]["include_usage"],
        true
    );

    body["stream_options"] = json!({"include_usage": true});
    let events = gw.stream("/v1/chat/completions", &body).await.rest().await;
    let usage: Vec<Value> = events
        .iter()
        .filter(|e| *e != "[DONE]")
        .map(|e| serde_json::from_str::<Value>(e).unwrap())
        .filter(|c| c["usage"].is_object())
        .collect();
    assert_eq!(usage.len(), 1, "{events:?}");
    assert_eq!(usage[0]["choices"], json!([]));
}

#[tokio::test]
async fn upstream_cut_mid_stream_ends_with_an_error_event() {
    let mock = MockProvider::start().await;
    mock.push(Behaviour::cut_after(2));
    let gw = TestGateway::start(&config_for(&[("gpt", &mock.v1_url())], None)).await;
    let mut body = chat_body("gpt", "this will break");
    body["stream"] = json!(true);
    let events = gw.stream("/v1/chat/completions", &body).await.rest().await;
    // Two events passed, then an OpenAI-shaped error event; the body ended cleanly (rest()
    // panics on a body error).
    assert!(events.len() >= 3, "{events:?}");
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert!(last["error"]["message"].is_string(), "{events:?}");
    assert!(!events.iter().any(|e| e == "[DONE]"));
}

#[tokio::test]
async fn legacy_completions_stream() {
    let mock = MockProvider::start().await;
    let gw = TestGateway::start(&config_for(&[("gpt", &mock.v1_url())], None)).await;
    let events = gw
        .stream(
            "/v1/completions",
            &json!({"model": "gpt", "prompt": "hi", "stream": true}),
        )
        .await
        .rest()
        .await;
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let first: Value = serde_json::from_str(&events[0]).unwrap();
    assert_eq!(first["object"], "text_completion");
}
