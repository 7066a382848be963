//! Ollama's NDJSON streams (`/api/chat` with `"stream": true`), translated line by line.

use std::time::Duration;

use http_body_util::BodyExt;
use llmgate_core::Endpoint;
use llmgate_testkit::{Behaviour, Gate, MockProvider};
use serde_json::{json, Value};

use super::common::*;
use super::ollama;

#[tokio::test]
async fn stream_is_translated_chunk_by_chunk() {
    let mock = MockProvider::start_ollama().await;
    let mut body = chat("hello there", true);
    body["stream_options"] = json!({"include_usage": true});
    let res = call(Endpoint::ChatCompletions, &body, ollama(&mock))
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let slot = usage_of(&res);
    let chunks = super::common::chunks(&bytes(res).await);
    assert_eq!(mock.last_request().unwrap().json["stream"], true);
    // Role + first word, 4 more words, the finish chunk, the usage chunk.
    assert_eq!(chunks.len(), 7, "{chunks:#?}");
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": "mock "})
    );
    assert_eq!(streamed_text(&chunks), "mock reply to: hello there");
    let id = &chunks[0]["id"];
    for c in &chunks {
        assert_eq!(&c["id"], id);
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["model"], "upstream-model");
    }
    assert_eq!(
        chunks[5]["choices"],
        json!([{"index": 0, "delta": {}, "finish_reason": "stop"}])
    );
    assert_eq!(chunks[6]["choices"], json!([]));
    assert_eq!(
        chunks[6]["usage"],
        json!({"prompt_tokens": 2, "completion_tokens": 5, "total_tokens": 7})
    );
    assert_eq!(total(slot.get()), 7);

    // Without include_usage: no usage chunk, but metering still gets it.
    let res = call(
        Endpoint::ChatCompletions,
        &chat("hello there", true),
        ollama(&mock),
    )
    .await
    .unwrap();
    let slot = usage_of(&res);
    let plain = super::common::chunks(&bytes(res).await);
    assert_eq!(plain.len(), 6);
    assert!(plain.iter().all(|c| c.get("usage").is_none()));
    assert_eq!(total(slot.get()), 7);
}

#[tokio::test]
async fn stream_events_go_out_as_they_arrive() {
    let mock = MockProvider::start_ollama().await;
    let gate = Gate::new();
    mock.push(Behaviour::gated(&gate, 1));
    let res = call(
        Endpoint::ChatCompletions,
        &chat("hello there", true),
        ollama(&mock),
    )
    .await
    .unwrap();
    let mut body = res.into_body();
    // The first line's chunk reaches the client while Ollama holds the rest.
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
async fn streamed_tool_call() {
    let mock = MockProvider::start_ollama().await;
    mock.push(Behaviour::ndjson(&[
        json!({"model": "qwen3", "created_at": "2025-05-27T22:54:57Z",
               "message": {"role": "assistant", "content": "", "thinking": "Let me check"},
               "done": false}),
        json!({"model": "qwen3", "created_at": "2025-05-27T22:54:58Z",
               "message": {"role": "assistant", "content": "", "tool_calls": [
                   {"id": "call_abc", "function": {"index": 0, "name": "get_weather",
                                                    "arguments": {"city": "Toronto"}}},
                   {"function": {"index": 1, "name": "get_time", "arguments": {}}}]},
               "done": false}),
        json!({"model": "qwen3", "created_at": "2025-05-27T22:54:59Z",
               "message": {"role": "assistant", "content": ""}, "done": true,
               "done_reason": "stop", "prompt_eval_count": 30, "eval_count": 9}),
    ]));
    let res = call(
        Endpoint::ChatCompletions,
        &chat("weather?", true),
        ollama(&mock),
    )
    .await
    .unwrap();
    let slot = usage_of(&res);
    let chunks = chunks(&bytes(res).await);
    let deltas: Vec<Value> = chunks
        .iter()
        .map(|c| c["choices"][0]["delta"].clone())
        .collect();
    assert_eq!(
        deltas[0],
        json!({"role": "assistant", "content": "", "reasoning_content": "Let me check"})
    );
    assert_eq!(
        deltas[1],
        json!({"tool_calls": [{"index": 0, "id": "call_abc", "type": "function",
                               "function": {"name": "get_weather", "arguments": ""}}]})
    );
    assert_eq!(
        deltas[2],
        json!({"tool_calls": [{"index": 0,
                               "function": {"arguments": "{\"city\":\"Toronto\"}"}}]})
    );
    assert_eq!(deltas[3]["tool_calls"][0]["index"], 1);
    assert_eq!(deltas[3]["tool_calls"][0]["function"]["name"], "get_time");
    assert!(deltas[3]["tool_calls"][0]["id"]
        .as_str()
        .unwrap()
        .starts_with("call_"));
    assert_eq!(deltas[4]["tool_calls"][0]["function"]["arguments"], "{}");
    assert_eq!(chunks[5]["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(chunks.len(), 6);
    assert_eq!(chunks[0]["created"], 1_748_386_497);
    assert_eq!(total(slot.get()), 39);
}

/// The `data:` payloads of a stream that ended with an error event.
async fn broken_stream(mock: &MockProvider) -> (Vec<String>, Value) {
    let res = call(
        Endpoint::ChatCompletions,
        &chat("hello there", true),
        ollama(mock),
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
    let mock = MockProvider::start_ollama().await;
    mock.push(Behaviour::ndjson(&[
        json!({"model": "m", "created_at": "2025-05-27T22:54:57Z",
               "message": {"role": "assistant", "content": "Hel"}, "done": false}),
        json!({"error": "an error was encountered while running the model: unexpected EOF"}),
    ]));
    let (data, error) = broken_stream(&mock).await;
    assert_eq!(data.len(), 1);
    assert!(error["message"]
        .as_str()
        .unwrap()
        .contains("an error was encountered while running the model"));

    mock.push(Behaviour::cut_after(2));
    let (data, error) = broken_stream(&mock).await;
    assert_eq!(data.len(), 2);
    assert_eq!(error["code"], "upstream_stream_broken");

    mock.push(Behaviour::InvalidBody);
    let (data, error) = broken_stream(&mock).await;
    assert!(data.is_empty());
    assert_eq!(error["code"], "invalid_upstream_response");
}
