//! `/v1/responses` passed through to upstreams that serve the Responses API themselves: the
//! answer and each stream event as the upstream sent them (only the response id is the
//! gateway's), metering from the Responses usage, fallback to a translated provider, the
//! cache, `/metrics`, `model_info.supported_endpoints` and Azure's paths.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use llmgate::metering::MemorySink;
use llmgate_tests::{deployment, Behaviour, MockProvider, TestGateway};
use serde_json::{json, Value};

use super::{post, text_of, KEY};

/// A `model_list` entry for `openai/{id}` on `base` that declares the Responses API.
pub(super) fn native(group: &str, id: &str, base: &str) -> String {
    let mut y = deployment(group, id, base, &[]);
    y.push_str("      supported_endpoints: [\"/v1/chat/completions\", \"/v1/responses\"]\n");
    y.push_str("      input_cost_per_token: 0.00001\n      output_cost_per_token: 0.00003\n");
    y
}

pub(super) fn with_key(models: &str, rest: &str) -> String {
    format!("model_list:\n{models}general_settings:\n  master_key: {KEY}\n{rest}")
}

/// The deployment and upstream id inside a gateway's id for a response stored upstream.
pub(super) fn unpin(id: &str) -> (String, String) {
    let b64 = id.strip_prefix("resp_").unwrap();
    let plain = String::from_utf8(URL_SAFE_NO_PAD.decode(b64).unwrap()).unwrap();
    let rest = plain.strip_prefix("llmgate;deployment:").unwrap();
    let (dep, upstream) = rest.rsplit_once(";response_id:").unwrap();
    (dep.to_owned(), upstream.to_owned())
}

/// Asserts `raw` is exactly what the mock wrote once the gateway's id is put back: the mock
/// writes compact JSON, so re-serialising what parsed gives the same bytes unless something
/// was changed on the way.
fn as_upstream_sent(raw: &str, ours: &str, upstream: &str) -> Value {
    let back = raw.replace(ours, upstream);
    let v: Value = serde_json::from_str(&back).unwrap();
    assert_eq!(v.to_string(), back, "changed on the way");
    v
}

#[tokio::test]
async fn a_native_answer_is_the_upstreams_with_a_pinned_id() {
    let mock = MockProvider::start_responses().await;
    let gw = TestGateway::start(&with_key(&native("gpt", "gpt-a", &mock.v1_url()), ""))
        .await
        .with_key(KEY);
    let res = post(
        &gw,
        &json!({"model": "gpt", "input": "hello there", "instructions": "Be brief.",
            "metadata": {"k": "v"}, "tags": ["t1"], "num_retries": 1, "max_output_tokens": 20}),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("content-type"), Some("application/json"));
    let id = res.json()["id"].as_str().unwrap().to_owned();
    let (dep, upstream) = unpin(&id);
    assert_eq!(dep, "gpt-a");
    assert!(upstream.starts_with("resp_mock"), "{upstream}");
    let v = as_upstream_sent(&res.text(), &id, &upstream);
    // The upstream's object: its model name, its message id, its usage.
    assert_eq!(v["model"], "gpt-a");
    assert_eq!(text_of(&v), "mock reply to: hello there");
    assert!(v["output"][0]["id"]
        .as_str()
        .unwrap()
        .starts_with("msg_mock"));
    // What the upstream got: the Responses request, model rewritten, gateway fields out.
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.path, "/v1/responses");
    assert_eq!(
        sent.headers["authorization"].to_str().unwrap(),
        "Bearer sk-gpt-a"
    );
    assert_eq!(
        sent.json,
        json!({"model": "gpt-a", "input": "hello there", "instructions": "Be brief.",
            "metadata": {"k": "v"}, "max_output_tokens": 20})
    );
    // Metered from the Responses usage: (2 * 1e-5) + (5 * 3e-5).
    let cost: f64 = res
        .header("x-llmgate-response-cost")
        .unwrap()
        .parse()
        .unwrap();
    assert!((cost - (2.0 * 1e-5 + 5.0 * 3e-5)).abs() < 1e-12, "{cost}");
    assert_eq!(res.header("x-llmgate-deployment"), Some("gpt-a"));
}

#[tokio::test]
async fn a_native_stream_is_relayed_event_for_event() {
    let mock = MockProvider::start_responses().await;
    let gw = TestGateway::start(&with_key(&native("gpt", "gpt-a", &mock.v1_url()), ""))
        .await
        .with_key(KEY);
    let mut s = gw
        .stream(
            "/v1/responses",
            &json!({"model": "gpt", "input": "hello there", "stream": true}),
        )
        .await;
    assert_eq!(s.status, 200);
    let mut ev = Vec::new();
    while let Some(e) = s.next_event().await {
        ev.push(e);
    }
    let (_, first) = &ev[0];
    let first: Value = serde_json::from_str(first).unwrap();
    let id = first["response"]["id"].as_str().unwrap().to_owned();
    let (dep, upstream) = unpin(&id);
    assert_eq!(dep, "gpt-a");
    // 4 opening events, one delta per word of "mock reply to: hello there", 4 closing ones.
    assert_eq!(ev.len(), 4 + 5 + 4, "{ev:?}");
    let mut parsed = Vec::new();
    for (seq, (name, data)) in ev.iter().enumerate() {
        let v = as_upstream_sent(data, &id, &upstream);
        assert_eq!(v["type"], name.as_str());
        assert_eq!(v["sequence_number"], seq);
        parsed.push((name.clone(), serde_json::from_str::<Value>(data).unwrap()));
    }
    let (last, done) = parsed.last().unwrap();
    assert_eq!(last, "response.completed");
    assert_eq!(done["response"]["id"], id.as_str());
    assert_eq!(text_of(&done["response"]), "mock reply to: hello there");
    assert_eq!(mock.last_request().unwrap().json["stream"], true);
}

#[tokio::test]
async fn native_answers_are_metered_from_their_usage_streamed_and_not() {
    let mock = MockProvider::start_responses().await;
    let y = with_key(&native("gpt", "gpt-a", &mock.v1_url()), "");
    let loaded = llmgate_config::from_yaml(&y, Path::new("."), &HashMap::<String, String>::new())
        .unwrap_or_else(|p| panic!("config rejected:\n{p}"));
    let sink = MemorySink::new();
    let gateway = llmgate::Gateway::builder(loaded.config)
        .spend_sink(Arc::new(sink.clone()))
        .build()
        .unwrap();
    let gw = TestGateway::serve(gateway.clone()).await.with_key(KEY);
    assert_eq!(
        post(&gw, &json!({"model": "gpt", "input": "one two three"}))
            .await
            .status,
        200
    );
    let mut s = gw
        .stream(
            "/v1/responses",
            &json!({"model": "gpt", "input": "four five", "stream": true}),
        )
        .await;
    while s.next_event().await.is_some() {}
    gateway.flush_spend().await;
    let records = sink.records();
    assert_eq!(records.len(), 2, "{records:?}");
    // "mock reply to: one two three" is 6 words; "mock reply to: four five" 5.
    for (r, (prompt, completion)) in records.iter().zip([(3, 6), (2, 5)]) {
        assert_eq!(
            (r.tokens.prompt, r.tokens.completion),
            (prompt, completion),
            "{r:?}"
        );
        let expected = prompt as f64 * 1e-5 + completion as f64 * 3e-5;
        assert!((r.cost.unwrap() - expected).abs() < 1e-12, "{r:?}");
        assert!(!r.usage_estimated, "{r:?}");
    }
    let text = gw.get("/metrics").await.text();
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("llmgate_requests_total{")
                && l.contains("deployment=\"gpt-a\"")
                && l.contains("status_class=\"2xx\"")
        })
        .unwrap_or_else(|| panic!("no requests counted for gpt-a:\n{text}"));
    assert!(line.ends_with(" 2"), "{line}");
}

#[tokio::test]
async fn a_failing_native_deployment_falls_back_to_a_translated_one() {
    let openai = MockProvider::start_responses().await;
    let anthropic = MockProvider::start_anthropic().await;
    let models = format!(
        "{}  - model_name: claude\n    litellm_params: {{model: anthropic/claude-x, api_base: {}, api_key: k}}\n",
        native("gpt", "gpt-a", &openai.v1_url()),
        anthropic.base_url()
    );
    let gw = TestGateway::start(&with_key(
        &models,
        "router_settings:\n  num_retries: 0\n  fallbacks: [{gpt: [claude]}]\n",
    ))
    .await
    .with_key(KEY);
    for stream in [false, true] {
        openai.push(Behaviour::error(500, "gpt-a is down"));
        let body = json!({"model": "gpt", "input": "hello there", "stream": stream});
        let (v, fallbacks) = if stream {
            let mut s = gw.stream("/v1/responses", &body).await;
            assert_eq!(s.status, 200);
            let fallbacks = s.headers["x-llmgate-fallbacks"]
                .to_str()
                .unwrap()
                .to_owned();
            let mut ev = Vec::new();
            while let Some((name, data)) = s.next_event().await {
                ev.push((name, serde_json::from_str::<Value>(&data).unwrap()));
            }
            super::conformance::stream(&ev);
            (ev.last().unwrap().1["response"].clone(), fallbacks)
        } else {
            let res = post(&gw, &body).await;
            assert_eq!(res.status, 200, "{}", res.text());
            (
                res.json(),
                res.header("x-llmgate-fallbacks").unwrap().to_owned(),
            )
        };
        assert_eq!(fallbacks, "1");
        // Translated from Anthropic's answer: the gateway's own response, stored here.
        assert_eq!(text_of(&v), "mock reply to: hello there");
        assert_eq!(v["model"], "gpt");
        let id = v["id"].as_str().unwrap();
        assert!(id.len() == "resp_".len() + 32, "not a pinned id: {id}");
        assert_eq!(gw.get(&format!("/v1/responses/{id}")).await.status, 200);
    }
    assert_eq!(openai.request_count(), 2);
    assert_eq!(anthropic.request_count(), 2);
    assert!(anthropic
        .requests()
        .iter()
        .all(|r| r.path == "/v1/messages"));
}

#[tokio::test]
async fn supported_endpoints_switch_an_openai_compatible_deployment_to_native() {
    let mock = MockProvider::start_responses().await;
    let models = format!(
        "{}{}  - model_name: vllm\n    litellm_params: {{model: hosted_vllm/llama, api_base: {}}}\n    model_info: {{supported_endpoints: [/v1/responses]}}\n",
        deployment("plain", "plain-0", &mock.v1_url(), &[]),
        native("declared", "declared-0", &mock.v1_url()),
        mock.v1_url(),
    );
    let gw = TestGateway::start(&with_key(&models, ""))
        .await
        .with_key(KEY);
    for (group, path) in [
        ("plain", "/v1/chat/completions"),
        ("declared", "/v1/responses"),
        ("vllm", "/v1/responses"),
    ] {
        let res = post(&gw, &json!({"model": group, "input": "hi"})).await;
        assert_eq!(res.status, 200, "{group}: {}", res.text());
        assert_eq!(mock.last_request().unwrap().path, path, "{group}");
        assert_eq!(text_of(&res.json()), "mock reply to: hi");
    }
    // Built-in tools go to a native deployment as they are; one that translates refuses them.
    let tools = json!([{"type": "web_search"}]);
    let res = post(
        &gw,
        &json!({"model": "declared", "input": "hi", "tools": tools}),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(mock.last_request().unwrap().json["tools"], tools);
    let refused = post(
        &gw,
        &json!({"model": "plain", "input": "hi", "tools": tools}),
    )
    .await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert_eq!(refused.json()["error"]["param"], "tools");
    assert_eq!(mock.request_count(), 4);
}

#[tokio::test]
async fn azure_deployments_use_azures_responses_paths() {
    let mock = MockProvider::start_responses().await;
    let models = format!(
        "  - model_name: az\n    litellm_params: {{model: azure/my-deployment, api_base: {base}, api_key: az-key}}\n    model_info: {{id: az-v1}}\n  - model_name: az-dated\n    litellm_params: {{model: azure/my-deployment, api_base: {base}, api_key: az-key, api_version: 2025-04-01-preview}}\n    model_info: {{id: az-dated}}\n",
        base = mock.base_url()
    );
    let gw = TestGateway::start(&with_key(&models, ""))
        .await
        .with_key(KEY);
    let res = post(&gw, &json!({"model": "az", "input": "hi"})).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.path_and_query, "/openai/v1/responses");
    assert_eq!(sent.headers["api-key"], "az-key");
    assert!(sent.headers.get("authorization").is_none());
    assert_eq!(sent.json["model"], "my-deployment");
    let res = post(&gw, &json!({"model": "az-dated", "input": "hi"})).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        mock.last_request().unwrap().path_and_query,
        "/openai/responses?api-version=2025-04-01-preview"
    );
    // A stored response is read on the same path, the same version.
    let id = res.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(unpin(&id).0, "az-dated");
    let got = gw.get(&format!("/v1/responses/{id}")).await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.json()["id"], id.as_str());
    let (_, upstream) = unpin(&id);
    assert_eq!(
        mock.last_request().unwrap().path_and_query,
        format!("/openai/responses/{upstream}?api-version=2025-04-01-preview")
    );
}

#[tokio::test]
async fn native_answers_are_not_cached() {
    let mock = MockProvider::start_responses().await;
    let gw = TestGateway::start(&with_key(
        &native("gpt", "gpt-a", &mock.v1_url()),
        "litellm_settings:\n  cache: true\n  cache_params:\n    type: local\n",
    ))
    .await
    .with_key(KEY);
    let body = json!({"model": "gpt", "input": "hello there"});
    let first = post(&gw, &body).await;
    let second = post(&gw, &body).await;
    assert_eq!((first.status.as_u16(), second.status.as_u16()), (200, 200));
    assert_ne!(second.header("x-llmgate-cache"), Some("hit"));
    assert_ne!(first.json()["id"], second.json()["id"]);
    assert_eq!(mock.request_count(), 2);
}

#[tokio::test]
async fn a_native_stream_cut_midway_ends_with_response_failed() {
    let mock = MockProvider::start_responses().await;
    let gw = TestGateway::start(&with_key(&native("gpt", "gpt-a", &mock.v1_url()), ""))
        .await
        .with_key(KEY);
    mock.push(Behaviour::cut_after(5));
    let mut s = gw
        .stream(
            "/v1/responses",
            &json!({"model": "gpt", "input": "hello there", "stream": true}),
        )
        .await;
    assert_eq!(s.status, 200);
    let mut ev = Vec::new();
    while let Some((name, data)) = s.next_event().await {
        ev.push((name, serde_json::from_str::<Value>(&data).unwrap()));
    }
    assert_eq!(ev.len(), 6, "{ev:?}");
    let (name, failed) = ev.last().unwrap();
    assert_eq!(name, "response.failed");
    assert_eq!(failed["type"], "response.failed");
    assert_eq!(failed["sequence_number"], 5);
    let r = &failed["response"];
    assert_eq!(r["status"], "failed");
    assert_eq!(r["id"], ev[0].1["response"]["id"]);
    assert_eq!(r["error"]["code"], "server_error");
    assert!(
        r["error"]["message"].as_str().unwrap().contains("gpt-a"),
        "{r}"
    );
}

#[tokio::test]
async fn the_responses_example_config_serves_its_vllm_model_natively() {
    let vllm = MockProvider::start_responses().await;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/configs");
    let text = std::fs::read_to_string(dir.join("responses.yaml")).unwrap();
    let vars: HashMap<String, String> = [
        ("OPENAI_API_KEY", "sk-openai"),
        ("AZURE_API_BASE", "http://127.0.0.1:9"),
        ("AZURE_API_KEY", "az"),
        ("VLLM_API_BASE", vllm.v1_url().as_str()),
        ("ANTHROPIC_API_KEY", "sk-ant"),
        ("LLMGATE_MASTER_KEY", KEY),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let loaded = llmgate_config::from_yaml(&text, &dir, &vars).unwrap_or_else(|p| panic!("{p}"));
    let gateway = llmgate::Gateway::builder(loaded.config).build().unwrap();
    let gw = TestGateway::serve(gateway).await.with_key(KEY);
    let res = post(&gw, &json!({"model": "llama", "input": "hello"})).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(unpin(res.json()["id"].as_str().unwrap()).0, "llama-vllm");
    let sent = vllm.last_request().unwrap();
    assert_eq!(sent.path, "/v1/responses");
    assert_eq!(sent.json["model"], "meta-llama/Llama-3.1-8B-Instruct");
}

#[tokio::test]
async fn a_request_only_a_native_deployment_can_take_avoids_translated_ones() {
    let openai = MockProvider::start_responses().await;
    let anthropic = MockProvider::start_anthropic().await;
    let models = format!(
        "{}  - model_name: gpt\n    litellm_params: {{model: anthropic/claude-x, api_base: {}, api_key: k}}\n    model_info: {{id: gpt-claude}}\n",
        native("gpt", "gpt-a", &openai.v1_url()),
        anthropic.base_url()
    );
    let gw = TestGateway::start(&with_key(&models, "router_settings:\n  num_retries: 0\n"))
        .await
        .with_key(KEY);
    // Shuffled evenly, eight requests would reach the Anthropic deployment about four times.
    for _ in 0..8 {
        let res = post(
            &gw,
            &json!({"model": "gpt", "input": "hi", "tools": [{"type": "web_search"}]}),
        )
        .await;
        assert_eq!(res.status, 200, "{}", res.text());
        assert_eq!(res.header("x-llmgate-deployment"), Some("gpt-a"));
    }
    assert_eq!((openai.request_count(), anthropic.request_count()), (8, 0));
}
