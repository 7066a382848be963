//! Rate limits through the real gateway: parallel limits answered with 429 and freed when a
//! client goes away, three instances sharing Redis admitting exactly the limit, and a Redis
//! outage under each failure policy. Per-key limits are tested on the layer itself
//! (`llmgate-ratelimit`), with keys made in the test.

use std::time::Duration;

use llmgate_tests::{chat_body, config_for, Behaviour, Gate, MockProvider, TestGateway};

fn yaml(mock: &MockProvider, settings: &str) -> String {
    format!(
        "{}general_settings:\n{settings}",
        config_for(&[("m", &mock.v1_url())], None)
    )
}

/// Whether a Redis listens on 127.0.0.1:6379 (tests that need one print a line and return
/// when not).
async fn redis_up() -> bool {
    let up = tokio::time::timeout(
        Duration::from_secs(1),
        tokio::net::TcpStream::connect("127.0.0.1:6379"),
    )
    .await
    .is_ok_and(|c| c.is_ok());
    if !up {
        // `.ci/run` sets it when it has the machine's backends running: a skip there is a failure.
        assert!(
            !std::env::var("LLMGATE_REQUIRE_BACKENDS")
                .unwrap_or_default()
                .contains("redis"),
            "redis is not reachable and LLMGATE_REQUIRE_BACKENDS requires it"
        );
        eprintln!("skipped: no Redis on 127.0.0.1:6379");
    }
    up
}

#[tokio::test]
async fn global_parallel_limit_answers_429_and_frees_a_slot_when_the_client_goes_away() {
    let mock = MockProvider::start().await;
    let gate = Gate::new();
    mock.set_default(Behaviour::gated(&gate, 1));
    let gw = TestGateway::start(&yaml(&mock, "  global_max_parallel_requests: 2\n")).await;
    let mut body = chat_body("m", "hi");
    body["stream"] = true.into();
    let mut a = gw.stream("/v1/chat/completions", &body).await;
    let mut b = gw.stream("/v1/chat/completions", &body).await;
    assert!(a.next_data().await.is_some() && b.next_data().await.is_some());

    let res = gw.chat("m", "one too many").await;
    let e = res.openai_error(429);
    assert_eq!(e["type"], "rate_limit_error");
    assert_eq!(e["code"], "rate_limit_exceeded");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("global_max_parallel_requests (2 requests in flight at once)"),
        "{e}"
    );
    assert_eq!(res.header("retry-after"), Some("1"));
    assert_eq!(mock.request_count(), 2, "the upstream never saw it");

    // One client disconnects mid-stream: its slot is free again.
    drop(a);
    mock.push(Behaviour::Ok);
    let mut ok = None;
    for _ in 0..100 {
        let res = gw.chat("m", "now").await;
        if res.status == 200 {
            ok = Some(res);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(ok.is_some(), "the dropped stream's slot was never freed");
    gate.release();
    assert!(!b.rest().await.is_empty());
}

#[tokio::test]
async fn three_instances_sharing_redis_admit_exactly_the_limit() {
    if !redis_up().await {
        return;
    }
    let mock = MockProvider::start().await;
    let gate = Gate::new();
    mock.set_default(Behaviour::gated(&gate, 0));
    let prefix = format!("llmgate-test:it:{:x}:", fastrand_u64());
    let settings = format!(
        "  global_max_parallel_requests: 5\n  llmgate_rate_limit_redis_prefix: \"{prefix}\"\nrouter_settings:\n  redis_url: redis://127.0.0.1:6379\n"
    );
    let cfg = yaml(&mock, &settings);
    let instances = [
        TestGateway::start(&cfg).await,
        TestGateway::start(&cfg).await,
        TestGateway::start(&cfg).await,
    ];
    // A burst of 24 concurrent requests, 8 to each instance.
    let mut calls = Vec::new();
    for i in 0..24 {
        let gw = instances[i % 3].handle();
        calls.push(tokio::spawn(async move {
            gw.chat("m", "burst").await.status.as_u16()
        }));
    }
    gate.wait_for_arrivals(5).await;
    // Everything beyond the limit is answered 429 while the five are held at the upstream.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(gate.arrivals(), 5, "exactly five reached the upstream");
    gate.release();
    let mut admitted = 0;
    let mut limited = 0;
    for c in calls {
        match c.await.unwrap() {
            200 => admitted += 1,
            429 => limited += 1,
            s => panic!("unexpected status {s}"),
        }
    }
    assert_eq!((admitted, limited), (5, 19));
}

fn fastrand_u64() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id())
}

#[tokio::test]
async fn redis_down_fails_open_or_closed_as_configured() {
    let mock = MockProvider::start().await;
    // Port 1 on loopback: nothing listens there.
    let down =
        "  global_max_parallel_requests: 1\nrouter_settings:\n  redis_url: redis://127.0.0.1:1\n";
    let open = TestGateway::start(&yaml(
        &mock,
        &format!("  llmgate_rate_limit_failure_policy: open\n{down}"),
    ))
    .await;
    for _ in 0..3 {
        assert_eq!(open.chat("m", "hi").await.status, 200);
    }
    let closed = TestGateway::start(&yaml(
        &mock,
        &format!("  llmgate_rate_limit_failure_policy: closed\n{down}"),
    ))
    .await;
    let res = closed.chat("m", "hi").await;
    let e = res.openai_error(503);
    assert_eq!(e["code"], "rate_limiter_unavailable");
    assert!(e["message"]
        .as_str()
        .unwrap()
        .contains("llmgate_rate_limit_failure_policy: closed"));
    assert_eq!(res.header("retry-after"), Some("1"));
    assert_eq!(
        mock.request_count(),
        3,
        "only the fail-open requests reached the upstream"
    );
}
