//! The gateway's own budget (`litellm_settings.max_budget`) through the real binary: spent, it
//! stays spent across a SIGTERM and a restart, and the spend another process wrote to the
//! shared database reaches this one's budget within seconds (the spend log is read at start
//! and every 5 s after).

#![allow(clippy::unwrap_used, clippy::panic, reason = "test helpers")]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::support::{ask_priced, start_with, stop, test_dir, PRICED_COST, PRICED_REPLY};
use http::StatusCode;
use llmgate_testkit::{Behaviour, MockProvider};

const MASTER: &str = "sk-master-gateway-budget";
/// About four answers' worth ([`PRICED_COST`] each).
const BUDGET: f64 = 0.0001;

/// The models `priced` and `free` (costs nothing) at `upstream`, a master key (so the spend log is in SQLite beside the
/// config), the gateway's budget, and `extra` general settings.
fn config(name: &str, upstream: &MockProvider, extra: &str) -> PathBuf {
    let dir = test_dir("gateway-budget", name);
    let path = dir.join("config.yaml");
    let text = format!(
        "model_list:\n  - model_name: priced\n    litellm_params:\n      model: openai/gpt-x\n      \
         api_base: {0}\n      api_key: sk-test\n    model_info:\n      \
         input_cost_per_token: 0.000001\n      output_cost_per_token: 0.000002\n  \
         - model_name: free\n    litellm_params:\n      model: openai/gpt-free\n      \
         api_base: {0}\n      api_key: sk-test\n    model_info:\n      \
         input_cost_per_token: 0\n      output_cost_per_token: 0\n\
         litellm_settings:\n  max_budget: {BUDGET}\n\
         general_settings:\n  master_key: {MASTER}\n{extra}",
        upstream.v1_url()
    );
    std::fs::write(&path, text).unwrap();
    path
}

async fn priced_upstream() -> MockProvider {
    let upstream = MockProvider::start().await;
    upstream.set_default(Behaviour::reply(PRICED_REPLY));
    upstream
}

/// Whether the answer is the gateway budget's refusal; panics on anything but that or a 200.
fn refused(status: StatusCode, body: &serde_json::Value) -> bool {
    match status {
        StatusCode::OK => false,
        StatusCode::BAD_REQUEST => {
            let message = body["error"]["message"].as_str().unwrap_or_default();
            assert_eq!(body["error"]["type"], "budget_exceeded", "{body}");
            assert!(message.contains("litellm_settings.max_budget"), "{body}");
            true
        }
        other => panic!("{other}: {body}"),
    }
}

/// Asks one at a time until the budget refuses: how many were answered.
async fn spend_it_all(addr: SocketAddr) -> usize {
    for answered in 0..50 {
        let (status, body) = ask_priced(addr, MASTER, None).await;
        if refused(status, &body) {
            return answered;
        }
    }
    panic!("the budget never refused");
}

/// Spent, then SIGTERM and a new start: the first request is refused, and reaches no provider.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateways_budget_survives_a_restart_of_the_binary() {
    let upstream = priced_upstream().await;
    let config = config("restart", &upstream, "");
    let (mut gateway, addr) = start_with(&config, &[], &[]).await;
    let answered = spend_it_all(addr).await;
    let most = (BUDGET / PRICED_COST).ceil() as usize;
    assert!((1..=most).contains(&answered), "{answered} answered");
    stop(&mut gateway).await;

    let calls = upstream.request_count();
    let (mut gateway, addr) = start_with(&config, &[], &[]).await;
    let (status, body) = ask_priced(addr, MASTER, None).await;
    assert!(refused(status, &body), "admitted after the restart: {body}");
    assert_eq!(upstream.request_count(), calls, "reached the provider");
    stop(&mut gateway).await;
}

/// One request for the model `free`: it costs nothing, so asking it spends no budget, but it
/// is refused like any other once the budget is spent.
async fn ask_free(addr: SocketAddr) -> (StatusCode, serde_json::Value) {
    let body =
        serde_json::json!({"model": "free", "messages": [{"role": "user", "content": "hi"}]});
    crate::support::post(addr, "/v1/chat/completions", MASTER, &body).await
}

/// Two processes on one SQLite file, each with its own (memory) ledger. A spends the budget,
/// and its records are written within a second (`proxy_batch_write_at: 1`). B, which answered
/// none of it, refuses within the 5 s of its next read of the spend log, plus the second of
/// A's write and a margin. B is asked for the free model, so its own requests spend nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_processs_written_spend_reaches_the_gateways_budget_within_seconds() {
    let upstream = priced_upstream().await;
    let config = config("shared", &upstream, "  proxy_batch_write_at: 1\n");
    let (mut a, a_addr) = start_with(&config, &[], &[]).await;
    let (mut b, b_addr) = start_with(&config, &[], &[]).await;
    let (status, body) = ask_free(b_addr).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    spend_it_all(a_addr).await;

    let spent = Instant::now();
    loop {
        let (status, body) = ask_free(b_addr).await;
        if refused(status, &body) {
            break;
        }
        assert!(
            spent.elapsed() < Duration::from_secs(9),
            "B still admits {:?} after A spent the budget",
            spent.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for gateway in [&mut a, &mut b] {
        stop(gateway).await;
    }
}

/// A PostgreSQL schema of its own (the gateway's budget counts the whole spend log, so the
/// shared `test` database's other rows must not count): the URL, and a connection to drop it.
async fn own_schema(name: &str) -> Option<(String, sqlx::PgConnection, String)> {
    use sqlx::{Connection as _, Executor as _};
    if !crate::support::postgres_up().await {
        return None;
    }
    let url = crate::support::PG_URL.clone();
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let schema = format!("{name}_{}", std::process::id());
    let reset = format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}");
    conn.execute(reset.as_str()).await.unwrap();
    Some((
        format!("{url}?options=-c%20search_path%3D{schema}"),
        conn,
        schema,
    ))
}

/// Three processes on one Redis (the budget ledger) and one PostgreSQL: 100 requests at once,
/// spread over them, against a gateway budget worth 20. The reservations hold the burst inside
/// it; the rest is spent one at a time; no more than 21 are paid in all, and then every
/// instance refuses (docs/cost-tracking.md, "The same reservation as a key's budget").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_one_redis_hold_the_gateways_budget() {
    if crate::support::redis_up().await {
        three_instances_hold_the_gateways_budget(true).await;
    }
}

/// The same without Redis: the ledger is PostgreSQL's (a row locked per reservation).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_one_postgres_hold_the_gateways_budget() {
    three_instances_hold_the_gateways_budget(false).await;
}

async fn three_instances_hold_the_gateways_budget(redis: bool) {
    use sqlx::Executor as _;
    let name = if redis {
        "gateway_budget"
    } else {
        "gateway_budget_pg"
    };
    let Some((database, mut conn, schema)) = own_schema(name).await else {
        return;
    };
    let upstream = MockProvider::start().await;
    upstream.set_default(Behaviour::reply(PRICED_REPLY).delayed(Duration::from_millis(300)));
    let prefix = format!(
        "llmgate:test:gateway-budget:{}:{}:",
        std::process::id(),
        schema.len()
    );
    let text = format!(
        "model_list:\n  - model_name: priced\n    litellm_params:\n      model: openai/gpt-x\n      \
         api_base: {}\n      api_key: sk-test\n    model_info:\n      \
         input_cost_per_token: 0.000001\n      output_cost_per_token: 0.000002\n\
         {}litellm_settings:\n  max_budget: {}\n\
         general_settings:\n  master_key: {MASTER}\n  database_url: \"{database}\"\n  \
         llmgate_rate_limit_redis_prefix: \"{prefix}\"\n",
        upstream.v1_url(),
        if redis { "router_settings:\n  redis_url: redis://127.0.0.1:6379\n" } else { "" },
        PRICED_COST * 20.0
    );
    let config = crate::support::write_config(name, &text);
    let mut gateways = Vec::new();
    for _ in 0..3 {
        gateways.push(start_with(&config, &[], &[]).await);
    }
    let addrs: Vec<SocketAddr> = gateways.iter().map(|(_, a)| *a).collect();
    let mut tasks = Vec::new();
    for i in 0..100 {
        let addr = addrs[i % 3];
        tasks.push(tokio::spawn(
            async move { ask_priced(addr, MASTER, None).await },
        ));
    }
    let mut paid = crate::support::count_paid(tasks).await;
    assert!(
        (15..=21).contains(&paid),
        "{paid} of the burst paid against a budget worth 20"
    );
    for i in 0.. {
        let (status, body) = ask_priced(addrs[i % 3], MASTER, None).await;
        if refused(status, &body) {
            break;
        }
        paid += 1;
        assert!(paid <= 21, "{paid} paid against a budget worth 20");
    }
    assert!(
        (20..=21).contains(&paid),
        "{paid} paid against a budget worth 20"
    );
    for addr in &addrs {
        let (status, body) = ask_priced(*addr, MASTER, None).await;
        assert!(refused(status, &body), "{body}");
    }
    assert_eq!(upstream.request_count(), paid);
    for (mut g, _) in gateways {
        stop(&mut g).await;
    }
    conn.execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
        .await
        .unwrap();
}
