//! Deployment limits are shared: three real `llmgate` processes on one Redis (and one
//! PostgreSQL) send a provider exactly what its `rpm`, `tpm` and `rpd` allow, together, and a
//! daily quota stays used up across a restart of all three. With Redis cut, routing goes on
//! from each instance's own counters, the fault shown in `/metrics` and `/health/readiness`.
//! Without Redis, a shared database still carries `rpd` from one instance to the next.
//!
//! Each test uses a Redis prefix and deployment ids of its own (counts are per UTC day, and the
//! machine's Redis and PostgreSQL outlive a test run).

#![allow(clippy::unwrap_used, clippy::panic, reason = "test helpers")]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::support::Gateway;
use crate::support::{
    get, post, postgres_up, redis_up, signal, start_with, wait_exit, write_config,
};
use crate::support::{unique, PG_URL};
use http::StatusCode;
use llmgate_testkit::{FaultProxy, MockProvider};
use serde_json::{json, Value};

const MASTER: &str = "sk-master-shared-limits";

/// One deployment of group `limited` with `limits` (e.g. `rpm: 20`), on `upstream`, with a
/// master key, PostgreSQL, and Redis at `redis` (`None`: no Redis).
fn config(
    name: &str,
    upstream: &MockProvider,
    limits: &str,
    redis: Option<&str>,
) -> std::path::PathBuf {
    let id = unique(name);
    let redis = redis.map_or(String::new(), |addr| {
        format!("router_settings:\n  redis_url: redis://{addr}\n  num_retries: 0\n")
    });
    let pg_url = PG_URL.as_str();
    write_config(
        name,
        &format!(
            "model_list:\n  - model_name: limited\n    litellm_params:\n      model: openai/gpt-x\n      \
             api_base: {}\n      api_key: sk-test\n      {limits}\n    model_info:\n      id: {id}\n      \
             input_cost_per_token: 0.000001\n      output_cost_per_token: 0.000002\n\
             {redis}general_settings:\n  master_key: {MASTER}\n  database_url: {pg_url}\n  \
             llmgate_rate_limit_redis_prefix: \"llmgate:test:{id}:\"\n",
            upstream.v1_url()
        ),
    )
}

async fn ask(addr: SocketAddr) -> (StatusCode, Value) {
    let body = json!({"model": "limited", "messages": [{"role": "user", "content": "hi"}]});
    post(addr, "/v1/chat/completions", MASTER, &body).await
}

async fn three(config: &std::path::Path) -> Vec<(Gateway, SocketAddr)> {
    let mut out = Vec::new();
    for _ in 0..3 {
        out.push(start_with(&config.to_path_buf(), &[], &[]).await);
    }
    out
}

/// Sends `n` requests at once, spread over `addrs`: (answered, refused with 429).
async fn burst(addrs: &[SocketAddr], n: usize) -> (usize, usize) {
    let mut tasks = Vec::new();
    for i in 0..n {
        let addr = addrs[i % addrs.len()];
        tasks.push(tokio::spawn(async move { ask(addr).await }));
    }
    let (mut ok, mut refused) = (0, 0);
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                let message = body["error"]["message"].as_str().unwrap_or_default();
                assert!(message.contains("limit"), "{body}");
                refused += 1;
            }
            other => panic!("{other}: {body}"),
        }
    }
    (ok, refused)
}

fn addrs(gateways: &[(Gateway, SocketAddr)]) -> Vec<SocketAddr> {
    gateways.iter().map(|(_, a)| *a).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_send_a_deployment_exactly_its_rpm() {
    if !redis_up().await || !postgres_up().await {
        return;
    }
    let upstream = MockProvider::start().await;
    let config = config("shared-rpm", &upstream, "rpm: 20", Some("127.0.0.1:6379"));
    let gateways = three(&config).await;
    let (ok, refused) = burst(&addrs(&gateways), 60).await;
    // Alone, each instance would send 20: 60 in all.
    assert_eq!((ok, refused), (20, 40));
    assert_eq!(upstream.request_count(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_hold_tpm_together() {
    if !redis_up().await || !postgres_up().await {
        return;
    }
    let upstream = MockProvider::start().await;
    let config = config("shared-tpm", &upstream, "tpm: 100", Some("127.0.0.1:6379"));
    let gateways = three(&config).await;
    let addrs = addrs(&gateways);
    let (status, first) = ask(addrs[0]).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let per = first["usage"]["total_tokens"].as_u64().unwrap();
    // A deployment is sent requests while its last minute holds fewer than 100 tokens.
    let expected = 100_u64.div_ceil(per);
    let mut answered = 1;
    for i in 1.. {
        // Tokens are settled in the background when an answer ends: give them a moment.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (status, body) = ask(addrs[i % 3]).await;
        match status {
            StatusCode::OK => answered += 1,
            StatusCode::TOO_MANY_REQUESTS => break,
            other => panic!("{other}: {body}"),
        }
        assert!(
            answered <= expected,
            "{answered} answered at {per} tokens each"
        );
    }
    assert_eq!(answered, expected, "{per} tokens a request");
    // Every instance refuses now.
    for addr in &addrs {
        assert_eq!(ask(*addr).await.0, StatusCode::TOO_MANY_REQUESTS);
    }
    assert_eq!(upstream.request_count() as u64, expected);
}

/// `rpd: 50` on three instances: 50 reach the provider out of 150, and after all three are
/// restarted on the same UTC day, none more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_spend_a_daily_quota_once_across_restarts() {
    if !redis_up().await || !postgres_up().await {
        return;
    }
    let upstream = MockProvider::start().await;
    let config = config("shared-rpd", &upstream, "rpd: 50", Some("127.0.0.1:6379"));
    let gateways = three(&config).await;
    let (ok, refused) = burst(&addrs(&gateways), 150).await;
    assert_eq!((ok, refused), (50, 100));
    for (mut g, _) in gateways {
        signal(&g, "TERM");
        wait_exit(&mut g, Duration::from_secs(15)).await;
    }
    let gateways = three(&config).await;
    let (ok, refused) = burst(&addrs(&gateways), 30).await;
    assert_eq!((ok, refused), (0, 30));
    assert_eq!(upstream.request_count(), 50);
}

/// Without Redis, instances on one database share `rpd` through it (each writes what it sent
/// and reads the day's totals every second): what one instance sent is used up for the next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_the_database_carries_rpd_between_instances() {
    if !postgres_up().await {
        return;
    }
    let upstream = MockProvider::start().await;
    let config = config("db-rpd", &upstream, "rpd: 10", None);
    let (_a, a) = start_with(&config, &[], &[]).await;
    for _ in 0..6 {
        assert_eq!(ask(a).await.0, StatusCode::OK);
    }
    // One sync interval for `a` to write, one for `b` to read.
    let (_b, b) = start_with(&config, &[], &[]).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut answered = 0;
    while ask(b).await.0 == StatusCode::OK {
        answered += 1;
        assert!(answered <= 4, "instance b sent past the day's quota");
    }
    assert_eq!(answered, 4, "the quota's other 4 of 10");
    assert_eq!(upstream.request_count(), 10);
}

/// Redis cut under two instances: requests keep being routed (each instance on its own
/// counters), `llmgate_router_shared_errors_total{part="usage"}` counts the takes that failed
/// and readiness says the router is degraded; Redis stalled: no request waits much more than
/// the store's timeout; once Redis is back, readiness is healthy again within a few seconds
/// and takes stop failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_goes_on_while_redis_is_away_and_says_so() {
    if !redis_up().await || !postgres_up().await {
        return;
    }
    let upstream = MockProvider::start().await;
    let redis = FaultProxy::start("127.0.0.1:6379".parse().unwrap())
        .await
        .unwrap();
    let addr = redis.addr().to_string();
    let config = config("shared-fault", &upstream, "rpm: 1000", Some(&addr));
    let (_a, a) = start_with(&config, &[], &[]).await;
    let (_b, b) = start_with(&config, &[], &[]).await;
    for addr in [a, b] {
        assert_eq!(ask(addr).await.0, StatusCode::OK);
        let ready = wait_ready(addr, "healthy", Duration::from_secs(5)).await;
        assert_eq!(ready["checks"]["router"]["shared_usage"], "ok", "{ready}");
        assert_eq!(
            ready["checks"]["router"]["cooldowns"], "subscribed",
            "{ready}"
        );
    }

    redis.cut();
    let cut_at = Instant::now();
    for i in 0..20 {
        let (status, body) = ask([a, b][i % 2]).await;
        assert_eq!(status, StatusCode::OK, "routed on local counts: {body}");
    }
    assert!(
        cut_at.elapsed() < Duration::from_secs(10),
        "{:?}",
        cut_at.elapsed()
    );
    for addr in [a, b] {
        let ready = wait_ready(addr, "degraded", Duration::from_secs(3)).await;
        assert_eq!(ready["checks"]["router"]["status"], "error", "{ready}");
        assert!(shared_errors(addr).await > 0);
    }

    // A Redis that hangs instead: no request waits for it longer than its timeout (500 ms),
    // and after a failure the next second's takes do not wait at all.
    redis.stall();
    for i in 0..6 {
        let started = Instant::now();
        let (status, body) = ask([a, b][i % 2]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(
            started.elapsed() < Duration::from_millis(1200),
            "{:?}",
            started.elapsed()
        );
    }

    redis.restore();
    let restored = Instant::now();
    for addr in [a, b] {
        wait_ready(addr, "healthy", Duration::from_secs(5)).await;
    }
    assert!(
        restored.elapsed() < Duration::from_secs(5),
        "{:?}",
        restored.elapsed()
    );
    // Takes go to Redis again: no new failures.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let before = shared_errors(a).await;
    for _ in 0..5 {
        assert_eq!(ask(a).await.0, StatusCode::OK);
    }
    assert_eq!(shared_errors(a).await, before);
    assert_eq!(upstream.request_count(), 2 + 20 + 6 + 5);
}

/// Polls readiness until its `status` is `want` (200 either way for these two).
async fn wait_ready(addr: SocketAddr, want: &str, within: Duration) -> Value {
    let started = Instant::now();
    loop {
        let (status, text) = get(addr, "/health/readiness").await;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["status"] == want {
            return body;
        }
        assert!(started.elapsed() < within, "never {want}: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn shared_errors(addr: SocketAddr) -> u64 {
    let (_, text) = get(addr, "/metrics").await;
    text.lines()
        .find(|l| l.starts_with("llmgate_router_shared_errors_total{part=\"usage\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no usage errors line in:\n{text}")) as u64
}

/// Redis loses the day's counts (its keys deleted, as a restart without persistence does):
/// each instance still holds the deployment to `rpd`, from the day's totals in the database
/// (each instance writes what it sent and raises its counts to the totals every second).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_redis_loses_its_counts_the_databases_daily_totals_still_bound_each_instance() {
    if !redis_up().await || !postgres_up().await {
        return;
    }
    let upstream = MockProvider::start().await;
    let name = "redis-lost-rpd";
    let config = config(name, &upstream, "rpd: 10", Some("127.0.0.1:6379"));
    let (_a, a) = start_with(&config, &[], &[]).await;
    let (_b, b) = start_with(&config, &[], &[]).await;
    assert_eq!(burst(&[a, b], 20).await, (10, 10));
    // One sync interval to write the counts, one to read the totals back.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let pattern = format!("llmgate:test:{name}-{}-*", std::process::id());
    let deleted = redis_delete(&pattern);
    assert!(deleted > 0, "no Redis key matched {pattern}");
    assert_eq!(
        burst(&[a, b], 20).await,
        (0, 20),
        "sent past the day's quota"
    );
    assert_eq!(upstream.request_count(), 10);
}

/// Deletes the Redis keys matching `pattern` (`redis-cli`): how many.
fn redis_delete(pattern: &str) -> usize {
    let keys = std::process::Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "--scan", "--pattern", pattern])
        .output()
        .unwrap();
    let keys: Vec<String> = String::from_utf8(keys.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    for key in &keys {
        let done = std::process::Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "DEL", key])
            .output()
            .unwrap();
        assert!(done.status.success(), "{done:?}");
    }
    keys.len()
}
