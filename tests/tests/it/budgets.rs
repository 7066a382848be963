//! Budgets as objects (issue 18, item 4): LiteLLM's `/budget/*` API with the bodies its docs
//! show, and what a budget means for what links to it: each key, team and end user with a
//! `budget_id` is held to the budget's limits with its own spend (its own value winning where
//! it sets one), a change to the budget applies at once (on PostgreSQL, on every instance
//! within a second), and a budget still linked is not deleted. Each test runs a gateway on its
//! own SQLite file (PostgreSQL for the two-instance test), through HTTP, as a user would.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod list;

use std::time::Duration;

use llmgate_tests::{MockProvider, TempDb, TestGateway};
use serde_json::{json, Value};

const MASTER: &str = "sk-master-budgets";

/// One model group `gpt` at `mock`, each answer costing 0.005 USD (1 prompt and 4 completion
/// tokens at 0.001).
async fn open(mock: &MockProvider, database_url: &str) -> TestGateway {
    let y = format!(
        "model_list:\n  - model_name: gpt\n    litellm_params:\n      model: openai/private-x\n      api_base: {}\n      api_key: sk-upstream\n    model_info:\n      input_cost_per_token: 0.001\n      output_cost_per_token: 0.001\nlitellm_settings:\n  drop_params: true\ngeneral_settings:\n  master_key: {MASTER}\n  database_url: {database_url}\n",
        mock.v1_url(),
    );
    let loaded = llmgate_config::from_yaml(
        &y,
        std::path::Path::new("."),
        &std::collections::HashMap::<String, String>::new(),
    )
    .unwrap_or_else(|p| panic!("config rejected:\n{p}"));
    assert!(loaded.notices.is_empty(), "{:?}", loaded.notices);
    let gateway = llmgate::Gateway::open(loaded.config)
        .await
        .expect("gateway opens");
    TestGateway::serve(gateway).await
}

async fn ok(admin: &TestGateway, path: &str, body: Value) -> Value {
    let res = admin.post(path, &body).await;
    assert_eq!(res.status, 200, "{path}: {}", res.text());
    res.json()
}

async fn key_with(admin: &TestGateway, body: Value) -> String {
    ok(admin, "/key/generate", body).await["key"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn as_user(user: &str) -> Value {
    json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}], "user": user})
}

#[tokio::test]
async fn the_budget_api_answers_in_litellms_shapes() {
    let mock = MockProvider::start().await;
    let db = TempDb::new("budgets-api");
    let gw = open(&mock, &db.url()).await;
    let admin = gw.handle().with_key(MASTER);

    // LiteLLM's docs: POST /budget/new with the budget's limits.
    let made = ok(
        &admin,
        "/budget/new",
        json!({"budget_id": "free-tier", "max_budget": 10, "soft_budget": 8,
            "max_parallel_requests": 5, "tpm_limit": 1000, "rpm_limit": 100,
            "budget_duration": "30d",
            "model_max_budget": {"gpt": {"max_budget": 1.0, "budget_duration": "1d"}}}),
    )
    .await;
    assert_eq!(made["budget_id"], "free-tier");
    assert_eq!(
        (&made["max_budget"], &made["soft_budget"]),
        (&json!(10.0), &json!(8.0))
    );
    assert_eq!(
        (&made["rpm_limit"], &made["tpm_limit"]),
        (&json!(100), &json!(1000))
    );
    assert_eq!(made["max_parallel_requests"], 5);
    assert_eq!(made["budget_duration"], "30d");
    assert_eq!(made["model_max_budget"]["gpt"]["max_budget"], 1.0);
    assert!(made["budget_reset_at"].is_string(), "{made}");
    assert_eq!(made["created_by"], "default_user_id");
    for f in ["created_at", "updated_at", "updated_by"] {
        assert!(made[f].is_string(), "{f}: {made}");
    }
    let again = admin
        .post("/budget/new", &json!({"budget_id": "free-tier"}))
        .await
        .openai_error(400);
    assert_eq!(
        again["message"],
        "Budget with id 'free-tier' already exists."
    );
    let other = ok(&admin, "/budget/new", json!({"max_budget": 1})).await;
    let other_id = other["budget_id"].as_str().unwrap().to_owned();
    assert_eq!(other_id.len(), 36, "a UUID when none is given: {other_id}");

    // /budget/info takes a list of ids and answers the budgets found.
    let info = ok(
        &admin,
        "/budget/info",
        json!({"budgets": ["free-tier", "nope"]}),
    )
    .await;
    assert_eq!(info.as_array().unwrap().len(), 1);
    assert_eq!(info[0]["budget_id"], "free-tier");
    admin
        .post("/budget/info", &json!({"budgets": []}))
        .await
        .openai_error(400);
    let list = admin.get("/budget/list").await.json();
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["budget_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&"free-tier") && ids.contains(&other_id.as_str()));
    let settings = admin
        .get("/budget/settings?budget_id=free-tier")
        .await
        .json();
    let soft = settings
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["field_name"] == "soft_budget")
        .unwrap();
    assert_eq!(
        (
            &soft["field_type"],
            &soft["field_value"],
            &soft["stored_in_db"]
        ),
        (&json!("Float"), &json!(8.0), &json!(true))
    );

    // /budget/update sets what the body names and keeps the rest.
    let updated = ok(
        &admin,
        "/budget/update",
        json!({"budget_id": "free-tier", "max_budget": 20, "rpm_limit": null}),
    )
    .await;
    assert_eq!(updated["max_budget"], 20.0);
    assert_eq!(updated["rpm_limit"], Value::Null);
    assert_eq!(updated["soft_budget"], 8.0);
    let err = admin
        .post("/budget/update", &json!({"max_budget": 1}))
        .await
        .openai_error(400);
    assert_eq!(err["message"], "budget_id is required");
    let err = admin
        .post(
            "/budget/update",
            &json!({"budget_id": "nope", "max_budget": 1}),
        )
        .await
        .openai_error(404);
    assert_eq!(err["code"], "budget_not_found");
    let err = admin
        .post("/budget/new", &json!({"max_budget": -1}))
        .await
        .openai_error(400);
    assert_eq!(err["param"], "max_budget");

    // budget_id must name a budget, in each API's own error shape.
    for (path, body, code) in [
        (
            "/key/generate",
            json!({"budget_id": "nope"}),
            "invalid_key_request",
        ),
        (
            "/team/new",
            json!({"budget_id": "nope"}),
            "invalid_team_request",
        ),
        (
            "/customer/new",
            json!({"user_id": "u", "budget_id": "nope"}),
            "invalid_end_user_request",
        ),
    ] {
        let err = admin.post(path, &body).await.openai_error(400);
        assert_eq!(
            (&err["code"], &err["param"]),
            (&json!(code), &json!("budget_id"))
        );
        assert!(
            err["message"].as_str().unwrap().contains("/budget/new"),
            "{err}"
        );
    }

    // A budget something links to is not deleted; unlinked, it is.
    let key = key_with(&admin, json!({"budget_id": "free-tier"})).await;
    let info = admin.get(&format!("/key/info?key={key}")).await.json();
    assert_eq!(info["info"]["budget_id"], "free-tier");
    let team = ok(&admin, "/team/new", json!({"budget_id": "free-tier"})).await;
    assert_eq!(team["budget_id"], "free-tier");
    let err = admin
        .post("/budget/delete", &json!({"id": "free-tier"}))
        .await
        .openai_error(400);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("1 key(s), 1 team(s) and 0 end user(s)"),
        "{err}"
    );
    ok(
        &admin,
        "/key/update",
        json!({"key": key, "budget_id": null}),
    )
    .await;
    let team_id = team["team_id"].as_str().unwrap();
    ok(
        &admin,
        "/team/update",
        json!({"team_id": team_id, "budget_id": null}),
    )
    .await;
    let deleted = ok(&admin, "/budget/delete", json!({"id": "free-tier"})).await;
    assert_eq!(deleted["budget_id"], "free-tier");
    let info = ok(&admin, "/budget/info", json!({"budgets": ["free-tier"]})).await;
    assert_eq!(info, json!([]));

    // Administrators manage budgets, viewers read them, other keys get 403; each route checks
    // its method.
    let user = gw.handle().with_key(&key);
    user.get("/budget/list").await.openai_error(403);
    let viewer = ok(
        &admin,
        "/user/new",
        json!({"user_id": "aud", "user_role": "proxy_admin_viewer"}),
    )
    .await;
    let viewer = gw.handle().with_key(viewer["key"].as_str().unwrap());
    assert_eq!(viewer.get("/budget/list").await.status, 200);
    viewer
        .post("/budget/new", &json!({"max_budget": 1}))
        .await
        .openai_error(403);
    let boss = ok(
        &admin,
        "/user/new",
        json!({"user_id": "boss", "user_role": "proxy_admin"}),
    )
    .await;
    let boss = gw.handle().with_key(boss["key"].as_str().unwrap());
    assert_eq!(boss.post("/budget/new", &json!({})).await.status, 200);
    admin.get("/budget/new").await.openai_error(405);
    admin.get("/budget/nothing").await.openai_error(404);
    gw.shutdown().await;
}

#[tokio::test]
async fn keys_linked_to_a_budget_each_spend_their_own_and_an_update_applies_at_once() {
    let mock = MockProvider::start().await;
    let db = TempDb::new("budgets-keys");
    let gw = open(&mock, &db.url()).await;
    let admin = gw.handle().with_key(MASTER);
    ok(
        &admin,
        "/budget/new",
        json!({"budget_id": "tier", "max_budget": 0.008}),
    )
    .await;
    let one = gw
        .handle()
        .with_key(&key_with(&admin, json!({"budget_id": "tier"})).await);
    let two = gw
        .handle()
        .with_key(&key_with(&admin, json!({"budget_id": "tier"})).await);
    let own = gw
        .handle()
        .with_key(&key_with(&admin, json!({"budget_id": "tier", "max_budget": 1.0})).await);

    // 0.005 spent, then 0.010: refused at the budget's max_budget.
    assert_eq!(one.chat("gpt", "hi").await.status, 200);
    assert_eq!(one.chat("gpt", "hi").await.status, 200);
    let err = one.chat("gpt", "hi").await.openai_error(400);
    assert_eq!(err["type"], "budget_exceeded", "{err}");
    // The budget is a definition, not a pool: the second key has spent nothing of its own.
    assert_eq!(two.chat("gpt", "hi").await.status, 200);
    // A key's own max_budget wins over the budget's.
    for _ in 0..3 {
        assert_eq!(own.chat("gpt", "hi").await.status, 200);
    }

    // Raising the budget admits the spent key again, at once.
    ok(
        &admin,
        "/budget/update",
        json!({"budget_id": "tier", "max_budget": 0.1}),
    )
    .await;
    assert_eq!(one.chat("gpt", "hi").await.status, 200);
    // Lowering it refuses the second key (0.005 spent) at once.
    ok(
        &admin,
        "/budget/update",
        json!({"budget_id": "tier", "max_budget": 0.004}),
    )
    .await;
    two.chat("gpt", "hi").await.openai_error(400);
    gw.shutdown().await;
}

/// A key linked to a budget with an `rpm_limit` and none of its own is held to the budget's:
/// the third request in the minute is a 429 naming the key's rpm_limit and never reaches the
/// upstream; another key on the same budget counts its own requests.
#[tokio::test]
async fn a_key_linked_to_a_budget_is_held_to_its_rpm_limit() {
    let mock = MockProvider::start().await;
    let db = TempDb::new("budgets-rpm");
    let gw = open(&mock, &db.url()).await;
    let admin = gw.handle().with_key(MASTER);
    ok(
        &admin,
        "/budget/new",
        json!({"budget_id": "two-a-minute", "rpm_limit": 2}),
    )
    .await;
    let one = gw
        .handle()
        .with_key(&key_with(&admin, json!({"budget_id": "two-a-minute"})).await);
    let two = gw
        .handle()
        .with_key(&key_with(&admin, json!({"budget_id": "two-a-minute"})).await);
    assert_eq!(one.chat("gpt", "hi").await.status, 200);
    assert_eq!(one.chat("gpt", "hi").await.status, 200);
    let third = one.chat("gpt", "hi").await;
    let err = third.openai_error(429);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("the key's rpm_limit (2 requests per minute)"),
        "{err}"
    );
    assert_eq!(mock.request_count(), 2, "the refused request is not sent");
    assert_eq!(two.chat("gpt", "hi").await.status, 200);
    gw.shutdown().await;
}

/// A key without a period of its own takes the budget's `budget_duration`: its first reset is
/// set when it is linked (or when the budget gains a duration), and its spend resets then.
#[tokio::test]
async fn a_linked_keys_budget_resets_with_the_budgets_duration() {
    let mock = MockProvider::start().await;
    let db = TempDb::new("budgets-period");
    let gw = open(&mock, &db.url()).await;
    let admin = gw.handle().with_key(MASTER);
    ok(
        &admin,
        "/budget/new",
        json!({"budget_id": "per-2s", "max_budget": 0.008, "budget_duration": "2s"}),
    )
    .await;
    ok(&admin, "/budget/new", json!({"budget_id": "later"})).await;
    let key = key_with(&admin, json!({"budget_id": "per-2s"})).await;
    let idle = key_with(&admin, json!({"budget_id": "later"})).await;
    let info = |k: String| {
        let admin = admin.handle();
        async move { admin.get(&format!("/key/info?key={k}")).await.json()["info"].clone() }
    };
    let shown = info(key.clone()).await;
    assert!(shown["budget_reset_at"].is_string(), "{shown}");
    assert_eq!(shown["budget_duration"], Value::Null, "its own: none");
    assert_eq!(info(idle.clone()).await["budget_reset_at"], Value::Null);
    ok(
        &admin,
        "/budget/update",
        json!({"budget_id": "later", "budget_duration": "1d"}),
    )
    .await;
    assert!(info(idle).await["budget_reset_at"].is_string());

    let user = gw.handle().with_key(&key);
    let started = std::time::Instant::now();
    loop {
        let res = user.chat("gpt", "hi").await;
        if res.status == 400 {
            assert_eq!(res.openai_error(400)["type"], "budget_exceeded");
            break;
        }
        assert_eq!(res.status, 200, "{}", res.text());
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "refused in the period"
        );
    }
    // The period ends within 2 s (plus a second for the clock's whole seconds).
    let started = std::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if user.chat("gpt", "hi").await.status == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "spend reset with the budget's period"
        );
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn a_team_and_an_end_user_linked_to_a_budget_are_held_to_it() {
    let mock = MockProvider::start().await;
    let db = TempDb::new("budgets-team");
    let gw = open(&mock, &db.url()).await;
    let admin = gw.handle().with_key(MASTER);
    ok(
        &admin,
        "/budget/new",
        json!({"budget_id": "small", "max_budget": 0.008}),
    )
    .await;

    // A team linked to the budget: its keys together are held to it.
    let team = ok(&admin, "/team/new", json!({"budget_id": "small"})).await;
    let team_id = team["team_id"].as_str().unwrap();
    let a = gw
        .handle()
        .with_key(&key_with(&admin, json!({"team_id": team_id})).await);
    let b = gw
        .handle()
        .with_key(&key_with(&admin, json!({"team_id": team_id})).await);
    assert_eq!(a.chat("gpt", "hi").await.status, 200);
    assert_eq!(b.chat("gpt", "hi").await.status, 200);
    let err = a.chat("gpt", "hi").await.openai_error(400);
    assert_eq!(err["type"], "budget_exceeded", "{err}");
    assert!(
        err["message"].as_str().unwrap().contains(team_id),
        "the team's budget: {err}"
    );
    let info = admin
        .get(&format!("/team/info?team_id={team_id}"))
        .await
        .json();
    assert_eq!(info["team_info"]["budget_id"], "small");
    assert_eq!(
        info["team_info"]["max_budget"],
        Value::Null,
        "/team/info shows the team's own settings"
    );

    // End users linked to the budget, each with its own spend.
    ok(
        &admin,
        "/customer/new",
        json!({"user_id": "acme", "budget_id": "small"}),
    )
    .await;
    ok(
        &admin,
        "/end_user/new",
        json!({"user_id": "globex", "budget_id": "small"}),
    )
    .await;
    // As LiteLLM shows a customer: its budget row as litellm_budget_table.
    let info = admin.get("/customer/info?end_user_id=acme").await.json();
    assert_eq!(info["budget_id"], "small");
    assert_eq!(info["litellm_budget_table"]["budget_id"], "small");
    assert_eq!(info["litellm_budget_table"]["max_budget"], 0.008);
    let list = admin.get("/customer/list").await.json();
    let globex = list
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user_id"] == "globex")
        .unwrap();
    assert_eq!(globex["litellm_budget_table"]["max_budget"], 0.008);
    for _ in 0..2 {
        let res = admin.post("/v1/chat/completions", &as_user("acme")).await;
        assert_eq!(res.status, 200, "{}", res.text());
    }
    let err = admin
        .post("/v1/chat/completions", &as_user("acme"))
        .await
        .openai_error(400);
    assert!(
        err["message"].as_str().unwrap().contains("End User=acme"),
        "{err}"
    );
    let res = admin.post("/v1/chat/completions", &as_user("globex")).await;
    assert_eq!(res.status, 200, "globex has its own spend: {}", res.text());

    // Raising the budget admits the team and the end user again.
    ok(
        &admin,
        "/budget/update",
        json!({"budget_id": "small", "max_budget": 1.0}),
    )
    .await;
    assert_eq!(a.chat("gpt", "hi").await.status, 200);
    let res = admin.post("/v1/chat/completions", &as_user("acme")).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let err = admin
        .post("/budget/delete", &json!({"id": "small"}))
        .await
        .openai_error(400);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("0 key(s), 1 team(s) and 2 end user(s)"),
        "{err}"
    );
    gw.shutdown().await;
}

/// Two gateways on one PostgreSQL: a key linked to a budget is held to it on both, and a
/// change to the budget made through one reaches the other within a second.
#[tokio::test]
async fn budgets_are_shared_across_instances_on_postgres() {
    let Some(url) = llmgate_tests::postgres_url().await else {
        return;
    };
    let mock = MockProvider::start().await;
    let one = open(&mock, &url).await;
    let two = open(&mock, &url).await;
    let admin = one.handle().with_key(MASTER);
    let id = format!("shared-{}", &llmgate::auth::generate_secret()[3..13]);
    ok(
        &admin,
        "/budget/new",
        json!({"budget_id": id, "max_budget": 0.004}),
    )
    .await;
    let key = key_with(&admin, json!({"budget_id": id})).await;
    let (a, b) = (one.handle().with_key(&key), two.handle().with_key(&key));
    assert_eq!(
        b.chat("gpt", "hi").await.status,
        200,
        "seen by instance two"
    );
    // 0.005 spent through instance two: the budget of 0.004 is spent for both.
    let until = |who: TestGateway, want: u16| async move {
        let started = std::time::Instant::now();
        loop {
            let res = who.chat("gpt", "hi").await;
            if res.status.as_u16() == want {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "wanted {want} within a second: {}",
                res.text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    until(a.handle(), 400).await;
    until(b.handle(), 400).await;

    // Raised through instance one: instance two admits the key within a second.
    ok(
        &admin,
        "/budget/update",
        json!({"budget_id": id, "max_budget": 1.0}),
    )
    .await;
    until(b.handle(), 200).await;
    // Lowered again through instance one: instance two refuses within a second.
    ok(
        &admin,
        "/budget/update",
        json!({"budget_id": id, "max_budget": 0.001}),
    )
    .await;
    until(b.handle(), 400).await;
    ok(&admin, "/key/delete", json!({"keys": [key]})).await;
    ok(&admin, "/budget/delete", json!({"id": id})).await;
    one.shutdown().await;
    two.shutdown().await;
}
