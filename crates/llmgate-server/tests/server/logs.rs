//! Logs people can use, through the real binary (issue 16): one line per request at INFO
//! under `llmgate::request`, as JSON with `json_logs: true` (the config's, LiteLLM's
//! `JSON_LOGS=True`, or `--log-format json`), carrying the request id; a failure's line says
//! which deployment failed and why, with the upstream's key masked although the upstream
//! echoed it; the same request in `/spend/logs` within seconds, filtered; LiteLLM's metric
//! names in `/metrics`.
//!
//! Two mock upstreams: `good` answers, `bad` answers 401 with a message that echoes the
//! deployment's key. The PostgreSQL run uses `LLMGATE_TEST_PG_URL` (default: the machine's
//! `test` database) in a schema of its own, dropped at the end.

#![allow(clippy::unwrap_used, clippy::panic, reason = "test helpers")]

mod secrets;

use std::io::{BufRead as _, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{connect, Gateway, BIN};
use llmgate_testkit::{Behaviour, MockProvider};
use serde_json::{json, Value};
use sqlx::{Connection, Executor, PgConnection};

const MASTER: &str = "sk-master-logs";
/// The `bad` deployment's key, which its upstream echoes in its error.
const UPSTREAM_KEY: &str = "sk-upstream-secret-0123456789";
/// Another key the upstream echoes, which the gateway does not know: masked by its shape.
const OTHER_KEY: &str = "sk-org-leaked-5555555555";

fn test_dir(name: &str) -> PathBuf {
    crate::support::test_dir("logs", name)
}

struct Upstreams {
    good: MockProvider,
    bad: MockProvider,
}

impl Upstreams {
    async fn start() -> Upstreams {
        let good = MockProvider::start().await;
        let bad = MockProvider::start().await;
        bad.set_default(Behaviour::error(
            401,
            format!(
                "Incorrect API key provided: {UPSTREAM_KEY}. Authorization: Bearer {UPSTREAM_KEY}; \
                 organization key {OTHER_KEY}"
            ),
        ));
        Upstreams { good, bad }
    }
}

fn write_config(dir: &Path, up: &Upstreams, extra: &str) -> PathBuf {
    let mut text = String::from("model_list:\n");
    for (group, mock, key) in [
        ("good", &up.good, "sk-good-key"),
        ("bad", &up.bad, UPSTREAM_KEY),
    ] {
        text.push_str(&format!(
            "  - model_name: {group}\n    litellm_params:\n      model: openai/{group}-upstream\n      \
             api_base: {}\n      api_key: {key}\n    model_info:\n      id: {group}-0\n      \
             input_cost_per_token: 0.000001\n      output_cost_per_token: 0.000002\n",
            mock.v1_url()
        ));
    }
    text.push_str("router_settings:\n  num_retries: 0\n  disable_cooldowns: true\n");
    text.push_str(&format!(
        "general_settings:\n  master_key: {MASTER}\n  proxy_batch_write_at: 1\n{extra}"
    ));
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The binary, its stderr lines collected as they come.
struct Logged {
    gateway: Gateway,
    addr: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
}

async fn start_logged(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Logged {
    for _ in 0..3 {
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mut child = Command::new(BIN)
            .arg("--config")
            .arg(config)
            .args(["--host", "127.0.0.1", "--port", &addr.port().to_string()])
            .args(["--num_workers", "1"])
            .args(args)
            .env("RUST_LOG", "warn,llmgate::request=info")
            .env_remove("JSON_LOGS")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut gateway = Gateway(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if gateway.0.try_wait().unwrap().is_some() {
                break;
            }
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Logged {
                    gateway,
                    addr,
                    lines,
                };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!("llmgate did not start");
}

impl Logged {
    /// The JSON line of `target` for `request_id`, once logged.
    async fn line(&self, target: &str, request_id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = self.lines.lock().unwrap().iter().find_map(|l| {
                let v: Value = serde_json::from_str(l).ok()?;
                (v["target"] == target && v["request_id"] == request_id).then_some(v)
            });
            if let Some(v) = found {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "no {target} line for {request_id} in:\n{}",
                self.lines.lock().unwrap().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn all(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }
}

/// Sends a chat request for `model` with `bearer`: the status and the request id.
async fn ask(addr: SocketAddr, bearer: &str, model: &str) -> (u16, String) {
    ask_as(addr, bearer, model, false).await
}

async fn ask_as(addr: SocketAddr, bearer: &str, model: &str, stream: bool) -> (u16, String) {
    let request = http::Request::post("/v1/chat/completions")
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {bearer}"))
        .body(http_body_util::Full::new(bytes::Bytes::from(
            crate::support::chat(model, stream),
        )))
        .unwrap();
    let response = connect(addr).await.send_request(request).await.unwrap();
    let id = response.headers()["x-llmgate-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let status = response.status().as_u16();
    let _ = crate::support::text(response).await;
    (status, id)
}

async fn get_json(addr: SocketAddr, path: &str) -> Value {
    let request = http::Request::get(path)
        .header("host", "127.0.0.1")
        .header("authorization", format!("Bearer {MASTER}"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let response = connect(addr).await.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    serde_json::from_str(&crate::support::text(response).await).unwrap()
}

/// `/spend/logs?<query>` once it has `n` rows (the batch window is 1 s).
async fn spend_rows(addr: SocketAddr, query: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = get_json(addr, &format!("/spend/logs?{query}")).await;
        let rows = rows.as_array().unwrap().clone();
        if rows.len() >= n {
            return rows;
        }
        assert!(Instant::now() < deadline, "/spend/logs?{query}: {rows:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The value of the one sample of `name` whose labels include every pair of `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix('{')?;
        let (set, value) = rest.split_once("} ")?;
        let pairs: Vec<&str> = set.split(',').collect();
        labels
            .iter()
            .all(|(k, v)| pairs.contains(&format!("{k}=\"{v}\"").as_str()))
            .then(|| value.trim().parse().unwrap())
    })
}

/// Every metric `deploy/grafana/litellm-compatible.json` queries is one `/metrics` serves.
fn dashboard_names_are_served(metrics: &str) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/grafana/litellm-compatible.json"
    );
    let dashboard = std::fs::read_to_string(path).unwrap();
    let mut names = 0;
    for (i, _) in dashboard.match_indices("litellm_") {
        let name: String = dashboard[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.ends_with("_total")
            && !name.ends_with("_bucket")
            && name != "litellm_deployment_state"
        {
            continue; // a label, a title, the dashboard's uid
        }
        let base = name.trim_end_matches("_bucket").trim_end_matches("_total");
        assert!(
            metrics.contains(&format!("# TYPE {base} ")),
            "the dashboard queries {name}, which /metrics does not serve"
        );
        names += 1;
    }
    assert!(names >= 10, "{names} names found in {path}");
}

/// The whole story on one backend: `extra` adds `database_url` for PostgreSQL.
async fn request_log(name: &str, extra: &str) {
    let up = Upstreams::start().await;
    let dir = test_dir(name);
    let config = write_config(&dir, &up, extra);
    let gw = start_logged(&config, &[], &[]).await;
    let addr = gw.addr;

    let (status, team) = crate::support::post(
        addr,
        "/team/new",
        MASTER,
        &json!({"team_id": "team-billing"}),
    )
    .await;
    assert_eq!(status, 200, "{team}");
    let (status, key) = crate::support::post(
        addr,
        "/key/generate",
        MASTER,
        &json!({"key_alias": "billing-app", "team_id": "team-billing"}),
    )
    .await;
    assert_eq!(status, 200, "{key}");
    let secret = key["key"].as_str().unwrap().to_owned();

    let (status, ok_id) = ask(addr, &secret, "good").await;
    assert_eq!(status, 200);
    let (status, bad_id) = ask(addr, &secret, "bad").await;
    assert_eq!(status, 401);

    // One JSON line per request, its fields as keys.
    let ok = gw.line("llmgate::request", &ok_id).await;
    assert_eq!(ok["level"], "INFO", "{ok}");
    assert_eq!(ok["message"], "request succeeded", "{ok}");
    assert_eq!(ok["key_alias"], "billing-app", "{ok}");
    assert_eq!(ok["team"], "team-billing", "{ok}");
    assert_eq!(ok["model"], "good", "{ok}");
    assert_eq!(ok["model_group"], "good", "{ok}");
    assert_eq!(ok["deployment"], "good-0", "{ok}");
    assert_eq!(ok["provider"], "openai", "{ok}");
    assert_eq!(ok["status"], 200, "{ok}");
    assert_eq!(ok["attempts"], 1, "{ok}");
    assert_eq!(ok["fallbacks"], 0, "{ok}");
    assert_eq!(ok["stream"], false, "{ok}");
    assert!(ok["latency_ms"].is_u64(), "{ok}");
    assert!(ok["prompt_tokens"].as_u64().unwrap() > 0, "{ok}");
    assert!(ok["completion_tokens"].is_u64(), "{ok}");
    assert!(ok["cost"].as_f64().unwrap() > 0.0, "{ok}");
    assert!(ok.get("error").is_none(), "{ok}");

    // A failure says which deployment failed and why; the key the upstream echoed is masked.
    let bad = gw.line("llmgate::request", &bad_id).await;
    assert_eq!(bad["message"], "request failed", "{bad}");
    assert_eq!(bad["status"], 401, "{bad}");
    assert_eq!(bad["deployment"], "bad-0", "{bad}");
    assert_eq!(bad["error_class"], "auth", "{bad}");
    let error = bad["error"].as_str().unwrap();
    assert!(
        error.contains("Incorrect API key provided: [REDACTED]"),
        "{error}"
    );
    assert!(error.contains("organization key [REDACTED]"), "{error}");
    assert!(
        !error.contains(UPSTREAM_KEY) && !error.contains(OTHER_KEY),
        "{error}"
    );
    // The existing failure line carries the request id too.
    let rescue = gw.line("llmgate::rescue", &bad_id).await;
    assert_eq!(rescue["deployment"], "bad-0", "{rescue}");

    // The request log: the failure findable within seconds, by status and by key alias.
    let failures = spend_rows(addr, "status=failure&key_alias=billing-app", 1).await;
    assert_eq!(failures.len(), 1, "{failures:?}");
    let row = &failures[0];
    assert_eq!(row["request_id"], bad_id.as_str());
    assert_eq!(row["model_id"], "bad-0");
    assert_eq!(row["error_class"], "auth");
    let stored = row["error_message"].as_str().unwrap();
    assert!(stored.contains("organization key [REDACTED]"), "{row}");
    assert_eq!(row["metadata"]["error_information"]["error_class"], "auth");
    assert_eq!(
        row["messages"],
        Value::Null,
        "prompts are not kept unless asked"
    );
    let by_team = spend_rows(addr, "team_id=team-billing&model=good", 1).await;
    assert_eq!(by_team.len(), 1, "{by_team:?}");
    assert_eq!(by_team[0]["request_id"], ok_id.as_str());
    assert_eq!(by_team[0]["status"], "success");

    // A stream (with the master key: its own series) for the time-to-first-token metrics.
    let (status, streamed) = ask_as(addr, MASTER, "good", true).await;
    assert_eq!(status, 200);
    let line = gw.line("llmgate::request", &streamed).await;
    assert_eq!(line["stream"], true, "{line}");
    assert!(line["ttft_ms"].is_u64(), "{line}");

    // LiteLLM's names beside llmgate's, failures with their deployment.
    let (_, metrics) = crate::support::get(addr, "/metrics").await;
    let ok_labels = [
        ("requested_model", "good"),
        ("api_key_alias", "billing-app"),
        ("team", "team-billing"),
        ("status_code", "200"),
    ];
    assert_eq!(
        sample(
            &metrics,
            "litellm_proxy_total_requests_metric_total",
            &ok_labels
        ),
        Some(1.0),
        "{metrics}"
    );
    let failed = [
        ("requested_model", "bad"),
        ("exception_status", "401"),
        ("exception_class", "AuthenticationError"),
        ("model_id", "bad-0"),
    ];
    assert_eq!(
        sample(
            &metrics,
            "litellm_proxy_failed_requests_metric_total",
            &failed
        ),
        Some(1.0),
        "{metrics}"
    );
    assert!(
        sample(
            &metrics,
            "litellm_input_tokens_metric_total",
            &[("requested_model", "good"), ("model", "good-upstream")]
        )
        .is_some_and(|n| n > 0.0),
        "{metrics}"
    );
    assert!(
        metrics.contains("litellm_request_total_latency_metric_bucket{"),
        "{metrics}"
    );
    assert!(metrics.contains("litellm_deployment_state{"), "{metrics}");
    assert!(metrics.contains("llmgate_requests_total{"), "{metrics}");
    dashboard_names_are_served(&metrics);

    // Secrets never reach the log: not the upstream's key, not the client's, not the master.
    let all = gw.all();
    for secret in [UPSTREAM_KEY, OTHER_KEY, secret.as_str(), MASTER] {
        assert!(!all.contains(secret), "{secret} logged:\n{all}");
    }
}

/// Request lines are written in batches (`logging/batch.rs`): with nothing else logged, a
/// request's line still reaches stderr while the gateway runs, and the lines of the last
/// requests before a SIGTERM are on stderr when the process has exited.
#[tokio::test]
async fn request_lines_reach_stderr_without_other_lines_and_before_the_exit() {
    let up = Upstreams::start().await;
    let dir = test_dir("batched");
    let config = write_config(&dir, &up, "  json_logs: true\n");
    let env = [("RUST_LOG", "error,llmgate::request=info")];
    let mut gw = start_logged(&config, &[], &env).await;
    let (status, first) = ask(gw.addr, MASTER, "good").await;
    assert_eq!(status, 200);
    gw.line("llmgate::request", &first).await;
    let mut last = Vec::new();
    for _ in 0..5 {
        let (status, id) = ask(gw.addr, MASTER, "good").await;
        assert_eq!(status, 200);
        last.push(id);
    }
    crate::support::sigterm(&gw.gateway);
    let exit = crate::support::wait_exit(&mut gw.gateway, Duration::from_secs(30)).await;
    assert!(exit.success(), "{exit:?}\n{}", gw.all());
    for id in &last {
        gw.line("llmgate::request", id).await;
    }
}

/// With a flush interval longer than the test (`--log-flush-ms 600000`, and for the second
/// round `LLMGATE_LOG_FLUSH_MS=600000` instead), only the binary's write at the exit can bring
/// the request lines out: after a SIGTERM's stop, and after a second SIGTERM's hurried exit.
#[tokio::test]
async fn the_last_request_lines_are_written_at_the_exit() {
    let up = Upstreams::start().await;
    for (name, hurried) in [("exit-once", false), ("exit-hurried", true)] {
        let dir = test_dir(name);
        let config = write_config(&dir, &up, "  json_logs: true\n");
        let filter = ("RUST_LOG", "error,llmgate::request=info");
        let (args, env): (&[&str], Vec<(&str, &str)>) = if hurried {
            (&[], vec![filter, ("LLMGATE_LOG_FLUSH_MS", "600000")])
        } else {
            (&["--log-flush-ms", "600000"], vec![filter])
        };
        let mut gw = start_logged(&config, args, &env).await;
        let mut ids = Vec::new();
        for _ in 0..3 {
            let (status, id) = ask(gw.addr, MASTER, "good").await;
            assert_eq!(status, 200);
            ids.push(id);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !gw.all().contains(&ids[0]),
            "written before the exit:\n{}",
            gw.all()
        );
        crate::support::sigterm(&gw.gateway);
        if hurried {
            // The second signal may find the first stop done: then `kill` fails, harmlessly.
            let pid = gw.gateway.0.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
        }
        let exit = crate::support::wait_exit(&mut gw.gateway, Duration::from_secs(30)).await;
        assert!(hurried || exit.success(), "{exit:?}");
        for id in &ids {
            gw.line("llmgate::request", id).await;
        }
    }
}

#[tokio::test]
async fn request_lines_logs_and_metrics_on_sqlite() {
    request_log("sqlite", "  json_logs: true\n").await;
}

#[tokio::test]
async fn request_lines_logs_and_metrics_on_postgres() {
    let url = crate::support::PG_URL.clone();
    let Ok(Ok(mut conn)) =
        tokio::time::timeout(Duration::from_secs(1), PgConnection::connect(&url)).await
    else {
        // `.ci/run` sets it when it has the machine's backends running: a skip there is a failure.
        assert!(
            !std::env::var("LLMGATE_REQUIRE_BACKENDS")
                .unwrap_or_default()
                .contains("postgres"),
            "postgres is not reachable and LLMGATE_REQUIRE_BACKENDS requires it"
        );
        eprintln!("skipped: no PostgreSQL at {url}");
        return;
    };
    let schema = format!("logs_{}", std::process::id());
    conn.execute(
        format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}").as_str(),
    )
    .await
    .unwrap();
    let database = format!("{url}?options=-c%20search_path%3D{schema}");
    // litellm_settings is LiteLLM's own place for json_logs.
    let extra = format!("  database_url: \"{database}\"\nlitellm_settings:\n  json_logs: true\n");
    request_log("postgres", &extra).await;
    conn.execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
        .await
        .unwrap();
}

/// `JSON_LOGS=True` (LiteLLM's variable) and `--log-format json` switch to JSON lines too;
/// `store_prompts_in_spend_logs: true` keeps the messages and the answer, credentials masked;
/// `litellm_metric_names: false` serves llmgate's names only.
#[tokio::test]
async fn json_from_env_and_flag_prompts_kept_when_asked() {
    let up = Upstreams::start().await;
    for (name, args, env) in [
        ("env", &[][..], &[("JSON_LOGS", "True")][..]),
        ("flag", &["--log-format", "json"][..], &[][..]),
    ] {
        // A database each: the row read back is this run's.
        let config = write_config(
            &test_dir(name),
            &up,
            "  store_prompts_in_spend_logs: true\n  litellm_metric_names: false\n",
        );
        let gw = start_logged(&config, args, env).await;
        let body = json!({
            "model": "good",
            "messages": [{"role": "user", "content": "my key is sk-pasted-by-mistake-1234567"}],
        });
        let (status, answer) =
            crate::support::post(gw.addr, "/v1/chat/completions", MASTER, &body).await;
        assert_eq!(status, 200, "{answer}");
        let id = answer["id"].as_str().unwrap().to_owned();
        let rows = spend_rows(gw.addr, "limit=1", 1).await;
        let row = &rows[0];
        let line = gw
            .line("llmgate::request", row["request_id"].as_str().unwrap())
            .await;
        assert_eq!(line["status"], 200, "{line}");
        let messages = row["messages"].to_string();
        assert!(messages.contains("my key is [REDACTED]"), "{messages}");
        assert!(
            !messages.contains("sk-pasted-by-mistake-1234567"),
            "{messages}"
        );
        assert!(row["response"].to_string().contains(&id), "{row}");
        let (_, metrics) = crate::support::get(gw.addr, "/metrics").await;
        assert!(!metrics.contains("litellm_"), "{metrics}");
        assert!(metrics.contains("llmgate_requests_total{"), "{metrics}");
    }
}
