//! Testing fallbacks on purpose: `mock_testing_fallbacks: true` in the body, and the
//! `x-llmgate-mock-error` header for master-key callers.

use std::time::Duration;

use http::Method;
use llmgate_tests::{chat_body, deployment, MockProvider, TestGateway};
use serde_json::json;
use tokio::time::Instant;

use super::{config, served, Seed};

#[tokio::test(start_paused = true)]
async fn mock_testing_fallbacks_fails_the_requested_group_without_calling_it() {
    let (p1, p2, backup) = (
        MockProvider::start().await,
        MockProvider::start().await,
        MockProvider::start().await,
    );
    let yaml = config(
        &[
            deployment("primary", "primary-1", &p1.v1_url(), &[]),
            deployment("primary", "primary-2", &p2.v1_url(), &[]),
            deployment("backup", "backup", &backup.v1_url(), &[]),
        ],
        "router_settings:\n  fallbacks: [{primary: [backup]}]\n",
    );
    let gw = TestGateway::start(&yaml).await;
    let mut body = chat_body("primary", "hi");
    body["mock_testing_fallbacks"] = json!(true);
    let res = gw.post("/v1/chat/completions", &body).await;
    // Both primaries "failed" (one retry in the group), then the fallback answered.
    assert_eq!(served(&res), "backup/3/1");
    assert_eq!(
        (
            p1.request_count(),
            p2.request_count(),
            backup.request_count()
        ),
        (0, 0, 1)
    );
    assert!(backup
        .last_request()
        .unwrap()
        .json
        .get("mock_testing_fallbacks")
        .is_none());

    // The forced failures did not count against the primaries.
    let res = gw.chat("primary", "hi").await;
    assert!(
        res.served_by().0.starts_with("primary-"),
        "{:?}",
        res.served_by()
    );
}

#[tokio::test(start_paused = true)]
async fn mock_error_header_forces_a_deployments_failure_for_the_master_key() {
    let seed = Seed::start().await;
    let mut yaml = seed.yaml("");
    yaml.push_str("general_settings:\n  master_key: sk-master\n");
    let gw = TestGateway::start(&yaml).await.with_key("sk-master");
    let post = |gw: &TestGateway, header: &'static str| {
        let body = chat_body("smart", "hi").to_string();
        let gw = gw.handle();
        async move {
            gw.send(
                Method::POST,
                "/v1/chat/completions",
                body,
                &[("x-llmgate-mock-error", header)],
            )
            .await
        }
    };

    // "Simulate an OpenRouter 429" on the primary key: the second key answers.
    let start = Instant::now();
    assert_eq!(
        served(&post(&gw, "openrouter-primary=429").await),
        "openrouter-second/2/1"
    );
    assert_eq!(start.elapsed(), Duration::ZERO);
    // Both keys: the local model answers. Nothing forced was called.
    let res = post(&gw, "openrouter-primary=429, openrouter-second=429").await;
    assert_eq!(served(&res), "ollama-local/3/2");
    assert_eq!(seed.counts(), (0, 1, 1));
    // Forcing does not cool a deployment down: without the header the primary answers.
    assert_eq!(
        served(&gw.chat("smart", "hi").await),
        "openrouter-primary/1/0"
    );

    // Malformed: a 400 naming the header.
    let e = post(&gw, "openrouter-primary").await.openai_error(400);
    assert_eq!(e["param"], "x-llmgate-mock-error");

    // Without the master key the request does not get in at all.
    let stranger = gw.handle().with_key("sk-not-the-master");
    stranger
        .send(
            Method::POST,
            "/v1/chat/completions",
            chat_body("smart", "hi").to_string(),
            &[("x-llmgate-mock-error", "openrouter-primary=429")],
        )
        .await
        .openai_error(401);
    assert_eq!(seed.counts(), (1, 1, 1));
}

#[tokio::test]
async fn mock_error_header_works_on_an_open_gateway_and_with_any_status() {
    let seed = Seed::start().await;
    let gw = TestGateway::start(&seed.yaml("  num_retries: 0\n")).await;
    let res = gw
        .send(
            Method::POST,
            "/v1/chat/completions",
            chat_body("smart", "hi").to_string(),
            &[(
                "x-llmgate-mock-error",
                "openrouter-primary=503,openrouter-second=500,ollama-local=500",
            )],
        )
        .await;
    let e = res.openai_error(500);
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains("openrouter-primary (smart) -> 503"), "{msg}");
    assert!(msg.contains("mock failure requested"), "{msg}");
    assert_eq!(seed.counts(), (0, 0, 0));
}
