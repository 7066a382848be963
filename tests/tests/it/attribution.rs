//! Every failure is attributed (issue 13, item 6): what the binary test
//! (`crates/llmgate-server/tests/attribution.rs`) does not reach. A stream the upstream breaks
//! after its head is a failed attempt of its deployment; a client that goes away is not; a group
//! with no deployment left is attributed to the group, with no deployment; an unreachable
//! provider is `connect`; a fallback chain that fails everywhere names its last deployment and
//! counts each failed attempt against its own; the request's log line names them all.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use llmgate::metering::{MemorySink, SpendRecord};
use llmgate_tests::{chat_body, Behaviour, Gate, MockProvider, TestGateway};
use serde_json::{json, Value};

/// The gateway on `yaml`, writing its spend records into a memory sink.
async fn start(yaml: &str) -> (TestGateway, llmgate::Gateway, MemorySink) {
    let loaded = llmgate_config::from_yaml(yaml, Path::new("."), &HashMap::<String, String>::new())
        .unwrap_or_else(|p| panic!("config rejected:\n{p}"));
    let sink = MemorySink::new();
    let gateway = llmgate::Gateway::builder(loaded.config)
        .spend_sink(Arc::new(sink.clone()))
        .build()
        .unwrap();
    (TestGateway::serve(gateway.clone()).await, gateway, sink)
}

/// A `model_list` entry: group `name`, deployment id `<name>-0`, on `api_base`.
fn entry(name: &str, api_base: &str) -> String {
    format!(
        "  - model_name: {name}\n    litellm_params:\n      model: openai/{name}-x\n      \
         api_base: {api_base}\n      api_key: sk-up\n    model_info:\n      id: {name}-0\n"
    )
}

/// The `n` records, once written (a request whose client went away ends when the gateway
/// notices).
async fn records(gw: &llmgate::Gateway, sink: &MemorySink, n: usize) -> Vec<SpendRecord> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        gw.flush_spend().await;
        let r = sink.records();
        if r.len() >= n || std::time::Instant::now() > deadline {
            assert_eq!(r.len(), n, "{r:?}");
            return r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn class(r: &SpendRecord) -> Option<&'static str> {
    r.error_class.map(|c| c.as_str())
}

/// The sum of the samples of `name` whose labels include every pair of `labels`.
fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix('{')?;
            let (set, value) = rest.split_once("} ")?;
            let pairs: Vec<&str> = set.split(',').collect();
            labels
                .iter()
                .all(|(k, v)| pairs.contains(&format!("{k}=\"{v}\"").as_str()))
                .then(|| value.trim().parse::<f64>().unwrap())
        })
        .sum()
}

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

/// A `Write` into a shared buffer, for captured log lines.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// A current-thread runtime: the gateway and the mocks run on this thread, so the thread's log
// subscriber sees every line they write.
#[tokio::test(flavor = "current_thread")]
async fn a_fallback_chain_that_fails_everywhere_names_its_last_deployment() {
    use tracing_subscriber::util::SubscriberInitExt;
    let logs = Captured::default();
    let writer = logs.clone();
    let _guard = tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish()
        .set_default();

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

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let line = logs
        .lines()
        .find(|l| l.contains("request failed"))
        .unwrap_or_else(|| panic!("no failure logged: {logs}"));
    for field in [
        "status=503",
        "error_class=\"upstream_5xx\"",
        "model_group=\"b\"",
        "deployment=\"b-0\"",
        "attempts=2",
    ] {
        assert!(line.contains(field), "{field} missing: {line}");
    }
}

// `/v1/messages` renders its errors itself (in Anthropic's shape): the headers and the log
// line are there too.
#[tokio::test(flavor = "current_thread")]
async fn a_messages_error_is_attributed_and_logged() {
    use tracing_subscriber::util::SubscriberInitExt;
    let logs = Captured::default();
    let writer = logs.clone();
    let _guard = tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish()
        .set_default();

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

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let line = logs
        .lines()
        .find(|l| l.contains("request failed"))
        .unwrap_or_else(|| panic!("no failure logged: {logs}"));
    for field in [
        "status=500",
        "deployment=\"gpt-0\"",
        "error_class=\"upstream_5xx\"",
    ] {
        assert!(line.contains(field), "{field} missing: {line}");
    }
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
