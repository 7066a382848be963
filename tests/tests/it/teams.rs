//! Teams (issue 18, item 1): LiteLLM's `/team/*` API with the bodies its docs show, and what a
//! team means for its keys: the intersection of models, the tighter of each limit (the team's
//! counted for all its keys together), both budgets, a blocked team refused, and
//! `default_team_settings` for teams created without their own. Each test runs a gateway on its
//! own SQLite file (PostgreSQL for the two-instance test), through HTTP, as a user would.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use llmgate_tests::{Behaviour, Gate, MockProvider, TempDb, TestGateway};
use serde_json::{json, Value};

const MASTER: &str = "sk-master-teams";

/// Two model groups at `mock`, `gpt` and `other`, each answer costing 0.005 USD (1 prompt and
/// 4 completion tokens at 0.001), with `extra` appended to `general_settings`.
async fn open(mock: &MockProvider, database_url: &str, extra: &str) -> TestGateway {
    open_gateway(mock, database_url, extra).await.1
}

async fn open_gateway(
    mock: &MockProvider,
    database_url: &str,
    extra: &str,
) -> (llmgate::Gateway, TestGateway) {
    let entry = |name: &str| {
        format!(
            "  - model_name: {name}\n    litellm_params:\n      model: openai/private-x\n      api_base: {}\n      api_key: sk-upstream\n    model_info:\n      input_cost_per_token: 0.001\n      output_cost_per_token: 0.001\n",
            mock.v1_url()
        )
    };
    let y = format!(
        "model_list:\n{}{}general_settings:\n  master_key: {MASTER}\n  database_url: {database_url}\n{extra}",
        entry("gpt"),
        entry("other"),
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
    let gw = TestGateway::serve(gateway.clone()).await;
    (gateway, gw)
}

async fn key_in(admin: &TestGateway, body: Value) -> String {
    let res = admin.post("/key/generate", &body).await;
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()["key"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_team_api_answers_in_litellms_shapes() {
    let mock = MockProvider::start().await;
    let db = TempDb::new("teams");
    let gw = open(&mock, &db.url(), "").await;
    let admin = gw.handle().with_key(MASTER);

    // LiteLLM's docs: POST /team/new {"team_alias": ..., "members_with_roles": [...]}.
    let team = admin
        .post(
            "/team/new",
            &json!({"team_alias": "my-new-team", "max_budget": 10, "rpm_limit": 5,
                "budget_duration": "30d", "models": ["gpt"],
                "members_with_roles": [{"role": "admin", "user_id": "krrish@berri.ai"}]}),
        )
        .await;
    assert_eq!(team.status, 200, "{}", team.text());
    let team = team.json();
    let id = team["team_id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 36, "a UUID when none is given: {id}");
    assert_eq!(team["team_alias"], "my-new-team");
    assert_eq!(team["admins"], json!(["krrish@berri.ai"]));
    assert_eq!(team["budget_duration"], "2592000s");

    let key = key_in(&admin, json!({"team_id": id})).await;
    let info = admin.get(&format!("/team/info?team_id={id}")).await.json();
    assert_eq!(info["team_info"]["max_budget"], 10.0);
    assert_eq!(info["keys"].as_array().unwrap().len(), 1);
    assert!(admin
        .get("/team/list")
        .await
        .json()
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["team_id"] == id));
    let mine = admin.get("/team/list?user_id=krrish@berri.ai").await.json();
    assert_eq!(mine.as_array().unwrap().len(), 1);

    let updated = admin
        .post(
            "/team/update",
            &json!({"team_id": id, "max_budget": 20, "rpm_limit": null}),
        )
        .await
        .json();
    assert_eq!(updated["team_id"], id);
    assert_eq!(updated["data"]["max_budget"], 20.0);
    assert_eq!(updated["data"]["rpm_limit"], Value::Null);

    let added = admin
        .post(
            "/team/member_add",
            &json!({"team_id": id, "member": {"role": "user", "user_id": "u2"}}),
        )
        .await
        .json();
    assert_eq!(added["members"], json!(["u2"]));
    let removed = admin
        .post(
            "/team/member_delete",
            &json!({"team_id": id, "user_id": "u2"}),
        )
        .await
        .json();
    assert_eq!(removed["members"], json!([]));

    // Mistakes get a clear 400 / 404 in OpenAI's shape.
    let err = admin
        .post("/team/new", &json!({"rpm_limit": -1}))
        .await
        .openai_error(400);
    assert_eq!(err["param"], "rpm_limit", "{err}");
    let err = admin
        .post("/team/update", &json!({"team_id": "nope", "rpm_limit": 1}))
        .await
        .openai_error(404);
    assert_eq!(err["code"], "team_not_found", "{err}");
    let err = admin
        .post("/key/generate", &json!({"team_id": "nope"}))
        .await
        .openai_error(400);
    assert!(
        err["message"].as_str().unwrap().contains("/team/new"),
        "{err}"
    );
    let user = gw.handle().with_key(&key);
    user.post("/team/new", &json!({})).await.openai_error(403);

    // Deleting a team deletes its keys, as LiteLLM does.
    let deleted = admin
        .post("/team/delete", &json!({"team_ids": [id]}))
        .await
        .json();
    assert_eq!(deleted["deleted_keys"].as_array().unwrap().len(), 1);
    user.chat("gpt", "hi").await.openai_error(401);
    admin
        .get(&format!("/team/info?team_id={id}"))
        .await
        .openai_error(404);
    gw.shutdown().await;
}

#[tokio::test]
async fn a_key_in_a_team_gets_the_intersection_of_models_and_the_tighter_limits() {
    let mock = MockProvider::start().await;
    let db = TempDb::new("teams");
    let gw = open(&mock, &db.url(), "").await;
    let admin = gw.handle().with_key(MASTER);
    let id = admin
        .post(
            "/team/new",
            &json!({"team_id": "search", "models": ["gpt"], "rpm_limit": 3}),
        )
        .await
        .json()["team_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(id, "search");
    let a = gw
        .handle()
        .with_key(&key_in(&admin, json!({"team_id": id, "models": ["gpt", "other"]})).await);
    let b = gw
        .handle()
        .with_key(&key_in(&admin, json!({"team_id": id, "rpm_limit": 100})).await);

    let err = a.chat("other", "hi").await.openai_error(403);
    assert_eq!(err["type"], "team_model_access_denied", "{err}");
    assert!(err["message"].as_str().unwrap().contains("team"), "{err}");
    // The team's rpm_limit counts both keys together: 3 pass, the 4th (from either) is refused,
    // though key b's own limit is 100.
    assert_eq!(a.chat("gpt", "hi").await.status, 200);
    assert_eq!(b.chat("gpt", "hi").await.status, 200);
    assert_eq!(a.chat("gpt", "hi").await.status, 200);
    let refused = b.chat("gpt", "hi").await;
    let err = refused.openai_error(429);
    assert!(err["message"].as_str().unwrap().contains("team"), "{err}");
    assert_eq!(mock.requests().len(), 3);

    // A blocked team's keys are refused; unblocked, they work again.
    admin
        .post("/team/block", &json!({"team_id": id}))
        .await
        .json();
    let err = a.chat("gpt", "hi").await.openai_error(401);
    assert_eq!(err["code"], "team_blocked", "{err}");
    admin
        .post("/team/unblock", &json!({"team_id": id}))
        .await
        .json();
    admin
        .post("/team/update", &json!({"team_id": id, "rpm_limit": null}))
        .await
        .json();
    assert_eq!(a.chat("gpt", "hi").await.status, 200);
    gw.shutdown().await;
}

#[tokio::test]
async fn a_teams_spend_counts_against_its_budget_for_all_its_keys() {
    let mock = MockProvider::start().await;
    let db = TempDb::new("teams");
    let (gateway, gw) = open_gateway(&mock, &db.url(), "").await;
    let admin = gw.handle().with_key(MASTER);
    admin
        .post(
            "/team/new",
            &json!({"team_id": "small", "max_budget": 0.008}),
        )
        .await
        .json();
    let a = gw
        .handle()
        .with_key(&key_in(&admin, json!({"team_id": "small", "max_budget": 1})).await);
    let b = gw
        .handle()
        .with_key(&key_in(&admin, json!({"team_id": "small"})).await);
    assert_eq!(a.chat("gpt", "hi").await.status, 200, "0 < 0.008");
    assert_eq!(b.chat("gpt", "hi").await.status, 200, "0.005 < 0.008");
    let err = a.chat("gpt", "hi").await.openai_error(400);
    assert_eq!(err["type"], "budget_exceeded", "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("Team=small"),
        "{err}"
    );
    b.chat("gpt", "hi").await.openai_error(400);
    assert_eq!(
        mock.requests().len(),
        2,
        "nothing refused reached the provider"
    );

    // The team's spend is stored with the spend log (both keys' requests).
    gateway.flush_spend().await;
    let info = admin.get("/team/info?team_id=small").await.json();
    let spend = info["team_info"]["spend"].as_f64().unwrap();
    assert!((spend - 0.01).abs() < 1e-9, "team spend {spend}");
    gw.shutdown().await;
}

#[tokio::test]
async fn default_team_settings_apply_to_teams_created_without_their_own() {
    let mock = MockProvider::start().await;
    let db = TempDb::new("teams");
    // The seed's form: a mapping under general_settings.
    let gw = open(
        &mock,
        &db.url(),
        "  default_team_settings:\n    tpm_limit: 100000\n    rpm_limit: 1000\n",
    )
    .await;
    let admin = gw.handle().with_key(MASTER);
    let t = admin
        .post("/team/new", &json!({"team_alias": "a"}))
        .await
        .json();
    assert_eq!(
        (t["rpm_limit"].clone(), t["tpm_limit"].clone()),
        (json!(1000), json!(100000))
    );
    let t = admin
        .post("/team/new", &json!({"rpm_limit": 7}))
        .await
        .json();
    assert_eq!(
        (t["rpm_limit"].clone(), t["tpm_limit"].clone()),
        (json!(7), json!(100000))
    );
    gw.shutdown().await;
}

/// Two gateways on one PostgreSQL: a team blocked through one is refused by the other within a
/// second (`NOTIFY`), and the team's budget holds across both.
#[tokio::test]
async fn teams_are_shared_across_instances_on_postgres() {
    let Some(url) = llmgate_tests::postgres_url().await else {
        return;
    };
    let mock = MockProvider::start().await;
    let one = open(&mock, &url, "").await;
    let two = open(&mock, &url, "").await;
    let admin = one.handle().with_key(MASTER);
    let team = format!("shared-{}", &llmgate::auth::generate_secret()[3..13]);
    admin
        .post("/team/new", &json!({"team_id": team, "max_budget": 0.004}))
        .await
        .json();
    let key = key_in(&admin, json!({"team_id": team})).await;
    let (a, b) = (one.handle().with_key(&key), two.handle().with_key(&key));
    assert_eq!(
        b.chat("gpt", "hi").await.status,
        200,
        "seen by the second instance"
    );

    admin
        .post("/team/block", &json!({"team_id": team}))
        .await
        .json();
    let started = std::time::Instant::now();
    loop {
        let res = b.chat("gpt", "hi").await;
        if res.status == 401 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the block reached the other instance within a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    admin
        .post("/team/unblock", &json!({"team_id": team}))
        .await
        .json();
    // 0.005 spent through instance two already: the budget of 0.004 is spent for both.
    let started = std::time::Instant::now();
    loop {
        let res = a.chat("gpt", "hi").await;
        if res.status == 400 {
            assert_eq!(res.openai_error(400)["type"], "budget_exceeded");
            break;
        }
        assert!(
            res.status == 401 && started.elapsed() < Duration::from_secs(1),
            "{}",
            res.text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    admin
        .post("/team/delete", &json!({"team_ids": [team]}))
        .await
        .json();
    one.shutdown().await;
    two.shutdown().await;
}

/// A reply of `n` words: the mock counts words as tokens, so with the one-word prompt "hi"
/// every answer counts `n + 1` tokens.
fn words(n: usize) -> Behaviour {
    Behaviour::reply(vec!["w"; n].join(" "))
}

/// The team's `tpm_limit` counts the tokens of all its keys together: with 61 tokens an answer
/// and a limit of 100, one answer from each key uses it up, though neither key alone has.
#[tokio::test]
async fn a_teams_tpm_limit_counts_all_its_keys_together() {
    let mock = MockProvider::start().await;
    mock.set_default(words(60));
    let db = TempDb::new("teams-tpm");
    let gw = open(&mock, &db.url(), "").await;
    let admin = gw.handle().with_key(MASTER);
    let made = admin
        .post("/team/new", &json!({"team_id": "tpm", "tpm_limit": 100}))
        .await;
    assert_eq!(made.status, 200, "{}", made.text());
    let a = gw
        .handle()
        .with_key(&key_in(&admin, json!({"team_id": "tpm"})).await);
    let b = gw
        .handle()
        .with_key(&key_in(&admin, json!({"team_id": "tpm", "tpm_limit": 100_000})).await);
    assert_eq!(a.chat("gpt", "hi").await.status, 200);
    assert_eq!(b.chat("gpt", "hi").await.status, 200);
    let third = a.chat("gpt", "hi").await;
    let err = third.openai_error(429);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("the team's tpm_limit"),
        "{err}"
    );
    assert_eq!(mock.requests().len(), 2);
    gw.shutdown().await;
}

/// The team's `max_parallel_requests` counts all its keys' requests in flight together: two
/// held at the upstream (one from each key) fill a limit of 2, though key b's own is 100.
#[tokio::test]
async fn a_teams_max_parallel_requests_counts_all_its_keys_together() {
    let mock = MockProvider::start().await;
    let gate = Gate::new();
    mock.set_default(Behaviour::gated(&gate, 0));
    let db = TempDb::new("teams-parallel");
    let gw = open(&mock, &db.url(), "").await;
    let admin = gw.handle().with_key(MASTER);
    let made = admin
        .post(
            "/team/new",
            &json!({"team_id": "par", "max_parallel_requests": 2}),
        )
        .await;
    assert_eq!(made.status, 200, "{}", made.text());
    let a = key_in(&admin, json!({"team_id": "par"})).await;
    let b = key_in(
        &admin,
        json!({"team_id": "par", "max_parallel_requests": 100}),
    )
    .await;
    let held: Vec<_> = [&a, &b]
        .into_iter()
        .map(|k| {
            let user = gw.handle().with_key(k);
            tokio::spawn(async move { user.chat("gpt", "hi").await.status.as_u16() })
        })
        .collect();
    tokio::time::timeout(Duration::from_secs(10), gate.wait_for_arrivals(2))
        .await
        .expect("both requests reach the upstream");
    // Admitted, it would wait at the gate: a timeout fails the test instead.
    let third = gw.handle().with_key(&b);
    let third = tokio::time::timeout(Duration::from_secs(5), third.chat("gpt", "hi"))
        .await
        .expect("a third request was admitted");
    let err = third.openai_error(429);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("the team's max_parallel_requests (2 requests in flight at once)"),
        "{err}"
    );
    gate.release();
    for h in held {
        assert_eq!(h.await.unwrap(), 200);
    }
    assert_eq!(gw.handle().with_key(&a).chat("gpt", "hi").await.status, 200);
    gw.shutdown().await;
}
