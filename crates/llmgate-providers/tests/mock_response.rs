//! `mock_response`: answered locally, in exactly OpenAI's shape, with no network at all.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests and their helpers: a failure is the test failing"
)]

mod common;

use common::*;
use llmgate_core::{Endpoint, ErrorContract, MockResponse, ProviderKind};
use llmgate_testkit::MockProvider;
use serde_json::{json, Value};

const TEXT: &str = "This is a mock reply.";

fn mocked(mock: &MockProvider, text: &str) -> llmgate_core::DeploymentSpec {
    let mut d = spec("mock-0", ProviderKind::OpenAi, &mock.v1_url());
    d.mock_response = Some(MockResponse::Text(text.into()));
    d
}

fn assert_usage(v: &Value) {
    let u = &v["usage"];
    let (p, c, t) = (
        u["prompt_tokens"].as_u64().unwrap(),
        u["completion_tokens"].as_u64().unwrap(),
        u["total_tokens"].as_u64().unwrap(),
    );
    assert!(p > 0 && c > 0 && t == p + c, "{u}");
}

#[tokio::test]
async fn chat_completion() {
    let mock = MockProvider::start().await;
    let res = call(
        Endpoint::ChatCompletions,
        &chat("hi", false),
        mocked(&mock, TEXT),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(deployment_of(&res), "mock-0");
    let slot = usage_of(&res);
    let v = json(&bytes(res).await);
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(v["object"], "chat.completion");
    assert!(v["created"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(v["model"], "upstream-model");
    assert_eq!(
        v["choices"],
        json!([{"index": 0, "message": {"role": "assistant", "content": TEXT, "refusal": null,
            "annotations": []}, "logprobs": null, "finish_reason": "stop"}])
    );
    assert_usage(&v);
    assert_eq!(
        total(slot.get()),
        v["usage"]["total_tokens"].as_u64().unwrap()
    );
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
    // It round-trips through core's typed response.
    let _: llmgate_core::wire::ChatCompletion = serde_json::from_value(v).unwrap();
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test]
async fn chat_stream_with_and_without_usage() {
    let mock = MockProvider::start().await;
    let res = call(
        Endpoint::ChatCompletions,
        &chat("hi", true),
        mocked(&mock, TEXT),
    )
    .await
    .unwrap();
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    assert_eq!(res.headers()["cache-control"], "no-cache");
    let slot = usage_of(&res);
    let chunks = chunks(&bytes(res).await);
    assert!(
        chunks.len() >= 5,
        "role, several content deltas, finish: {chunks:?}"
    );
    let id = chunks[0]["id"].as_str().unwrap();
    for c in &chunks {
        assert_eq!(c["id"], id);
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["model"], "upstream-model");
        assert!(c.get("usage").is_none());
        let _: llmgate_core::wire::ChatCompletionChunk = serde_json::from_value(c.clone()).unwrap();
    }
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    assert_eq!(streamed_text(&chunks), TEXT);
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert_eq!(last["choices"][0]["delta"], json!({}));
    assert!(slot.get().is_some());

    let mut body = chat("hi", true);
    body["stream_options"] = json!({"include_usage": true});
    let res = call(Endpoint::ChatCompletions, &body, mocked(&mock, TEXT))
        .await
        .unwrap();
    let chunks = common::chunks(&bytes(res).await);
    let (last, rest) = chunks.split_last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_usage(last);
    assert!(rest
        .iter()
        .all(|c| c["usage"].is_null() && c.get("usage").is_some()));
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test]
async fn legacy_completion_and_its_stream() {
    let mock = MockProvider::start().await;
    let body = json!({"model": "g", "prompt": "Say this is a test"});
    let res = call(Endpoint::Completions, &body, mocked(&mock, TEXT))
        .await
        .unwrap();
    let v = json(&bytes(res).await);
    assert!(v["id"].as_str().unwrap().starts_with("cmpl-"));
    assert_eq!(v["object"], "text_completion");
    assert_eq!(
        v["choices"],
        json!([{"text": TEXT, "index": 0, "logprobs": null, "finish_reason": "stop"}])
    );
    assert_usage(&v);
    let _: llmgate_core::wire::Completion = serde_json::from_value(v).unwrap();

    let body = json!({"model": "g", "prompt": "x", "stream": true,
        "stream_options": {"include_usage": true}});
    let res = call(Endpoint::Completions, &body, mocked(&mock, TEXT))
        .await
        .unwrap();
    let chunks = chunks(&bytes(res).await);
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["text"].as_str())
        .collect();
    assert_eq!(text, TEXT);
    let (last, rest) = chunks.split_last().unwrap();
    assert_usage(last);
    assert_eq!(rest.last().unwrap()["choices"][0]["finish_reason"], "stop");
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test]
async fn embeddings_floats_and_base64() {
    let mock = MockProvider::start().await;
    let body = json!({"model": "g", "input": ["a", "b"], "dimensions": 8});
    let res = call(Endpoint::Embeddings, &body, mocked(&mock, "ignored"))
        .await
        .unwrap();
    let v = json(&bytes(res).await);
    assert_eq!(v["object"], "list");
    assert_eq!(v["model"], "upstream-model");
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1]["index"], 1);
    assert_eq!(data[0]["object"], "embedding");
    let floats = data[0]["embedding"].as_array().unwrap();
    assert_eq!(floats.len(), 8);
    assert_ne!(data[0]["embedding"], data[1]["embedding"]);
    assert_eq!(v["usage"]["prompt_tokens"], v["usage"]["total_tokens"]);
    let _: llmgate_core::wire::EmbeddingResponse = serde_json::from_value(v.clone()).unwrap();

    // Deterministic.
    let again = call(Endpoint::Embeddings, &body, mocked(&mock, "x"))
        .await
        .unwrap();
    assert_eq!(json(&bytes(again).await)["data"], v["data"]);

    // What OpenAI's Python SDK asks for by default.
    let body = json!({"model": "g", "input": "a", "encoding_format": "base64"});
    let res = call(Endpoint::Embeddings, &body, mocked(&mock, "x"))
        .await
        .unwrap();
    let v = json(&bytes(res).await);
    let b64 = v["data"][0]["embedding"].as_str().unwrap();
    assert_eq!(b64.len(), 88); // 16 f32s = 64 bytes
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test]
async fn the_requests_mock_wins_and_errors_fail_like_the_provider() {
    let mock = MockProvider::start().await;
    let mut d = spec("mock-0", ProviderKind::OpenAi, &mock.v1_url());
    d.mock_response = Some(MockResponse::Error {
        status: 429,
        message: "litellm.RateLimitError: mocked".into(),
    });
    let e = call_err(Endpoint::ChatCompletions, &chat("hi", false), d.clone()).await;
    assert_eq!(e.status(), 429);
    assert!(e.retryable());
    assert_eq!(
        e.message(),
        "openai (deployment mock-0): litellm.RateLimitError: mocked"
    );

    let mut body = chat("hi", false);
    body["mock_response"] = json!("from the request");
    let res = call(Endpoint::ChatCompletions, &body, d.clone())
        .await
        .unwrap();
    let v = json(&bytes(res).await);
    assert_eq!(v["choices"][0]["message"]["content"], "from the request");

    d.mock_response = Some(MockResponse::Error {
        status: 400,
        message: "bad".into(),
    });
    let e = call_err(Endpoint::ChatCompletions, &chat("hi", false), d).await;
    assert_eq!(e.status(), 400);
    assert!(!e.retryable());
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test]
async fn mocks_answer_for_providers_not_served_yet() {
    let mut d = spec("claude-0", ProviderKind::Anthropic, "http://127.0.0.1:9");
    d.mock_response = Some(MockResponse::Text("hello from a mock".into()));
    let res = call(Endpoint::ChatCompletions, &chat("hi", true), d)
        .await
        .unwrap();
    let chunks = chunks(&bytes(res).await);
    assert_eq!(streamed_text(&chunks), "hello from a mock");
}
