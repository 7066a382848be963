//! The rest of the surface LiteLLM's clients call: one model by id, model and group info, the
//! token counter, the Azure SDKs' paths, `x-litellm-api-key`, and a 404 that names the endpoint
//! llmgate does not serve.

use http::Method;
use llmgate_tests::{deployment, MockProvider, TestGateway};
use serde_json::{json, Value};

const MASTER: &str = "sk-master-endpoints";

async fn gateway(mock: &MockProvider) -> TestGateway {
    let yaml = format!(
        "model_list:\n{}{}  - model_name: gpt-4o\n    litellm_params:\n      model: openai/gpt-4o\n      api_base: {}\n      api_key: sk-upstream-second\n      rpm: 10\ngeneral_settings:\n  master_key: {MASTER}\n",
        deployment("gpt-4o", "gpt-4o", &mock.v1_url(), &["rpm: 5"]),
        deployment("claude", "claude", &mock.v1_url(), &[]),
        mock.v1_url(),
    );
    TestGateway::start(&yaml).await.with_key(MASTER)
}

#[tokio::test]
async fn one_model_by_id_and_the_info_endpoints() {
    let mock = MockProvider::start().await;
    let gw = gateway(&mock).await;

    let res = gw.get("/v1/models/gpt-4o").await;
    assert_eq!(res.status, 200, "{}", res.text());
    let m = res.json();
    assert_eq!(
        (m["id"].as_str(), m["object"].as_str()),
        (Some("gpt-4o"), Some("model"))
    );
    let res = gw.get("/models/nope").await;
    assert_eq!(res.status, 404);
    assert_eq!(res.json()["error"]["code"], "model_not_found");

    let res = gw.get("/model/info").await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert!(
        !res.text().contains("sk-"),
        "no key is ever shown: {}",
        res.text()
    );
    let data = res.json()["data"].as_array().unwrap().clone();
    assert_eq!(data.len(), 3);
    assert_eq!(data[0]["model_name"], "gpt-4o");
    assert_eq!(data[0]["model_info"]["litellm_provider"], "openai");
    assert_eq!(data[0]["litellm_params"]["model"], "openai/gpt-4o");
    assert!(
        data[0]["model_info"]["input_cost_per_token"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert_eq!(
        gw.get("/v1/model/info").await.json()["data"],
        Value::Array(data)
    );

    let res = gw.get("/model_group/info").await;
    let groups = res.json()["data"].as_array().unwrap().clone();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0]["model_group"], "gpt-4o");
    assert_eq!(groups[0]["providers"], json!(["openai"]));
    assert_eq!(groups[0]["rpm"], 15, "the group's deployments' rpm, summed");
}

#[tokio::test]
async fn a_key_limited_to_some_models_sees_only_those() {
    let mock = MockProvider::start().await;
    let gw = gateway(&mock).await;
    let res = gw
        .post("/key/generate", &json!({"models": ["claude"]}))
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let key = res.json()["key"].as_str().unwrap().to_owned();
    let user = gw.handle().with_key(&key);
    assert_eq!(user.get("/v1/models/gpt-4o").await.status, 404);
    assert_eq!(user.get("/v1/models/claude").await.status, 200);
    let data = user.get("/model/info").await.json()["data"].clone();
    assert_eq!(data.as_array().unwrap().len(), 1);
    assert_eq!(data[0]["model_name"], "claude");
    let groups = user.get("/model_group/info").await.json()["data"].clone();
    assert_eq!(groups.as_array().unwrap().len(), 1);
    // Without a key: 401, as every API path.
    assert_eq!(
        gw.handle()
            .with_key("sk-wrong")
            .get("/model/info")
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn the_token_counter_counts_as_the_rate_limiter_does() {
    let mock = MockProvider::start().await;
    let gw = gateway(&mock).await;
    let res = gw
        .post(
            "/utils/token_counter",
            &json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hello there, how are you today?"}]}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let v = res.json();
    assert_eq!(v["request_model"], "gpt-4o");
    assert_eq!(v["model_used"], "gpt-4o");
    assert_eq!(v["tokenizer_type"], "openai_tokenizer");
    // 8 tokens of text in o200k_base, plus OpenAI's framing (3 per message, 3 to prime).
    let n = v["total_tokens"].as_u64().unwrap();
    assert!((10..=20).contains(&n), "{n}");
    let res = gw
        .post("/utils/token_counter", &json!({"messages": []}))
        .await;
    assert_eq!(res.status, 400);
}

#[tokio::test]
async fn the_azure_sdks_path_and_api_key_header_reach_the_model_in_the_path() {
    let mock = MockProvider::start().await;
    let served = gateway(&mock).await;
    let gw = served.handle();
    let body = json!({"messages": [{"role": "user", "content": "hi"}]});
    let res = gw
        .send(
            Method::POST,
            "/openai/deployments/claude/chat/completions?api-version=2024-10-21",
            body.to_string(),
            &[("api-key", MASTER), ("content-type", "application/json")],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(mock.last_request().unwrap().model(), Some("claude"));
}

#[tokio::test]
async fn x_litellm_api_key_is_the_gateways_key_whatever_authorization_says() {
    let mock = MockProvider::start().await;
    let served = gateway(&mock).await;
    let gw = served.handle();
    let res = gw
        .send(
            Method::GET,
            "/v1/models",
            "",
            &[
                ("x-litellm-api-key", MASTER),
                ("authorization", "Bearer sk-some-provider-key"),
            ],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
}

#[tokio::test]
async fn an_endpoint_llmgate_does_not_serve_is_named_in_the_404() {
    let mock = MockProvider::start().await;
    let gw = gateway(&mock).await;
    // Each family docs/endpoints.md names, by one of its paths.
    let named = [
        ("/v1/images/generations", "image generation"),
        ("/v1/audio/speech", "the audio API"),
        ("/v1/moderations", "moderations"),
        ("/v1/rerank", "rerank"),
        ("/v1/batches", "the Batch API"),
        ("/v1/files", "the Files API"),
        ("/v1/fine_tuning/jobs", "fine-tuning"),
        ("/v1/assistants", "the Assistants API"),
        ("/v1/threads", "the Assistants API"),
        ("/v1/realtime", "the Realtime API"),
        ("/v1/vector_stores", "vector stores"),
        ("/organization/new", "organizations"),
        ("/global/spend/tags", "global spend reports"),
        ("/model/new", "adding models over the API"),
        ("/sso/key/generate", "SSO sign-in"),
        ("/guardrails/list", "guardrails"),
        ("/mcp/tools", "MCP servers"),
    ];
    for (path, name) in named {
        let res = gw.post(path, &json!({"prompt": "a cat"})).await;
        assert_eq!(res.status, 404, "{path}");
        let message = res.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains(name), "{path}: {message}");
    }
    // Under /v1/messages, in Anthropic's shape.
    let res = gw.post("/v1/messages/batches", &json!({})).await;
    assert_eq!(res.status, 404);
    assert_eq!(res.json()["type"], "error");
    assert_eq!(res.json()["error"]["type"], "not_found_error");
}

#[tokio::test]
async fn count_tokens_answers_in_anthropics_shape_errors_included() {
    let mock = MockProvider::start().await;
    let gw = gateway(&mock).await;
    let body = json!({
        "model": "claude",
        "system": "You are terse.",
        "messages": [{"role": "user", "content": "How many tokens is this sentence?"}],
    });
    let res = gw.post("/v1/messages/count_tokens", &body).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let n = res.json()["input_tokens"].as_u64().unwrap();
    assert!((10..=30).contains(&n), "{n}");
    assert_eq!(mock.request_count(), 0, "counting calls no provider");

    let res = gw
        .handle()
        .with_key("sk-wrong")
        .post("/v1/messages/count_tokens", &body)
        .await;
    assert_eq!(res.status, 401);
    assert_eq!(res.json()["type"], "error");
    assert_eq!(res.json()["error"]["type"], "authentication_error");

    let res = gw
        .post("/v1/messages/count_tokens", &json!({"messages": 5}))
        .await;
    assert_eq!(res.status, 400);
    assert_eq!(res.json()["error"]["type"], "invalid_request_error");
}
