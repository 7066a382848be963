//! Cooldowns are shared through Redis: when one instance takes a deployment out of rotation
//! (here after a 429), the others skip it too, instead of each calling it until it fails there
//! as well. Two real `llmgate` processes on the machine's Redis, under a prefix of their own.

#![allow(clippy::unwrap_used, clippy::panic, reason = "test helpers")]

use std::time::Duration;

use crate::support::{post, redis_up, start_with, write_config};
use http::StatusCode;
use llmgate_testkit::{Behaviour, MockProvider};
use serde_json::json;

const MASTER: &str = "sk-master-cooldowns";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_on_one_instance_cools_the_deployment_down_on_every_instance() {
    if !redis_up().await {
        return;
    }
    let flaky = MockProvider::start().await;
    flaky.set_default(Behaviour::error(429, "rate limited"));
    let good = MockProvider::start().await;
    let prefix = format!("llmgate:test:cooldowns:{}:", std::process::id());
    let config = write_config(
        "cooldowns-shared",
        &format!(
            "model_list:\n  - model_name: flaky\n    litellm_params:\n      model: openai/x\n      \
             api_base: {}\n      api_key: sk-test\n  - model_name: good\n    litellm_params:\n      \
             model: openai/y\n      api_base: {}\n      api_key: sk-test\n\
             router_settings:\n  redis_url: redis://127.0.0.1:6379\n  allowed_fails: 0\n  \
             cooldown_time: 30\n  num_retries: 0\n  fallbacks: [{{flaky: [good]}}]\n\
             general_settings:\n  master_key: {MASTER}\n  llmgate_rate_limit_redis_prefix: \"{prefix}\"\n",
            flaky.v1_url(),
            good.v1_url()
        ),
    );
    let (_a, a) = start_with(&config, &[], &[]).await;
    let (_b, b) = start_with(&config, &[], &[]).await;
    let body = json!({"model": "flaky", "messages": [{"role": "user", "content": "hi"}]});
    // Each instance's subscription is up once it has served a request.
    for addr in [a, b] {
        let (status, _) = post(
            addr,
            "/v1/chat/completions",
            MASTER,
            &json!({"model": "good", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (status, answer) = post(a, "/v1/chat/completions", MASTER, &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(flaky.request_count(), 1, "the first call meets the 429");
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The other instance never calls it: the cooldown came through Redis.
    for _ in 0..3 {
        let (status, answer) = post(b, "/v1/chat/completions", MASTER, &body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    assert_eq!(
        flaky.request_count(),
        1,
        "instance b called the cooling deployment"
    );
    assert_eq!(good.request_count(), 2 + 1 + 3);
}

/// The cooldown channel's connection stalls (Redis behind a proxy that holds it silent, for
/// instance B only): B's ping finds it within seconds and counts it
/// (`llmgate_router_shared_errors_total{part="cooldowns"}`); once the proxy forwards, B
/// subscribes again, and a cooldown A publishes reaches it (docs/routing.md, "Shared
/// cooldowns": "pings every second to find a connection that stalled ... reconnects every
/// second").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_cooldown_channel_is_found_counted_and_rejoined() {
    if !redis_up().await {
        return;
    }
    let flaky = MockProvider::start().await;
    flaky.set_default(Behaviour::error(429, "rate limited"));
    let good = MockProvider::start().await;
    let proxy = llmgate_testkit::FaultProxy::start("127.0.0.1:6379".parse().unwrap())
        .await
        .unwrap();
    let prefix = format!("llmgate:test:cooldowns-stall:{}:", std::process::id());
    let text = |redis: &str| {
        format!(
            "model_list:\n  - model_name: flaky\n    litellm_params:\n      model: openai/x\n      \
             api_base: {}\n      api_key: sk-test\n  - model_name: good\n    litellm_params:\n      \
             model: openai/y\n      api_base: {}\n      api_key: sk-test\n\
             router_settings:\n  redis_url: redis://{redis}\n  allowed_fails: 0\n  \
             cooldown_time: 30\n  num_retries: 0\n  fallbacks: [{{flaky: [good]}}]\n\
             general_settings:\n  master_key: {MASTER}\n  llmgate_rate_limit_redis_prefix: \"{prefix}\"\n",
            flaky.v1_url(),
            good.v1_url()
        )
    };
    let (_a, a) = start_with(
        &write_config("cooldowns-a", &text("127.0.0.1:6379")),
        &[],
        &[],
    )
    .await;
    let proxied = text(&proxy.addr().to_string());
    let (_b, b) = start_with(&write_config("cooldowns-b", &proxied), &[], &[]).await;
    let good_body = json!({"model": "good", "messages": [{"role": "user", "content": "hi"}]});
    for addr in [a, b] {
        assert_eq!(
            post(addr, "/v1/chat/completions", MASTER, &good_body)
                .await
                .0,
            StatusCode::OK
        );
    }
    wait_cooldowns(b, "subscribed", Duration::from_secs(5)).await;

    proxy.stall();
    let stalled = std::time::Instant::now();
    while cooldown_errors(b).await < 1.0 {
        assert!(
            stalled.elapsed() < Duration::from_secs(5),
            "the stalled channel was not found"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    proxy.restore();
    wait_cooldowns(b, "subscribed", Duration::from_secs(6)).await;

    let body = json!({"model": "flaky", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(
        post(a, "/v1/chat/completions", MASTER, &body).await.0,
        StatusCode::OK
    );
    assert_eq!(flaky.request_count(), 1, "the first call meets the 429");
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..3 {
        assert_eq!(
            post(b, "/v1/chat/completions", MASTER, &body).await.0,
            StatusCode::OK
        );
    }
    assert_eq!(
        flaky.request_count(),
        1,
        "B called the cooling deployment after rejoining"
    );
}

/// `llmgate_router_shared_errors_total{part="cooldowns"}` on `addr` (0 when absent).
async fn cooldown_errors(addr: std::net::SocketAddr) -> f64 {
    let (_, text) = crate::support::get(addr, "/metrics").await;
    text.lines()
        .find_map(|l| l.strip_prefix("llmgate_router_shared_errors_total{part=\"cooldowns\"} "))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

/// Waits until readiness says the cooldown channel is `state`.
async fn wait_cooldowns(addr: std::net::SocketAddr, state: &str, within: Duration) {
    let started = std::time::Instant::now();
    loop {
        let (_, text) = crate::support::get(addr, "/health/readiness").await;
        let body: serde_json::Value = serde_json::from_str(&text).unwrap();
        if body["checks"]["router"]["cooldowns"] == state {
            return;
        }
        assert!(started.elapsed() < within, "cooldowns not {state}: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
