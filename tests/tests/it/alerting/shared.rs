//! Alerts across instances: two gateways on one Redis (db 13) send one alert for what both
//! see; with Redis cut, each sends its own (fail open) and counts the failure.

use std::time::Duration;

use llmgate_tests::{deployment, Behaviour, MockProvider, TestGateway};

use super::backends::RedisProxy;
use super::{alerting, alerts_total, gateway, Receiver};

/// `llmgate_alerts_shared_dedup_errors_total` on `/metrics`.
async fn shared_errors(gw: &TestGateway) -> f64 {
    let text = gw.get("/metrics").await.text();
    text.lines()
        .find_map(|l| l.strip_prefix("llmgate_alerts_shared_dedup_errors_total "))
        .unwrap_or_else(|| panic!("{text}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn two_instances_on_one_redis_send_one_alert_and_each_their_own_without_it() {
    let reachable = tokio::time::timeout(
        Duration::from_secs(1),
        tokio::net::TcpStream::connect("127.0.0.1:6379"),
    )
    .await
    .is_ok_and(|c| c.is_ok());
    if !reachable {
        // `.ci/run` sets it when it has the machine's backends running: a skip there is a failure.
        assert!(
            !std::env::var("LLMGATE_REQUIRE_BACKENDS")
                .unwrap_or_default()
                .contains("redis"),
            "redis is not reachable and LLMGATE_REQUIRE_BACKENDS requires it"
        );
        eprintln!("two_instances_on_one_redis: no Redis on 127.0.0.1:6379, skipped");
        return;
    }
    let receiver = Receiver::ok().await;
    let proxy = RedisProxy::start().await;
    let mock = MockProvider::start().await;
    mock.set_default(Behaviour::error(429, "slow down"));
    let prefix = format!("t{}:", &llmgate::auth::generate_secret()[3..15]);
    let yaml = format!(
        "model_list:\n{}{}router_settings:\n  redis_url: redis://{}/13\n  num_retries: 0\n  disable_cooldowns: true\n{}",
        deployment("gpt", "gpt-a", &mock.v1_url(), &[]),
        deployment("other", "other-a", &mock.v1_url(), &[]),
        proxy.addr,
        alerting(&format!(
            "  alert_types: [\"llm_exceptions\"]\n  llmgate_rate_limit_redis_prefix: \"{prefix}\"\n  alerting_args:\n    minor_outage_alert_threshold: 2\n"
        ))
    );
    let (a, b) = (
        gateway(&yaml, &receiver).await,
        gateway(&yaml, &receiver).await,
    );
    for gw in [&a, &b] {
        for _ in 0..2 {
            assert_eq!(gw.chat("gpt", "hi").await.status, 429);
        }
    }
    let first = receiver.wait_for(1).await;
    assert_eq!(first[0]["deployment"], "gpt-a");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.alerts().len(), 1, "one of two instances sends it");
    assert_eq!(
        alerts_total(&a, "llm_exceptions", "deduplicated").await
            + alerts_total(&b, "llm_exceptions", "deduplicated").await,
        1.0
    );
    assert_eq!(shared_errors(&a).await + shared_errors(&b).await, 0.0);

    // Redis cut: each instance sends its own, and counts that it could not ask.
    proxy.up.send_replace(false);
    for gw in [&a, &b] {
        for _ in 0..2 {
            assert_eq!(gw.chat("other", "hi").await.status, 429);
        }
    }
    let alerts = receiver.wait_for(3).await;
    assert!(
        alerts[1..].iter().all(|a| a["deployment"] == "other-a"),
        "{alerts:#?}"
    );
    assert_eq!(shared_errors(&a).await, 1.0);
    assert_eq!(shared_errors(&b).await, 1.0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.alerts().len(), 3);
}
