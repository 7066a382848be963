//! Rate limits through real `llmgate` processes sharing one Redis (and one SQLite file for the
//! keys, unique to the test): limits hold across instances, and a Redis fault never outlasts
//! Redis.
//!
//! The Redis is the machine's (`127.0.0.1:6379`); it sits behind a [`FaultProxy`] the test cuts
//! and restores. Keys in Redis are under a prefix unique to each test run.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers"
)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::support::{connect, post, start, write_config};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use llmgate_testkit::{Behaviour, FaultProxy, Gate, MockProvider};
use serde_json::{json, Value};

const MASTER: &str = "sk-master-limits";
const REDIS_ADDR: &str = "127.0.0.1:6379";

fn unique() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// A config for one instance: the mock as model `m`, keys in the SQLite file named by `prefix`,
/// rate limits in the Redis at `redis` under `prefix`, and `extra` general settings.
fn config(
    name: &str,
    upstream: &MockProvider,
    redis: SocketAddr,
    prefix: &str,
    extra: &str,
) -> std::path::PathBuf {
    let db = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{}.db", prefix.replace(':', "-")));
    write_config(
        name,
        &format!(
            "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/gpt-x\n      \
             api_base: {}\n      api_key: sk-test\n\
             router_settings:\n  redis_url: redis://{redis}\n\
             general_settings:\n  master_key: {MASTER}\n  database_url: sqlite://{}\n  \
             llmgate_rate_limit_redis_prefix: \"{prefix}\"\n{extra}",
            upstream.v1_url(),
            db.display()
        ),
    )
}

/// A virtual key with `settings`.
async fn generate_key(addr: SocketAddr, settings: Value) -> String {
    let mut body = settings;
    body["key_alias"] = json!(format!("limits-{}", unique()));
    let (status, body) = post(addr, "/key/generate", MASTER, &body).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["key"].as_str().unwrap().to_owned()
}

async fn chat(addr: SocketAddr, key: &str) -> StatusCode {
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    post(addr, "/v1/chat/completions", key, &body).await.0
}

async fn metrics(addr: SocketAddr) -> String {
    let request = Request::get("/metrics")
        .header("host", "127.0.0.1")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = connect(addr).await.send_request(request).await.unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// Sends one request with `key` to each of `addrs` and holds them at the provider. Returns the
/// gate holding them once all have arrived; `None` (after letting them go) if any was answered
/// before arriving, i.e. refused.
async fn hold<const N: usize>(
    upstream: &MockProvider,
    key: &str,
    addrs: [SocketAddr; N],
) -> Option<(Gate, Vec<tokio::task::JoinHandle<StatusCode>>)> {
    let gate = Gate::new();
    upstream.set_default(Behaviour::gated(&gate, 0));
    let held: Vec<_> = addrs
        .into_iter()
        .map(|addr| {
            let key = key.to_owned();
            tokio::spawn(async move { chat(addr, &key).await })
        })
        .collect();
    let started = Instant::now();
    while gate.arrivals() < N {
        if held.iter().any(|h| h.is_finished()) || started.elapsed() > Duration::from_secs(10) {
            gate.release();
            let mut statuses = Vec::new();
            for h in held {
                statuses.push(h.await.unwrap());
            }
            upstream.set_default(Behaviour::Ok);
            eprintln!("not all held: {statuses:?}");
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Some((gate, held))
}

/// The value of the sample `name` (with its labels, as rendered) in `/metrics`.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

/// Two instances, one key with `rpm_limit: 10`. A concurrent burst of 24 spread over both
/// admits exactly 10; then four requests a second for 8 s, alternating, admit none: no span of
/// a minute holds more than 10 together (a token bucket would have let one through every 6 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_admit_at_most_rpm_limit_in_any_window() {
    let upstream = MockProvider::start().await;
    let redis: SocketAddr = REDIS_ADDR.parse().unwrap();
    let prefix = format!("llmgate-test:rl:rpm:{}:", unique());
    let path = config("limits-rpm", &upstream, redis, &prefix, "");
    let (_a, a) = start(&path).await;
    let (_b, b) = start(&path).await;
    let key = generate_key(a, json!({"rpm_limit": 10})).await;
    // Both instances know the key before the burst (B reads it from the database).
    let burst: Vec<_> = (0..24)
        .map(|i| {
            let key = key.clone();
            tokio::spawn(async move { chat(if i % 2 == 0 { a } else { b }, &key).await })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in burst {
        statuses.push(t.await.unwrap());
    }
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(ok, 10, "{statuses:?}");
    assert!(statuses
        .iter()
        .all(|s| *s == StatusCode::OK || *s == StatusCode::TOO_MANY_REQUESTS));
    let mut later = 0;
    for i in 0..32 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if chat(if i % 2 == 0 { a } else { b }, &key).await == StatusCode::OK {
            later += 1;
        }
    }
    assert_eq!(later, 0, "admitted after the burst, within the same minute");
    assert_eq!(upstream.request_count(), 10, "what reached the provider");
}

/// The Redis blip: a key with `max_parallel_requests: 3` and
/// `global_max_parallel_requests: 4` on two instances (A fails open, B fails closed). Three
/// requests are held in flight, Redis is cut, they finish while it is away (their releases
/// fail), and it is restored 3 s later. During the cut A admits without limits and B refuses
/// with a 503; within 3 s of the restore both admit the key through Redis again (B's 200s are
/// counted; A's add no limiter error) and the limits are exact again: three held in flight,
/// the fourth refused on either instance. After a cut, the slots were freed by the releases
/// sent again (`llmgate_rate_limiter_slots_reclaimed_total`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_cut_while_slots_are_held_heals_within_seconds_of_restore() {
    redis_blip(Fault::Cut).await;
}

/// The same with Redis stalled instead of cut (a partition without resets: every call waits
/// for the 500 ms timeout) for 3 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_stall_while_slots_are_held_heals_within_seconds_of_restore() {
    redis_blip(Fault::Stall).await;
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    Cut,
    Stall,
}

async fn redis_blip(fault: Fault) {
    let upstream = MockProvider::start().await;
    let proxy = FaultProxy::start(REDIS_ADDR.parse().unwrap())
        .await
        .unwrap();
    let prefix = format!("llmgate-test:rl:blip:{}:", unique());
    let limits = "  global_max_parallel_requests: 4\n";
    // Config files are named per process and test: the two faults run at once.
    let open = config(
        &format!("limits-{fault:?}-open"),
        &upstream,
        proxy.addr(),
        &prefix,
        limits,
    );
    let closed = config(
        &format!("limits-{fault:?}-closed"),
        &upstream,
        proxy.addr(),
        &prefix,
        &format!("{limits}  llmgate_rate_limit_failure_policy: closed\n"),
    );
    let (_a, a) = start(&open).await;
    let (_b, b) = start(&closed).await;
    let key = generate_key(a, json!({"max_parallel_requests": 3})).await;

    let (gate, held) = hold(&upstream, &key, [a, a, b])
        .await
        .expect("three in flight");
    assert_eq!(
        chat(b, &key).await,
        StatusCode::TOO_MANY_REQUESTS,
        "3 in flight"
    );

    match fault {
        Fault::Cut => proxy.cut(),
        Fault::Stall => proxy.stall(),
    }
    gate.release();
    for h in held {
        assert_eq!(h.await.unwrap(), StatusCode::OK);
    }
    upstream.set_default(Behaviour::Ok);
    // The policy holds during the fault.
    assert_eq!(chat(a, &key).await, StatusCode::OK, "A fails open");
    assert_eq!(
        chat(b, &key).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "B fails closed"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.restore();
    let restored = Instant::now();

    // B (closed) admits only what the limiter admits: a 200 means Redis counted it. A (open)
    // admits through Redis when its request adds no check error.
    let check_errors = |m: String| sample(&m, "llmgate_rate_limiter_errors_total{op=\"check\"}");
    loop {
        let b_ok = chat(b, &key).await == StatusCode::OK;
        let before = check_errors(metrics(a).await);
        let a_ok =
            chat(a, &key).await == StatusCode::OK && check_errors(metrics(a).await) == before;
        if a_ok && b_ok {
            break;
        }
        assert!(
            restored.elapsed() < Duration::from_secs(3),
            "{fault:?}: not admitting through Redis {:?} after it came back (A {a_ok}, B {b_ok})",
            restored.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let admitting = restored.elapsed();

    // Exact again once every lost release is through: three held in flight, the fourth
    // refused on either instance.
    let (gate, held) = loop {
        if let Some(h) = hold(&upstream, &key, [b, a, b]).await {
            break h;
        }
        assert!(
            restored.elapsed() < Duration::from_secs(3),
            "{fault:?}: slots still held {:?} after Redis came back",
            restored.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let exact = restored.elapsed();
    assert_eq!(chat(a, &key).await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(chat(b, &key).await, StatusCode::TOO_MANY_REQUESTS);
    gate.release();
    for h in held {
        assert_eq!(h.await.unwrap(), StatusCode::OK);
    }
    eprintln!(
        "{fault:?}: admitting through Redis {admitting:?} and exact {exact:?} after it came back"
    );

    if let Fault::Cut = fault {
        // Nothing sent during a cut reached Redis: every lost release was sent again.
        let reclaimed = |m: String| sample(&m, "llmgate_rate_limiter_slots_reclaimed_total");
        assert!(
            reclaimed(metrics(a).await) >= 4.0,
            "A's two requests, two slots each"
        );
        assert!(reclaimed(metrics(b).await) >= 2.0, "B's one request");
    }
    let m = metrics(a).await;
    assert!(
        sample(&m, "llmgate_rate_limiter_fail_open_admissions_total") >= 1.0,
        "{m}"
    );
    assert!(
        sample(&m, "llmgate_rate_limiter_errors_total{op=\"settle\"}") >= 2.0,
        "{m}"
    );
    let m = metrics(b).await;
    assert!(
        sample(&m, "llmgate_rate_limiter_errors_total{op=\"check\"}") >= 1.0,
        "{m}"
    );
    assert_eq!(
        sample(&m, "llmgate_rate_limiter_fail_open_admissions_total"),
        0.0
    );
}
