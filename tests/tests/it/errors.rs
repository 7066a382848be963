//! What a client sees when something is wrong: OpenAI's error shape with the right status.

use http::Method;
use llmgate_tests::{config_for, Behaviour, MockProvider, TestGateway};
use serde_json::json;

/// Retries and cooldowns off: these tests see one upstream answer passed on as it was.
const NO_RETRIES: &str = "router_settings:\n  num_retries: 0\n  disable_cooldowns: true\n";

#[tokio::test]
async fn upstream_errors_keep_their_status_and_message() {
    let mock = MockProvider::start().await;
    mock.push(
        Behaviour::error(429, "Rate limit reached for requests").with_header("retry-after", "7"),
    );
    mock.push(Behaviour::error(500, "The server had an error"));
    let yaml = format!(
        "{}{NO_RETRIES}",
        config_for(&[("gpt", &mock.v1_url())], None)
    );
    let gw = TestGateway::start(&yaml).await;

    let res = gw.chat("gpt", "hi").await;
    let e = res.openai_error(429);
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("Rate limit reached for requests"),
        "{e}"
    );
    assert_eq!(res.header("retry-after"), Some("7"));
    assert!(res.header("x-llmgate-request-id").is_some());

    let e = gw.chat("gpt", "hi").await.openai_error(500);
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("The server had an error"),
        "{e}"
    );
}

#[tokio::test]
async fn upstream_unreachable_is_a_502() {
    // A port nothing listens on: bind, read the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}/v1");
    let gw = TestGateway::start(&config_for(&[("gpt", &base)], None)).await;
    let e = gw.chat("gpt", "hi").await.openai_error(502);
    assert!(e["message"].as_str().unwrap().contains("reach"), "{e}");
}

#[tokio::test]
async fn invalid_upstream_body_is_a_502() {
    let mock = MockProvider::start().await;
    mock.push(Behaviour::InvalidBody);
    let yaml = format!(
        "{}{NO_RETRIES}",
        config_for(&[("gpt", &mock.v1_url())], None)
    );
    let gw = TestGateway::start(&yaml).await;
    gw.chat("gpt", "hi").await.openai_error(502);
}

#[tokio::test]
async fn unknown_model_names_it_and_points_at_models() {
    let mock = MockProvider::start().await;
    let gw = TestGateway::start(&config_for(&[("gpt", &mock.v1_url())], None)).await;
    let e = gw.chat("gpt-5-turbo", "hi").await.openai_error(400);
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.contains("gpt-5-turbo") && msg.contains("/v1/models"),
        "{msg}"
    );
    assert_eq!(e["param"], "model");
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test]
async fn malformed_json_says_where_it_broke() {
    let mock = MockProvider::start().await;
    let gw = TestGateway::start(&config_for(&[("gpt", &mock.v1_url())], None)).await;
    let res = gw
        .send(
            Method::POST,
            "/v1/chat/completions",
            "{\"model\": \"gpt\",\n \"messages\": [}",
            &[],
        )
        .await;
    let e = res.openai_error(400);
    assert!(
        e["message"].as_str().unwrap().contains("line 2 column"),
        "{e}"
    );
    assert_eq!(e["code"], "invalid_json", "{e}");
    let e = gw
        .post("/v1/chat/completions", &json!({"model": "gpt"}))
        .await
        .openai_error(400);
    assert!(e["message"].as_str().unwrap().contains("messages"), "{e}");
    assert_eq!(e["code"], "invalid_json", "a missing field: {e}");
    let e = gw
        .post(
            "/v1/chat/completions",
            &json!({"model": "gpt", "messages": "not a list"}),
        )
        .await
        .openai_error(400);
    assert_eq!(e["code"], "invalid_json", "a mistyped field: {e}");
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test]
async fn oversize_body_is_a_413() {
    let mock = MockProvider::start().await;
    let yaml = format!(
        "{}general_settings:\n  max_request_size_mb: 1\n",
        config_for(&[("gpt", &mock.v1_url())], None)
    );
    let gw = TestGateway::start(&yaml).await;
    let big = "x".repeat(1024 * 1024 + 10);
    let res = gw.chat("gpt", &big).await;
    let e = res.openai_error(413);
    assert_eq!(e["code"], "request_too_large", "{e}");
    assert!(res.header("x-llmgate-request-id").is_some());
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test]
async fn wrong_method_and_unknown_path() {
    let gw = TestGateway::start("model_list: []\n").await;
    let res = gw.get("/v1/chat/completions").await;
    res.openai_error(405);
    assert_eq!(res.header("allow"), Some("POST"));
    let res = gw.send(Method::DELETE, "/v1/models", "", &[]).await;
    res.openai_error(405);
    let res = gw.get("/v2/nothing").await;
    res.openai_error(404);
    assert!(res.header("x-llmgate-request-id").is_some());
}
