//! What `llmgate_` metrics never carry (docs/metrics.md, "Labels"): a key, user, team, tag,
//! request id or error message.

use llmgate_tests::{Behaviour, MockProvider, TempDb, TestGateway};
use serde_json::{json, Value};

const MASTER: &str = "sk-master-labels";

/// A virtual key with an alias, a user and a team (with an alias) and tags, requests with an
/// end user and tags of their own, one answered and one failing upstream with a message: no
/// label value of any `llmgate_` sample contains any of them, nor the key, its hash or a
/// request id. LiteLLM's names, which carry the key's labels, show they reached metering.
#[tokio::test]
async fn no_llmgate_metric_carries_a_key_user_team_tag_request_id_or_error_message() {
    let mock = MockProvider::start().await;
    let db = TempDb::new("metric-labels");
    let yaml = format!(
        "model_list:\n  - model_name: gpt\n    litellm_params: {{model: openai/gpt-x, api_base: {}, api_key: k}}\n    model_info: {{id: gpt-0, input_cost_per_token: 0.001, output_cost_per_token: 0.001}}\nrouter_settings:\n  num_retries: 0\ngeneral_settings:\n  master_key: {MASTER}\n  database_url: {}\n",
        mock.v1_url(),
        db.url()
    );
    let gw = TestGateway::start(&yaml).await;
    let mut forbidden = traffic(&gw, &mock).await;

    let text = gw.get("/metrics").await.text();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    // LiteLLM's names carry the key's labels: the values reached metering, and the key's hash
    // is known.
    let litellm = scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "litellm_proxy_failed_requests_metric_total"
                && s.labels.get("api_key_alias") == Some("alias-zq1")
        })
        .unwrap_or_else(|| panic!("no failure under the key's alias:\n{text}"));
    assert_eq!(litellm.labels.get("team"), Some("team-zq2"));
    let hash = litellm.labels.get("hashed_api_key").unwrap();
    assert_eq!(hash.len(), 64, "{hash}");
    forbidden.push(hash.to_owned());

    let ours: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| s.metric.starts_with("llmgate_"))
        .collect();
    assert!(
        ours.iter()
            .any(|s| s.metric == "llmgate_request_failures_total"),
        "{text}"
    );
    for s in ours {
        for (name, value) in s.labels.iter() {
            for f in &forbidden {
                assert!(
                    !value.contains(f.as_str()),
                    "{}{{{name}=\"{value}\"}} carries {f:?}",
                    s.metric
                );
            }
        }
    }
}

/// A team, a key in it, one answered and one failed request by the key with an end user and
/// tags: what no `llmgate_` label may contain (the key, its alias, user, team, tags, the end
/// user, the upstream's message, each request's id).
async fn traffic(gw: &TestGateway, mock: &MockProvider) -> Vec<String> {
    let admin = gw.handle().with_key(MASTER);
    let post = |path: &'static str, body: Value| {
        let admin = admin.handle();
        async move {
            let res = admin.post(path, &body).await;
            assert_eq!(res.status, 200, "{path}: {}", res.text());
            res.json()
        }
    };
    let team = post(
        "/team/new",
        json!({"team_alias": "teamalias-zq3", "team_id": "team-zq2"}),
    )
    .await;
    assert_eq!(team["team_id"], "team-zq2");
    let made = post(
        "/key/generate",
        json!({"key_alias": "alias-zq1", "user_id": "user-zq4", "team_id": "team-zq2",
            "tags": ["keytag-zq5"]}),
    )
    .await;
    let secret = made["key"].as_str().unwrap().to_owned();
    let user = gw.handle().with_key(&secret);
    let body = json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}],
        "user": "enduser-zq6", "metadata": {"tags": ["reqtag-zq7"]}});
    let ok = user.post("/v1/chat/completions", &body).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    mock.push(Behaviour::error(500, "boom-zq8 the upstream exploded"));
    let failed = user.post("/v1/chat/completions", &body).await;
    let e = failed.openai_error(500);
    assert!(e["message"].as_str().unwrap().contains("boom-zq8"), "{e}");
    let mut forbidden: Vec<String> = [
        "alias-zq1",
        "team-zq2",
        "teamalias-zq3",
        "user-zq4",
        "keytag-zq5",
        "enduser-zq6",
        "reqtag-zq7",
        "boom-zq8",
        "upstream exploded",
        &secret,
    ]
    .map(str::to_owned)
    .to_vec();
    for res in [&ok, &failed] {
        forbidden.push(res.header("x-llmgate-request-id").unwrap().to_owned());
    }
    forbidden
}
