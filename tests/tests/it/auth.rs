//! The master key: required on model endpoints, not on health.

use llmgate_tests::{config_for, MockProvider, TestGateway};

#[tokio::test]
async fn master_key_required_on_model_endpoints() {
    let mock = MockProvider::start().await;
    let gw = TestGateway::start(&config_for(&[("gpt", &mock.v1_url())], Some("sk-master-1"))).await;

    let e = gw.chat("gpt", "hi").await.openai_error(401);
    assert_eq!(e["type"], "authentication_error");
    gw.get("/v1/models").await.openai_error(401);

    let wrong = gw.handle().with_key("sk-master-2");
    wrong.chat("gpt", "hi").await.openai_error(401);
    assert_eq!(
        mock.request_count(),
        0,
        "an unauthenticated request reached the provider"
    );

    let right = gw.handle().with_key("sk-master-1");
    assert_eq!(right.chat("gpt", "hi").await.status, 200);
    assert_eq!(right.get("/v1/models").await.status, 200);
    // The client's key is never forwarded upstream; the deployment's is.
    assert_eq!(
        mock.last_request().unwrap().bearer_token(),
        Some("sk-upstream-gpt")
    );
}

#[tokio::test]
async fn health_stays_open() {
    let gw = TestGateway::start("model_list: []\ngeneral_settings:\n  master_key: sk-m\n").await;
    // LiteLLM's spelling and the alias, both without a key.
    for path in ["/health/liveliness", "/health/liveness"] {
        let res = gw.get(path).await;
        assert_eq!(res.status, 200, "{path}");
        assert_eq!(res.json(), "I'm alive!", "{path}");
    }
    let res = gw.get("/health/readiness").await;
    assert_eq!(res.status, 200);
    assert_eq!(res.json()["status"], "healthy");
}
