//! The failed request's log line names its deployment, attempts and error class. A process of
//! its own: each test captures the lines of its thread with a thread-local subscriber, which
//! other tests' subscribers in one process can make miss events (tracing caches each call
//! site's interest across threads).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/attributed.rs"]
mod attributed;

use attributed::{class, entry, metric, records, start, Captured};
use llmgate_tests::{chat_body, Behaviour, MockProvider};
use serde_json::json;

/// This thread's log lines at WARN and above, captured until the guard drops.
fn capture_warnings() -> (Captured, impl Drop) {
    use tracing_subscriber::util::SubscriberInitExt;
    let logs = Captured::default();
    let writer = logs.clone();
    let guard = tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish()
        .set_default();
    (logs, guard)
}

/// Asserts one captured line says "request failed" with every one of `fields`.
fn assert_failure_logged(logs: &Captured, fields: &[&str]) {
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let line = logs
        .lines()
        .find(|l| l.contains("request failed"))
        .unwrap_or_else(|| panic!("no failure logged: {logs}"));
    for field in fields {
        assert!(line.contains(field), "{field} missing: {line}");
    }
}

// A current-thread runtime: the gateway and the mocks run on this thread, so the thread's log
// subscriber sees every line they write.
#[tokio::test(flavor = "current_thread")]
async fn a_fallback_chain_that_fails_everywhere_names_its_last_deployment() {
    let (logs, _guard) = capture_warnings();

    let a = MockProvider::start().await;
    a.set_default(Behaviour::error(500, "a is down"));
    let b = MockProvider::start().await;
    b.set_default(Behaviour::error(503, "b is down"));
    let yaml = format!(
        "model_list:\n{}{}router_settings:\n  num_retries: 0\n  disable_cooldowns: true\n  \
         fallbacks: [{{a: [b]}}]\n",
        entry("a", &a.v1_url()),
        entry("b", &b.v1_url())
    );
    let (client, gw, sink) = start(&yaml).await;
    let res = client
        .post("/v1/chat/completions", &chat_body("a", "hi"))
        .await;
    assert_eq!(res.status, 503, "{}", res.text());
    assert_eq!(res.header("x-llmgate-model-group"), Some("b"));
    assert_eq!(res.header("x-llmgate-deployment"), Some("b-0"));
    assert_eq!(res.header("x-llmgate-attempts"), Some("2"));
    assert_eq!(res.header("x-llmgate-fallbacks"), Some("1"));

    let r = records(&gw, &sink, 1).await;
    assert_eq!(r[0].model_group.as_deref(), Some("b"));
    assert_eq!(r[0].deployment.as_deref(), Some("b-0"));
    assert_eq!((r[0].attempts, r[0].fallbacks), (2, 1));
    assert_eq!(class(&r[0]), Some("upstream_5xx"));
    let text = client.get("/metrics").await.text();
    for (group, deployment) in [("a", "a-0"), ("b", "b-0")] {
        let labels = [
            ("model_group", group),
            ("deployment", deployment),
            ("error_class", "upstream_5xx"),
        ];
        assert_eq!(
            metric(&text, "llmgate_upstream_failures_total", &labels),
            1.0,
            "{text}"
        );
    }
    assert_eq!(
        metric(
            &text,
            "llmgate_request_failures_total",
            &[("model_group", "b"), ("deployment", "b-0")]
        ),
        1.0
    );

    assert_failure_logged(
        &logs,
        &[
            "status=503",
            "error_class=\"upstream_5xx\"",
            "model_group=\"b\"",
            "deployment=\"b-0\"",
            "attempts=2",
        ],
    );
}

// `/v1/messages` renders its errors itself (in Anthropic's shape): the headers and the log
// line are there too.
#[tokio::test(flavor = "current_thread")]
async fn a_messages_error_is_attributed_and_logged() {
    let (logs, _guard) = capture_warnings();

    let mock = MockProvider::start().await;
    mock.set_default(Behaviour::error(500, "down"));
    let yaml = format!(
        "model_list:\n{}router_settings:\n  num_retries: 0\n  disable_cooldowns: true\n",
        entry("gpt", &mock.v1_url())
    );
    let (client, _gw, _sink) = start(&yaml).await;
    let body = json!({"model": "gpt", "max_tokens": 16,
        "messages": [{"role": "user", "content": "hi"}]});
    let res = client.post("/v1/messages", &body).await;
    assert_eq!(res.status, 500, "{}", res.text());
    assert_eq!(res.json()["type"], "error", "{}", res.text());
    assert_eq!(res.header("x-llmgate-deployment"), Some("gpt-0"));
    assert_eq!(res.header("x-llmgate-attempts"), Some("1"));

    assert_failure_logged(
        &logs,
        &[
            "status=500",
            "deployment=\"gpt-0\"",
            "error_class=\"upstream_5xx\"",
        ],
    );
}
