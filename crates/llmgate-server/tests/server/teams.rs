//! Teams and end users across instances: three real `llmgate` processes on one PostgreSQL. A
//! team blocked through one is refused by the others within a second (`NOTIFY team:<id>`), and
//! a burst from one team's keys (or one end user, or a key linked to a budget object raised
//! through another instance) over all three is held to its budget by the shared ledger, then
//! refused everywhere.
//!
//! The model costs 21 µUSD a request (as in `budgets.rs`); budgets are worth 10 requests.

#![allow(clippy::unwrap_used, clippy::panic, reason = "test helpers")]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::support::{ask_priced, PRICED_COST as COST};
use crate::support::{post, postgres_up, Gateway};
use http::StatusCode;
use llmgate_testkit::MockProvider;
use serde_json::json;

const MASTER: &str = "sk-master-teams";

async fn three(name: &str, extra: &str) -> (MockProvider, Vec<(Gateway, SocketAddr)>) {
    crate::support::three_priced(name, MASTER, extra, Duration::from_millis(200)).await
}

fn unique(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{what}-{}-{nanos}", std::process::id())
}

/// 60 requests at once over the instances, then one at a time until refused: never more paid
/// than the budget allows plus one, and every instance refuses at the end.
async fn burst(addrs: &[SocketAddr], upstream: &MockProvider, keys: &[String], user: Option<&str>) {
    let before = upstream.request_count();
    let mut tasks = Vec::new();
    for i in 0..60 {
        let (addr, key, user) = (
            addrs[i % addrs.len()],
            keys[i % keys.len()].clone(),
            user.map(str::to_owned),
        );
        tasks.push(tokio::spawn(async move {
            ask_priced(addr, &key, user.as_deref()).await
        }));
    }
    let mut paid = crate::support::count_paid(tasks).await;
    // One at a time until all the instances refuse in a row: an instance may admit one
    // request while anything is left (the bound below), never more.
    let mut refused_in_a_row = 0;
    for i in 0.. {
        let (status, body) = ask_priced(addrs[i % addrs.len()], &keys[i % keys.len()], user).await;
        match status {
            StatusCode::OK => {
                paid += 1;
                refused_in_a_row = 0;
            }
            StatusCode::BAD_REQUEST => refused_in_a_row += 1,
            other => panic!("{other}: {body}"),
        }
        assert!(paid <= 11, "{paid} paid against a budget worth 10");
        if refused_in_a_row == addrs.len() {
            break;
        }
    }
    assert!(
        (10..=11).contains(&paid),
        "{paid} paid against a budget worth 10"
    );
    assert_eq!(upstream.request_count() - before, paid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_is_blocked_and_budgeted_across_three_instances() {
    if !postgres_up().await {
        return;
    }
    let (upstream, gateways) = three("teams-three", "").await;
    let addrs: Vec<SocketAddr> = gateways.iter().map(|(_, a)| *a).collect();
    let team = unique("team");
    let (status, body) = post(
        addrs[0],
        "/team/new",
        MASTER,
        &json!({"team_id": team, "max_budget": COST * 10.0}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut keys = Vec::new();
    for _ in 0..2 {
        let (status, body) =
            post(addrs[0], "/key/generate", MASTER, &json!({"team_id": team})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        keys.push(body["key"].as_str().unwrap().to_owned());
    }
    // Every instance has looked the team up (and cached it) before it is blocked.
    for addr in &addrs {
        assert_eq!(ask_priced(*addr, &keys[0], None).await.0, StatusCode::OK);
    }
    let (status, _) = post(addrs[1], "/team/block", MASTER, &json!({"team_id": team})).await;
    assert_eq!(status, StatusCode::OK);
    let started = Instant::now();
    for addr in [addrs[0], addrs[2]] {
        loop {
            let (status, body) = ask_priced(addr, &keys[1], None).await;
            if status == StatusCode::UNAUTHORIZED {
                assert_eq!(body["error"]["code"], "team_blocked", "{body}");
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "the block reached every instance within a second"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let (status, _) = post(addrs[2], "/team/unblock", MASTER, &json!({"team_id": team})).await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(500)).await;
    // 3 were paid before the block: with the budget raised to 13 requests, the burst may pay
    // 10 more, from both keys, over the three instances.
    let (status, body) = post(
        addrs[0],
        "/team/update",
        MASTER,
        &json!({"team_id": team, "max_budget": COST * 13.0}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    burst(&addrs, &upstream, &keys, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_end_users_budget_holds_across_three_instances() {
    if !postgres_up().await {
        return;
    }
    let (upstream, gateways) = three("end-users-three", "").await;
    let addrs: Vec<SocketAddr> = gateways.iter().map(|(_, a)| *a).collect();
    let user = unique("customer");
    let (status, body) = post(
        addrs[0],
        "/customer/new",
        MASTER,
        &json!({"user_id": user, "max_budget": COST * 10.0}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    burst(&addrs, &upstream, &[MASTER.to_owned()], Some(&user)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_objects_key_is_held_across_three_instances() {
    if !postgres_up().await {
        return;
    }
    let (upstream, gateways) = three("budgets-three", "").await;
    let addrs: Vec<SocketAddr> = gateways.iter().map(|(_, a)| *a).collect();
    let budget = unique("budget");
    let made = json!({"budget_id": budget, "max_budget": COST * 10.0});
    let (status, body) = post(addrs[0], "/budget/new", MASTER, &made).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let link = json!({"budget_id": budget});
    let (status, body) = post(addrs[0], "/key/generate", MASTER, &link).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let key = body["key"].as_str().unwrap().to_owned();
    // Every instance has looked the key (and its budget) up before the budget changes.
    for addr in &addrs {
        assert_eq!(ask_priced(*addr, &key, None).await.0, StatusCode::OK);
    }
    // 3 paid: raised to 13 requests through the second instance, a burst over the other two
    // pays 10 more, which it can only if they see the new budget.
    let raised = json!({"budget_id": budget, "max_budget": COST * 13.0});
    let (status, body) = post(addrs[1], "/budget/update", MASTER, &raised).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    burst(&[addrs[0], addrs[2]], &upstream, &[key], None).await;
}

/// An internal user's budget over two of their keys, across three real processes: a change to
/// the user (a model taken away) reaches every instance within a second, and a burst from both
/// keys is held to the user's budget, then refused everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_budget_holds_their_keys_across_three_instances() {
    if !postgres_up().await {
        return;
    }
    let (upstream, gateways) = three("users-three", "").await;
    let addrs: Vec<SocketAddr> = gateways.iter().map(|(_, a)| *a).collect();
    let user = unique("user");
    let (status, body) = post(
        addrs[0],
        "/user/new",
        MASTER,
        &json!({"user_id": user, "max_budget": COST * 10.0, "models": ["elsewhere"],
            "auto_create_key": false}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut keys = Vec::new();
    for addr in [addrs[0], addrs[1]] {
        let (status, body) = post(addr, "/key/generate", MASTER, &json!({"user_id": user})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        keys.push(body["key"].as_str().unwrap().to_owned());
    }
    // Every instance has looked the user up (and cached them) before the change.
    for addr in &addrs {
        let (status, body) = ask_priced(*addr, &keys[1], None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    let (status, _) = post(
        addrs[2],
        "/user/update",
        MASTER,
        &json!({"user_id": user, "models": []}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let started = Instant::now();
    for addr in [addrs[0], addrs[1]] {
        loop {
            let (status, body) = ask_priced(addr, &keys[0], None).await;
            if status == StatusCode::OK {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "the change reached every instance within a second: {body}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // 2 were paid reaching the change: with the budget raised to 12 requests, the burst may pay
    // 10 more, from both keys, over the three instances.
    let (status, body) = post(
        addrs[0],
        "/user/update",
        MASTER,
        &json!({"user_id": user, "max_budget": COST * 12.0}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    burst(&addrs, &upstream, &keys, None).await;
}
