//! Metering: cost per provider usage shape, spend records (streams, 1,000 at once, shutdown
//! under load), the response-cost header and `GET /metrics`; what `llmgate_` labels never carry
//! in `metering/labels.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod labels;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use llmgate::metering::{MemorySink, PriceTable, SpendRecord};
use llmgate_tests::{chat_body, Behaviour, Gate, MockProvider, TestGateway};
use serde_json::json;

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

/// One `model_list` entry named `name` with `params` and per-token prices.
fn entry(name: &str, params: &str, prices: &str) -> String {
    format!("  - model_name: {name}\n    litellm_params: {{{params}}}\n    model_info: {{id: {name}-0, {prices}}}\n")
}

fn cost_header(res: &llmgate_tests::TestResponse) -> Option<f64> {
    res.header("x-llmgate-response-cost")
        .map(|v| v.parse().unwrap())
}

fn close(a: f64, b: f64) {
    assert!((a - b).abs() <= 1e-12 + b.abs() * 1e-9, "{a} != {b}");
}

async fn only_record(gw: &llmgate::Gateway, sink: &MemorySink) -> SpendRecord {
    gw.flush_spend().await;
    let mut r = sink.records();
    assert_eq!(r.len(), 1, "{r:?}");
    r.remove(0)
}

#[tokio::test]
async fn each_providers_usage_shape_is_priced() {
    let prices = "input_cost_per_token: 0.000002, output_cost_per_token: 0.00001, \
        cache_read_input_token_cost: 0.0000005, cache_creation_input_token_cost: 0.000004, \
        output_cost_per_reasoning_token: 0.00002";
    let (i, o, read, write, reason) = (2e-6, 1e-5, 5e-7, 4e-6, 2e-5);

    // OpenAI: cached and reasoning tokens in the details.
    let openai = MockProvider::start().await;
    openai.push(Behaviour::json(
        200,
        &json!({"id": "c1", "object": "chat.completion",
        "created": 1, "model": "gpt-x", "choices": [{"index": 0, "finish_reason": "stop",
        "message": {"role": "assistant", "content": "hi"}}],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500,
            "prompt_tokens_details": {"cached_tokens": 400},
            "completion_tokens_details": {"reasoning_tokens": 300}}}),
    ));
    // Anthropic: cache writes and reads beside the input tokens.
    let anthropic = MockProvider::start_anthropic().await;
    anthropic.push(Behaviour::json(
        200,
        &json!({"id": "msg_1", "type": "message",
        "role": "assistant", "model": "claude-x", "content": [{"type": "text", "text": "42"}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 10, "cache_creation_input_tokens": 200,
            "cache_read_input_tokens": 1000, "output_tokens": 30}}),
    ));
    // Gemini: cached content and thoughts.
    let gemini = MockProvider::start_gemini().await;
    gemini.push(Behaviour::json(
        200,
        &json!({"candidates": [{"content": {"role": "model",
        "parts": [{"text": "ok"}]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 7,
            "thoughtsTokenCount": 5, "cachedContentTokenCount": 4, "totalTokenCount": 22},
        "modelVersion": "gemini-x", "responseId": "r-1"}),
    ));
    // Ollama: plain counts (the mock counts words).
    let ollama = MockProvider::start_ollama().await;
    // Bedrock: cache reads and writes apart from the input tokens.
    let bedrock = MockProvider::start_bedrock().await;
    bedrock.push(Behaviour::json(
        200,
        &json!({"output": {"message": {"role": "assistant",
        "content": [{"text": "hi"}]}}, "stopReason": "end_turn",
        "usage": {"inputTokens": 10, "outputTokens": 7, "totalTokens": 122,
            "cacheReadInputTokens": 100, "cacheWriteInputTokens": 5}}),
    ));

    let mut yaml = String::from("model_list:\n");
    yaml += &entry(
        "oai",
        &format!(
            "model: openai/gpt-x, api_base: {}, api_key: k",
            openai.v1_url()
        ),
        prices,
    );
    yaml += &entry(
        "ant",
        &format!(
            "model: anthropic/claude-x, api_base: {}, api_key: k",
            anthropic.base_url()
        ),
        prices,
    );
    yaml += &entry(
        "gem",
        &format!(
            "model: gemini/gemini-x, api_base: {}, api_key: k",
            gemini.base_url()
        ),
        prices,
    );
    yaml += &entry(
        "oll",
        &format!(
            "model: ollama_chat/llama-x, api_base: {}",
            ollama.base_url()
        ),
        prices,
    );
    yaml += &entry("brk", &format!("model: bedrock/anthropic.claude-x, api_base: {}, api_key: {}, aws_region_name: us-west-2",
        bedrock.base_url(), llmgate_testkit::bedrock::API_KEY), prices);
    let (client, gw, sink) = start(&yaml).await;

    let expected = [
        (
            "oai",
            600.0 * i + 400.0 * read + 200.0 * o + 300.0 * reason,
            (1000, 500, 400, 0, 300),
        ),
        (
            "ant",
            10.0 * i + 1000.0 * read + 200.0 * write + 30.0 * o,
            (1210, 30, 1000, 200, 0),
        ),
        (
            "gem",
            6.0 * i + 4.0 * read + 7.0 * o + 5.0 * reason,
            (10, 12, 4, 0, 5),
        ),
        (
            "brk",
            10.0 * i + 100.0 * read + 5.0 * write + 7.0 * o,
            (115, 7, 100, 5, 0),
        ),
    ];
    for (model, cost, (p, c, cr, cc, r)) in expected {
        let res = client.chat(model, "price this").await;
        assert_eq!(res.status, 200, "{model}: {}", res.text());
        close(
            cost_header(&res).unwrap_or_else(|| panic!("{model}: no cost header")),
            cost,
        );
        gw.flush_spend().await;
        let rec = sink
            .records()
            .into_iter()
            .find(|x| x.model_group.as_deref() == Some(model))
            .unwrap();
        let t = rec.tokens;
        assert_eq!(
            (
                t.prompt,
                t.completion,
                t.cache_read,
                t.cache_creation,
                t.reasoning
            ),
            (p, c, cr, cc, r),
            "{model}"
        );
        close(rec.cost.unwrap(), cost);
    }
    let res = client.chat("oll", "one two three").await;
    assert_eq!(res.status, 200, "{}", res.text());
    gw.flush_spend().await;
    let rec = sink
        .records()
        .into_iter()
        .find(|x| x.model_group.as_deref() == Some("oll"))
        .unwrap();
    assert!(
        rec.tokens.prompt > 0 && rec.tokens.completion > 0,
        "{rec:?}"
    );
    close(
        cost_header(&res).unwrap(),
        rec.tokens.prompt as f64 * i + rec.tokens.completion as f64 * o,
    );
    assert_eq!(rec.provider.as_deref(), Some("ollama_chat"));
}

#[tokio::test]
async fn bundled_prices_apply_and_an_unpriced_model_is_unknown_not_zero() {
    let mock = MockProvider::start().await;
    let yaml = format!(
        "model_list:\n  - model_name: gpt-4o\n    litellm_params: {{model: openai/gpt-4o, api_base: {0}, api_key: k}}\n  - model_name: private\n    litellm_params: {{model: openai/my-private-model, api_base: {0}, api_key: k}}\n",
        mock.v1_url()
    );
    let (client, gw, sink) = start(&yaml).await;
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "a b c"}],
        "metadata": {"tags": ["team-a", "batch"]}, "tags": ["batch", "nightly"]});
    let res = client.post("/v1/chat/completions", &body).await;
    assert_eq!(res.status, 200);
    let rec = only_record(&gw, &sink).await;
    let table = PriceTable::bundled();
    let p = table.get("gpt-4o").unwrap();
    let want = rec.tokens.prompt as f64 * p.input_cost_per_token.unwrap()
        + rec.tokens.completion as f64 * p.output_cost_per_token.unwrap();
    assert!(want > 0.0);
    close(cost_header(&res).unwrap(), want);
    assert_eq!(rec.tags, ["team-a", "batch", "nightly"]);
    assert_eq!(
        rec.request_id.as_ref(),
        res.header("x-llmgate-request-id").unwrap()
    );
    assert_eq!((rec.status, rec.attempts, rec.cache_hit), (200, 1, false));
    assert_eq!(rec.provider.as_deref(), Some("openai"));
    assert!(rec.key_token.is_none());

    let res = client.chat("private", "hi").await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("x-llmgate-response-cost"), None);
    gw.flush_spend().await;
    let rec = sink.records().pop().unwrap();
    assert_eq!(
        (rec.model_group.as_deref(), rec.cost),
        (Some("private"), None)
    );
    let metrics = client.get("/metrics").await.text();
    assert!(
        metrics.contains(
            "llmgate_unpriced_requests_total{model_group=\"private\",deployment=\"private-1\"} 1"
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_streams_cost_is_recorded_after_it_ends() {
    let mock = MockProvider::start().await;
    let gate = Gate::new();
    mock.push(Behaviour::gated(&gate, 2));
    let yaml = format!(
        "model_list:\n{}",
        entry(
            "gpt",
            &format!(
                "model: openai/gpt-x, api_base: {}, api_key: k",
                mock.v1_url()
            ),
            "input_cost_per_token: 0.001, output_cost_per_token: 0.002"
        )
    );
    let (client, gw, sink) = start(&yaml).await;
    let mut body = chat_body("gpt", "stream me please");
    body["stream"] = json!(true);
    let mut s = client.stream("/v1/chat/completions", &body).await;
    assert_eq!(s.status, 200);
    // The cost is known only at the end: no header on a stream.
    assert!(s.headers.get("x-llmgate-response-cost").is_none());
    assert!(s.next_data().await.is_some());
    gw.flush_spend().await;
    assert!(sink.is_empty(), "recorded before the stream ended");

    gate.release();
    let rest = s.rest().await;
    assert_eq!(rest.last().map(String::as_str), Some("[DONE]"));
    assert!(
        !rest.iter().any(|e| e.contains("\"usage\":{")),
        "usage chunk leaked: {rest:?}"
    );
    let rec = only_record(&gw, &sink).await;
    assert!(rec.stream);
    assert_eq!(rec.tokens.prompt, 3);
    assert!(rec.tokens.completion > 0);
    close(
        rec.cost.unwrap(),
        3.0 * 0.001 + rec.tokens.completion as f64 * 0.002,
    );
    assert!(rec.time_to_first_token.is_some_and(|t| t <= rec.latency));
}

#[tokio::test]
async fn a_thousand_concurrent_requests_make_exactly_a_thousand_records() {
    let mock = MockProvider::start().await;
    let yaml = format!(
        "model_list:\n{}general_settings:\n  spend_batch_size: 64\n",
        entry(
            "gpt",
            &format!(
                "model: openai/gpt-x, api_base: {}, api_key: k",
                mock.v1_url()
            ),
            "input_cost_per_token: 0.000001, output_cost_per_token: 0.000002"
        )
    );
    let (client, gw, sink) = start(&yaml).await;
    let tasks: Vec<_> = (0..1000)
        .map(|n| {
            let c = client.handle();
            tokio::spawn(async move { c.chat("gpt", &format!("request {n}")).await.status })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    gw.flush_spend().await;
    let records = sink.records();
    assert_eq!(records.len(), 1000);
    let ids: HashSet<_> = records.iter().map(|r| r.request_id.clone()).collect();
    assert_eq!(ids.len(), 1000);
    assert!(records.iter().all(|r| r.cost.is_some_and(|c| c > 0.0)));
    assert_eq!(gw.meter().queue().dropped(), 0);
}

#[tokio::test]
async fn shutdown_under_load_loses_no_record() {
    let mock = MockProvider::start().await;
    mock.set_default(Behaviour::Ok.delayed(Duration::from_millis(100)));
    // Records would wait an hour for the interval: only shutdown writes the last batch.
    let yaml =
        format!(
        "model_list:\n{}general_settings:\n  proxy_batch_write_at: 3600\n  spend_batch_size: 7\n",
        entry("gpt", &format!("model: openai/gpt-x, api_base: {}, api_key: k", mock.v1_url()),
            "input_cost_per_token: 0.000001, output_cost_per_token: 0.000002")
    );
    let (client, gw, sink) = start(&yaml).await;
    let tasks: Vec<_> = (0..200)
        .map(|n| {
            let c = client.handle();
            tokio::spawn(async move { c.chat("gpt", &format!("request {n}")).await.status })
        })
        .collect();
    while mock.request_count() < 50 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Stop while requests are in flight: `serve` lets them finish, then writes the queue.
    client.shutdown().await;
    let mut served = 0;
    for t in tasks {
        // Requests that came after the listener closed fail to connect (their task panics).
        if let Ok(status) = t.await {
            assert_eq!(status, 200);
            served += 1;
        }
    }
    assert!(served >= 50, "{served}");
    assert_eq!(sink.len(), served);
    assert_eq!(gw.meter().queue().dropped(), 0);
}

/// Finds a sample's value: `name{labels...}` with every given label.
fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            prometheus_parse::Value::Histogram(ref h) => h.last().map_or(0.0, |b| b.count),
            _ => f64::NAN,
        })
}

#[tokio::test]
async fn metrics_are_prometheus_text_that_a_parser_reads() {
    let mock = MockProvider::start().await;
    let yaml = format!(
        "model_list:\n{}router_settings:\n  num_retries: 0\ngeneral_settings:\n  master_key: sk-master\n",
        entry("gpt", &format!("model: openai/gpt-x, api_base: {}, api_key: k", mock.v1_url()),
            "input_cost_per_token: 0.000001, output_cost_per_token: 0.000002")
    );
    let (client, _gw, _sink) = start(&yaml).await;
    let client = client.with_key("sk-master");
    assert_eq!(client.chat("gpt", "one").await.status, 200);
    assert_eq!(client.chat("gpt", "two").await.status, 200);
    mock.push(Behaviour::error(500, "boom"));
    assert!(client.chat("gpt", "three").await.status.is_server_error());
    assert_eq!(client.chat("nope", "x").await.status, 400);
    let mut anonymous = client.handle();
    anonymous.key = None;
    assert_eq!(anonymous.chat("gpt", "x").await.status, 401);
    let mut body = chat_body("gpt", "streamed");
    body["stream"] = json!(true);
    client
        .stream("/v1/chat/completions", &body)
        .await
        .rest()
        .await;

    for path in ["/metrics", "/metrics/"] {
        let res = client.get(path).await;
        assert_eq!(res.status, 200);
        assert!(res
            .header("content-type")
            .unwrap()
            .starts_with("application/openmetrics-text"));
    }
    let text = client.get("/metrics").await.text();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let ok = [
        ("model_group", "gpt"),
        ("deployment", "gpt-0"),
        ("status_class", "2xx"),
    ];
    assert_eq!(
        sample(&scrape, "llmgate_requests_total", &ok),
        Some(3.0),
        "{text}"
    );
    let failed = [("model_group", "gpt"), ("status_class", "5xx")];
    assert_eq!(
        sample(&scrape, "llmgate_request_failures_total", &failed),
        Some(1.0),
        "{text}"
    );
    let unknown = [
        ("model_group", "other"),
        ("deployment", "none"),
        ("status_class", "4xx"),
    ];
    assert_eq!(
        sample(&scrape, "llmgate_requests_total", &unknown),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &scrape,
            "llmgate_gateway_rejections_total",
            &[("reason", "auth")]
        ),
        Some(1.0)
    );
    let input = [("model_group", "gpt"), ("token_type", "input")];
    assert!(sample(&scrape, "llmgate_tokens_total", &input).unwrap() >= 3.0);
    assert!(
        sample(
            &scrape,
            "llmgate_spend_usd_total",
            &[("model_group", "gpt")]
        )
        .unwrap()
            > 0.0
    );
    assert_eq!(
        sample(
            &scrape,
            "llmgate_deployment_state",
            &[("deployment", "gpt-0")]
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(&scrape, "llmgate_in_flight_requests", &[]),
        Some(0.0)
    );
    assert_eq!(
        sample(&scrape, "llmgate_spend_records_dropped_total", &[]),
        Some(0.0)
    );
    assert!(sample(&scrape, "llmgate_spend_queue_depth", &[]).is_some());
    let streamed = [("model_group", "gpt"), ("stream", "true")];
    assert_eq!(
        sample(&scrape, "llmgate_request_duration_seconds", &streamed),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &scrape,
            "llmgate_time_to_first_token_seconds",
            &[("model_group", "gpt")]
        ),
        Some(1.0)
    );
    assert!(sample(&scrape, "llmgate_overhead_duration_seconds", &[]).unwrap() >= 2.0);
}

#[tokio::test]
async fn a_virtual_keys_record_carries_its_token_alias_and_tags() {
    let mock = MockProvider::start().await;
    let yaml = format!(
        "model_list:\n{}general_settings:\n  master_key: sk-master\n",
        entry(
            "gpt",
            &format!(
                "model: openai/gpt-x, api_base: {}, api_key: k",
                mock.v1_url()
            ),
            "input_cost_per_token: 0.000001, output_cost_per_token: 0.000002"
        )
    );
    let (client, gw, sink) = start(&yaml).await;
    let admin = client.handle().with_key("sk-master");
    let res = admin
        .post(
            "/key/generate",
            &json!({"key_alias": "billing", "tags": ["team-b"]}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let v = res.json();
    let key = v["key"].as_str().unwrap().to_owned();
    let user = client.handle().with_key(&key);
    let res = user
        .post(
            "/v1/chat/completions",
            &json!({"model": "gpt", "messages": [{"role": "user", "content": "x y"}],
                "tags": ["nightly"]}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let rec = only_record(&gw, &sink).await;
    let token = rec.key_token.clone().unwrap();
    assert_eq!(token.len(), 64, "the key's SHA-256, never the secret");
    assert!(!token.contains(&key[3..]));
    assert_eq!(rec.key_alias.as_deref(), Some("billing"));
    assert_eq!(rec.tags, ["nightly", "team-b"]);
    assert!(rec.cost.is_some_and(|c| c > 0.0));
}
