//! `/health/readiness` through the real binary tells the truth about its backends: the key
//! store (PostgreSQL here), Redis (rate limits, cache) and the spend writer. Each backend sits
//! behind a [`FaultProxy`] the test cuts and restores; the answer changes within about two
//! seconds each way (it is cached for one second, and every probe gives up after one).
//!
//! The PostgreSQL and Redis are the machine's (`127.0.0.1:5432`, `127.0.0.1:6379`).

#![allow(clippy::unwrap_used, clippy::panic, reason = "test helpers")]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::support::{chat, connect, postgres_up, redis_up, start, write_config};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use llmgate_testkit::{FaultProxy, MockProvider};
use serde_json::Value;

const MASTER: &str = "sk-master-readiness";
const PG_ADDR: &str = "127.0.0.1:5432";
const REDIS_ADDR: &str = "127.0.0.1:6379";

async fn readiness(addr: SocketAddr) -> (StatusCode, Value) {
    let request = Request::get("/health/readiness")
        .header("host", "127.0.0.1")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = connect(addr).await.send_request(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// Polls until the answer has `status`, and returns that answer and how long it took.
async fn wait_for(addr: SocketAddr, status: StatusCode, within: Duration) -> (Value, Duration) {
    let started = Instant::now();
    loop {
        let (got, body) = readiness(addr).await;
        if got == status {
            return (body, started.elapsed());
        }
        assert!(
            started.elapsed() < within,
            "still {got} after {within:?}, wanted {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn config(name: &str, upstream: &MockProvider, extra: &str) -> std::path::PathBuf {
    write_config(
        name,
        &format!(
            "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/gpt-x\n      \
             api_base: {}\n      api_key: sk-test\n{extra}",
            upstream.v1_url()
        ),
    )
}

async fn master_chat(addr: SocketAddr) -> StatusCode {
    let request = Request::post("/v1/chat/completions")
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {MASTER}"))
        .body(Full::new(Bytes::from(chat("m", false))))
        .unwrap();
    let response = connect(addr).await.send_request(request).await.unwrap();
    let status = response.status();
    let _ = response.into_body().collect().await;
    status
}

/// PostgreSQL cut: 503 within two seconds, naming the database and the spend writer's failure;
/// restored: 200 again, and the spend written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_key_store_and_the_spend_writer() {
    if !postgres_up().await {
        return;
    }
    let upstream = MockProvider::start().await;
    let pg = FaultProxy::start(PG_ADDR.parse().unwrap()).await.unwrap();
    let path = config(
        "ready-pg",
        &upstream,
        &format!(
            "general_settings:\n  master_key: {MASTER}\n  database_url: postgres://postgres@{}/{}\n  \
             proxy_batch_write_at: 1\n",
            pg.addr(),
            crate::support::pg_database()
        ),
    );
    let (_gateway, addr) = start(&path).await;

    let (status, body) = readiness(addr).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["db"], "connected");
    assert_eq!(body["checks"]["key_store"]["backend"], "postgres");
    assert_eq!(body["checks"]["spend_writer"]["status"], "ok");

    pg.cut();
    let (body, took) = wait_for(
        addr,
        StatusCode::SERVICE_UNAVAILABLE,
        Duration::from_secs(3),
    )
    .await;
    assert!(took < Duration::from_millis(2500), "{took:?}");
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(body["db"], "disconnected");
    assert_eq!(body["checks"]["key_store"]["status"], "error");
    assert!(body["checks"]["key_store"]["error"].is_string(), "{body}");

    // A request (the master key needs no database) queues a spend record the writer cannot
    // write: readiness says so.
    assert_eq!(master_chat(addr).await, StatusCode::OK);
    let started = Instant::now();
    loop {
        let (_, body) = readiness(addr).await;
        if body["checks"]["spend_writer"]["status"] == "failing" {
            assert!(
                body["checks"]["spend_writer"]["last_error"].is_string(),
                "{body}"
            );
            assert!(
                body["checks"]["spend_writer"]["unwritten"]
                    .as_u64()
                    .unwrap()
                    >= 1,
                "{body}"
            );
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(6), "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    pg.restore();
    // The writer's retry backoff is at most `proxy_batch_write_at` (1 s) here.
    let (body, took) = wait_for(addr, StatusCode::OK, Duration::from_secs(5)).await;
    assert!(took < Duration::from_secs(4), "{took:?}");
    assert_eq!(body["db"], "connected");
    let started = Instant::now();
    loop {
        let (_, body) = readiness(addr).await;
        if body["checks"]["spend_writer"]["status"] == "ok" {
            assert_eq!(body["checks"]["spend_writer"]["unwritten"], 0, "{body}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `allow_requests_on_db_unavailable: true` serves requests without the database, so readiness
/// stays 200 while saying the database is away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_stays_up_when_requests_are_allowed_without_the_database() {
    if !postgres_up().await {
        return;
    }
    let upstream = MockProvider::start().await;
    let pg = FaultProxy::start(PG_ADDR.parse().unwrap()).await.unwrap();
    let path = config(
        "ready-pg-allow",
        &upstream,
        &format!(
            "general_settings:\n  master_key: {MASTER}\n  database_url: postgres://postgres@{}/{}\n  \
             allow_requests_on_db_unavailable: true\n",
            pg.addr(),
            crate::support::pg_database()
        ),
    );
    let (_gateway, addr) = start(&path).await;
    assert_eq!(readiness(addr).await.0, StatusCode::OK);
    pg.cut();
    let started = Instant::now();
    loop {
        let (status, body) = readiness(addr).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["db"] == "disconnected" {
            assert_eq!(body["status"], "degraded");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(3), "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Redis for the rate limiter with `llmgate_rate_limit_failure_policy: closed`: a cut refuses
/// every limited request, so readiness is 503 until Redis returns. The response cache's Redis
/// only degrades (a broken cache is a miss).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_redis() {
    if !redis_up().await {
        return;
    }
    let upstream = MockProvider::start().await;
    let limiter = FaultProxy::start(REDIS_ADDR.parse().unwrap())
        .await
        .unwrap();
    let cache = FaultProxy::start(REDIS_ADDR.parse().unwrap())
        .await
        .unwrap();
    let path = config(
        "ready-redis",
        &upstream,
        &format!(
            "router_settings:\n  redis_url: redis://{}\n\
             litellm_settings:\n  cache: true\n  cache_params:\n    type: redis\n    \
             host: 127.0.0.1\n    port: {}\n\
             general_settings:\n  llmgate_rate_limit_failure_policy: closed\n",
            limiter.addr(),
            cache.addr().port()
        ),
    );
    let (_gateway, addr) = start(&path).await;
    let (status, body) = readiness(addr).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["cache"], "redis");
    assert_eq!(body["checks"]["rate_limit"]["status"], "ok", "{body}");
    assert_eq!(body["checks"]["rate_limit"]["backend"], "redis", "{body}");
    assert_eq!(body["checks"]["cache"]["status"], "ok", "{body}");

    cache.cut();
    let started = Instant::now();
    loop {
        let (status, body) = readiness(addr).await;
        assert_eq!(status, StatusCode::OK, "a broken cache is a miss: {body}");
        if body["checks"]["cache"]["status"] == "error" {
            assert_eq!(body["status"], "degraded");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(3), "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cache.restore();

    limiter.cut();
    let (body, took) = wait_for(
        addr,
        StatusCode::SERVICE_UNAVAILABLE,
        Duration::from_secs(3),
    )
    .await;
    assert!(took < Duration::from_millis(2500), "{took:?}");
    assert_eq!(body["checks"]["rate_limit"]["status"], "error", "{body}");
    assert_eq!(body["checks"]["rate_limit"]["failure_policy"], "closed");
    limiter.restore();
    let (_, took) = wait_for(addr, StatusCode::OK, Duration::from_secs(5)).await;
    assert!(took < Duration::from_secs(4), "{took:?}");
    // The router's cooldown channel on the same Redis reconnects within a second or so more.
    let started = Instant::now();
    loop {
        let (status, body) = readiness(addr).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["status"] == "healthy" {
            assert_eq!(
                body["checks"]["router"]["cooldowns"], "subscribed",
                "{body}"
            );
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(4), "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// docs/health.md: every ping is given up after 1 s, so a stalled backend (PostgreSQL behind a
/// proxy that holds every connection silent) reads as down: no probe hangs (each answers
/// within 1 s of ping and some margin), readiness is 503 within about 2 s, and 200 again
/// once the proxy forwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_key_database_reads_as_down_and_no_probe_hangs() {
    if !postgres_up().await {
        return;
    }
    let upstream = MockProvider::start().await;
    let pg = FaultProxy::start(PG_ADDR.parse().unwrap()).await.unwrap();
    let path = config(
        "ready-pg-stall",
        &upstream,
        &format!(
            "general_settings:\n  master_key: {MASTER}\n  database_url: postgres://postgres@{}/{}\n",
            pg.addr(),
            crate::support::pg_database()
        ),
    );
    let (_gateway, addr) = start(&path).await;
    assert_eq!(readiness(addr).await.0, StatusCode::OK);

    pg.stall();
    let stalled = Instant::now();
    loop {
        let asked = Instant::now();
        let (status, body) = readiness(addr).await;
        assert!(
            asked.elapsed() < Duration::from_millis(1800),
            "a probe hung {:?}",
            asked.elapsed()
        );
        if status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(body["checks"]["key_store"]["status"], "error", "{body}");
            break;
        }
        assert!(
            stalled.elapsed() < Duration::from_secs(3),
            "still {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    pg.restore();
    wait_for(addr, StatusCode::OK, Duration::from_secs(8)).await;
}
