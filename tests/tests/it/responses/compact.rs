//! `POST /v1/responses/compact`: passed through to a deployment that serves the Responses API
//! itself (the compaction is the upstream's own, opaque `encrypted_content`); refused by a
//! deployment that translates to chat completions, and without a `model`.

use http::Method;
use llmgate_tests::{MockProvider, TestGateway};
use serde_json::{json, Value};

use super::native::{native, unpin, with_key};
use super::{openai, post, KEY};

async fn compact(gw: &TestGateway, body: &Value) -> llmgate_tests::TestResponse {
    gw.send(Method::POST, "/v1/responses/compact", body.to_string(), &[])
        .await
}

fn conversation() -> Value {
    json!([
        {"type": "message", "role": "user", "content": "We launch on Tuesday."},
        {"type": "message", "role": "assistant", "content": "Understood: Tuesday."}
    ])
}

#[tokio::test]
async fn compaction_is_passed_through_to_a_native_deployment() {
    let mock = MockProvider::start_responses().await;
    let gw = TestGateway::start(&with_key(&native("gpt", "gpt-a", &mock.v1_url()), ""))
        .await
        .with_key(KEY);
    let res = compact(
        &gw,
        &json!({"model": "gpt", "input": conversation(), "prompt_cache_key": "k1", "tags": ["t"]}),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let raw = res.text();
    let v = res.json();
    assert_eq!(v["object"], "response.compaction");
    // The upstream's answer as it sent it: a compaction has no response id to pin.
    assert!(
        v["id"].as_str().unwrap().starts_with("resp_cmp_mock"),
        "{v}"
    );
    assert_eq!(serde_json::to_string(&v).unwrap(), raw);
    let output = v["output"].as_array().unwrap();
    assert_eq!(output[0]["content"][0]["text"], "We launch on Tuesday.");
    assert_eq!(output.last().unwrap()["type"], "compaction");

    let up = mock.last_request().unwrap();
    assert_eq!(up.path, "/v1/responses/compact");
    assert_eq!(up.bearer_token(), Some("sk-gpt-a"));
    assert_eq!(up.json["model"], "gpt-a");
    assert_eq!(up.json["input"], conversation());
    assert_eq!(up.json["prompt_cache_key"], "k1");
    assert!(
        up.json.get("tags").is_none(),
        "the gateway's own fields stay here"
    );

    // Compacting a conversation stored upstream: its deployment, with the upstream's id.
    let first = post(&gw, &json!({"model": "gpt", "input": "hello"}))
        .await
        .json();
    let (_, upstream_id) = unpin(first["id"].as_str().unwrap());
    let res = compact(
        &gw,
        &json!({"model": "gpt", "previous_response_id": first["id"]}),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let up = mock.last_request().unwrap();
    assert_eq!(up.path, "/v1/responses/compact");
    assert_eq!(up.json["previous_response_id"], upstream_id);
}

#[tokio::test]
async fn a_deployment_that_translates_refuses_compaction() {
    let mock = MockProvider::start().await;
    let gw = TestGateway::start(&openai(&mock)).await.with_key(KEY);
    let res = compact(&gw, &json!({"model": "gpt", "input": conversation()})).await;
    assert_eq!(res.status, 400, "{}", res.text());
    let message = res.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("needs a deployment that serves the Responses API itself"),
        "{message}"
    );
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test]
async fn compaction_without_a_model_is_a_400() {
    let mock = MockProvider::start_responses().await;
    let gw = TestGateway::start(&with_key(&native("gpt", "gpt-a", &mock.v1_url()), ""))
        .await
        .with_key(KEY);
    let res = compact(&gw, &json!({"input": conversation()})).await;
    assert_eq!(res.status, 400, "{}", res.text());
    assert_eq!(res.json()["error"]["param"], "model");
    assert_eq!(mock.request_count(), 0);
}
