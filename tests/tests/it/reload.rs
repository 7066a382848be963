//! Config reload through the library (`Gateway::reload`, `reload_file`, `POST /config/reload`):
//! new models answer and removed ones are gone right after it returns; limits change; what
//! must survive does (virtual keys, router state of unchanged deployments, queued spend, streams
//! in flight); an invalid or restart-only config changes nothing. The binary's SIGHUP and file
//! watch are tested in `crates/llmgate-server/tests/server/reload.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use llmgate::metering::MemorySink;
use llmgate::{Gateway, ReloadError};
use llmgate_tests::{chat_body, deployment, Behaviour, Gate, MockProvider, TestGateway};
use serde_json::json;

const MASTER: &str = "sk-master-reload";

fn config(yaml: &str) -> llmgate::Config {
    llmgate_config::from_yaml(
        yaml,
        Path::new("."),
        &std::collections::HashMap::<String, String>::new(),
    )
    .unwrap_or_else(|p| panic!("config rejected:\n{p}"))
    .config
}

fn models(entries: &[String], rest: &str) -> String {
    format!("model_list:\n{}{rest}", entries.concat())
}

async fn serve(yaml: &str) -> (Gateway, TestGateway) {
    let gateway = Gateway::new(config(yaml)).unwrap();
    (gateway.clone(), TestGateway::serve(gateway).await)
}

/// A file of its own in the temp directory, written by `write`.
fn temp_config(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "llmgate-reload-{name}-{}-{}",
        std::process::id(),
        unique()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("config.yaml")
}

fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

async fn metric(gw: &TestGateway, line_start: &str) -> String {
    let text = gw.get("/metrics").await.text();
    text.lines()
        .find(|l| l.starts_with(line_start))
        .unwrap_or_else(|| panic!("no {line_start} in /metrics:\n{text}"))
        .to_owned()
}

#[tokio::test]
async fn added_models_answer_and_removed_ones_are_gone_right_after_the_reload() {
    let mock = MockProvider::start().await;
    let url = mock.v1_url();
    let (gateway, gw) = serve(&models(&[deployment("a", "a1", &url, &[])], "")).await;
    assert_eq!(gw.chat("a", "hi").await.status, 200);
    assert_eq!(gw.chat("b", "hi").await.status, 400);
    assert!(gw
        .get("/metrics")
        .await
        .text()
        .contains("llmgate_deployment_state{model_group=\"a\",deployment=\"a1\"} 0"));

    let outcome = gateway
        .reload(config(&models(&[deployment("b", "b1", &url, &[])], "")))
        .unwrap();
    assert_eq!(outcome.models_added, ["b"]);
    assert_eq!(outcome.models_removed, ["a"]);
    assert_eq!(gw.chat("b", "hi").await.status, 200);
    let gone = gw.chat("a", "hi").await;
    assert_eq!(gone.status, 400, "{}", gone.text());
    let listed = gw.get("/v1/models").await.json();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert_eq!(listed["data"][0]["id"], "b");
    assert_eq!(gateway.models(), [("b".to_owned(), "openai".to_owned())]);
    assert_eq!(
        metric(&gw, "llmgate_config_reloads_total{result=\"ok\"}").await,
        "llmgate_config_reloads_total{result=\"ok\"} 1"
    );
    let scraped = gw.get("/metrics").await.text();
    assert!(
        scraped.contains("llmgate_deployment_state{model_group=\"b\",deployment=\"b1\"} 0"),
        "{scraped}"
    );
    assert!(
        !scraped.contains("llmgate_deployment_state{model_group=\"a\""),
        "a removed deployment's state is still shown:\n{scraped}"
    );
}

#[tokio::test]
async fn limits_change_with_the_reload() {
    let mock = MockProvider::start().await;
    let url = mock.v1_url();
    let limited = models(&[deployment("a", "a1", &url, &["rpm: 1"])], "");
    let (gateway, gw) = serve(&limited).await;
    assert_eq!(gw.chat("a", "1").await.status, 200);
    assert_eq!(gw.chat("a", "2").await.status, 429);
    gateway
        .reload(config(&models(
            &[deployment("a", "a1", &url, &["rpm: 100"])],
            "",
        )))
        .unwrap();
    for i in 0..5 {
        assert_eq!(gw.chat("a", &i.to_string()).await.status, 200);
    }
    // And a gateway-wide limit: one request at a time per caller.
    let gate = Gate::new();
    mock.set_default(Behaviour::gated(&gate, 0));
    gateway
        .reload(config(&models(
            &[deployment("a", "a1", &url, &["rpm: 100"])],
            "general_settings:\n  max_parallel_requests: 1\n",
        )))
        .unwrap();
    let held = tokio::spawn({
        let gw = gw.handle();
        async move { gw.chat("a", "held").await.status }
    });
    gate.wait_for_arrivals(1).await;
    assert_eq!(gw.chat("a", "second").await.status, 429);
    gate.release();
    assert_eq!(held.await.unwrap(), 200);
}

#[tokio::test]
async fn virtual_keys_survive_a_reload() {
    let mock = MockProvider::start().await;
    let url = mock.v1_url();
    let master = format!("general_settings:\n  master_key: {MASTER}\n");
    let (gateway, gw) = serve(&models(&[deployment("a", "a1", &url, &[])], &master)).await;
    let admin = gw.handle().with_key(MASTER);
    let created = admin.post("/key/generate", &json!({})).await;
    assert_eq!(created.status, 200, "{}", created.text());
    let key = created.json()["key"].as_str().unwrap().to_owned();
    let user = gw.handle().with_key(&key);
    assert_eq!(user.chat("a", "before").await.status, 200);

    let entries = [
        deployment("a", "a1", &url, &[]),
        deployment("b", "b1", &url, &[]),
    ];
    gateway.reload(config(&models(&entries, &master))).unwrap();
    assert_eq!(user.chat("a", "after").await.status, 200);
    assert_eq!(user.chat("b", "after").await.status, 200);
    assert_eq!(admin.get(&format!("/key/info?key={key}")).await.status, 200);
}

#[tokio::test]
async fn a_cooldown_survives_on_an_unchanged_deployment_and_resets_on_a_changed_one() {
    let (one, two) = (MockProvider::start().await, MockProvider::start().await);
    let router = "router_settings:\n  allowed_fails: 0\n  cooldown_time: 600\n";
    let group = |a1: &[&str]| {
        vec![
            deployment("g", "a1", &one.v1_url(), a1),
            deployment("g", "a2", &two.v1_url(), &[]),
        ]
    };
    let (gateway, gw) = serve(&models(&group(&[]), router)).await;
    // a1 fails once and cools down; its request is retried on a2.
    one.set_default(Behaviour::error(500, "down"));
    for _ in 0..20 {
        if one.request_count() > 0 {
            break;
        }
        assert_eq!(gw.chat("g", "x").await.status, 200);
    }
    assert_eq!(one.request_count(), 1, "a1 was tried once");
    one.set_default(Behaviour::reply("a1 is back"));

    // Unchanged a1 (another model added): still cooling down.
    let mut more = group(&[]);
    more.push(deployment("other", "o1", &two.v1_url(), &[]));
    let outcome = gateway.reload(config(&models(&more, router))).unwrap();
    assert_eq!(outcome.deployments_kept, 2);
    for _ in 0..10 {
        assert_eq!(gw.chat("g", "x").await.served_by().0, "a2");
    }
    assert_eq!(one.request_count(), 1);

    // a1 changed (a new rpm, which also makes it the only one weighted): fresh, in rotation.
    let outcome = gateway
        .reload(config(&models(&group(&["rpm: 1000"]), router)))
        .unwrap();
    assert_eq!(outcome.models_changed, ["g"]);
    assert_eq!(gw.chat("g", "x").await.served_by().0, "a1");
}

#[tokio::test]
async fn spend_queued_before_a_reload_is_written() {
    let mock = MockProvider::start().await;
    let url = mock.v1_url();
    let slow = "general_settings:\n  proxy_batch_write_at: 600\n";
    let sink = Arc::new(MemorySink::new());
    let gateway = Gateway::builder(config(&models(&[deployment("a", "a1", &url, &[])], slow)))
        .spend_sink(sink.clone())
        .build()
        .unwrap();
    let gw = TestGateway::serve(gateway.clone()).await;
    assert_eq!(gw.chat("a", "before").await.status, 200);
    gateway
        .reload(config(&models(&[deployment("b", "b1", &url, &[])], slow)))
        .unwrap();
    assert_eq!(gw.chat("b", "after").await.status, 200);
    assert!(sink.is_empty(), "written before the batch interval");
    gateway.flush_spend().await;
    let groups: Vec<String> = sink
        .records()
        .iter()
        .map(|r| r.requested_model.clone())
        .collect();
    assert_eq!(groups, ["a", "b"]);
}

#[tokio::test]
async fn an_invalid_config_changes_nothing_and_every_problem_is_returned() {
    let mock = MockProvider::start().await;
    let url = mock.v1_url();
    let (gateway, gw) = serve(&models(&[deployment("a", "a1", &url, &[])], "")).await;
    let path = temp_config("invalid");
    std::fs::write(
        &path,
        format!(
            "{}  - model_name: c\n    litellm_params:\n      api_base: {url}\nrouter_settings:\n  routing_strategy: nonsense\n",
            models(&[deployment("b", "b1", &url, &[])], "")
        ),
    )
    .unwrap();
    let err = gateway.reload_file(&path).unwrap_err();
    assert!(matches!(err, ReloadError::Invalid(_)), "{err}");
    let problems = err.problems();
    assert!(problems.len() >= 2, "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("model")), "{problems:?}");
    assert!(
        problems.iter().any(|p| p.contains("routing_strategy")),
        "{problems:?}"
    );
    assert_eq!(gw.chat("a", "still").await.status, 200);
    assert_eq!(gw.chat("b", "not yet").await.status, 400);
    assert_eq!(
        metric(&gw, "llmgate_config_reloads_total{result=\"invalid\"}").await,
        "llmgate_config_reloads_total{result=\"invalid\"} 1"
    );
}

#[tokio::test]
async fn a_setting_that_needs_a_restart_is_refused_and_changes_nothing() {
    let mock = MockProvider::start().await;
    let url = mock.v1_url();
    let (gateway, gw) = serve(&models(&[deployment("a", "a1", &url, &[])], "")).await;
    let err = gateway
        .reload(config(&models(
            &[deployment("b", "b1", &url, &[])],
            "general_settings:\n  database_url: postgresql://127.0.0.1:5432/elsewhere\n  max_request_size_mb: 1\n",
        )))
        .unwrap_err();
    let problems = err.problems();
    assert!(matches!(err, ReloadError::NeedsRestart(_)), "{err}");
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("general_settings.database_url"));
    assert!(problems[1].contains("general_settings.max_request_size_mb"));
    assert!(problems.iter().all(|p| p.contains("needs a restart")));
    assert_eq!(gw.chat("a", "still").await.status, 200);
    assert_eq!(gw.chat("b", "not applied").await.status, 400);
    assert_eq!(
        metric(&gw, "llmgate_config_reloads_total{result=\"refused\"}").await,
        "llmgate_config_reloads_total{result=\"refused\"} 1"
    );
}

#[tokio::test]
async fn a_stream_started_before_the_reload_finishes_on_the_old_config() {
    let mock = MockProvider::start().await;
    let url = mock.v1_url();
    let gate = Gate::new();
    mock.push(Behaviour::gated(&gate, 1));
    let (gateway, gw) = serve(&models(&[deployment("a", "a1", &url, &[])], "")).await;
    let mut body = chat_body("a", "long story");
    body["stream"] = json!(true);
    let mut stream = gw.stream("/v1/chat/completions", &body).await;
    assert_eq!(stream.status, 200);
    assert!(stream.next_data().await.is_some());

    gateway
        .reload(config(&models(&[deployment("b", "b1", &url, &[])], "")))
        .unwrap();
    assert_eq!(gw.chat("a", "new request").await.status, 400);
    gate.release();
    let rest = stream.rest().await;
    assert_eq!(rest.last().map(String::as_str), Some("[DONE]"), "{rest:?}");
    assert!(!rest.iter().any(|e| e.contains("\"error\"")), "{rest:?}");
}

#[tokio::test]
async fn post_config_reload_needs_the_master_key_and_lists_every_problem() {
    let mock = MockProvider::start().await;
    let url = mock.v1_url();
    let master = format!("general_settings:\n  master_key: {MASTER}\n");
    let path = temp_config("api");
    std::fs::write(&path, models(&[deployment("a", "a1", &url, &[])], &master)).unwrap();
    let gateway = Gateway::new(llmgate::load_config(&path).unwrap().config).unwrap();
    gateway.set_config_file(&path);
    let gw = TestGateway::serve(gateway).await;
    let admin = gw.handle().with_key(MASTER);

    let entries = [
        deployment("a", "a1", &url, &[]),
        deployment("b", "b1", &url, &[]),
    ];
    std::fs::write(&path, models(&entries, &master)).unwrap();
    let res = admin.post("/config/reload", &json!({})).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["models_added"], json!(["b"]));
    assert_eq!(admin.chat("b", "hi").await.status, 200);

    let key = admin.post("/key/generate", &json!({})).await.json()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = gw
        .handle()
        .with_key(&key)
        .post("/config/reload", &json!({}))
        .await;
    assert_eq!(res.status, 403, "{}", res.text());
    assert_eq!(gw.post("/config/reload", &json!({})).await.status, 401);

    std::fs::write(
        &path,
        format!(
            "{}router_settings:\n  routing_strategy: nonsense\n  num_retries: many\n",
            models(&entries, &master)
        ),
    )
    .unwrap();
    let res = admin.post("/config/reload", &json!({})).await;
    assert_eq!(res.status, 400, "{}", res.text());
    let error = &res.json()["error"];
    assert_eq!(error["type"], "invalid_request_error");
    assert_eq!(error["code"], "config_invalid");
    let problems = error["problems"].as_array().unwrap();
    assert!(problems.len() >= 2, "{problems:?}");
    assert_eq!(admin.chat("b", "still").await.status, 200);
}
