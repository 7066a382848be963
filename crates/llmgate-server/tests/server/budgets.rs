//! A key's budget holds across instances: three real `llmgate` processes on one PostgreSQL
//! (and, in one variant, one Redis) share each key's spend for the period as requests end, and
//! reserve an estimate of each request's cost when they admit it. So a burst cannot run past
//! the budget on every instance at once, and once the budget is spent every instance refuses.
//!
//! The model costs 21 µUSD a request (1 prompt word at 1 µUSD, 10 reply words at 2 µUSD, as the
//! mock provider counts them); the key's budget is worth 20 requests.

#![allow(clippy::unwrap_used, clippy::panic, reason = "test helpers")]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::support::{post, postgres_up, redis_up, start_with, write_config, Gateway};
use crate::support::{PG_URL, PRICED_COST as COST, PRICED_REPLY as REPLY};
use http::StatusCode;
use llmgate_testkit::{Behaviour, MockProvider};
use serde_json::{json, Value};

const MASTER: &str = "sk-master-budgets";

async fn ask(addr: SocketAddr, key: &str) -> (StatusCode, Value) {
    crate::support::ask_priced(addr, key, None).await
}

/// Three gateways on one config; the mock answers after `delay`.
async fn three(
    name: &str,
    extra: &str,
    delay: Duration,
) -> (MockProvider, Vec<(Gateway, SocketAddr)>) {
    crate::support::three_priced(name, MASTER, extra, delay).await
}

async fn budget_key(addr: SocketAddr, requests: f64) -> String {
    let (status, body) = post(
        addr,
        "/key/generate",
        MASTER,
        &json!({"max_budget": COST * requests}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["key"].as_str().unwrap().to_owned()
}

/// 100 requests at once, spread over the three instances: the reservations hold the burst
/// inside the budget; what is left is then paid one request at a time; no more are paid in all
/// than the budget allows plus one (a request is admitted while anything is left), and then
/// every instance refuses at once.
async fn burst_is_held_to_the_budget(name: &str, extra: &str) {
    if !postgres_up().await || (extra.contains("redis") && !redis_up().await) {
        return;
    }
    let (upstream, gateways) = three(name, extra, Duration::from_millis(300)).await;
    let addrs: Vec<SocketAddr> = gateways.iter().map(|(_, a)| *a).collect();
    let key = budget_key(addrs[0], 20.0).await;

    let mut tasks = Vec::new();
    for i in 0..100 {
        let addr = addrs[i % 3];
        let key = key.clone();
        tasks.push(tokio::spawn(async move { ask(addr, &key).await }));
    }
    let mut paid = crate::support::count_paid(tasks).await;
    assert_eq!(paid, upstream.request_count());
    // Each admitted request reserved its estimate (27 µUSD: the gateway counts the prompt as 7
    // tokens, and 10 for `max_tokens`), so the burst stops near 420 / 27 = 15.6 requests if
    // all are admitted before any ends (Redis); later admissions see the first ones settled
    // (PostgreSQL queues them), but none runs past the budget.
    assert!(
        (15..=21).contains(&paid),
        "{paid} requests of the burst paid against a budget worth 20"
    );
    // What the burst left is spent one by one, whichever instance is asked.
    for i in 0.. {
        let (status, body) = ask(addrs[i % 3], &key).await;
        match status {
            StatusCode::OK => paid += 1,
            StatusCode::BAD_REQUEST => break,
            other => panic!("{other}: {body}"),
        }
        assert!(paid <= 21, "{paid} paid against a budget worth 20");
    }
    assert!(
        (20..=21).contains(&paid),
        "{paid} paid against a budget worth 20"
    );
    let reached = upstream.request_count();
    assert_eq!(paid, reached);
    // Spent: each instance refuses now, with no cache to wait out.
    for addr in &addrs {
        let (status, body) = ask(*addr, &key).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"]["code"], "budget_exceeded", "{body}");
    }
    assert_eq!(upstream.request_count(), reached);
}

/// A steady 5 requests a second, round robin over the instances: the first refusal on any
/// instance is followed by refusals everywhere (within a second), and what was paid is the
/// budget, give or take the request in flight when it ran out.
async fn steady_load_stops_everywhere(name: &str, extra: &str) {
    if !postgres_up().await || (extra.contains("redis") && !redis_up().await) {
        return;
    }
    let (upstream, gateways) = three(name, extra, Duration::from_millis(50)).await;
    let addrs: Vec<SocketAddr> = gateways.iter().map(|(_, a)| *a).collect();
    let key = budget_key(addrs[0], 10.0).await;
    let mut first_refusal: Option<Instant> = None;
    let mut paid = 0;
    for i in 0..40 {
        let (status, body) = ask(addrs[i % 3], &key).await;
        match status {
            StatusCode::OK => {
                if let Some(at) = first_refusal {
                    assert!(
                        at.elapsed() < Duration::from_secs(1),
                        "admitted {:?} after another instance refused",
                        at.elapsed()
                    );
                }
                paid += 1;
            }
            StatusCode::BAD_REQUEST => {
                first_refusal.get_or_insert_with(Instant::now);
            }
            other => panic!("{other}: {body}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(first_refusal.is_some());
    assert!(
        (10..=11).contains(&paid),
        "{paid} paid against a budget worth 10"
    );
    assert_eq!(upstream.request_count(), paid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_over_three_instances_is_held_to_the_budget_with_redis() {
    burst_is_held_to_the_budget(
        "budget-burst-redis",
        "router_settings:\n  redis_url: redis://127.0.0.1:6379\n",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_over_three_instances_is_held_to_the_budget_on_postgres() {
    burst_is_held_to_the_budget("budget-burst-pg", "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_load_over_three_instances_stops_everywhere_with_redis() {
    steady_load_stops_everywhere(
        "budget-steady-redis",
        "router_settings:\n  redis_url: redis://127.0.0.1:6379\n",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_load_over_three_instances_stops_everywhere_on_postgres() {
    steady_load_stops_everywhere("budget-steady-pg", "").await;
}

/// `budget_duration`: once the period ends, every instance admits again (a fresh ledger entry
/// per period), and the new period is held to the budget like the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_reset_reaches_every_instance_with_redis() {
    if !postgres_up().await || !redis_up().await {
        return;
    }
    let (upstream, gateways) = three(
        "budget-reset-redis",
        "router_settings:\n  redis_url: redis://127.0.0.1:6379\n",
        Duration::from_millis(10),
    )
    .await;
    let addrs: Vec<SocketAddr> = gateways.iter().map(|(_, a)| *a).collect();
    let (status, body) = post(
        addrs[0],
        "/key/generate",
        MASTER,
        &json!({"max_budget": COST * 3.0, "budget_duration": "3s"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let key = body["key"].as_str().unwrap().to_owned();
    let spend_period = |addrs: Vec<SocketAddr>, key: String| async move {
        let mut paid = 0;
        for i in 0..10 {
            let (status, body) = ask(addrs[i % 3], &key).await;
            match status {
                StatusCode::OK => paid += 1,
                StatusCode::BAD_REQUEST => return (paid, Instant::now()),
                other => panic!("{other}: {body}"),
            }
        }
        panic!("never refused");
    };
    let (paid, _) = spend_period(addrs.clone(), key.clone()).await;
    assert!((3..=4).contains(&paid), "{paid}");
    // Every instance refuses until the period ends, then admits.
    let started = Instant::now();
    let mut admitted = [false; 3];
    while admitted.contains(&false) {
        assert!(started.elapsed() < Duration::from_secs(6), "{admitted:?}");
        for (i, addr) in addrs.iter().enumerate() {
            if !admitted[i] && ask(*addr, &key).await.0 == StatusCode::OK {
                admitted[i] = true;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = upstream.request_count();
    let (more, _) = spend_period(addrs.clone(), key.clone()).await;
    assert!(
        (0..=1).contains(&more),
        "3 admitted after the reset, then {more} more"
    );
    assert_eq!(upstream.request_count(), before + more);
}

async fn metric(addr: SocketAddr, name: &str) -> f64 {
    let (_, text) = crate::support::get(addr, "/metrics").await;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Redis away: a budgeted key's request is judged by its cached record (the gateway keeps
/// serving), and the ledger's failure is counted in `/metrics`; Redis back: the ledger holds
/// the budget again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_outage_is_counted_and_requests_fall_back_to_the_record() {
    if !postgres_up().await || !redis_up().await {
        return;
    }
    let redis = llmgate_testkit::FaultProxy::start("127.0.0.1:6379".parse().unwrap())
        .await
        .unwrap();
    let upstream = MockProvider::start().await;
    upstream.set_default(Behaviour::reply(REPLY));
    let pg_url = PG_URL.as_str();
    let config = write_config(
        "budget-ledger-outage",
        &format!(
            "model_list:\n  - model_name: priced\n    litellm_params:\n      model: openai/gpt-x\n      \
             api_base: {}\n      api_key: sk-test\n    model_info:\n      \
             input_cost_per_token: 0.000001\n      output_cost_per_token: 0.000002\n\
             general_settings:\n  master_key: {MASTER}\n  database_url: {pg_url}\n\
             router_settings:\n  redis_url: redis://{}\n",
            upstream.v1_url(),
            redis.addr()
        ),
    );
    let (_gateway, addr) = start_with(&config, &[], &[]).await;
    let key = budget_key(addr, 3.0).await;
    assert_eq!(ask(addr, &key).await.0, StatusCode::OK);
    assert_eq!(
        metric(addr, "llmgate_budget_ledger_errors_total").await,
        0.0
    );

    redis.cut();
    assert_eq!(ask(addr, &key).await.0, StatusCode::OK);
    assert!(metric(addr, "llmgate_budget_ledger_errors_total").await >= 1.0);

    redis.restore();
    // Back: the ledger knows the first request's cost; whatever the outage spent unseen, the
    // budget (worth 3) stops the key within two more.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut paid = 0;
    while ask(addr, &key).await.0 == StatusCode::OK {
        paid += 1;
        assert!(paid <= 2, "{paid} more paid after the outage");
    }
}
