//! Gemini streams (`streamGenerateContent?alt=sse`), translated event by event.

use std::time::Duration;

use http_body_util::BodyExt;
use llmgate_core::{Endpoint, ErrorContract};
use llmgate_testkit::{Behaviour, Gate, MockProvider};
use serde_json::{json, Value};

use super::common::*;
use super::gemini;

#[tokio::test]
async fn stream_is_translated_event_by_event() {
    let mock = MockProvider::start_gemini().await;
    let mut body = chat("hello there", true);
    body["stream_options"] = json!({"include_usage": true});
    let res = call(Endpoint::ChatCompletions, &body, gemini(&mock))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let slot = usage_of(&res);
    let events = chunks(&bytes(res).await);

    let got = mock.last_request().unwrap();
    assert_eq!(
        got.path_and_query,
        "/v1beta/models/upstream-model:streamGenerateContent?alt=sse"
    );
    assert_eq!(got.header("x-goog-api-key"), Some("sk-test"));
    // Nothing stream-specific goes in the body: the URL says it.
    assert_eq!(
        got.json,
        json!({"contents": [{"role": "user", "parts": [{"text": "hello there"}]}]})
    );

    // "mock reply to: hello there": one event per word, the last with finishReason; then
    // the finish chunk and the usage chunk.
    assert_eq!(events.len(), 4 + 1 + 1 + 1, "{events:#?}");
    for c in &events {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["id"], "mock-resp-000001");
        assert_eq!(c["model"], "upstream-model");
        assert_eq!(c["created"], events[0]["created"]);
    }
    assert_eq!(
        events[0]["choices"],
        json!([{"index": 0, "delta": {"role": "assistant", "content": "mock "},
                "finish_reason": null}])
    );
    assert_eq!(
        events[1]["choices"][0]["delta"],
        json!({"content": "reply "})
    );
    assert_eq!(streamed_text(&events), "mock reply to: hello there");
    assert_eq!(
        events[5]["choices"],
        json!([{"index": 0, "delta": {}, "finish_reason": "stop"}])
    );
    assert_eq!(events[6]["choices"], json!([]));
    assert_eq!(
        events[6]["usage"],
        json!({"prompt_tokens": 2, "completion_tokens": 5, "total_tokens": 7})
    );
    assert_eq!(total(slot.get()), 7);

    // Without include_usage: no usage chunk, the slot is still filled.
    let res = call(
        Endpoint::ChatCompletions,
        &chat("hello there", true),
        gemini(&mock),
    )
    .await
    .unwrap();
    let slot = usage_of(&res);
    let plain = chunks(&bytes(res).await);
    assert_eq!(plain.len(), 6);
    assert!(plain.iter().all(|c| c.get("usage").is_none()));
    assert_eq!(total(slot.get()), 7);
}

#[tokio::test]
async fn stream_events_go_out_as_they_arrive() {
    let mock = MockProvider::start_gemini().await;
    let gate = Gate::new();
    mock.push(Behaviour::gated(&gate, 1));
    let res = call(
        Endpoint::ChatCompletions,
        &chat("hello there", true),
        gemini(&mock),
    )
    .await
    .unwrap();
    let mut body = res.into_body();
    // The first event's chunk reaches the client while Gemini holds the rest.
    let first = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("the first chunk is not held back")
        .unwrap()
        .unwrap()
        .into_data()
        .unwrap();
    let first = sse_data(&first);
    assert_eq!(first.len(), 1);
    let v: Value = serde_json::from_str(&first[0]).unwrap();
    assert_eq!(v["choices"][0]["delta"]["content"], "mock ");
    assert!(!gate.is_released());
    gate.release();
    let rest = body.collect().await.unwrap().to_bytes();
    let rest = chunks(&rest);
    assert_eq!(rest.last().unwrap()["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn streamed_tool_call_and_thoughts() {
    let mock = MockProvider::start_gemini().await;
    let mut body = chat("weather?", true);
    body["tools"] = json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]}}}]);
    body["tool_choice"] = json!({"type": "function", "function": {"name": "get_weather"}});
    body["reasoning_effort"] = json!("high");
    let mut d = gemini(&mock);
    d.model = "gemini-2.5-pro".into();
    let res = call(Endpoint::ChatCompletions, &body, d).await.unwrap();
    let slot = usage_of(&res);
    let chunks = chunks(&bytes(res).await);
    let sent = mock.last_request().unwrap().json;
    assert_eq!(
        sent["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}})
    );
    assert_eq!(
        sent["generationConfig"],
        json!({"thinkingConfig": {"thinkingBudget": 4096, "includeThoughts": true}})
    );
    let deltas: Vec<&Value> = chunks.iter().map(|c| &c["choices"][0]["delta"]).collect();
    assert_eq!(
        *deltas[0],
        json!({"role": "assistant", "reasoning_content": "mock thought"})
    );
    let first = &deltas[1]["tool_calls"][0];
    assert_eq!(first["index"], 0);
    assert_eq!(first["type"], "function");
    assert_eq!(
        first["function"],
        json!({"name": "get_weather", "arguments": ""})
    );
    assert!(first["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(
        *deltas[2],
        json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":\"mock\"}"}}]})
    );
    assert_eq!(chunks[3]["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(chunks.len(), 4);
    let usage = slot.get().unwrap();
    assert_eq!(
        usage
            .completion_tokens_details
            .as_ref()
            .and_then(|d| d.reasoning_tokens),
        Some(2)
    );
    assert_eq!(usage.completion_tokens, 5 + 2);
}

#[tokio::test]
async fn hand_written_stream_with_parallel_calls_and_cached_tokens() {
    let mock = MockProvider::start_gemini().await;
    mock.push(Behaviour::gemini_sse(&[
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Checking."}]}, "index": 0}],
               "usageMetadata": {"promptTokenCount": 40, "totalTokenCount": 40},
               "modelVersion": "gemini-2.5-flash", "responseId": "r-9"}),
        json!({"candidates": [{"content": {"role": "model", "parts": [
                   {"functionCall": {"name": "a", "args": {}}},
                   {"functionCall": {"name": "b", "args": {"x": [1]}}}]},
               "finishReason": "STOP", "index": 0}],
               "usageMetadata": {"promptTokenCount": 40, "candidatesTokenCount": 12,
                   "totalTokenCount": 52, "cachedContentTokenCount": 32},
               "modelVersion": "gemini-2.5-flash", "responseId": "r-9"}),
    ]));
    let mut body = chat("go", true);
    body["stream_options"] = json!({"include_usage": true});
    let res = call(Endpoint::ChatCompletions, &body, gemini(&mock))
        .await
        .unwrap();
    let chunks = chunks(&bytes(res).await);
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0))
        .collect();
    assert_eq!(calls.len(), 4);
    assert_eq!(calls[0]["index"], 0);
    assert_eq!(calls[2]["index"], 1);
    assert_eq!(calls[2]["function"]["name"], "b");
    assert_eq!(calls[3]["function"]["arguments"], "{\"x\":[1]}");
    assert_ne!(calls[0]["id"], calls[2]["id"]);
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(
        *usage,
        json!({"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52,
               "prompt_tokens_details": {"cached_tokens": 32}})
    );
    assert_eq!(chunks[0]["id"], "r-9");
    assert_eq!(chunks[0]["model"], "gemini-2.5-flash");
}

#[tokio::test]
async fn blocked_prompt_in_a_stream() {
    let mock = MockProvider::start_gemini().await;
    mock.push(Behaviour::gemini_sse(&[json!({
        "promptFeedback": {"blockReason": "SAFETY"},
        "usageMetadata": {"promptTokenCount": 5, "totalTokenCount": 5},
        "modelVersion": "gemini-2.0-flash", "responseId": "r-b"
    })]));
    let res = call(Endpoint::ChatCompletions, &chat("bad", true), gemini(&mock))
        .await
        .unwrap();
    let slot = usage_of(&res);
    let chunks = chunks(&bytes(res).await);
    assert_eq!(chunks.len(), 2);
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant"})
    );
    assert_eq!(chunks[1]["choices"][0]["finish_reason"], "content_filter");
    assert_eq!(total(slot.get()), 5);
}

/// The `data:` payloads of a stream that ended with an error event.
async fn broken_stream(mock: &MockProvider) -> (Vec<String>, Value) {
    let res = call(
        Endpoint::ChatCompletions,
        &chat("hello there", true),
        gemini(mock),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    let mut data = sse_data(&bytes(res).await);
    let last: Value = serde_json::from_str(&data.pop().unwrap()).unwrap();
    assert!(!data.iter().any(|d| d == "[DONE]"), "{data:?}");
    (data, last["error"].clone())
}

#[tokio::test]
async fn streams_that_break_end_with_an_error_event() {
    let mock = MockProvider::start_gemini().await;
    // Google's error event mid-stream.
    mock.push(Behaviour::gemini_sse(&[
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}, "index": 0}]}),
        json!({"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}),
    ]));
    let (data, error) = broken_stream(&mock).await;
    assert_eq!(data.len(), 1);
    assert_eq!(error["code"], "UNAVAILABLE");
    assert!(error["message"]
        .as_str()
        .unwrap()
        .contains("The model is overloaded."));

    // The body ends before any candidate finished.
    mock.push(Behaviour::gemini_sse(&[json!({"candidates": [
        {"content": {"role": "model", "parts": [{"text": "Hel"}]}, "index": 0}]})]));
    let (data, error) = broken_stream(&mock).await;
    assert_eq!(data.len(), 1);
    assert_eq!(error["code"], "upstream_stream_broken");

    mock.push(Behaviour::cut_after(2));
    let (data, error) = broken_stream(&mock).await;
    assert_eq!(data.len(), 2);
    assert_eq!(error["code"], "upstream_stream_broken");

    mock.push(Behaviour::InvalidBody);
    let (data, error) = broken_stream(&mock).await;
    assert!(data.is_empty());
    assert_eq!(error["code"], "invalid_upstream_response");
}

#[tokio::test]
async fn stream_errors_before_the_first_byte_are_errors() {
    let mock = MockProvider::start_gemini().await;
    mock.push(Behaviour::gemini_error(
        429,
        "Resource has been exhausted (e.g. check quota).",
    ));
    let e = call_err(
        Endpoint::ChatCompletions,
        &chat("hello there", true),
        gemini(&mock),
    )
    .await;
    assert_eq!(e.status(), 429);
    assert!(e.retryable());
}

#[tokio::test]
async fn custom_replies_and_paced_streams() {
    let mock = MockProvider::start_gemini().await;
    mock.push(Behaviour::reply("custom words here"));
    let res = call(Endpoint::ChatCompletions, &chat("hi", false), gemini(&mock))
        .await
        .unwrap();
    assert_eq!(
        json(&bytes(res).await)["choices"][0]["message"]["content"],
        "custom words here"
    );

    mock.push(Behaviour::reply("one two three").paced(Duration::from_millis(20)));
    let started = std::time::Instant::now();
    let res = call(Endpoint::ChatCompletions, &chat("hi", true), gemini(&mock))
        .await
        .unwrap();
    let events = chunks(&bytes(res).await);
    assert!(started.elapsed() >= Duration::from_millis(40));
    assert_eq!(streamed_text(&events), "one two three");
    assert_eq!(
        events.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
}
