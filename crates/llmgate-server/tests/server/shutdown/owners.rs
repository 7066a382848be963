//! The spend of a key's team, its user and the end user a request names is charged with the
//! spend log row, so it is exact and survives a SIGTERM and a restart (docs/teams.md,
//! docs/users.md, docs/end-users.md): read back through the admin API of a new process.

use std::net::SocketAddr;
use std::time::Duration;

use super::{close, priced_answer, test_dir, uuid_ish, write_config, MASTER};
use crate::support::{connect, get_with, post, signal, start_with, wait_exit};
use http::StatusCode;
use llmgate_testkit::MockProvider;
use serde_json::{json, Value};

/// `n` chat requests with `key` as the end user `customer`: what the answers said they cost.
async fn answered_as(addr: SocketAddr, key: &str, customer: &str, n: usize) -> f64 {
    let mut sender = connect(addr).await;
    let mut total = 0.0;
    for _ in 0..n {
        let body = json!({"model": "priced", "user": customer,
            "messages": [{"role": "user", "content": "hi"}]});
        total += priced_answer(&mut sender, key, &body).await;
    }
    total
}

async fn admin(addr: SocketAddr, path: &str, body: Value) -> Value {
    let (status, answer) = post(addr, path, MASTER, &body).await;
    assert_eq!(status, StatusCode::OK, "{path}: {answer}");
    answer
}

/// The `spend` at `pointer` of the admin API's answer to GET `path`.
async fn spend(addr: SocketAddr, path: &str, pointer: &str) -> f64 {
    let (status, text) = get_with(addr, path, MASTER).await;
    assert_eq!(status, StatusCode::OK, "{path}: {text}");
    let json: Value = serde_json::from_str(&text).unwrap();
    json.pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no {pointer} in {json}"))
}

/// 50 answered requests through a key of a team and a user, naming an end user; SIGTERM; a
/// new process reads each owner's spend back: exactly what the answers cost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_user_and_end_user_spend_is_exact_after_a_restart() {
    let upstream = MockProvider::start().await;
    let dir = test_dir("owners");
    let config = write_config(&dir, &upstream, "");
    let (mut gateway, addr) = start_with(&config, &[], &[]).await;
    let tag = format!("{}-{}", std::process::id(), uuid_ish());
    let (team, user, customer) = (
        format!("team-{tag}"),
        format!("user-{tag}"),
        format!("cust-{tag}"),
    );
    admin(addr, "/team/new", json!({"team_id": team})).await;
    admin(addr, "/user/new", json!({"user_id": user})).await;
    let key = admin(
        addr,
        "/key/generate",
        json!({"team_id": team, "user_id": user}),
    )
    .await;
    let key = key["key"].as_str().unwrap().to_owned();
    let charged = answered_as(addr, &key, &customer, 50).await;
    assert!(charged > 0.0, "the model is priced");
    signal(&gateway, "TERM");
    assert!(wait_exit(&mut gateway, Duration::from_secs(20))
        .await
        .success());

    let (mut gateway, addr) = start_with(&config, &[], &[]).await;
    let owners = [
        (format!("/team/info?team_id={team}"), "/team_info/spend"),
        (format!("/user/info?user_id={user}"), "/user_info/spend"),
        (format!("/customer/info?end_user_id={customer}"), "/spend"),
    ];
    for (path, pointer) in owners {
        let spent = spend(addr, &path, pointer).await;
        assert!(close(spent, charged), "{path}: {spent}, answered {charged}");
    }
    signal(&gateway, "TERM");
    assert!(wait_exit(&mut gateway, Duration::from_secs(20))
        .await
        .success());
}
