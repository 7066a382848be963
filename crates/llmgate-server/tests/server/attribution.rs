//! Every failure is attributed, through the real binary: the deployment a failed request
//! reached last, its attempts and its error class reach the error answer's headers, `/metrics`
//! and `/spend/logs`; and each failed attempt of a fallback chain is counted against its own
//! deployment, also when a later attempt succeeded.
//!
//! Four groups on mock providers: `solo` (one deployment answering 500), `chain` (one answering
//! 429, falling back to `backup`, which answers), and `slow` (one that answers after its
//! `timeout`). `num_retries: 1`, cooldowns off, so every request makes exactly two attempts.
//!
//! The PostgreSQL run uses `LLMGATE_TEST_PG_URL` (default: the machine's `test` database) in a schema of
//! its own, dropped at the end.

#![allow(clippy::unwrap_used, clippy::panic, reason = "test helpers")]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::PG_URL;
use crate::support::{chat, connect, start_with};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use llmgate_testkit::{Behaviour, MockProvider};
use serde_json::Value;
use sqlx::{Connection, Executor, PgConnection};

const MASTER: &str = "sk-master-attribution";

fn test_dir(name: &str) -> PathBuf {
    crate::support::test_dir("attribution", name)
}

struct Upstreams {
    bad: MockProvider,
    limited: MockProvider,
    good: MockProvider,
    slow: MockProvider,
}

impl Upstreams {
    async fn start() -> Upstreams {
        let bad = MockProvider::start().await;
        bad.set_default(Behaviour::error(500, "upstream exploded"));
        let limited = MockProvider::start().await;
        limited.set_default(Behaviour::error(429, "slow down"));
        let good = MockProvider::start().await;
        let slow = MockProvider::start().await;
        slow.set_default(Behaviour::Ok.delayed(Duration::from_secs(3)));
        Upstreams {
            bad,
            limited,
            good,
            slow,
        }
    }
}

fn write_config(dir: &Path, up: &Upstreams, database: Option<&str>) -> PathBuf {
    let mut text = String::from("model_list:\n");
    for (group, id, mock, extra) in [
        ("solo", "solo-bad", &up.bad, ""),
        ("chain", "chain-limited", &up.limited, ""),
        ("backup", "backup-ok", &up.good, ""),
        ("slow", "slow-0", &up.slow, "      timeout: 0.5\n"),
    ] {
        text.push_str(&format!(
            "  - model_name: {group}\n    litellm_params:\n      model: openai/{group}-upstream\n      \
             api_base: {}\n      api_key: sk-test\n{extra}    model_info:\n      id: {id}\n",
            mock.v1_url()
        ));
    }
    text.push_str(
        "router_settings:\n  num_retries: 1\n  disable_cooldowns: true\n  \
         fallbacks: [{chain: [backup]}]\n",
    );
    text.push_str(&format!(
        "general_settings:\n  master_key: {MASTER}\n  proxy_batch_write_at: 1\n"
    ));
    if let Some(url) = database {
        text.push_str(&format!("  database_url: {url}\n"));
    }
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// What the client saw: status, the `x-llmgate-*` headers named, the request id.
struct Seen {
    status: StatusCode,
    deployment: Option<String>,
    attempts: Option<String>,
    fallbacks: Option<String>,
    group: Option<String>,
    request_id: String,
}

async fn ask(addr: SocketAddr, model: &str) -> Seen {
    let request = Request::post("/v1/chat/completions")
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {MASTER}"))
        .body(Full::new(Bytes::from(chat(model, false))))
        .unwrap();
    let response = connect(addr).await.send_request(request).await.unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let seen = Seen {
        status: response.status(),
        deployment: header("x-llmgate-deployment"),
        attempts: header("x-llmgate-attempts"),
        fallbacks: header("x-llmgate-fallbacks"),
        group: header("x-llmgate-model-group"),
        request_id: header("x-llmgate-request-id").unwrap(),
    };
    let _ = response.into_body().collect().await;
    seen
}

async fn get(addr: SocketAddr, path: &str) -> (StatusCode, String) {
    let request = Request::get(path)
        .header("host", "127.0.0.1")
        .header("authorization", format!("Bearer {MASTER}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = connect(addr).await.send_request(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

/// The sum of the samples of `name` whose labels include every pair of `labels`.
fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut sum = 0.0;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let Some(rest) = rest.strip_prefix('{') else {
            continue;
        };
        let Some((set, value)) = rest.split_once("} ") else {
            continue;
        };
        let pairs: Vec<&str> = set.split(',').collect();
        if labels
            .iter()
            .all(|(k, v)| pairs.contains(&format!("{k}=\"{v}\"").as_str()))
        {
            sum += value.trim().parse::<f64>().unwrap();
        }
    }
    sum
}

/// The spend-log row of `request_id`, once written (the batch window is 1 s).
async fn spend_row(addr: SocketAddr, request_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = get(addr, &format!("/spend/logs?request_id={request_id}")).await;
        assert_eq!(status, 200, "{body}");
        let rows: Value = serde_json::from_str(&body).unwrap();
        if let Some(row) = rows.as_array().and_then(|a| a.first()) {
            return row.clone();
        }
        assert!(Instant::now() < deadline, "no spend row for {request_id}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The test body, once per backend.
async fn failures_are_attributed(name: &str, database: Option<&str>) {
    let up = Upstreams::start().await;
    let dir = test_dir(name);
    let config = write_config(&dir, &up, database);
    let (_gateway, addr) = start_with(&config, &[], &[]).await;

    let mut solo = Vec::new();
    for _ in 0..3 {
        let s = ask(addr, "solo").await;
        assert_eq!(s.status, 500);
        assert_eq!(s.deployment.as_deref(), Some("solo-bad"));
        assert_eq!(s.group.as_deref(), Some("solo"));
        assert_eq!(s.attempts.as_deref(), Some("2"));
        assert_eq!(s.fallbacks.as_deref(), Some("0"));
        solo.push(s.request_id);
    }
    let mut chain = Vec::new();
    for _ in 0..2 {
        let s = ask(addr, "chain").await;
        assert_eq!(s.status, 200);
        assert_eq!(s.deployment.as_deref(), Some("backup-ok"));
        assert_eq!(s.attempts.as_deref(), Some("2"));
        assert_eq!(s.fallbacks.as_deref(), Some("1"));
        chain.push(s.request_id);
    }
    let slow = ask(addr, "slow").await;
    assert_eq!(slow.status, 408);
    assert_eq!(slow.deployment.as_deref(), Some("slow-0"));
    assert_eq!(slow.attempts.as_deref(), Some("2"));
    assert_eq!(
        (
            up.bad.request_count(),
            up.limited.request_count(),
            up.good.request_count(),
            up.slow.request_count()
        ),
        (6, 2, 2, 2),
        "attempts that reached each upstream"
    );

    // /metrics: the request counters name the deployment tried last, with the error class.
    let (status, text) = get(addr, "/metrics").await;
    assert_eq!(status, 200);
    let solo_bad = [("model_group", "solo"), ("deployment", "solo-bad")];
    let m = |name: &str, labels: &[(&str, &str)]| metric(&text, name, labels);
    let with = |extra: (&'static str, &'static str)| {
        let mut l = solo_bad.to_vec();
        l.push(extra);
        l
    };
    assert_eq!(
        m("llmgate_requests_total", &with(("status_class", "5xx"))),
        3.0
    );
    assert_eq!(
        m(
            "llmgate_request_failures_total",
            &with(("error_class", "upstream_5xx"))
        ),
        3.0
    );
    assert_eq!(
        m("llmgate_requests_total", &[("deployment", "none")]),
        0.0,
        "{text}"
    );
    assert_eq!(
        m(
            "llmgate_request_failures_total",
            &[("deployment", "slow-0"), ("error_class", "timeout")]
        ),
        1.0
    );
    // Per attempt: every failed attempt against its own deployment, fallbacks included.
    assert_eq!(m("llmgate_upstream_attempts_total", &solo_bad), 6.0);
    assert_eq!(
        m(
            "llmgate_upstream_failures_total",
            &with(("error_class", "upstream_5xx"))
        ),
        6.0
    );
    let limited = [
        ("model_group", "chain"),
        ("deployment", "chain-limited"),
        ("error_class", "rate_limited"),
    ];
    assert_eq!(m("llmgate_upstream_failures_total", &limited), 2.0);
    assert_eq!(
        m(
            "llmgate_upstream_attempts_total",
            &[("deployment", "chain-limited")]
        ),
        2.0
    );
    assert_eq!(
        m(
            "llmgate_upstream_attempts_total",
            &[("model_group", "backup"), ("deployment", "backup-ok")]
        ),
        2.0
    );
    assert_eq!(
        m(
            "llmgate_upstream_failures_total",
            &[("deployment", "backup-ok")]
        ),
        0.0
    );
    assert_eq!(
        m(
            "llmgate_upstream_failures_total",
            &[("deployment", "slow-0"), ("error_class", "timeout")]
        ),
        2.0
    );

    // /spend/logs: failed rows carry the deployment, the attempts and the error class.
    for id in &solo {
        let row = spend_row(addr, id).await;
        assert_eq!(row["model_id"], "solo-bad", "{row}");
        assert_eq!(row["model_group"], "solo");
        assert_eq!(row["custom_llm_provider"], "openai");
        assert_eq!(row["attempts"], 2);
        assert_eq!(row["fallbacks"], 0);
        assert_eq!(row["error_class"], "upstream_5xx");
        assert_eq!(row["outcome"], "error");
        assert_eq!(row["status"], "failure");
        assert_eq!(row["status_code"], 500);
    }
    for id in &chain {
        let row = spend_row(addr, id).await;
        assert_eq!(row["model_id"], "backup-ok", "{row}");
        assert_eq!(row["attempts"], 2);
        assert_eq!(row["fallbacks"], 1);
        assert_eq!(row["error_class"], Value::Null);
        assert_eq!(row["outcome"], "success");
    }
    let row = spend_row(addr, &slow.request_id).await;
    assert_eq!(row["model_id"], "slow-0", "{row}");
    assert_eq!(row["attempts"], 2);
    assert_eq!(row["error_class"], "timeout");
    assert_eq!(row["status_code"], 408);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_attributed_on_sqlite() {
    failures_are_attributed("sqlite", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_attributed_on_postgres() {
    // A schema of the test's own: its migrations never touch the shared `public` schema.
    let schema = format!("attribution_{}", std::process::id());
    let mut conn = PgConnection::connect(&PG_URL).await.unwrap();
    conn.execute(format!("DROP SCHEMA IF EXISTS {schema} CASCADE").as_str())
        .await
        .unwrap();
    conn.execute(format!("CREATE SCHEMA {schema}").as_str())
        .await
        .unwrap();
    let pg_url = PG_URL.as_str();
    let url = format!("{pg_url}?options=-c%20search_path%3D{schema}");
    // Run apart, so the schema is dropped whether the body passes or panics.
    let outcome =
        tokio::spawn(async move { failures_are_attributed("postgres", Some(&url)).await }).await;
    conn.execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
        .await
        .unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
