//! IBM watsonx.ai through the gateway: chat, streams and tools on the mock chat API, with IAM
//! tokens the mock IAM endpoint issues for the deployment's API key (one exchange for many
//! requests), and the error a wrong key gives.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use llmgate_testkit::AccessTokens;
use llmgate_tests::{chat_body, MockProvider, TestGateway};
use serde_json::{json, Value};

const KEY: &str = "ibm-test-api-key";

struct Ibm {
    iam: MockProvider,
    watsonx: MockProvider,
}

impl Ibm {
    async fn start() -> Self {
        let tokens = AccessTokens::new(Duration::from_secs(3600));
        Ibm {
            iam: MockProvider::start_ibm_iam(tokens.clone(), KEY).await,
            watsonx: MockProvider::start_watsonx(tokens).await,
        }
    }

    async fn gateway(&self, api_key: &str) -> TestGateway {
        let yaml = format!(
            "model_list:
  - model_name: granite
    litellm_params:
      model: watsonx/ibm/granite-3-8b-instruct
      api_key: {api_key}
      api_base: {base}
      project_id: proj-123
      num_retries: 0
",
            base = self.watsonx.base_url()
        );
        TestGateway::start_with_env(&yaml, &[("WATSONX_IAM_URL", &self.iam.iam_url())]).await
    }
}

#[tokio::test]
async fn watsonx_chat_stream_and_tools_with_one_iam_token() {
    let ibm = Ibm::start().await;
    let gw = ibm.gateway(KEY).await;

    let res = gw.chat("granite", "hello ibm").await;
    assert_eq!(res.status, 200, "{}", res.text());
    let v = res.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "ibm/granite-3-8b-instruct");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "mock reply to: hello ibm"
    );
    assert_eq!(v["usage"]["prompt_tokens"], 2);
    let up = ibm.watsonx.last_request().unwrap();
    assert_eq!(up.path_and_query, "/ml/v1/text/chat?version=2024-05-31");
    assert_eq!(up.bearer_token(), Some("iam.mock-1"));
    assert_eq!(up.json["model_id"], "ibm/granite-3-8b-instruct");
    assert_eq!(up.json["project_id"], "proj-123");
    assert!(up.json.get("model").is_none(), "{}", up.json);
    assert_eq!(up.json["messages"][0]["content"], "hello ibm");

    let mut body = chat_body("granite", "hello stream");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let mut s = gw.stream("/v1/chat/completions", &body).await;
    assert_eq!(s.status, 200);
    let events = s.rest().await;
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{events:?}"
    );
    let chunks: Vec<Value> = events
        .iter()
        .filter_map(|e| serde_json::from_str(e).ok())
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "mock reply to: hello stream");
    let usage = chunks
        .iter()
        .rev()
        .find(|c| c["usage"].is_object())
        .unwrap();
    assert_eq!(usage["usage"]["completion_tokens"], 5);
    let up = ibm.watsonx.last_request().unwrap();
    assert_eq!(up.path, "/ml/v1/text/chat_stream");
    assert!(up.json.get("stream").is_none(), "{}", up.json);

    let mut body = chat_body("granite", "weather?");
    body["tools"] = json!([{"type": "function", "function": {
        "name": "get_weather", "parameters": {"type": "object"}}}]);
    body["tool_choice"] = json!("required");
    let res = gw.post("/v1/chat/completions", &body).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let v = res.json();
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(
        v["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
        "get_weather"
    );
    let up = ibm.watsonx.last_request().unwrap();
    assert_eq!(up.json["tool_choice_option"], "required");
    assert!(up.json.get("tool_choice").is_none());

    assert_eq!(
        ibm.iam.request_count(),
        1,
        "one IAM exchange for three requests"
    );
    assert_eq!(ibm.watsonx.request_count(), 3);
}

#[tokio::test]
async fn a_wrong_api_key_is_a_401_naming_iam() {
    let ibm = Ibm::start().await;
    let gw = ibm.gateway("not-the-key").await;
    let e = gw.chat("granite", "hi").await.openai_error(401);
    let message = e["message"].as_str().unwrap();
    assert!(
        message.contains("could not get an IBM Cloud IAM token with the deployment's api_key: the token endpoint answered 400 Bad Request: BXNIM0415E (Provided API key could not be found.)"),
        "{message}"
    );
    assert!(!message.contains("not-the-key"), "{message}");
    assert_eq!(e["code"], "watsonx_credentials");
    assert_eq!(ibm.watsonx.request_count(), 0);
}

#[tokio::test]
async fn watsonx_embeddings_with_the_same_iam_token() {
    let ibm = Ibm::start().await;
    let gw = ibm.gateway(KEY).await;
    let body = json!({"model": "granite", "input": ["one two", "three"],
                      "truncate_input_tokens": 128});
    let res = gw.post("/v1/embeddings", &body).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let v = res.json();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(v["data"][1]["index"], 1);
    assert_eq!(v["data"][0]["embedding"].as_array().unwrap().len(), 16);
    assert_eq!(v["usage"], json!({"prompt_tokens": 3, "total_tokens": 3}));
    let up = ibm.watsonx.last_request().unwrap();
    assert_eq!(
        up.path_and_query,
        "/ml/v1/text/embeddings?version=2024-05-31"
    );
    assert_eq!(up.bearer_token(), Some("iam.mock-1"));
    assert_eq!(
        up.json,
        json!({"inputs": ["one two", "three"], "model_id": "ibm/granite-3-8b-instruct",
               "project_id": "proj-123", "parameters": {"truncate_input_tokens": 128}})
    );

    // base64 is encoded by the gateway; a token-id input is refused before anything is sent.
    let body = json!({"model": "granite", "input": "one", "encoding_format": "base64"});
    let v = gw.post("/v1/embeddings", &body).await.json();
    assert!(v["data"][0]["embedding"].is_string(), "{v}");
    let body = json!({"model": "granite", "input": [1, 2, 3]});
    gw.post("/v1/embeddings", &body).await.openai_error(400);
    assert_eq!(ibm.watsonx.request_count(), 2);
    assert_eq!(ibm.iam.request_count(), 1);

    // watsonx's own error body keeps its status, message and code.
    ibm.watsonx.push(llmgate_tests::Behaviour::json(
        400,
        &json!({"errors": [{"code": "model_not_supported",
                            "message": "Model 'ibm/granite-3-8b-instruct' is not supported for this function"}],
                "trace": "t", "status_code": 400}),
    ));
    let e = gw
        .post("/v1/embeddings", &json!({"model": "granite", "input": "x"}))
        .await
        .openai_error(400);
    assert_eq!(e["code"], "model_not_supported");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("is not supported for this function"),
        "{e}"
    );
}
