//! What a SIGHUP reload keeps, through the real binary (docs/deployment.md, "Kept across a
//! reload"): a key's rate-limit count, the response cache's entries, the spend records still
//! queued, UI sessions, responses stored in memory, the upstream connection pool, and a
//! cooldown. The reload itself is seen to apply each time: the new config's model answers.

#![allow(clippy::unwrap_used, clippy::panic, reason = "test helpers")]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::reload::wait_reloads;
use crate::support::{post, signal, start_with, stop, test_dir};
use http::StatusCode;
use llmgate_store::{LogFilter, Store, StoreOptions};
use llmgate_testkit::MockProvider;
use serde_json::{json, Value};

const MASTER: &str = "sk-master-reload-keeps";

/// The models `priced` and `old` at `upstream` (`priced` and `added` when `reloaded`), the
/// response cache in memory, a master key, and spend records held in the queue for a minute.
fn config_text(upstream: &MockProvider, reloaded: bool) -> String {
    let entry = |name: &str| {
        format!(
            "  - model_name: {name}\n    litellm_params:\n      model: openai/gpt-x\n      \
             api_base: {}\n      api_key: sk-test\n    model_info:\n      \
             input_cost_per_token: 0.000001\n      output_cost_per_token: 0.000002\n",
            upstream.v1_url()
        )
    };
    let other = entry(if reloaded { "added" } else { "old" });
    format!(
        "model_list:\n{}{other}litellm_settings:\n  cache: true\n  cache_params:\n    type: local\n\
         general_settings:\n  master_key: {MASTER}\n  proxy_batch_write_at: 60\n",
        entry("priced")
    )
}

async fn ask(addr: SocketAddr, key: &str, model: &str, text: &str) -> (StatusCode, Value) {
    let body = json!({"model": model, "messages": [{"role": "user", "content": text}]});
    post(addr, "/v1/chat/completions", key, &body).await
}

/// The spend-log rows stored in `dir`'s SQLite file: (status, requested model), sorted.
async fn rows(dir: &Path) -> Vec<(i32, String)> {
    let store = Store::open_sqlite(&dir.join("llmgate.db"), &StoreOptions::new())
        .await
        .unwrap();
    let filter = LogFilter {
        limit: 100_000,
        ..LogFilter::default()
    };
    let mut rows: Vec<_> = (store.spend_logs(&filter).await.unwrap().into_iter())
        .map(|l| (l.status, l.requested_model))
        .collect();
    rows.sort();
    rows
}

/// Before the SIGHUP: a key with `rpm_limit: 3` uses its 3, one question is cached, and 20
/// answers' spend records wait in the queue. After it (the new model answers, the removed one
/// is a 400 although its answer was cached): the key's 4th request is refused, the cached
/// question is answered without a provider call, and at the stop every record of both
/// configs' requests is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sighup_keeps_rate_limit_counts_cache_entries_and_queued_spend() {
    let upstream = MockProvider::start().await;
    let dir = test_dir("reload-keeps", "sighup");
    let config = dir.join("config.yaml");
    std::fs::write(&config, config_text(&upstream, false)).unwrap();
    let (mut gateway, addr) = start_with(&config, &[], &[]).await;

    let (status, key) = post(addr, "/key/generate", MASTER, &json!({"rpm_limit": 3})).await;
    assert_eq!(status, StatusCode::OK, "{key}");
    let key = key["key"].as_str().unwrap().to_owned();
    for i in 0..3 {
        assert_eq!(ask(addr, &key, "priced", &format!("k{i}")).await.0, 200);
    }
    assert_eq!(ask(addr, MASTER, "priced", "cache me").await.0, 200);
    for i in 0..20 {
        assert_eq!(ask(addr, MASTER, "priced", &format!("q{i}")).await.0, 200);
    }
    let (status, body) = ask(addr, MASTER, "added", "x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "not yet: {body}");
    assert_eq!(ask(addr, MASTER, "old", "o").await.0, 200);
    let calls = upstream.request_count();

    std::fs::write(&config, config_text(&upstream, true)).unwrap();
    signal(&gateway, "HUP");
    wait_reloads(addr, "ok", 1, Duration::from_secs(10)).await;
    assert_eq!(ask(addr, MASTER, "added", "x").await.0, 200, "reloaded");
    // The removed model's cached answer is not served: its 400, as for any unknown model.
    let (status, body) = ask(addr, MASTER, "old", "o").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "model_not_found", "{body}");

    let (status, body) = ask(addr, &key, "priced", "k3").await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "the count kept: {body}"
    );
    let (status, body) = ask(addr, MASTER, "priced", "cache me").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        upstream.request_count(),
        calls + 1,
        "the cached answer served without a provider call (only `added` was asked)"
    );

    stop(&mut gateway).await;
    // 3 + 1 + 20 before the reload, `added` and the cache hit after it.
    // Each answer's record, of both configs (the key's refusal is not recorded): `priced`
    // 3 + 1 + 20 before the reload and the cache hit after it; `old` and `added` once each,
    // answered and refused.
    let mut expected: Vec<(i32, String)> = vec![(200, "priced".into()); 25];
    for model in ["added", "old"] {
        expected.extend([(200, model.into()), (400, model.into())]);
    }
    expected.sort();
    assert_eq!(rows(&dir).await, expected);
}

/// A request with `headers` (and a body, for POST): the status, the `set-cookie` header, and
/// the body as JSON (`Null` when it is not).
async fn call(
    addr: SocketAddr,
    method: http::Method,
    path: &str,
    headers: &[(&str, &str)],
    body: String,
) -> (StatusCode, Option<String>, Value) {
    let response = crate::support::request(addr, method, path, headers, body).await;
    let status = response.status();
    let cookie = response
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = crate::support::text(response).await;
    (
        status,
        cookie,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

/// Signs in to the admin UI with the master key: the session cookie to send.
async fn sign_in(addr: SocketAddr) -> String {
    let form = ("content-type", "application/x-www-form-urlencoded");
    let login = format!("key={MASTER}");
    let (status, cookie, _) = call(addr, http::Method::POST, "/ui/login", &[form], login).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    cookie.unwrap().split(';').next().unwrap().to_owned()
}

/// What `/ui/api/deployments` answers the session `cookie`: its status and body.
async fn with_session(addr: SocketAddr, cookie: &str) -> (StatusCode, Value) {
    let (status, _, body) = call(
        addr,
        http::Method::GET,
        "/ui/api/deployments",
        &[("cookie", cookie)],
        String::new(),
    )
    .await;
    (status, body)
}

/// A SIGHUP signs nobody out of the admin UI (sessions live in memory for the life of the
/// process), and a response stored in memory (no database: no master key) is still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sighup_keeps_ui_sessions_and_stored_responses() {
    let upstream = MockProvider::start().await;
    let dir = test_dir("reload-keeps", "sessions");
    let config = dir.join("config.yaml");
    std::fs::write(&config, config_text(&upstream, false)).unwrap();
    let (mut gateway, addr) = start_with(&config, &[], &[]).await;
    let cookie = sign_in(addr).await;
    assert_eq!(
        with_session(addr, &cookie).await.0,
        StatusCode::OK,
        "signed in"
    );

    let open = MockProvider::start().await;
    let memory = dir.join("memory.yaml");
    let no_master = format!(
        "model_list:\n  - model_name: priced\n    litellm_params:\n      model: openai/gpt-x\n      \
         api_base: {}\n      api_key: sk-test\n",
        open.v1_url()
    );
    std::fs::write(&memory, &no_master).unwrap();
    let (mut second, second_addr) = start_with(&memory, &[], &[]).await;
    let json = ("content-type", "application/json");
    let ask = json!({"model": "priced", "input": "hi", "store": true}).to_string();
    let (status, _, stored) = call(
        second_addr,
        http::Method::POST,
        "/v1/responses",
        &[json],
        ask,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{stored}");
    let id = stored["id"].as_str().unwrap().to_owned();

    std::fs::write(&config, config_text(&upstream, true)).unwrap();
    std::fs::write(&memory, no_master.replace("priced", "renamed")).unwrap();
    signal(&gateway, "HUP");
    signal(&second, "HUP");
    wait_reloads(addr, "ok", 1, Duration::from_secs(10)).await;
    wait_reloads(second_addr, "ok", 1, Duration::from_secs(10)).await;

    let (status, body) = with_session(addr, &cookie).await;
    assert_eq!(status, StatusCode::OK, "still signed in: {body}");
    let path = format!("/v1/responses/{id}");
    let (status, _, found) = call(second_addr, http::Method::GET, &path, &[], String::new()).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["id"], id.as_str());
    for g in [&mut gateway, &mut second] {
        stop(g).await;
    }
}

/// "Kept across a reload: the upstream connection pool": the provider is reached through a
/// proxy that counts connections; requests one after another before a SIGHUP use one kept-alive
/// connection, and requests after it still use that one (a new pool would open another).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sighup_keeps_the_upstream_connection_pool() {
    let upstream = MockProvider::start().await;
    let proxy = llmgate_testkit::FaultProxy::start(upstream.addr())
        .await
        .unwrap();
    let dir = test_dir("reload-keeps", "pool");
    let config = dir.join("config.yaml");
    let text = |timeout: u32| {
        format!(
            "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/gpt-x\n      \
             api_base: http://{}/v1\n      api_key: sk-test\n      timeout: {timeout}\n",
            proxy.addr()
        )
    };
    std::fs::write(&config, text(30)).unwrap();
    let (mut gateway, addr) = start_with(&config, &[], &[]).await;
    for i in 0..5 {
        assert_eq!(ask(addr, "", "m", &format!("before {i}")).await.0, 200);
    }
    assert_eq!(
        proxy.accepted(),
        1,
        "one kept-alive connection before the reload"
    );

    // A change that keeps the deployment (its timeout), so its state and pool carry over.
    std::fs::write(&config, text(31)).unwrap();
    signal(&gateway, "HUP");
    wait_reloads(addr, "ok", 1, Duration::from_secs(10)).await;
    for i in 0..5 {
        assert_eq!(ask(addr, "", "m", &format!("after {i}")).await.0, 200);
    }
    assert_eq!(
        proxy.accepted(),
        1,
        "the reload opened a new connection to the provider"
    );
    stop(&mut gateway).await;
}

/// "Kept across a reload: the router's state": a deployment cooling down stays out of rotation
/// through a SIGHUP that adds another model and leaves it unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sighup_keeps_a_cooldown_on_an_unchanged_deployment() {
    let (one, two) = (MockProvider::start().await, MockProvider::start().await);
    let dir = test_dir("reload-keeps", "cooldown");
    let config = dir.join("config.yaml");
    let entry = |name: &str, id: &str, base: &str| {
        format!(
            "  - model_name: {name}\n    litellm_params:\n      model: openai/gpt-x\n      \
             api_base: {base}\n      api_key: sk-test\n    model_info:\n      id: {id}\n"
        )
    };
    let group = format!(
        "{}{}",
        entry("g", "a1", &one.v1_url()),
        entry("g", "a2", &two.v1_url())
    );
    let router = "router_settings:\n  allowed_fails: 0\n  cooldown_time: 600\n";
    std::fs::write(&config, format!("model_list:\n{group}{router}")).unwrap();
    let (mut gateway, addr) = start_with(&config, &[], &[]).await;
    one.set_default(llmgate_testkit::Behaviour::error(500, "down"));
    for i in 0..20 {
        if one.request_count() > 0 {
            break;
        }
        assert_eq!(
            ask(addr, "", "g", &format!("x{i}")).await.0,
            200,
            "retried on a2"
        );
    }
    assert_eq!(one.request_count(), 1, "a1 failed once and cools down");
    one.set_default(llmgate_testkit::Behaviour::reply("a1 is back"));

    let more = entry("other", "o1", &two.v1_url());
    std::fs::write(&config, format!("model_list:\n{group}{more}{router}")).unwrap();
    signal(&gateway, "HUP");
    wait_reloads(addr, "ok", 1, Duration::from_secs(10)).await;
    assert_eq!(ask(addr, "", "other", "o").await.0, 200, "reloaded");
    for i in 0..10 {
        assert_eq!(ask(addr, "", "g", &format!("y{i}")).await.0, 200);
    }
    assert_eq!(
        one.request_count(),
        1,
        "a1 came back into rotation at the reload"
    );
    // docs/metrics.md: cooling down is 1 in llmgate's gauge and 2 in LiteLLM's.
    let (_, metrics) = crate::support::get(addr, "/metrics").await;
    let state = |name: &str, label: &str| -> f64 {
        let sample = metrics
            .lines()
            .find(|l| l.starts_with(&format!("{name}{{")) && l.contains(label))
            .unwrap_or_else(|| panic!("no {name} with {label}"));
        sample.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(state("llmgate_deployment_state", "deployment=\"a1\""), 1.0);
    assert_eq!(state("llmgate_deployment_state", "deployment=\"a2\""), 0.0);
    assert_eq!(state("litellm_deployment_state", "model_id=\"a1\""), 2.0);
    assert_eq!(state("litellm_deployment_state", "model_id=\"a2\""), 0.0);
    stop(&mut gateway).await;
}

/// docs/ui.md: sessions live in memory, so a restart signs everybody out (and a reload, above,
/// nobody): the cookie that worked before SIGTERM is refused by the new process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_signs_everybody_out_of_the_ui() {
    let upstream = MockProvider::start().await;
    let dir = test_dir("reload-keeps", "restart-ui");
    let config = dir.join("config.yaml");
    std::fs::write(&config, config_text(&upstream, false)).unwrap();
    let (mut gateway, addr) = start_with(&config, &[], &[]).await;
    let cookie = sign_in(addr).await;
    assert_eq!(with_session(addr, &cookie).await.0, StatusCode::OK);
    stop(&mut gateway).await;

    let (mut gateway, addr) = start_with(&config, &[], &[]).await;
    let (status, body) = with_session(addr, &cookie).await;
    assert!(
        status.is_client_error(),
        "still signed in after a restart: {status} {body}"
    );
    stop(&mut gateway).await;
}

/// docs/deployment.md, `--watch-config`: a Kubernetes ConfigMap update (the kubelet writes a
/// new timestamped directory and swaps the `..data` link to it in one rename) is picked up and
/// reloaded; the path given to `--config` is the volume's `config.yaml` symlink.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_config_follows_a_configmap_volume_update() {
    let upstream = MockProvider::start().await;
    let volume = test_dir("reload-keeps", "configmap");
    let publish = |generation: u32, text: &str| {
        let data = format!("..2026_12_04_{generation}");
        std::fs::create_dir_all(volume.join(&data)).unwrap();
        std::fs::write(volume.join(&data).join("config.yaml"), text).unwrap();
        let next = volume.join("..data_tmp");
        std::os::unix::fs::symlink(&data, &next).unwrap();
        std::fs::rename(&next, volume.join("..data")).unwrap();
        if std::fs::symlink_metadata(volume.join("config.yaml")).is_err() {
            std::os::unix::fs::symlink("..data/config.yaml", volume.join("config.yaml")).unwrap();
        }
    };
    publish(1, &config_text(&upstream, false));
    let config = volume.join("config.yaml");
    let watch = [("LLMGATE_WATCH_CONFIG", "1")];
    let (mut gateway, addr) = start_with(&config, &[], &watch).await;
    assert_eq!(ask(addr, MASTER, "added", "x").await.0, 400);

    publish(2, &config_text(&upstream, true));
    wait_reloads(addr, "ok", 1, Duration::from_secs(8)).await;
    assert_eq!(ask(addr, MASTER, "added", "x").await.0, 200);
    stop(&mut gateway).await;
}
