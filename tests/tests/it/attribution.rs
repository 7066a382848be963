//! Every failure is attributed (issue 13, item 6): what the binary test
//! (`crates/llmgate-server/tests/server/attribution.rs`) does not reach. A stream the upstream breaks
//! after its head is a failed attempt of its deployment; a client that goes away is not; a group
//! with no deployment left is attributed to the group, with no deployment; an unreachable
//! provider is `connect`; a fallback chain that fails everywhere names its last deployment and
//! counts each failed attempt against its own; the request's log line names them all
//! (`tests/tests/logs.rs`, a process of its own).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/attributed.rs"]
mod attributed;

use attributed::{class, entry, metric, records, start};
use llmgate_tests::{chat_body, Behaviour, Gate, MockProvider};
use serde_json::{json, Value};

fn stream_body(model: &str) -> Value {
    json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test]
async fn a_stream_the_upstream_breaks_is_a_failed_attempt_of_its_deployment() {
    let mock = MockProvider::start().await;
    mock.push(Behaviour::cut_after(3));
    let (client, gw, sink) = start(&format!("model_list:\n{}", entry("gpt", &mock.v1_url()))).await;
    let mut stream = client
        .stream("/v1/chat/completions", &stream_body("gpt"))
        .await;
    assert_eq!(stream.status, 200);
    let events = stream.rest().await;
    assert!(events.last().unwrap().contains("\"error\""), "{events:?}");

    let r = records(&gw, &sink, 1).await;
    assert_eq!(r[0].deployment.as_deref(), Some("gpt-0"));
    assert_eq!(class(&r[0]), Some("upstream_5xx"));
    let text = client.get("/metrics").await.text();
    let gpt = [("model_group", "gpt"), ("deployment", "gpt-0")];
    assert_eq!(metric(&text, "llmgate_upstream_attempts_total", &gpt), 1.0);
    assert_eq!(
        metric(&text, "llmgate_upstream_failures_total", &gpt),
        1.0,
        "{text}"
    );
}

#[tokio::test]
async fn a_client_that_goes_away_is_not_the_deployments_failure() {
    let mock = MockProvider::start().await;
    let gate = Gate::new();
    mock.push(Behaviour::gated(&gate, 2));
    let (client, gw, sink) = start(&format!("model_list:\n{}", entry("gpt", &mock.v1_url()))).await;
    let mut stream = client
        .stream("/v1/chat/completions", &stream_body("gpt"))
        .await;
    stream.next_data().await.unwrap();
    drop(stream);
    gate.release();

    let r = records(&gw, &sink, 1).await;
    assert_eq!(r[0].deployment.as_deref(), Some("gpt-0"));
    assert_eq!(class(&r[0]), Some("client_closed"));
    let text = client.get("/metrics").await.text();
    assert_eq!(
        metric(
            &text,
            "llmgate_upstream_attempts_total",
            &[("deployment", "gpt-0")]
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "llmgate_upstream_failures_total",
            &[("deployment", "gpt-0")]
        ),
        0.0,
        "{text}"
    );
}

#[tokio::test]
async fn a_group_with_no_deployment_left_is_attributed_to_the_group() {
    let mock = MockProvider::start().await;
    mock.set_default(Behaviour::error(429, "slow down"));
    // A 429 cools the deployment down at once (LiteLLM: no allowed fails for rate limits).
    let yaml = format!(
        "model_list:\n{}router_settings:\n  num_retries: 0\n  cooldown_time: 60\n",
        entry("gpt", &mock.v1_url())
    );
    let (client, gw, sink) = start(&yaml).await;
    let first = client.chat("gpt", "hi").await;
    assert_eq!(first.status, 429);
    assert_eq!(first.header("x-llmgate-deployment"), Some("gpt-0"));
    let second = client.chat("gpt", "hi").await;
    assert_eq!(second.status, 429, "{}", second.text());
    assert_eq!(second.header("x-llmgate-model-group"), Some("gpt"));
    assert_eq!(second.header("x-llmgate-deployment"), None);
    assert_eq!(second.header("x-llmgate-attempts"), Some("1"));
    assert_eq!(mock.request_count(), 1);

    let r = records(&gw, &sink, 2).await;
    assert_eq!(class(&r[0]), Some("rate_limited"));
    assert_eq!(r[1].model_group.as_deref(), Some("gpt"));
    assert_eq!(r[1].deployment, None);
    assert_eq!((r[1].attempts, class(&r[1])), (1, Some("no_deployment")));
    let text = client.get("/metrics").await.text();
    let failures = |d: &str, c: &str| {
        metric(
            &text,
            "llmgate_request_failures_total",
            &[
                ("model_group", "gpt"),
                ("deployment", d),
                ("error_class", c),
            ],
        )
    };
    assert_eq!(failures("gpt-0", "rate_limited"), 1.0, "{text}");
    assert_eq!(failures("none", "no_deployment"), 1.0, "{text}");
    // Nothing was called: no attempt counted against the deployment.
    assert_eq!(
        metric(
            &text,
            "llmgate_upstream_attempts_total",
            &[("deployment", "gpt-0")]
        ),
        1.0
    );
}

#[tokio::test]
async fn an_unreachable_provider_is_a_connect_failure() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let yaml = format!(
        "model_list:\n{}router_settings:\n  num_retries: 0\n",
        entry("gpt", &format!("http://{addr}/v1"))
    );
    let (client, gw, sink) = start(&yaml).await;
    let res = client.chat("gpt", "hi").await;
    assert_eq!(res.status, 502, "{}", res.text());
    assert_eq!(res.header("x-llmgate-deployment"), Some("gpt-0"));
    let r = records(&gw, &sink, 1).await;
    assert_eq!(class(&r[0]), Some("connect"));
    let text = client.get("/metrics").await.text();
    assert_eq!(
        metric(
            &text,
            "llmgate_upstream_failures_total",
            &[("deployment", "gpt-0"), ("error_class", "connect")]
        ),
        1.0,
        "{text}"
    );
}

/// What a client chooses cannot make a healthy deployment look failing: a request's own
/// `timeout` and a failure it forces (`mock_testing_fallbacks`) are attributed to the
/// deployment (headers, record, request counters) but are not its failures per attempt.
#[tokio::test]
async fn a_clients_own_deadline_or_forced_failure_is_not_the_deployments() {
    let mock = MockProvider::start().await;
    mock.set_default(Behaviour::Ok.delayed(std::time::Duration::from_secs(2)));
    let yaml = format!(
        "model_list:\n{}router_settings:\n  num_retries: 0\n",
        entry("gpt", &mock.v1_url())
    );
    let (client, gw, sink) = start(&yaml).await;
    let mut body = chat_body("gpt", "hi");
    body["timeout"] = json!(0.05);
    let res = client.post("/v1/chat/completions", &body).await;
    assert_eq!(res.status, 408, "{}", res.text());
    assert_eq!(res.header("x-llmgate-deployment"), Some("gpt-0"));
    let mut body = chat_body("gpt", "hi");
    body["mock_testing_fallbacks"] = json!(true);
    let res = client.post("/v1/chat/completions", &body).await;
    assert_eq!(res.status, 500, "{}", res.text());
    assert_eq!(res.header("x-llmgate-deployment"), Some("gpt-0"));

    let r = records(&gw, &sink, 2).await;
    assert_eq!(class(&r[0]), Some("timeout"));
    assert_eq!(class(&r[1]), Some("upstream_5xx"));
    let text = client.get("/metrics").await.text();
    let gpt = [("model_group", "gpt"), ("deployment", "gpt-0")];
    assert_eq!(metric(&text, "llmgate_request_failures_total", &gpt), 2.0);
    assert_eq!(metric(&text, "llmgate_upstream_attempts_total", &gpt), 2.0);
    assert_eq!(
        metric(&text, "llmgate_upstream_failures_total", &gpt),
        0.0,
        "{text}"
    );
}
