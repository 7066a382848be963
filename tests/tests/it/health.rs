//! `/health`: every deployment called, healthy and unhealthy listed; background checks take a
//! failing deployment out of rotation.

#![allow(clippy::unwrap_used)]

use llmgate_tests::{MockProvider, TestGateway};

fn config(ok: &str, dead: &str, extra: &str) -> String {
    format!(
        "model_list:
  - model_name: good
    litellm_params: {{model: openai/g, api_base: {ok}, api_key: sk-1}}
    model_info: {{id: good-0}}
  - model_name: bad
    litellm_params: {{model: openai/b, api_base: {dead}, api_key: sk-2}}
    model_info: {{id: bad-0}}
  - model_name: mocked
    litellm_params: {{model: openai/m, mock_response: hi}}
general_settings:
  master_key: sk-master
{extra}"
    )
}

fn dead_base() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}/v1")
}

#[tokio::test]
async fn health_calls_each_deployment_and_needs_the_master_key() {
    let mock = MockProvider::start().await;
    let gw = TestGateway::start(&config(&mock.v1_url(), &dead_base(), "")).await;
    gw.get("/health").await.openai_error(401);
    let gw = gw.with_key("sk-master");
    let res = gw.get("/health").await;
    assert_eq!(res.status, 200, "{}", res.text());
    let v = res.json();
    assert_eq!(v["healthy_count"], 2, "{v}");
    assert_eq!(v["unhealthy_count"], 1, "{v}");
    assert_eq!(v["unhealthy_endpoints"][0]["id"], "bad-0");
    assert!(
        v["unhealthy_endpoints"][0]["error"]
            .as_str()
            .unwrap()
            .contains("reach"),
        "{v}"
    );
    assert!(!res.text().contains("sk-1"), "keys never appear in /health");
    // The check is a one-token chat completion.
    let up = mock.last_request().unwrap();
    assert_eq!(up.json["max_tokens"], 1);
}

#[tokio::test]
async fn background_checks_take_a_failing_deployment_out_of_rotation() {
    let mock = MockProvider::start().await;
    let yaml = config(
        &mock.v1_url(),
        &dead_base(),
        "  background_health_checks: true\n  health_check_interval: 60\n",
    );
    let gw = TestGateway::start(&yaml).await.with_key("sk-master");
    // The first request starts the checks; wait until they have run.
    let mut report = gw.get("/health").await.json();
    for _ in 0..100 {
        if report["unhealthy_count"] == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        report = gw.get("/health").await.json();
    }
    assert_eq!(report["unhealthy_count"], 1, "{report}");
    // "bad" is cooling down: answered at once, naming the health check.
    let e = gw.chat("bad", "hi").await.openai_error(503);
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("failed its health check"),
        "{e}"
    );
    assert_eq!(gw.chat("good", "hi").await.status, 200);
}

#[tokio::test]
async fn ollama_is_probed_with_api_tags_not_a_completion() {
    let ollama = MockProvider::start_ollama().await;
    let yaml = format!(
        "model_list:\n  - model_name: local\n    litellm_params: {{model: ollama/llama3.2, api_base: {}}}\ngeneral_settings:\n  master_key: sk-master\n",
        ollama.base_url()
    );
    let gw = TestGateway::start(&yaml).await.with_key("sk-master");
    let v = gw.get("/health").await.json();
    assert_eq!(v["healthy_count"], 1, "{v}");
    let probe = ollama.last_request().unwrap();
    assert_eq!(
        (probe.method.as_str(), probe.path.as_str()),
        ("GET", "/api/tags")
    );
    drop(ollama);
    let v = gw.get("/health").await.json();
    assert_eq!(v["unhealthy_count"], 1, "{v}");
}
