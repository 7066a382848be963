//! Gemini's other endpoints: embeddings (`batchEmbedContents`) and legacy completions.

use llmgate_core::{Endpoint, ErrorContract};
use llmgate_testkit::MockProvider;
use serde_json::json;

use super::common::*;
use super::gemini;

#[tokio::test]
async fn embeddings_floats_and_base64() {
    let mock = MockProvider::start_gemini().await;
    let mut d = gemini(&mock);
    d.model = "text-embedding-004".into();
    let body = json!({"model": "group", "input": ["hello world", "abc"], "dimensions": 4});
    let res = call(Endpoint::Embeddings, &body, d.clone()).await.unwrap();
    let slot = usage_of(&res);
    let v = json(&bytes(res).await);
    let got = mock.last_request().unwrap();
    assert_eq!(
        got.path_and_query,
        "/v1beta/models/text-embedding-004:batchEmbedContents"
    );
    assert_eq!(got.header("x-goog-api-key"), Some("sk-test"));
    assert_eq!(
        got.json,
        json!({"requests": [
            {"model": "models/text-embedding-004", "content": {"parts": [{"text": "hello world"}]},
             "outputDimensionality": 4},
            {"model": "models/text-embedding-004", "content": {"parts": [{"text": "abc"}]},
             "outputDimensionality": 4}
        ]})
    );
    assert_eq!(v["object"], "list");
    assert_eq!(v["model"], "text-embedding-004");
    assert_eq!(v["data"][1]["object"], "embedding");
    assert_eq!(v["data"][1]["index"], 1);
    let floats: Vec<f64> = v["data"][0]["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(floats.len(), 4);
    let norm: f64 = floats.iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-6, "{norm}");
    // Estimated: ceil(11 / 4) + ceil(3 / 4).
    assert_eq!(v["usage"], json!({"prompt_tokens": 4, "total_tokens": 4}));
    assert_eq!(total(slot.get()), 4);

    let body = json!({"model": "group", "input": "hello world", "dimensions": 4,
                      "encoding_format": "base64", "task_type": "RETRIEVAL_QUERY"});
    let res = call(Endpoint::Embeddings, &body, d.clone()).await.unwrap();
    let v = json(&bytes(res).await);
    let b64 = v["data"][0]["embedding"].as_str().unwrap();
    assert_eq!(b64.len(), 24, "4 f32s = 16 bytes = 24 base64 characters");
    assert_eq!(
        mock.last_request().unwrap().json["requests"][0]["taskType"],
        "RETRIEVAL_QUERY"
    );

    let body = json!({"model": "group", "input": [[15339, 1917]]});
    let e = call_err(Endpoint::Embeddings, &body, d).await;
    assert_eq!(e.status(), 400);
    assert_eq!(e.param().as_deref(), Some("input"));
}

#[tokio::test]
async fn legacy_completions_use_generate_content() {
    let mock = MockProvider::start_gemini().await;
    let body = json!({"model": "group", "prompt": "Say this is a test", "max_tokens": 3,
                      "temperature": 0});
    let res = call(Endpoint::Completions, &body, gemini(&mock))
        .await
        .unwrap();
    let v = json(&bytes(res).await);
    assert_eq!(
        v,
        json!({"id": "mock-resp-000001", "object": "text_completion", "created": v["created"],
               "model": "upstream-model",
               "choices": [{"text": "mock reply to:", "index": 0, "logprobs": null,
                            "finish_reason": "length"}],
               "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}})
    );
    assert_eq!(
        mock.last_request().unwrap().json,
        json!({"contents": [{"role": "user", "parts": [{"text": "Say this is a test"}]}],
               "generationConfig": {"maxOutputTokens": 3, "temperature": 0}})
    );

    let mut body = body;
    body["stream"] = json!(true);
    let e = call_err(Endpoint::Completions, &body, gemini(&mock)).await;
    assert_eq!(e.status(), 400);
    assert_eq!(e.code().as_deref(), Some("unsupported_endpoint"));
    assert_eq!(mock.request_count(), 1);
}
