//! The README's quickstart config, exactly as shipped, and env references.

use std::path::Path;

use llmgate_tests::{chat_body, TestGateway};
use serde_json::{json, Value};

#[tokio::test]
async fn quickstart_yaml_answers_without_a_provider() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart.yaml");
    let loaded = llmgate::load_config(&path).unwrap_or_else(|p| panic!("{p}"));
    let gw = TestGateway::serve(llmgate::Gateway::new(loaded.config).unwrap())
        .await
        .with_key("sk-demo");

    let res = gw.chat("demo", "hi").await;
    assert_eq!(res.status, 200, "{}", res.text());
    let v = res.json();
    assert_eq!(v["object"], "chat.completion");
    assert!(v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .contains("Hello from llmgate"));
    assert_eq!(v["choices"][0]["finish_reason"], "stop");

    let mut body = chat_body("demo", "hi");
    body["stream"] = json!(true);
    let events = gw.stream("/v1/chat/completions", &body).await.rest().await;
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let text: String = events
        .iter()
        .filter(|e| *e != "[DONE]")
        .map(|e| serde_json::from_str::<Value>(e).unwrap())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert!(text.starts_with("Hello from llmgate"), "{text}");
}

#[tokio::test]
async fn env_references_resolve_in_keys_and_urls() {
    let mock = llmgate_tests::MockProvider::start().await;
    let yaml = "model_list:\n  - model_name: gpt\n    litellm_params:\n      model: openai/gpt-4o\n      api_base: ${MOCK_BASE}\n      api_key: os.environ/UPSTREAM_KEY\n";
    let gw = TestGateway::start_with_env(
        yaml,
        &[
            ("MOCK_BASE", &mock.v1_url()),
            ("UPSTREAM_KEY", "sk-from-env"),
        ],
    )
    .await;
    assert_eq!(gw.chat("gpt", "hi").await.status, 200);
    assert_eq!(
        mock.last_request().unwrap().bearer_token(),
        Some("sk-from-env")
    );
}
