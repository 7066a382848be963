//! Non-streaming calls through the gateway: what the client gets and what the upstream received.

use llmgate_tests::{chat_body, config_for, MockProvider, TestGateway};
use serde_json::json;

#[tokio::test]
async fn chat_completion_round_trip() {
    let mock = MockProvider::start().await;
    let gw = TestGateway::start(&config_for(&[("gpt", &mock.v1_url())], None)).await;

    let res = gw.chat("gpt", "hello there").await;
    assert_eq!(res.status, 200, "{}", res.text());
    let v = res.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "mock reply to: hello there"
    );
    assert!(v["usage"]["total_tokens"].as_u64().unwrap() > 0);
    assert_eq!(res.header("x-llmgate-model-group"), Some("gpt"));
    assert!(res.header("x-llmgate-deployment").is_some());
    assert!(res.header("x-llmgate-request-id").is_some());

    // What the provider saw: its own model id, its own key, the client's fields.
    let up = mock.last_request().unwrap();
    assert_eq!(up.path, "/v1/chat/completions");
    assert_eq!(up.model(), Some("gpt-upstream"));
    assert_eq!(up.bearer_token(), Some("sk-upstream-gpt"));
    assert_eq!(up.json["messages"][0]["content"], "hello there");
}

#[tokio::test]
async fn unknown_fields_pass_through_and_gateway_fields_do_not() {
    let mock = MockProvider::start().await;
    let gw = TestGateway::start(&config_for(&[("gpt", &mock.v1_url())], None)).await;
    let mut body = chat_body("gpt", "hi");
    body["logit_bias"] = json!({"50256": -100});
    body["reasoning_effort"] = json!("low");
    body["tools"] =
        json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]);
    body["metadata"] = json!({"tags": ["x"]});
    // Every gateway-only field docs/architecture.md lists, with values that change nothing here.
    body["tags"] = json!(["team-a"]);
    body["timeout"] = json!(30);
    body["num_retries"] = json!(0);
    body["cache"] = json!({"no-cache": true});
    body["fallbacks"] = json!(["gpt"]);
    body["drop_params"] = json!(true);
    body["mock_testing_fallbacks"] = json!(false);
    let res = gw.post("/chat/completions", &body).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let up = mock.last_request().unwrap();
    assert_eq!(up.json["logit_bias"], json!({"50256": -100}));
    assert_eq!(up.json["reasoning_effort"], "low");
    assert_eq!(up.json["tools"][0]["function"]["name"], "f");
    for field in [
        "metadata",
        "tags",
        "timeout",
        "num_retries",
        "cache",
        "fallbacks",
        "drop_params",
        "mock_testing_fallbacks",
    ] {
        assert!(
            up.json.get(field).is_none(),
            "gateway-only field {field} leaked: {}",
            up.json
        );
    }
}

#[tokio::test]
async fn embeddings_and_legacy_completions() {
    let mock = MockProvider::start().await;
    let gw = TestGateway::start(&config_for(&[("emb", &mock.v1_url())], None)).await;

    let res = gw
        .post(
            "/v1/embeddings",
            &json!({"model": "emb", "input": ["a", "b"]}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let v = res.json();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(mock.last_request().unwrap().path, "/v1/embeddings");

    let res = gw
        .post(
            "/completions",
            &json!({"model": "emb", "prompt": "once upon"}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["object"], "text_completion");
    assert_eq!(mock.last_request().unwrap().path, "/v1/completions");
}

#[tokio::test]
async fn models_lists_config_names() {
    let mock = MockProvider::start().await;
    let gw = TestGateway::start(&config_for(
        &[("a", &mock.v1_url()), ("b", &mock.v1_url())],
        None,
    ))
    .await;
    for path in ["/v1/models", "/models"] {
        let res = gw.get(path).await;
        assert_eq!(res.status, 200);
        let v = res.json();
        assert_eq!(v["object"], "list");
        let ids: Vec<&str> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(v["data"][0]["object"], "model");
    }
}
