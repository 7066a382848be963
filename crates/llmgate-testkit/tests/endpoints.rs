//! The OpenAI dialect's default answers: shapes, usage, streams and recording.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed assumption should fail the test loudly"
)]

mod common;

use common::{chat_body, chunks, get_json, post, send};
use http::{Method, StatusCode};
use llmgate_testkit::MockProvider;
use serde_json::{json, Value};

fn usage_of(v: &Value) -> (u64, u64, u64) {
    let u = &v["usage"];
    (
        u["prompt_tokens"].as_u64().unwrap(),
        u["completion_tokens"].as_u64().unwrap(),
        u["total_tokens"].as_u64().unwrap(),
    )
}

#[tokio::test]
async fn chat_completion_default_reply_with_and_without_v1() {
    let mock = MockProvider::start().await;
    for url in [
        format!("{}/chat/completions", mock.v1_url()),
        format!("{}/chat/completions", mock.base_url()),
    ] {
        let (status, headers, body) = post(&url, &chat_body("hello there", false)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], "application/json");
        assert!(headers.contains_key("x-request-id"));
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["model"], "gpt-4o-mini");
        assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
        assert!(v["created"].is_u64());
        let choice = &v["choices"][0];
        assert_eq!(choice["index"], 0);
        assert_eq!(choice["finish_reason"], "stop");
        assert_eq!(choice["message"]["role"], "assistant");
        assert_eq!(choice["message"]["content"], "mock reply to: hello there");
        // "be brief" + "hello there" = 4 words; "mock reply to: hello there" = 5 words.
        assert_eq!(usage_of(&v), (4, 5, 9));
    }
    assert_eq!(mock.request_count(), 2);
}

#[tokio::test]
async fn chat_content_parts_and_max_tokens() {
    let mock = MockProvider::start().await;
    let body = json!({
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "describe"},
            {"type": "image_url", "image_url": {"url": "data:,"}},
            {"type": "text", "text": "this"}
        ]}],
        "max_tokens": 3
    });
    let (_, _, bytes) = post(&format!("{}/chat/completions", mock.v1_url()), &body).await;
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "mock reply to:");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(usage_of(&v), (2, 3, 5));
}

#[tokio::test]
async fn chat_stream_without_usage() {
    let mock = MockProvider::start().await;
    let url = format!("{}/chat/completions", mock.v1_url());
    let (status, headers, body) = post(&url, &chat_body("hello there", true)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/event-stream; charset=utf-8");
    let chunks = chunks(&body);
    // Role chunk, five content pieces, finish chunk.
    assert_eq!(chunks.len(), 7);
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["model"], "gpt-4o-mini");
        assert_eq!(c["id"], chunks[0]["id"]);
        assert!(
            c.get("usage").is_none(),
            "no usage field without include_usage"
        );
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(chunks[0]["choices"][0]["delta"]["content"], "");
    let content: String = chunks[1..6]
        .iter()
        .map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(content, "mock reply to: hello there");
    for c in &chunks[..6] {
        assert_eq!(c["choices"][0]["finish_reason"], Value::Null);
    }
    assert_eq!(chunks[6]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[6]["choices"][0]["delta"], json!({}));
}

#[tokio::test]
async fn chat_stream_with_include_usage() {
    let mock = MockProvider::start().await;
    let mut body = chat_body("hello there", true);
    body["stream_options"] = json!({"include_usage": true});
    let (_, _, bytes) = post(&format!("{}/chat/completions", mock.v1_url()), &body).await;
    let chunks = chunks(&bytes);
    assert_eq!(chunks.len(), 8);
    for c in &chunks[..7] {
        assert_eq!(
            c["usage"],
            Value::Null,
            "usage is null before the last chunk"
        );
        assert_eq!(c["choices"].as_array().unwrap().len(), 1);
    }
    assert_eq!(chunks[6]["choices"][0]["finish_reason"], "stop");
    let last = &chunks[7];
    assert_eq!(last["choices"], json!([]));
    assert_eq!(usage_of(last), (4, 5, 9));

    // The same request unstreamed reports the same usage.
    body["stream"] = json!(false);
    let (_, _, bytes) = post(&format!("{}/chat/completions", mock.v1_url()), &body).await;
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(usage_of(&v), (4, 5, 9));
}

#[tokio::test]
async fn text_completion_plain_and_streamed() {
    let mock = MockProvider::start().await;
    let url = format!("{}/completions", mock.v1_url());
    let body = json!({"model": "gpt-3.5-turbo-instruct", "prompt": "say hi"});
    let (status, _, bytes) = post(&url, &body).await;
    assert_eq!(status, StatusCode::OK);
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["model"], "gpt-3.5-turbo-instruct");
    assert_eq!(v["choices"][0]["text"], "mock reply to: say hi");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(usage_of(&v), (2, 5, 7));

    let body = json!({"model": "m", "prompt": "say hi", "stream": true,
                      "stream_options": {"include_usage": true}});
    let (_, headers, bytes) = post(&format!("{}/completions", mock.base_url()), &body).await;
    assert_eq!(headers["content-type"], "text/event-stream; charset=utf-8");
    let chunks = chunks(&bytes);
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"].get(0))
        .map(|choice| choice["text"].as_str().unwrap())
        .collect();
    assert_eq!(text, "mock reply to: say hi");
    let n = chunks.len();
    assert_eq!(chunks[n - 2]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[n - 1]["choices"], json!([]));
    assert_eq!(usage_of(&chunks[n - 1]), (2, 5, 7));
    assert!(chunks.iter().all(|c| c["object"] == "text_completion"));
}

#[tokio::test]
async fn embeddings_floats_and_base64() {
    let mock = MockProvider::start().await;
    let url = format!("{}/embeddings", mock.v1_url());
    let body =
        json!({"model": "text-embedding-3-small", "input": ["one two", "three"], "dimensions": 4});
    let (status, _, bytes) = post(&url, &body).await;
    assert_eq!(status, StatusCode::OK);
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["object"], "list");
    assert_eq!(v["model"], "text-embedding-3-small");
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    for (i, d) in data.iter().enumerate() {
        assert_eq!(d["object"], "embedding");
        assert_eq!(d["index"], i);
        assert_eq!(d["embedding"].as_array().unwrap().len(), 4);
    }
    assert_eq!(v["usage"], json!({"prompt_tokens": 3, "total_tokens": 3}));

    let body = json!({"model": "e", "input": "one", "encoding_format": "base64"});
    let (_, _, bytes) = post(&url, &body).await;
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    let b64 = v["data"][0]["embedding"].as_str().unwrap();
    // 16 default dimensions * 4 bytes = 64 bytes = 88 base64 characters.
    assert_eq!(b64.len(), 88);
}

#[tokio::test]
async fn models_list_and_object() {
    let mock = MockProvider::start().await;
    let (status, v) = get_json(&format!("{}/models", mock.v1_url())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["object"], "list");
    assert!(v["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["object"] == "model"));

    mock.set_models(["alpha", "beta"]);
    let (_, v) = get_json(&format!("{}/models", mock.base_url())).await;
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["alpha", "beta"]);
    let (status, v) = get_json(&format!("{}/models/beta", mock.v1_url())).await;
    assert_eq!((status, &v["id"]), (StatusCode::OK, &json!("beta")));
    let (status, _) = get_json(&format!("{}/models/gamma", mock.v1_url())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_requests_get_openai_errors() {
    let mock = MockProvider::start().await;
    let (status, v) = get_json(&format!("{}/nope", mock.v1_url())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["message"], "Invalid URL (GET /v1/nope)");

    let (status, _, bytes) = post(
        &format!("{}/chat/completions", mock.v1_url()),
        &json!({"messages": []}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(v["error"]["param"], "model");

    let resp = send(
        Method::GET,
        &format!("{}/chat/completions", mock.v1_url()),
        None,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn records_every_request() {
    let mock = MockProvider::start().await;
    assert_eq!(mock.request_count(), 0);
    assert!(mock.last_request().is_none());

    let body = chat_body("hi", false);
    post(
        &format!("{}/chat/completions?api-version=1", mock.v1_url()),
        &body,
    )
    .await;
    get_json(&format!("{}/models", mock.v1_url())).await;

    let requests = mock.requests();
    assert_eq!(requests.len(), 2);
    let first = &requests[0];
    assert_eq!(first.method, Method::POST);
    assert_eq!(first.path, "/v1/chat/completions");
    assert_eq!(first.path_and_query, "/v1/chat/completions?api-version=1");
    assert_eq!(first.headers["content-type"], "application/json");
    assert_eq!(first.header("authorization"), Some("Bearer sk-test"));
    assert_eq!(first.bearer_token(), Some("sk-test"));
    assert_eq!(first.json, body);
    assert_eq!(first.body, body.to_string().as_bytes());
    assert_eq!(first.model(), Some("gpt-4o-mini"));

    let last = mock.last_request().unwrap();
    assert_eq!(last.method, Method::GET);
    assert_eq!(last.path, "/v1/models");
    assert_eq!(last.json, Value::Null);
    assert!(last.body.is_empty());

    mock.clear_requests();
    assert_eq!(mock.request_count(), 0);
}
