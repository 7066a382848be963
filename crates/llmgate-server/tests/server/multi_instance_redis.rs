//! Instances sharing one Redis, as real `llmgate` processes:
//!
//! - `global_max_parallel_requests: 5` over three instances admits exactly 5 of a burst of 24
//!   spread over them (docs/rate-limits.md), the rest refused with a 429 at once;
//! - an answer cached by one instance is served by another from Redis, which never calls its
//!   provider (docs/caching.md, "Several instances");
//! - a 429 burst both of two instances see makes one alert, not one each; with Redis cut each
//!   sends its own and counts the failure (docs/alerting.md, "Deduplication and rate limits").
//!
//! Each test uses a Redis prefix or namespace of its own (Redis outlives test runs).

#![allow(clippy::unwrap_used, clippy::panic, reason = "test helpers")]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use llmgate_testkit::{Behaviour, FaultProxy, Gate, MockProvider};
use serde_json::{json, Value};

use crate::support::{get, post, redis_up, start_with, unique, write_config, Gateway};

/// The model `m` (deployment id `m-a`) on `upstream`, then `rest` (settings sections).
fn one_model(name: &str, upstream: &MockProvider, rest: &str) -> std::path::PathBuf {
    write_config(
        name,
        &format!(
            "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/m\n      \
             api_base: {}\n      api_key: sk-test\n    model_info:\n      id: m-a\n{rest}",
            upstream.v1_url()
        ),
    )
}

async fn ask(addr: SocketAddr, model: &str, prompt: &str) -> (StatusCode, Value) {
    let body = json!({"model": model, "messages": [{"role": "user", "content": prompt}]});
    post(addr, "/v1/chat/completions", "sk-none", &body).await
}

/// The gateway is open (no master key), so no key's limit can bind before the gateway's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_one_redis_admit_exactly_the_global_parallel_limit() {
    if !redis_up().await {
        return;
    }
    let upstream = MockProvider::start().await;
    let gate = Gate::new();
    upstream.set_default(Behaviour::gated(&gate, 0));
    let prefix = format!("llmgate:test:{}:", unique("global-parallel"));
    let config = one_model(
        "multi-global-parallel",
        &upstream,
        &format!(
            "router_settings:\n  redis_url: redis://127.0.0.1:6379\n  num_retries: 0\n\
             general_settings:\n  global_max_parallel_requests: 5\n  \
             llmgate_rate_limit_redis_prefix: \"{prefix}\"\n"
        ),
    );
    let mut gateways: Vec<(Gateway, SocketAddr)> = Vec::new();
    for _ in 0..3 {
        gateways.push(start_with(&config, &[], &[]).await);
    }
    // 24 requests at once, 8 to each instance.
    let answered = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..24 {
        let (addr, answered) = (gateways[i % 3].1, answered.clone());
        tasks.push(tokio::spawn(async move {
            let answer = ask(addr, "m", "burst").await;
            answered.fetch_add(1, Ordering::SeqCst);
            answer
        }));
    }
    // Every request is either held at the upstream or answered by now.
    let started = Instant::now();
    while gate.arrivals() + answered.load(Ordering::SeqCst) < 24 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{} held, {} answered",
            gate.arrivals(),
            answered.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A moment more: nothing past the five reaches the upstream while they are held.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(gate.arrivals(), 5, "requests held at the upstream at once");
    assert_eq!(answered.load(Ordering::SeqCst), 19);
    gate.release();
    let (mut admitted, mut refused) = (0, 0);
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            StatusCode::OK => admitted += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(body["error"]["code"], "rate_limit_exceeded", "{body}");
                let message = body["error"]["message"].as_str().unwrap_or_default();
                assert!(
                    message.contains("global_max_parallel_requests (5 requests in flight at once)"),
                    "{body}"
                );
                refused += 1;
            }
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!((admitted, refused), (5, 19));
    assert_eq!(upstream.request_count(), 5);
}

/// A chat request for `m`: the status, the `x-llmgate-cache` header and the body.
async fn ask_cached(addr: SocketAddr, prompt: &str) -> (StatusCode, String, Value) {
    let body = json!({"model": "m", "messages": [{"role": "user", "content": prompt}]});
    let json = [("content-type", "application/json")];
    let path = "/v1/chat/completions";
    let response =
        crate::support::request(addr, http::Method::POST, path, &json, body.to_string()).await;
    let (status, headers): (StatusCode, HeaderMap) =
        (response.status(), response.headers().clone());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let cache = headers
        .get("x-llmgate-cache")
        .map_or("none".to_owned(), |v| v.to_str().unwrap().to_owned());
    (status, cache, serde_json::from_slice(&bytes).unwrap())
}

/// Two instances on one Redis cache (the same namespace), each with a provider of its own: what
/// A stored, B answers from Redis without calling its provider.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_cached_by_one_instance_is_a_hit_on_another() {
    if !redis_up().await {
        return;
    }
    let namespace = unique("multi-cache");
    let cached = |name: &str, upstream: &MockProvider| {
        one_model(
            name,
            upstream,
            &format!(
                "litellm_settings:\n  cache: true\n  cache_params:\n    type: redis\n    \
                 host: 127.0.0.1\n    port: 6379\n    ttl: 30\n    namespace: {namespace}\n"
            ),
        )
    };
    let (upstream_a, upstream_b) = (MockProvider::start().await, MockProvider::start().await);
    let (_a, a) = start_with(&cached("multi-cache-a", &upstream_a), &[], &[]).await;
    let (_b, b) = start_with(&cached("multi-cache-b", &upstream_b), &[], &[]).await;

    let (status, cache, first) = ask_cached(a, "a question for both").await;
    assert_eq!(
        (status, cache.as_str()),
        (StatusCode::OK, "miss"),
        "{first}"
    );
    // Redis stores just after the answer ends: A's own hit says it is there.
    let mut stored = false;
    for _ in 0..20 {
        let (_, cache, again) = ask_cached(a, "a question for both").await;
        if cache == "hit" {
            assert_eq!(again, first);
            stored = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(stored, "A never answered from the cache");
    assert_eq!(upstream_a.request_count(), 1);

    let (status, cache, from_b) = ask_cached(b, "a question for both").await;
    assert_eq!(
        (status, cache.as_str()),
        (StatusCode::OK, "hit"),
        "{from_b}"
    );
    assert_eq!(from_b, first, "B serves A's answer");
    assert_eq!(upstream_b.request_count(), 0, "B never called its provider");
    // A question B has not seen is B's own miss.
    let (_, cache, _) = ask_cached(b, "a question for B alone").await;
    assert_eq!(cache, "miss");
    assert_eq!(upstream_b.request_count(), 1);
}

/// A webhook receiver on 127.0.0.1:0 that records each POST's JSON body.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let got = Arc::new(Mutex::new(Vec::new()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/alerts", listener.local_addr().unwrap());
        let seen = got.clone();
        tokio::spawn(async move {
            while let Ok((io, _)) = listener.accept().await {
                let seen = seen.clone();
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let seen = seen.clone();
                    async move {
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        seen.lock()
                            .unwrap()
                            .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                        Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::new())))
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(io), svc),
                );
            }
        });
        Receiver { url, got }
    }

    fn alerts(&self) -> Vec<Value> {
        self.got.lock().unwrap().clone()
    }
}

/// The sum of the samples of `name` whose labels include `labels`, on `addr`'s `/metrics`.
async fn metric(addr: SocketAddr, name: &str, labels: &[(&str, &str)]) -> f64 {
    let (_, text) = get(addr, "/metrics").await;
    text.lines()
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn deduplicated(addrs: &[SocketAddr]) -> f64 {
    let mut sum = 0.0;
    for addr in addrs {
        let labels = [("alert_type", "llm_exceptions"), ("result", "deduplicated")];
        sum += metric(*addr, "llmgate_alerts_total", &labels).await;
    }
    sum
}

/// Waits (up to 10 s) until `done` holds of the alerts received and the instances' count of
/// deduplicated alerts.
async fn wait_alerts(receiver: &Receiver, addrs: &[SocketAddr], done: impl Fn(usize, f64) -> bool) {
    let started = Instant::now();
    loop {
        let (sent, dedup) = (receiver.alerts().len(), deduplicated(addrs).await);
        if done(sent, dedup) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{sent} alerts received, {dedup} deduplicated: {:#?}",
            receiver.alerts()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_redis_send_one_alert_and_each_their_own_when_it_is_cut() {
    if !redis_up().await {
        return;
    }
    let receiver = Receiver::start().await;
    let redis = FaultProxy::start("127.0.0.1:6379".parse().unwrap())
        .await
        .unwrap();
    let upstream = MockProvider::start().await;
    upstream.set_default(Behaviour::error(429, "slow down"));
    let prefix = format!("llmgate:test:{}:", unique("alerts"));
    let config = write_config(
        "multi-alerts",
        &format!(
            "model_list:\n  - model_name: gpt\n    litellm_params:\n      model: openai/gpt\n      \
             api_base: {url}\n      api_key: sk-test\n    model_info:\n      id: gpt-a\n  \
             - model_name: other\n    litellm_params:\n      model: openai/other\n      \
             api_base: {url}\n      api_key: sk-test\n    model_info:\n      id: other-a\n\
             router_settings:\n  redis_url: redis://{redis}\n  num_retries: 0\n  disable_cooldowns: true\n\
             general_settings:\n  alerting: [\"webhook\"]\n  alert_types: [\"llm_exceptions\"]\n  \
             llmgate_rate_limit_redis_prefix: \"{prefix}\"\n  alerting_args:\n    \
             minor_outage_alert_threshold: 2\n",
            url = upstream.v1_url(),
            redis = redis.addr()
        ),
    );
    let env = [("WEBHOOK_URL", receiver.url.as_str())];
    let (_a, a) = start_with(&config, &[], &env).await;
    let (_b, b) = start_with(&config, &[], &env).await;
    let addrs = [a, b];
    // Each instance sees two 429s from gpt-a: a burst on each.
    for addr in addrs {
        for _ in 0..2 {
            assert_eq!(
                ask(addr, "gpt", "hi").await.0,
                StatusCode::TOO_MANY_REQUESTS
            );
        }
    }
    wait_alerts(&receiver, &addrs, |sent, dedup| sent as f64 + dedup >= 2.0).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let alerts = receiver.alerts();
    assert_eq!(
        alerts.len(),
        1,
        "one of two instances sends it: {alerts:#?}"
    );
    assert_eq!(alerts[0]["event"], "rate_limited");
    assert_eq!(alerts[0]["deployment"], "gpt-a");
    assert_eq!(deduplicated(&addrs).await, 1.0, "the other counts it");
    let shared_errors = |addr| metric(addr, "llmgate_alerts_shared_dedup_errors_total", &[]);
    assert_eq!(shared_errors(a).await + shared_errors(b).await, 0.0);

    // Redis cut: each instance sends its own (fail open) and counts that it could not ask.
    redis.cut();
    for addr in addrs {
        for _ in 0..2 {
            assert_eq!(
                ask(addr, "other", "hi").await.0,
                StatusCode::TOO_MANY_REQUESTS
            );
        }
    }
    wait_alerts(&receiver, &addrs, |sent, _| sent >= 3).await;
    let alerts = receiver.alerts();
    assert!(
        alerts[1..].iter().all(|a| a["deployment"] == "other-a"),
        "{alerts:#?}"
    );
    assert_eq!(shared_errors(a).await, 1.0);
    assert_eq!(shared_errors(b).await, 1.0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.alerts().len(), 3);
    assert_eq!(deduplicated(&addrs).await, 1.0);
}

/// docs/end-users.md: an end user's `rpm_limit` counts its requests across instances as a
/// key's does. Two processes on one Redis and one PostgreSQL, an end user with `rpm_limit: 3`:
/// of 8 requests as that end user, alternating between them, exactly 3 are answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_end_users_rpm_limit_holds_across_two_instances() {
    if !redis_up().await || !crate::support::postgres_up().await {
        return;
    }
    const MASTER: &str = "sk-master-multi-redis";
    let upstream = MockProvider::start().await;
    let prefix = format!("llmgate:test:{}:", unique("end-user-rpm"));
    let config = one_model(
        "multi-end-user-rpm",
        &upstream,
        &format!(
            "router_settings:\n  redis_url: redis://127.0.0.1:6379\n  num_retries: 0\n\
             general_settings:\n  master_key: {MASTER}\n  database_url: {}\n  \
             llmgate_rate_limit_redis_prefix: \"{prefix}\"\n",
            crate::support::PG_URL.as_str()
        ),
    );
    let (_a, a) = start_with(&config, &[], &[]).await;
    let (_b, b) = start_with(&config, &[], &[]).await;
    let user = unique("customer");
    let (status, body) = post(
        a,
        "/customer/new",
        MASTER,
        &json!({"user_id": user, "rpm_limit": 3}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut answered = 0;
    for i in 0..8 {
        let addr = if i % 2 == 0 { a } else { b };
        let request = json!({"model": "m", "user": user,
            "messages": [{"role": "user", "content": "hi"}]});
        let (status, body) = post(addr, "/v1/chat/completions", MASTER, &request).await;
        match status {
            StatusCode::OK => answered += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                let message = body["error"]["message"].as_str().unwrap_or_default();
                assert!(message.contains("end user's rpm_limit"), "{body}");
            }
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!(answered, 3, "alone, each instance would answer 3");
    assert_eq!(upstream.request_count(), 3);
}
