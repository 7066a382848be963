//! The shipped Grafana dashboards query only names `/metrics` serves: `deploy/grafana/llmgate.json`
//! (llmgate's names) and `deploy/grafana/litellm-compatible.json` (LiteLLM's). A family shows in
//! `/metrics` once it has a sample, so the test first makes traffic that gives each family the
//! dashboards read one: answers streamed and not, a retry that succeeds on the second
//! deployment, a failure, a cache hit, an unpriced model, a refused key.

#![allow(clippy::unwrap_used, clippy::panic, reason = "test helpers")]

use crate::support::{get, post, start_with, stop, write_config};
use llmgate_testkit::{Behaviour, MockProvider};
use serde_json::json;

const MASTER: &str = "sk-master-dashboards";

/// Every `prefix` name in the dashboard `file` that looks like a metric (a counter's `_total`,
/// a histogram's `_bucket`, or a served gauge) has its `# TYPE` line in `metrics`.
fn served(metrics: &str, file: &str, prefix: &str) {
    let path = format!("{}/../../deploy/grafana/{file}", env!("CARGO_MANIFEST_DIR"));
    let dashboard = std::fs::read_to_string(&path).unwrap();
    let mut names = 0;
    for (i, _) in dashboard.match_indices(prefix) {
        let name: String = dashboard[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let base = name.trim_end_matches("_bucket").trim_end_matches("_total");
        let looks_like_a_metric = base != name
            || name.ends_with("_state")
            || name.ends_with("_depth")
            || name.ends_with("_requests");
        if !looks_like_a_metric {
            continue; // a label, a title, the dashboard's uid
        }
        assert!(
            metrics.contains(&format!("# TYPE {base} ")),
            "{file} queries {name}, which /metrics does not serve"
        );
        names += 1;
    }
    assert!(names >= 10, "{names} names found in {path}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboards_query_only_served_names() {
    let (good, bad) = (MockProvider::start().await, MockProvider::start().await);
    bad.set_default(Behaviour::error(500, "down"));
    let deployment = |group: &str, id: &str, base: &str, priced: bool| {
        let prices = if priced {
            "      input_cost_per_token: 0.000001\n      output_cost_per_token: 0.000002\n"
        } else {
            ""
        };
        format!(
            "  - model_name: {group}\n    litellm_params:\n      model: openai/{group}-{id}\n      \
             api_base: {base}\n      api_key: sk-test\n    model_info:\n      id: {id}\n{prices}"
        )
    };
    let text = format!(
        "model_list:\n{}{}{}{}router_settings:\n  num_retries: 1\n  routing_strategy: simple-shuffle\n\
         litellm_settings:\n  cache: true\n  cache_params:\n    type: local\n\
         general_settings:\n  master_key: {MASTER}\n",
        deployment("g", "g-bad", &bad.v1_url(), true),
        deployment("g", "g-good", &good.v1_url(), true),
        deployment("broken", "b-1", &bad.v1_url(), true),
        deployment("free", "f-1", &good.v1_url(), false),
    );
    let config = write_config("dashboards", &text);
    let (mut gateway, addr) = start_with(&config, &[], &[]).await;
    let ask = |model: &str, content: &str, stream: bool| json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": content}]});
    // Until the bad deployment of `g` has been tried once and the retry served.
    for i in 0..20 {
        let (status, body) = post(
            addr,
            "/v1/chat/completions",
            MASTER,
            &ask("g", &format!("q{i}"), false),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        if bad.request_count() > 0 {
            break;
        }
    }
    assert!(bad.request_count() > 0, "the retry never happened");
    let once = ask("g", "cached", false);
    for _ in 0..2 {
        assert_eq!(
            post(addr, "/v1/chat/completions", MASTER, &once).await.0,
            200
        );
    }
    assert_eq!(
        post(addr, "/v1/chat/completions", MASTER, &ask("g", "s", true))
            .await
            .0,
        200
    );
    assert_eq!(
        post(
            addr,
            "/v1/chat/completions",
            MASTER,
            &ask("free", "f", false)
        )
        .await
        .0,
        200
    );
    assert_ne!(
        post(
            addr,
            "/v1/chat/completions",
            MASTER,
            &ask("broken", "b", false)
        )
        .await
        .0,
        200
    );
    assert_eq!(
        post(
            addr,
            "/v1/chat/completions",
            "sk-unknown",
            &ask("g", "x", false)
        )
        .await
        .0,
        401
    );

    let (_, metrics) = get(addr, "/metrics").await;
    served(&metrics, "llmgate.json", "llmgate_");
    served(&metrics, "litellm-compatible.json", "litellm_");
    stop(&mut gateway).await;
}
