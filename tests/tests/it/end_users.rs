//! End users (issue 18, item 3): the `user` a request names is tracked with its spend (created
//! on its first charge, as LiteLLM creates customers), held to its budget (its own, else
//! `max_end_user_budget`) whoever calls, and refused while blocked; `/customer/*` and
//! `/end_user/*` manage them, `/global/spend/end_users` sums their spend.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use llmgate_tests::{Behaviour, Gate, MockProvider, TempDb, TestGateway};
use serde_json::{json, Value};

const MASTER: &str = "sk-master-end-users";

/// One model `gpt` at `mock`, each answer costing 0.005 USD.
async fn open(mock: &MockProvider, db: &TempDb, settings: &str) -> (llmgate::Gateway, TestGateway) {
    let y = format!(
        "model_list:\n  - model_name: gpt\n    litellm_params:\n      model: openai/private-x\n      api_base: {}\n      api_key: sk-upstream\n    model_info:\n      input_cost_per_token: 0.001\n      output_cost_per_token: 0.001\nlitellm_settings:\n{settings}\ngeneral_settings:\n  master_key: {MASTER}\n  database_url: {}\n",
        mock.v1_url(),
        db.url()
    );
    let loaded = llmgate_config::from_yaml(
        &y,
        std::path::Path::new("."),
        &std::collections::HashMap::<String, String>::new(),
    )
    .unwrap_or_else(|p| panic!("config rejected:\n{p}"));
    assert!(loaded.notices.is_empty(), "{:?}", loaded.notices);
    let gateway = llmgate::Gateway::open(loaded.config).await.expect("opens");
    let gw = TestGateway::serve(gateway.clone()).await;
    (gateway, gw)
}

fn as_user(user: &str) -> Value {
    json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}], "user": user})
}

#[tokio::test]
async fn an_end_users_budget_holds_every_caller_and_its_spend_is_kept() {
    let mock = MockProvider::start().await;
    let db = TempDb::new("end-users");
    let (gateway, gw) = open(&mock, &db, "  drop_params: true").await;
    let admin = gw.handle().with_key(MASTER);
    let made = admin
        .post(
            "/customer/new",
            &json!({"user_id": "palantir", "max_budget": 0.008, "alias": "P"}),
        )
        .await;
    assert_eq!(made.status, 200, "{}", made.text());
    let key = admin.post("/key/generate", &json!({})).await.json()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let user = gw.handle().with_key(&key);
    assert_eq!(
        admin
            .post("/v1/chat/completions", &as_user("palantir"))
            .await
            .status,
        200
    );
    assert_eq!(
        user.post("/v1/chat/completions", &as_user("palantir"))
            .await
            .status,
        200
    );
    for caller in [&admin, &user] {
        let err = caller
            .post("/v1/chat/completions", &as_user("palantir"))
            .await
            .openai_error(400);
        assert_eq!(err["type"], "budget_exceeded", "{err}");
        assert!(
            err["message"]
                .as_str()
                .unwrap()
                .contains("End User=palantir"),
            "{err}"
        );
    }
    assert_eq!(
        user.post("/v1/chat/completions", &as_user("someone-else"))
            .await
            .status,
        200
    );
    assert_eq!(mock.requests().len(), 3);

    gateway.flush_spend().await;
    let info = admin
        .get("/customer/info?end_user_id=palantir")
        .await
        .json();
    assert!(
        (info["spend"].as_f64().unwrap() - 0.01).abs() < 1e-9,
        "{info}"
    );
    assert_eq!(info["alias"], "P");
    assert_eq!(info["litellm_budget_table"]["max_budget"], 0.008);
    // An end user seen for the first time was created by its charge.
    let seen = admin
        .get("/end_user/info?end_user_id=someone-else")
        .await
        .json();
    assert!(
        (seen["spend"].as_f64().unwrap() - 0.005).abs() < 1e-9,
        "{seen}"
    );
    assert_eq!(
        admin
            .get("/customer/list")
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let spend = admin.get("/global/spend/end_users").await.json();
    assert_eq!(spend[0]["end_user"], "palantir");
    assert_eq!(spend[0]["total_count"], 2);
    let logs = admin.get("/spend/logs?limit=1").await.json();
    assert_eq!(logs[0]["end_user"], "someone-else");
    gw.shutdown().await;
}

#[tokio::test]
async fn a_blocked_end_user_is_refused_until_unblocked() {
    let mock = MockProvider::start().await;
    let db = TempDb::new("end-users");
    let (_gateway, gw) = open(&mock, &db, "  drop_params: true").await;
    let admin = gw.handle().with_key(MASTER);
    // Blocked before its first request.
    let res = admin
        .post("/customer/block", &json!({"user_ids": ["mallory"]}))
        .await;
    assert_eq!(res.json(), json!({"blocked_users": ["mallory"]}));
    let err = admin
        .post("/v1/chat/completions", &as_user("mallory"))
        .await
        .openai_error(403);
    assert_eq!(err["code"], "end_user_blocked", "{err}");
    assert_eq!(mock.requests().len(), 0);
    admin
        .post("/customer/unblock", &json!({"user_ids": ["mallory"]}))
        .await
        .json();
    assert_eq!(
        admin
            .post("/v1/chat/completions", &as_user("mallory"))
            .await
            .status,
        200
    );
    // Mistakes are 400/404 in OpenAI's shape.
    let err = admin
        .post("/customer/new", &json!({"user_id": "x", "max_budget": -1}))
        .await
        .openai_error(400);
    assert_eq!(err["param"], "max_budget", "{err}");
    admin
        .get("/customer/info?end_user_id=nobody")
        .await
        .openai_error(404);
    let deleted = admin
        .post("/customer/delete", &json!({"user_ids": ["mallory"]}))
        .await
        .json();
    assert_eq!(deleted["deleted_customers"], json!(["mallory"]));
    gw.shutdown().await;
}

#[tokio::test]
async fn max_end_user_budget_holds_end_users_without_their_own() {
    let mock = MockProvider::start().await;
    let db = TempDb::new("end-users");
    let (_gateway, gw) = open(&mock, &db, "  max_end_user_budget: 0.004").await;
    let admin = gw.handle().with_key(MASTER);
    assert_eq!(
        admin
            .post("/v1/chat/completions", &as_user("u1"))
            .await
            .status,
        200
    );
    let err = admin
        .post("/v1/chat/completions", &as_user("u1"))
        .await
        .openai_error(400);
    assert_eq!(err["type"], "budget_exceeded", "{err}");
    assert_eq!(
        admin
            .post("/v1/chat/completions", &as_user("u2"))
            .await
            .status,
        200
    );
    // A request naming no end user is not held to it.
    assert_eq!(admin.chat("gpt", "hi").await.status, 200);
    assert_eq!(admin.chat("gpt", "hi").await.status, 200);
    gw.shutdown().await;
}

/// LiteLLM's end-user headers: `x-litellm-customer-id` and `x-litellm-end-user-id` always, then
/// the headers `user_header_mappings` (role `customer`) and `user_header_name` name, then the
/// body's `user`. The end user a header names is blocked, held and charged as the body's is.
#[tokio::test]
async fn end_user_headers_name_the_end_user_before_the_body() {
    let mock = MockProvider::start().await;
    let db = TempDb::new("end-user-headers");
    let y = format!(
        "model_list:\n  - model_name: gpt\n    litellm_params:\n      model: openai/private-x\n      api_base: {}\n      api_key: sk-upstream\n    model_info:\n      input_cost_per_token: 0.001\n      output_cost_per_token: 0.001\ngeneral_settings:\n  master_key: {MASTER}\n  database_url: {}\n  user_header_mappings:\n    - header_name: X-OpenWebUI-User-Email\n      litellm_user_role: customer\n  user_header_name: x-app-user\n",
        mock.v1_url(),
        db.url()
    );
    let loaded = llmgate_config::from_yaml(
        &y,
        std::path::Path::new("."),
        &std::collections::HashMap::<String, String>::new(),
    )
    .unwrap_or_else(|p| panic!("config rejected:\n{p}"));
    assert!(loaded.notices.is_empty(), "{:?}", loaded.notices);
    let gateway = llmgate::Gateway::open(loaded.config).await.expect("opens");
    let gw = TestGateway::serve(gateway.clone()).await;
    let admin = gw.handle().with_key(MASTER);
    for id in ["blocked-std", "blocked-owui", "blocked-app"] {
        let made = admin
            .post("/customer/new", &json!({"user_id": id, "blocked": true}))
            .await;
        assert_eq!(made.status, 200, "{}", made.text());
    }
    let body = serde_json::to_vec(&as_user("body-user")).unwrap();
    let send = |headers: Vec<(&'static str, &'static str)>| {
        let admin = admin.handle();
        let body = body.clone();
        async move {
            admin
                .send(http::Method::POST, "/v1/chat/completions", body, &headers)
                .await
                .status
        }
    };
    // Each header names the end user over the body's `user`: each blocked one is refused.
    for (name, id) in [
        ("x-litellm-customer-id", "blocked-std"),
        ("x-litellm-end-user-id", "blocked-std"),
        ("x-openwebui-user-email", "blocked-owui"),
        ("x-app-user", "blocked-app"),
    ] {
        assert_eq!(send(vec![(name, id)]).await, 403, "{name}");
    }
    // The standard header comes before a mapped one; a mapped one before user_header_name.
    assert_eq!(
        send(vec![
            ("x-litellm-customer-id", "fine"),
            ("x-openwebui-user-email", "blocked-owui")
        ])
        .await,
        200
    );
    assert_eq!(
        send(vec![
            ("x-openwebui-user-email", "fine"),
            ("x-app-user", "blocked-app")
        ])
        .await,
        200
    );
    // The spend goes to the header's end user, not the body's.
    gateway.flush_spend().await;
    let fine = admin.get("/customer/info?end_user_id=fine").await;
    assert_eq!(fine.status, 200, "{}", fine.text());
    assert!(
        (fine.json()["spend"].as_f64().unwrap() - 0.01).abs() < 1e-9,
        "{}",
        fine.text()
    );
    assert_eq!(
        admin
            .get("/customer/info?end_user_id=body-user")
            .await
            .status,
        404
    );
}

/// An end user's rpm limit counts its requests whoever calls (two keys and the master key),
/// its own or, linked by `budget_id`, its budget object's.
#[tokio::test]
async fn an_end_users_rpm_limit_counts_every_caller() {
    let mock = MockProvider::start().await;
    let db = TempDb::new("end-user-rpm");
    let (_gateway, gw) = open(&mock, &db, "  drop_params: true").await;
    let admin = gw.handle().with_key(MASTER);
    let made = admin
        .post("/customer/new", &json!({"user_id": "rita", "rpm_limit": 2}))
        .await;
    assert_eq!(made.status, 200, "{}", made.text());
    assert_eq!(made.json()["rpm_limit"], 2);
    let key = admin.post("/key/generate", &json!({})).await.json()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let by_key = gw.handle().with_key(&key);
    assert_eq!(
        by_key
            .post("/v1/chat/completions", &as_user("rita"))
            .await
            .status,
        200
    );
    assert_eq!(
        admin
            .post("/v1/chat/completions", &as_user("rita"))
            .await
            .status,
        200
    );
    let third = by_key.post("/v1/chat/completions", &as_user("rita")).await;
    assert_eq!(third.status, 429, "{}", third.text());
    assert!(
        third.text().contains("end user's rpm_limit"),
        "{}",
        third.text()
    );
    // Another end user is not held by rita's limit.
    assert_eq!(
        by_key
            .post("/v1/chat/completions", &as_user("sam"))
            .await
            .status,
        200
    );

    // Linked to a budget object, an end user without its own limit takes the budget's.
    let budget = admin
        .post(
            "/budget/new",
            &json!({"budget_id": "one-a-minute", "rpm_limit": 1}),
        )
        .await;
    assert_eq!(budget.status, 200, "{}", budget.text());
    let linked = admin
        .post(
            "/customer/new",
            &json!({"user_id": "tom", "budget_id": "one-a-minute"}),
        )
        .await;
    assert_eq!(linked.status, 200, "{}", linked.text());
    assert_eq!(
        by_key
            .post("/v1/chat/completions", &as_user("tom"))
            .await
            .status,
        200
    );
    assert_eq!(
        admin
            .post("/v1/chat/completions", &as_user("tom"))
            .await
            .status,
        429
    );
}

/// An end user's `tpm_limit` counts its tokens whoever calls: the mock counts words as tokens,
/// so each 60-word answer to "hi" counts 61, and one through a key and one through the master
/// key use up 100; another end user is not held by it.
#[tokio::test]
async fn an_end_users_tpm_limit_counts_every_caller() {
    let mock = MockProvider::start().await;
    mock.set_default(Behaviour::reply(vec!["w"; 60].join(" ")));
    let db = TempDb::new("end-user-tpm");
    let (_gateway, gw) = open(&mock, &db, "  drop_params: true").await;
    let admin = gw.handle().with_key(MASTER);
    let made = admin
        .post(
            "/customer/new",
            &json!({"user_id": "tina", "tpm_limit": 100}),
        )
        .await;
    assert_eq!(made.status, 200, "{}", made.text());
    assert_eq!(made.json()["tpm_limit"], 100);
    let key = admin.post("/key/generate", &json!({})).await.json()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let by_key = gw.handle().with_key(&key);
    let call = |who: &TestGateway, user: &str| {
        let (who, body) = (who.handle(), as_user(user));
        async move { who.post("/v1/chat/completions", &body).await }
    };
    assert_eq!(call(&by_key, "tina").await.status, 200);
    assert_eq!(call(&admin, "tina").await.status, 200);
    let third = call(&by_key, "tina").await;
    assert_eq!(third.status, 429, "{}", third.text());
    assert!(
        third.text().contains("the end user's tpm_limit"),
        "{}",
        third.text()
    );
    assert_eq!(call(&by_key, "sam").await.status, 200);
    assert_eq!(mock.requests().len(), 3);
}

/// An end user's `max_parallel_requests` counts its requests in flight whoever calls: two
/// held at the upstream (one through a key, one through the master key) fill a limit of 2;
/// another end user is not held by it.
#[tokio::test]
async fn an_end_users_max_parallel_requests_counts_every_caller() {
    let mock = MockProvider::start().await;
    let gate = Gate::new();
    mock.set_default(Behaviour::gated(&gate, 0));
    let db = TempDb::new("end-user-parallel");
    let (_gateway, gw) = open(&mock, &db, "  drop_params: true").await;
    let admin = gw.handle().with_key(MASTER);
    let made = admin
        .post(
            "/customer/new",
            &json!({"user_id": "pat", "max_parallel_requests": 2}),
        )
        .await;
    assert_eq!(made.status, 200, "{}", made.text());
    let key = admin.post("/key/generate", &json!({})).await.json()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let held: Vec<_> = [key.as_str(), MASTER]
        .into_iter()
        .map(|k| {
            let who = gw.handle().with_key(k);
            tokio::spawn(async move {
                let res = who.post("/v1/chat/completions", &as_user("pat")).await;
                res.status.as_u16()
            })
        })
        .collect();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        gate.wait_for_arrivals(2),
    )
    .await
    .expect("both requests reach the upstream");
    let by_key = gw.handle().with_key(&key);
    // Admitted, it would wait at the gate: a timeout fails the test instead.
    let pat = as_user("pat");
    let third = by_key.post("/v1/chat/completions", &pat);
    let third = tokio::time::timeout(std::time::Duration::from_secs(5), third)
        .await
        .expect("a third request was admitted");
    assert_eq!(third.status, 429, "{}", third.text());
    assert!(
        third
            .text()
            .contains("the end user's max_parallel_requests (2 requests in flight at once)"),
        "{}",
        third.text()
    );
    // Another end user's request goes through meanwhile.
    let other = tokio::spawn(async move {
        let res = by_key.post("/v1/chat/completions", &as_user("sam")).await;
        res.status.as_u16()
    });
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        gate.wait_for_arrivals(3),
    )
    .await
    .expect("another end user's request reaches the upstream");
    gate.release();
    for h in held {
        assert_eq!(h.await.unwrap(), 200);
    }
    assert_eq!(other.await.unwrap(), 200);
}
