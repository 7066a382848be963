//! A deployment's `rpm` on one instance (no Redis): the check and the count are one atomic
//! step, so a burst of concurrent requests cannot overshoot it, and every attempt counts,
//! failed and forced ones included (docs/routing.md, "Deployment limits").

use std::time::Duration;

use llmgate_tests::{chat_body, deployment, Behaviour, Gate, MockProvider, TestGateway};
use serde_json::json;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::config;

/// 40 requests at once (held at the upstream until all are answered or waiting there) against
/// `rpm: 10`, on four worker threads: no more than 10 reach the upstream, the rest are refused
/// with 429 `no_deployment_available`; topped up one at a time afterwards, exactly 10 did.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_cannot_overshoot_a_deployments_rpm() {
    const N: usize = 40;
    const RPM: usize = 10;
    let mock = MockProvider::start().await;
    let gate = Gate::new();
    mock.set_default(Behaviour::Gated {
        gate: gate.clone(),
        after_events: 0,
    });
    let yaml = config(
        &[deployment("gpt", "only", &mock.v1_url(), &["rpm: 10"])],
        "router_settings:\n  num_retries: 0\n",
    );
    let gw = TestGateway::start(&yaml).await;
    let mut set = JoinSet::new();
    for _ in 0..N {
        let gw = gw.handle();
        set.spawn(async move { gw.chat("gpt", "hi").await });
    }
    // The refused come back at once; the admitted wait at the gate.
    let mut refused = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while refused + mock.request_count() < N {
        assert!(
            Instant::now() < deadline,
            "{refused} refused, {} sent",
            mock.request_count()
        );
        match tokio::time::timeout(Duration::from_millis(50), set.join_next()).await {
            Ok(Some(res)) => {
                let e = res.unwrap().openai_error(429);
                assert_eq!(e["code"], "no_deployment_available", "{e}");
                refused += 1;
            }
            Ok(None) => break,
            Err(_) => {}
        }
    }
    let sent = mock.request_count();
    assert!(
        sent <= RPM,
        "{sent} requests reached a deployment with rpm: {RPM}"
    );
    gate.release();
    while let Some(res) = set.join_next().await {
        assert_eq!(res.unwrap().status, 200);
    }
    // A concurrent burst may admit fewer (a request denied while another's count was being
    // taken back); one at a time, the minute fills to exactly the limit, then refuses.
    mock.set_default(Behaviour::Ok);
    let mut topped = 0;
    while gw.chat("gpt", "hi").await.status == 200 {
        topped += 1;
        assert!(sent + topped <= RPM, "past the limit");
    }
    assert_eq!(mock.request_count(), RPM);
}

/// `rpm: 3` with `allowed_fails` high enough that nothing cools down: a failed attempt (the
/// upstream's 500) and a forced one (`mock_testing_fallbacks`, which calls nothing) each take
/// one request, so the third request is the last admitted in the minute.
#[tokio::test]
async fn every_attempt_counts_toward_rpm_failed_and_forced_ones_included() {
    let mock = MockProvider::start().await;
    let yaml = config(
        &[deployment("gpt", "only", &mock.v1_url(), &["rpm: 3"])],
        "router_settings:\n  num_retries: 0\n  allowed_fails: 100\n",
    );
    let gw = TestGateway::start(&yaml).await;
    mock.push(Behaviour::error(500, "boom"));
    gw.chat("gpt", "hi").await.openai_error(500);
    let mut forced = chat_body("gpt", "hi");
    forced["mock_testing_fallbacks"] = json!(true);
    let e = gw
        .post("/v1/chat/completions", &forced)
        .await
        .openai_error(500);
    assert_eq!(e["code"], "mock_error", "{e}");
    assert_eq!(mock.request_count(), 1, "the forced failure calls nothing");
    assert_eq!(gw.chat("gpt", "hi").await.status, 200);
    let e = gw.chat("gpt", "hi").await.openai_error(429);
    assert_eq!(e["code"], "no_deployment_available", "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("only: at its rpm limit"),
        "{e}"
    );
    assert_eq!(mock.request_count(), 2);
}
