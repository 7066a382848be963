//! Retries from config: `num_retries` (router_settings, litellm_settings, the deployment's
//! `max_retries`, the request's), `retry_policy` per error class, backoff and `Retry-After`.

use std::time::Duration;

use llmgate_tests::{chat_body, deployment, Behaviour, MockProvider, TestGateway};
use serde_json::json;
use tokio::time::Instant;

use super::{config, served};

#[tokio::test(start_paused = true)]
async fn num_retries_retries_the_same_deployment_with_backoff() {
    let only = MockProvider::start().await;
    only.push_all([Behaviour::error(500, "boom"), Behaviour::error(500, "boom")]);
    let yaml = config(
        &[deployment("gpt", "only", &only.v1_url(), &[])],
        "litellm_settings:\n  num_retries: 2\n",
    );
    let gw = TestGateway::start(&yaml).await;
    let start = Instant::now();
    assert_eq!(served(&gw.chat("gpt", "hi").await), "only/3/0");
    // Full jitter under 0.5 s, then under 1 s.
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(only.request_count(), 3);

    // One retry fewer than needed: the client gets the last error with both attempts listed.
    only.push_all([Behaviour::error(500, "boom"), Behaviour::error(500, "boom")]);
    let mut body = chat_body("gpt", "hi");
    body["num_retries"] = json!(1);
    let e = gw
        .post("/v1/chat/completions", &body)
        .await
        .openai_error(500);
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("all 2 attempts failed:"),
        "{e}"
    );
    assert_eq!(only.request_count(), 5);
}

#[tokio::test(start_paused = true)]
async fn router_settings_num_retries_wins_and_a_deployments_max_retries_applies() {
    let (a, b) = (MockProvider::start().await, MockProvider::start().await);
    a.set_default(Behaviour::error(500, "boom"));
    b.set_default(Behaviour::error(500, "boom"));
    let yaml = config(
        &[
            deployment("a", "a", &a.v1_url(), &[]),
            deployment("b", "b", &b.v1_url(), &["max_retries: 0"]),
        ],
        "router_settings:\n  num_retries: 1\n  disable_cooldowns: true\nlitellm_settings:\n  num_retries: 5\n",
    );
    let gw = TestGateway::start(&yaml).await;
    gw.chat("a", "hi").await.openai_error(500);
    gw.chat("b", "hi").await.openai_error(500);
    assert_eq!((a.request_count(), b.request_count()), (2, 1));
}

#[tokio::test(start_paused = true)]
async fn retry_policy_sets_retries_per_error_class_and_retry_after_is_honoured() {
    let only = MockProvider::start().await;
    let yaml = config(
        &[deployment("gpt", "only", &only.v1_url(), &[])],
        "router_settings:\n  num_retries: 1\n  retry_policy:\n    InternalServerErrorRetries: 0\n    RateLimitErrorRetries: 3\n",
    );
    let gw = TestGateway::start(&yaml).await;

    only.push(Behaviour::error(500, "boom"));
    gw.chat("gpt", "hi").await.openai_error(500);
    assert_eq!(only.request_count(), 1, "no retry for a 500");

    // Three 429s asking for 1 s each, then an answer: waited at least 1 s before each retry.
    for _ in 0..3 {
        only.push(Behaviour::error(429, "slow down").with_header("retry-after", "1"));
    }
    let start = Instant::now();
    assert_eq!(served(&gw.chat("gpt", "hi").await), "only/4/0");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(3) && waited <= Duration::from_secs(4),
        "{waited:?}"
    );
    assert_eq!(only.request_count(), 5);
}

#[tokio::test(start_paused = true)]
async fn a_lone_deployments_429_without_retry_after_is_retried_after_a_backoff() {
    // The 429 cools the deployment down (5 s by default), but with no other deployment and no
    // fallback the request's own retry still goes to it after the backoff, as with LiteLLM.
    let only = MockProvider::start().await;
    only.push(Behaviour::error(429, "slow down"));
    let gw = TestGateway::start(&config(
        &[deployment("gpt", "only", &only.v1_url(), &[])],
        "",
    ))
    .await;
    let start = Instant::now();
    assert_eq!(served(&gw.chat("gpt", "hi").await), "only/2/0");
    assert!(
        start.elapsed() <= Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(only.request_count(), 2);
    // Other requests still skip it while it cools down.
    let e = gw.chat("gpt", "hi").await.openai_error(429);
    assert_eq!(e["code"], "no_deployment_available");
    assert_eq!(only.request_count(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_wrong_key_on_one_deployment_is_retried_on_the_groups_other_key() {
    // As LiteLLM does: an authentication error is retried when the group has another
    // deployment. Weights 1 and 0 make "bad-key" the first pick.
    let (bad, good) = (MockProvider::start().await, MockProvider::start().await);
    bad.set_default(Behaviour::error(401, "Incorrect API key provided"));
    let yaml = config(
        &[
            deployment("gpt", "bad-key", &bad.v1_url(), &["weight: 1"]),
            deployment("gpt", "good-key", &good.v1_url(), &["weight: 0"]),
        ],
        "",
    );
    let gw = TestGateway::start(&yaml).await;
    let start = Instant::now();
    assert_eq!(served(&gw.chat("gpt", "hi").await), "good-key/2/0");
    assert_eq!(start.elapsed(), Duration::ZERO);
    // Its key is wrong: it cools down at once, so the next request goes straight to the other.
    assert_eq!(served(&gw.chat("gpt", "hi").await), "good-key/1/0");
    assert_eq!(bad.request_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn retry_policy_can_retry_a_4xx_on_the_groups_other_deployment() {
    // A 400 is not retried by default; `BadRequestErrorRetries` sends it to another deployment
    // of the group (never the same one again: it would refuse the same request).
    let (picky, lenient) = (MockProvider::start().await, MockProvider::start().await);
    picky.set_default(Behaviour::error(400, "Unrecognized request argument: seed"));
    let entries = [
        deployment("gpt", "picky", &picky.v1_url(), &["weight: 1"]),
        deployment("gpt", "lenient", &lenient.v1_url(), &["weight: 0"]),
    ];
    let gw = TestGateway::start(&config(&entries, "")).await;
    gw.chat("gpt", "hi").await.openai_error(400);

    let gw = TestGateway::start(&config(
        &entries,
        "router_settings:\n  retry_policy:\n    BadRequestErrorRetries: 1\n",
    ))
    .await;
    assert_eq!(served(&gw.chat("gpt", "hi").await), "lenient/2/0");
    assert_eq!(picky.request_count(), 2, "once per gateway");

    // Alone in its group, it is not sent the same request again.
    let only = [deployment("gpt", "picky", &picky.v1_url(), &[])];
    let gw = TestGateway::start(&config(
        &only,
        "router_settings:\n  retry_policy:\n    BadRequestErrorRetries: 1\n",
    ))
    .await;
    gw.chat("gpt", "hi").await.openai_error(400);
    assert_eq!(picky.request_count(), 3);
}
