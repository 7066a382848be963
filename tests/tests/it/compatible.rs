//! Every OpenAI-compatible provider prefix of `llmgate_core::provider::COMPATIBLE`
//! (`perplexity/`, `cerebras/`, `cohere/`, ...) through the real gateway, against a mock
//! speaking OpenAI's API: the model id after the prefix, the deployment's key as a bearer
//! token, OpenAI's paths under its `api_base`, and each row's quirk.

use llmgate_core::provider::{Quirk, COMPATIBLE};
use llmgate_tests::{MockProvider, TestGateway};
use serde_json::json;

fn yaml(mock: &MockProvider) -> String {
    let mut y = String::from("model_list:\n");
    for c in COMPATIBLE {
        y.push_str(&format!(
            "  - model_name: via-{p}\n    litellm_params:\n      model: {p}/model-of-{p}\n      api_base: {base}\n      api_key: sk-{p}\n",
            p = c.prefix,
            base = mock.v1_url(),
        ));
    }
    y
}

#[tokio::test]
async fn every_compatible_prefix_is_served_with_its_model_id_and_key() {
    let mock = MockProvider::start().await;
    let gw = TestGateway::start(&yaml(&mock)).await;
    for c in COMPATIBLE {
        let p = c.prefix;
        let res = gw.chat(&format!("via-{p}"), "hi").await;
        assert_eq!(res.status, 200, "{p}: {}", res.text());
        let seen = mock.last_request().unwrap();
        assert_eq!(seen.path, "/v1/chat/completions", "{p}");
        assert_eq!(seen.bearer_token(), Some(format!("sk-{p}").as_str()), "{p}");
        assert_eq!(seen.model(), Some(format!("model-of-{p}").as_str()), "{p}");

        let res = gw
            .post(
                "/v1/embeddings",
                &json!({"model": format!("via-{p}"), "input": "hello"}),
            )
            .await;
        assert_eq!(res.status, 200, "{p}: {}", res.text());
        assert_eq!(mock.last_request().unwrap().path, "/v1/embeddings", "{p}");
    }
}

#[tokio::test]
async fn streams_ask_for_usage_except_where_the_quirk_says_the_api_refuses_it() {
    let mock = MockProvider::start().await;
    let gw = TestGateway::start(&yaml(&mock)).await;
    for c in COMPATIBLE {
        let body = json!({
            "model": format!("via-{}", c.prefix),
            "messages": [{"role": "user", "content": "hi"}],
            "stream": true,
        });
        let mut stream = gw.stream("/v1/chat/completions", &body).await;
        assert_eq!(stream.status, 200, "{}", c.prefix);
        let events = stream.rest().await;
        assert_eq!(
            events.last().map(String::as_str),
            Some("[DONE]"),
            "{}",
            c.prefix
        );
        let seen = mock.last_request().unwrap();
        let asked = seen.json.get("stream_options").is_some();
        assert_eq!(
            asked,
            c.quirk != Quirk::Mistral,
            "{}: {}",
            c.prefix,
            seen.json
        );
    }
}
