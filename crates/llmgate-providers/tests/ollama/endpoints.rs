//! Embeddings (`/api/embed`) and legacy completions (`/api/generate`).

use llmgate_core::{Endpoint, ErrorContract};
use llmgate_testkit::MockProvider;
use serde_json::json;

use super::common::*;
use super::ollama;

#[tokio::test]
async fn embeddings_floats_and_base64() {
    let mock = MockProvider::start_ollama().await;
    let res = call(
        Endpoint::Embeddings,
        &json!({"model": "group", "input": ["hello world", "bye"], "dimensions": 4}),
        ollama(&mock),
    )
    .await
    .unwrap();
    assert_eq!(total(usage_of(&res).get()), 3);
    let v = json(&bytes(res).await);
    let got = mock.last_request().unwrap();
    assert_eq!(got.path, "/api/embed");
    assert_eq!(
        got.json,
        json!({"model": "upstream-model", "input": ["hello world", "bye"], "dimensions": 4})
    );
    assert_eq!(v["object"], "list");
    assert_eq!(v["model"], "upstream-model");
    assert_eq!(v["usage"], json!({"prompt_tokens": 3, "total_tokens": 3}));
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1]["object"], "embedding");
    assert_eq!(data[1]["index"], 1);
    let floats: Vec<f64> = data[0]["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(floats.len(), 4);

    // base64 (what OpenAI's Python SDK asks for by default): the same floats, as f32 bytes.
    let res = call(
        Endpoint::Embeddings,
        &json!({"model": "group", "input": "hello world", "dimensions": 4,
                "encoding_format": "base64"}),
        ollama(&mock),
    )
    .await
    .unwrap();
    let v = json(&bytes(res).await);
    assert!(mock
        .last_request()
        .unwrap()
        .json
        .get("encoding_format")
        .is_none());
    let b64 = v["data"][0]["embedding"].as_str().unwrap();
    assert_eq!(b64.len(), 24, "4 f32 = 16 bytes = 24 base64 characters");

    let e = call_err(
        Endpoint::Embeddings,
        &json!({"model": "group", "input": [[1, 2, 3]]}),
        ollama(&mock),
    )
    .await;
    assert_eq!(e.status(), 400);
    assert_eq!(e.code().as_deref(), Some("unsupported_endpoint"));
}

#[tokio::test]
async fn legacy_completions_use_generate() {
    let mock = MockProvider::start_ollama().await;
    let res = call(
        Endpoint::Completions,
        &json!({"model": "group", "prompt": "Once upon a time", "max_tokens": 3}),
        ollama(&mock),
    )
    .await
    .unwrap();
    let v = json(&bytes(res).await);
    let got = mock.last_request().unwrap();
    assert_eq!(got.path, "/api/generate");
    assert_eq!(
        got.json,
        json!({"model": "upstream-model", "prompt": "Once upon a time", "stream": false,
               "options": {"num_predict": 3}})
    );
    assert!(v["id"].as_str().unwrap().starts_with("cmpl-"));
    assert_eq!(v["object"], "text_completion");
    assert_eq!(
        v["choices"],
        json!([{"text": "mock reply to:", "index": 0, "logprobs": null,
                "finish_reason": "length"}])
    );
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7})
    );

    let e = call_err(
        Endpoint::Completions,
        &json!({"model": "group", "prompt": "x", "stream": true}),
        ollama(&mock),
    )
    .await;
    assert_eq!(e.status(), 400);
    assert_eq!(e.code().as_deref(), Some("unsupported_endpoint"));
}
