//! Numbers a client sends that no conversion may panic on: seconds too large for a `Duration`
//! (or for a clock to add) are a 400 naming the field, never the rescue layer's 500.

#![allow(clippy::unwrap_used)]

use llmgate_tests::{chat_body, config_for, MockProvider, TestGateway};
use serde_json::json;

async fn gateway() -> (MockProvider, TestGateway) {
    let mock = MockProvider::start().await;
    let gw = TestGateway::start(&config_for(&[("gpt", &mock.v1_url())], None)).await;
    (mock, gw)
}

#[tokio::test]
async fn a_request_timeout_too_large_for_a_duration_is_a_400_naming_it() {
    let (mock, gw) = gateway().await;
    // 1e300 overflows `Duration`; 1e18 fits one but not a clock (`Instant + d` panics);
    // 4e9 is just over the 100-year bound.
    for timeout in [json!(1e300), json!(1e18), json!(4e9), json!(-1), json!(0)] {
        let mut body = chat_body("gpt", "hi");
        body["timeout"] = timeout.clone();
        let res = gw.post("/v1/chat/completions", &body).await;
        let e = res.openai_error(400);
        assert_eq!(e["param"], "timeout", "{timeout}: {e}");
        assert!(
            e["message"].as_str().unwrap().contains("`timeout`"),
            "{timeout}: {e}"
        );
    }
    // The same on /v1/messages, in Anthropic's shape.
    let res = gw
        .post(
            "/v1/messages",
            &json!({"model": "gpt", "max_tokens": 5, "timeout": 1e300,
                    "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(res.status, 400, "{}", res.text());
    assert_eq!(res.json()["type"], "error", "{}", res.text());
    assert!(res.text().contains("timeout"), "{}", res.text());
    assert_eq!(mock.requests().len(), 0, "nothing reached the upstream");

    // A timeout within the bound is served.
    let mut body = chat_body("gpt", "hi");
    body["timeout"] = json!(3_000_000_000.0);
    let res = gw.post("/v1/chat/completions", &body).await;
    assert_eq!(res.status, 200, "{}", res.text());
}

#[tokio::test]
async fn a_cache_ttl_too_large_is_a_400_naming_it() {
    let mock = MockProvider::start().await;
    let yaml = format!(
        "{}litellm_settings:\n  cache: true\n  cache_params: {{type: local}}\n",
        config_for(&[("gpt", &mock.v1_url())], None)
    );
    let gw = TestGateway::start(&yaml).await;
    for ttl in [json!(1e300), json!(1e18)] {
        let mut body = chat_body("gpt", "hi");
        body["cache"] = json!({"ttl": ttl});
        let e = gw
            .post("/v1/chat/completions", &body)
            .await
            .openai_error(400);
        assert_eq!(e["param"], "cache.ttl", "{ttl}: {e}");
    }
}
