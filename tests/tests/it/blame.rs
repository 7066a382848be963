//! What counts against a deployment's health (cooldowns, failures per minute, in-flight counts):
//! its own failures and the deadlines its config sets; never a deadline the caller chose
//! (`"timeout"` in the body) nor a client that went away.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use llmgate_tests::{chat_body, deployment, Behaviour, Gate, MockProvider, TestGateway};
use serde_json::json;

fn config(entries: &[String], rest: &str) -> String {
    format!("model_list:\n{}{rest}", entries.concat())
}

/// Two requests that time out against a deployment slower than their deadline (each retried
/// twice: six timeouts, past the default `allowed_fails` of 3); with `"timeout": 0.01` in the
/// body when `impatient`.
async fn two_timed_out_requests(gw: &TestGateway, impatient: bool) {
    let mut body = chat_body("gpt", "hi");
    if impatient {
        body["timeout"] = json!(0.01);
    }
    for _ in 0..2 {
        let e = gw
            .post("/v1/chat/completions", &body)
            .await
            .openai_error(408);
        assert_eq!(e["code"], "timeout", "{e}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_deadline_the_caller_chose_never_cools_the_deployment_down() {
    let slow = MockProvider::start().await;
    slow.set_default(Behaviour::Ok.delayed(Duration::from_secs(1)));
    let gw = TestGateway::start(&config(
        &[deployment("gpt", "slow", &slow.v1_url(), &[])],
        "",
    ))
    .await;
    two_timed_out_requests(&gw, true).await;
    // A caller with time to wait is served at once, not told the deployment is cooling down.
    let res = gw.chat("gpt", "hi").await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("x-llmgate-deployment"), Some("slow"));
}

#[tokio::test(start_paused = true)]
async fn a_deadline_the_deployment_sets_still_counts() {
    let slow = MockProvider::start().await;
    slow.set_default(Behaviour::Ok.delayed(Duration::from_secs(1)));
    let gw = TestGateway::start(&config(
        &[deployment(
            "gpt",
            "slow",
            &slow.v1_url(),
            &["timeout: 0.01"],
        )],
        "",
    ))
    .await;
    two_timed_out_requests(&gw, false).await;
    let e = gw.chat("gpt", "hi").await.openai_error(503);
    assert_eq!(e["code"], "no_deployment_available", "{e}");
}

#[tokio::test]
async fn a_client_that_goes_away_leaves_the_deployment_idle() {
    let (a, b) = (MockProvider::start().await, MockProvider::start().await);
    let gate = Gate::new();
    a.set_default(Behaviour::gated(&gate, 0));
    b.set_default(Behaviour::gated(&gate, 0));
    let gw = TestGateway::start(&config(
        &[
            deployment("gpt", "a", &a.v1_url(), &[]),
            deployment("gpt", "b", &b.v1_url(), &[]),
        ],
        "router_settings:\n  routing_strategy: least-busy\n",
    ))
    .await;

    // A request held upstream whose client gives up and closes the connection.
    let client = gw.handle();
    let gone = tokio::spawn(async move { client.chat("gpt", "hold").await });
    gate.wait_for_arrivals(1).await;
    gone.abort();
    let _ = gone.await;
    let first = if a.request_count() == 1 { &a } else { &b };
    // The gateway notices and lets go of the attempt.
    tokio::time::sleep(Duration::from_millis(200)).await;
    gate.release();
    a.set_default(Behaviour::Ok);
    b.set_default(Behaviour::Ok);

    // Nothing is in flight: least-busy spreads new requests over both again (all twenty on
    // one would mean the abandoned attempt still counts against the other).
    for _ in 0..20 {
        assert_eq!(gw.chat("gpt", "quick").await.status, 200);
    }
    assert!(
        first.request_count() > 1,
        "the deployment the client left was never picked again: a {} b {}",
        a.request_count(),
        b.request_count()
    );
}
