//! A parameter or endpoint the provider cannot take is the client's request, not the
//! deployment's health (docs/providers.md): one attempt, no retry, no fallback, no cooldown.

use llmgate_tests::{chat_body, deployment, MockProvider, TestGateway};
use serde_json::json;

use super::config;

/// Anthropic deployments refuse `logit_bias` (`unsupported_parameter`) and `/v1/embeddings`
/// (`unsupported_endpoint`) before sending anything. With two deployments in the group, two
/// retries, a fallback group and `allowed_fails: 0` (any counted failure starts a cooldown),
/// each refusal is answered after exactly one attempt, never reaches the fallback, and the
/// group is then still served by its own deployments.
#[tokio::test]
async fn unsupported_parameters_and_endpoints_are_tried_once_not_retried_cooled_or_fallen_back() {
    let claude = MockProvider::start_anthropic().await;
    let gpt = MockProvider::start().await;
    let anthropic = |id: &str| {
        format!(
            "  - model_name: claude\n    litellm_params:\n      model: anthropic/claude-x\n      api_base: {}\n      api_key: sk-ant\n    model_info:\n      id: {id}\n",
            claude.base_url()
        )
    };
    let yaml = config(
        &[
            anthropic("claude-a"),
            anthropic("claude-b"),
            deployment("gpt", "gpt-a", &gpt.v1_url(), &[]),
        ],
        "router_settings:\n  num_retries: 2\n  allowed_fails: 0\n  cooldown_time: 60\n  fallbacks: [{claude: [gpt]}]\n",
    );
    let gw = TestGateway::start(&yaml).await;
    let mut with_bias = chat_body("claude", "hi");
    with_bias["logit_bias"] = json!({"50256": -100});
    let refusals = [
        ("/v1/chat/completions", with_bias, "unsupported_parameter"),
        (
            "/v1/embeddings",
            json!({"model": "claude", "input": "hi"}),
            "unsupported_endpoint",
        ),
    ];
    for (path, body, code) in &refusals {
        for _ in 0..3 {
            let res = gw.post(path, body).await;
            let (deployment, attempts, fallbacks) = res.served_by();
            let e = res.openai_error(400);
            assert_eq!(e["code"], *code, "{path}: {e}");
            assert!(deployment.starts_with("claude-"), "{deployment}");
            assert_eq!(
                (attempts.as_str(), fallbacks.as_str()),
                ("1", "0"),
                "{path}: one attempt, no fallback: {e}"
            );
        }
    }
    assert_eq!(
        (claude.request_count(), gpt.request_count()),
        (0, 0),
        "nothing sent, the fallback never called"
    );
    // Neither deployment cooling down (`llmgate_deployment_state` 0), and the group is served
    // by its own, first time.
    let metrics = gw.get("/metrics").await.text();
    for id in ["claude-a", "claude-b"] {
        let state = metrics
            .lines()
            .find(|l| {
                l.starts_with("llmgate_deployment_state{")
                    && l.contains(&format!("deployment=\"{id}\""))
            })
            .unwrap_or_else(|| panic!("no state for {id}:\n{metrics}"));
        assert!(state.ends_with(" 0"), "{state}");
    }
    let (deployment, attempts, fallbacks) = gw.chat("claude", "hi").await.served_by();
    assert!(deployment.starts_with("claude-"), "{deployment}");
    assert_eq!((attempts.as_str(), fallbacks.as_str()), ("1", "0"));
    assert_eq!((claude.request_count(), gpt.request_count()), (1, 0));
}
