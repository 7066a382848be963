//! Internal users (issue 18, item 2): LiteLLM's `/user/*` API with the bodies its docs show; a
//! user's models, budget and limits holding all their keys together; each role's access to the
//! admin API; and the UI's password sign-in, after which a user sees and changes only what the
//! role allows. Each test runs a gateway on its own SQLite file, through HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use http::{Method, StatusCode};
use llmgate_tests::{Behaviour, Gate, MockProvider, TempDb, TestGateway};
use serde_json::{json, Value};

const MASTER: &str = "sk-master-users";
const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

/// Two model groups at `mock`, `gpt` and `other`, each answer costing 0.005 USD, with
/// `UI_USERNAME=root` and `UI_PASSWORD=root-password-1` in the environment.
async fn open(mock: &MockProvider, database_url: &str) -> (llmgate::Gateway, TestGateway) {
    let entry = |name: &str| {
        format!(
            "  - model_name: {name}\n    litellm_params:\n      model: openai/private-x\n      api_base: {}\n      api_key: sk-upstream\n    model_info:\n      input_cost_per_token: 0.001\n      output_cost_per_token: 0.001\n",
            mock.v1_url()
        )
    };
    let y = format!(
        "model_list:\n{}{}general_settings:\n  master_key: {MASTER}\n  database_url: {database_url}\n",
        entry("gpt"),
        entry("other"),
    );
    let env: HashMap<String, String> =
        [("UI_USERNAME", "root"), ("UI_PASSWORD", "root-password-1")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
    let loaded = llmgate_config::from_yaml(&y, std::path::Path::new("."), &env)
        .unwrap_or_else(|p| panic!("config rejected:\n{p}"));
    let gateway = llmgate::Gateway::open(loaded.config)
        .await
        .expect("gateway opens");
    let gw = TestGateway::serve(gateway.clone()).await;
    (gateway, gw)
}

async fn chat(gw: &TestGateway, key: &str, model: &str) -> llmgate_tests::TestResponse {
    gw.handle()
        .with_key(key)
        .post(
            "/v1/chat/completions",
            &json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await
}

/// A new user with `body`; their first key.
async fn new_user(admin: &TestGateway, body: Value) -> (Value, String) {
    let res = admin.post("/user/new", &body).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let user = res.json();
    let key = user["key"].as_str().expect("a key by default").to_owned();
    (user, key)
}

#[tokio::test]
async fn the_user_api_answers_in_litellms_shapes_and_a_user_holds_all_their_keys() {
    let mock = MockProvider::start().await;
    let db = TempDb::new("users-api");
    let (gateway, gw) = open(&mock, &db.url()).await;
    let admin = gw.handle().with_key(MASTER);

    // LiteLLM's docs: POST /user/new {"user_email": ..., "user_role": ..., "max_budget": ...}.
    let (user, key) = new_user(
        &admin,
        json!({"user_email": "krrish@berri.ai", "user_role": "internal_user",
            "max_budget": 0.012, "models": ["gpt"], "budget_duration": "30d"}),
    )
    .await;
    let id = user["user_id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 36, "a UUID when none is given: {id}");
    assert_eq!(user["user_role"], "internal_user");
    assert!(key.starts_with("sk-"));
    let dup = admin
        .post("/user/new", &json!({"user_email": "KRRISH@berri.ai"}))
        .await;
    assert_eq!(dup.status, 409, "{}", dup.text());
    let bad = admin.post("/user/new", &json!({"user_role": "root"})).await;
    assert_eq!(bad.status, 400);
    assert!(bad.text().contains("user_role"), "{}", bad.text());

    // The user's models hold each key of theirs, even one without models of its own: "other"
    // is refused, as LiteLLM refuses it.
    let open_key = admin
        .post("/key/generate", &json!({"user_id": id, "max_budget": 100}))
        .await
        .json()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = chat(&gw, &open_key, "other").await;
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert!(
        refused.text().contains("user not allowed"),
        "{}",
        refused.text()
    );

    // A second key of the user's (made with their own key: an internal user may) shares the
    // budget: 0.012 USD is two answers of 0.005, whichever key asks.
    let second = gw
        .handle()
        .with_key(&key)
        .post("/key/generate", &json!({"key_alias": "mine"}))
        .await;
    assert_eq!(second.status, 200, "{}", second.text());
    assert_eq!(second.json()["user_id"], id.as_str());
    let second = second.json()["key"].as_str().unwrap().to_owned();
    let mut answered = 0;
    let mut last = None;
    for k in [&key, &second, &key, &second, &key] {
        let res = chat(&gw, k, "gpt").await;
        if res.status == 200 {
            answered += 1;
        } else {
            last = Some(res);
        }
    }
    assert!((2..=3).contains(&answered), "answered {answered}");
    let last = last.expect("the budget refused one");
    assert_eq!(last.status, 400, "{}", last.text());
    assert!(
        last.text().contains(&format!("User={id}")),
        "{}",
        last.text()
    );

    // The spend reaches the user's record (written with the spend log).
    gateway.flush_spend().await;
    let info = admin.get(&format!("/user/info?user_id={id}")).await.json();
    let spend = info["user_info"]["spend"].as_f64().unwrap();
    assert!(
        (spend - 0.005 * f64::from(answered)).abs() < 1e-9,
        "user spend {spend}"
    );
    assert_eq!(info["keys"].as_array().unwrap().len(), 3);

    let list = admin.get("/user/list?role=internal_user").await.json();
    assert_eq!(
        (list["total"].as_u64(), list["page"].as_u64()),
        (Some(1), Some(1))
    );
    let updated = admin
        .post(
            "/user/update",
            &json!({"user_email": "krrish@berri.ai", "max_budget": 1}),
        )
        .await;
    assert_eq!(updated.json()["data"]["max_budget"], 1.0);
    // Raised, the budget lets the keys in again at once (the change drops the cached user).
    assert_eq!(chat(&gw, &key, "gpt").await.status, 200);
    let deleted = admin
        .post("/user/delete", &json!({"user_ids": [id]}))
        .await
        .json();
    assert_eq!(deleted["deleted_keys"].as_array().unwrap().len(), 3);
    assert_eq!(chat(&gw, &key, "gpt").await.status, 401);
}

#[tokio::test]
async fn a_users_rpm_limit_counts_all_their_keys_together() {
    let mock = MockProvider::start().await;
    let db = TempDb::new("users-rpm");
    let (_gateway, gw) = open(&mock, &db.url()).await;
    let admin = gw.handle().with_key(MASTER);
    let (user, a) = new_user(&admin, json!({"user_id": "rita", "rpm_limit": 2})).await;
    assert_eq!(user["rpm_limit"], 2);
    let b = admin
        .post("/key/generate", &json!({"user_id": "rita"}))
        .await
        .json()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(chat(&gw, &a, "gpt").await.status, 200);
    assert_eq!(chat(&gw, &b, "gpt").await.status, 200);
    let third = chat(&gw, &a, "gpt").await;
    assert_eq!(third.status, 429, "{}", third.text());
    assert!(
        third.text().contains("user's rpm_limit"),
        "{}",
        third.text()
    );
}

/// A second key of `user_id` with `body`'s own settings.
async fn another_key(admin: &TestGateway, user_id: &str, mut body: Value) -> String {
    body["user_id"] = user_id.into();
    let res = admin.post("/key/generate", &body).await;
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()["key"].as_str().unwrap().to_owned()
}

/// The user's `tpm_limit` counts the tokens of all their keys together: the mock counts words
/// as tokens, so each 60-word answer to "hi" counts 61, and one from each key uses up 100,
/// though neither key alone has.
#[tokio::test]
async fn a_users_tpm_limit_counts_all_their_keys_together() {
    let mock = MockProvider::start().await;
    mock.set_default(Behaviour::reply(vec!["w"; 60].join(" ")));
    let db = TempDb::new("users-tpm");
    let (_gateway, gw) = open(&mock, &db.url()).await;
    let admin = gw.handle().with_key(MASTER);
    let (user, a) = new_user(&admin, json!({"user_id": "tess", "tpm_limit": 100})).await;
    assert_eq!(user["tpm_limit"], 100);
    let b = another_key(&admin, "tess", json!({"tpm_limit": 100_000})).await;
    assert_eq!(chat(&gw, &a, "gpt").await.status, 200);
    assert_eq!(chat(&gw, &b, "gpt").await.status, 200);
    let third = chat(&gw, &a, "gpt").await;
    assert_eq!(third.status, 429, "{}", third.text());
    assert!(
        third.text().contains("the user's tpm_limit"),
        "{}",
        third.text()
    );
    assert_eq!(mock.requests().len(), 2);
}

/// The user's `max_parallel_requests` counts all their keys' requests in flight together: two
/// held at the upstream (one from each key) fill a limit of 2, though key b's own is 100.
#[tokio::test]
async fn a_users_max_parallel_requests_counts_all_their_keys_together() {
    let mock = MockProvider::start().await;
    let gate = Gate::new();
    mock.set_default(Behaviour::gated(&gate, 0));
    let db = TempDb::new("users-parallel");
    let (_gateway, gw) = open(&mock, &db.url()).await;
    let admin = gw.handle().with_key(MASTER);
    let (user, a) = new_user(
        &admin,
        json!({"user_id": "pia", "max_parallel_requests": 2}),
    )
    .await;
    assert_eq!(user["max_parallel_requests"], 2);
    let b = another_key(&admin, "pia", json!({"max_parallel_requests": 100})).await;
    let held: Vec<_> = [&a, &b]
        .into_iter()
        .map(|k| {
            let (gw, k) = (gw.handle(), k.clone());
            tokio::spawn(async move { chat(&gw, &k, "gpt").await.status.as_u16() })
        })
        .collect();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        gate.wait_for_arrivals(2),
    )
    .await
    .expect("both requests reach the upstream");
    // Admitted, it would wait at the gate: a timeout fails the test instead.
    let third = tokio::time::timeout(std::time::Duration::from_secs(5), chat(&gw, &b, "gpt"))
        .await
        .expect("a third request was admitted");
    assert_eq!(third.status, 429, "{}", third.text());
    assert!(
        third
            .text()
            .contains("the user's max_parallel_requests (2 requests in flight at once)"),
        "{}",
        third.text()
    );
    gate.release();
    for h in held {
        assert_eq!(h.await.unwrap(), 200);
    }
    assert_eq!(chat(&gw, &a, "gpt").await.status, 200);
}

#[tokio::test]
async fn each_role_gets_its_access_to_the_admin_api() {
    let mock = MockProvider::start().await;
    let db = TempDb::new("users-roles");
    let (_gateway, gw) = open(&mock, &db.url()).await;
    let admin = gw.handle().with_key(MASTER);
    let other = admin
        .post("/key/generate", &json!({"key_alias": "not-yours"}))
        .await
        .json()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, own) = new_user(
        &admin,
        json!({"user_id": "ana", "user_role": "internal_user"}),
    )
    .await;
    let (_, viewer) = new_user(
        &admin,
        json!({"user_id": "vic", "user_role": "internal_user_viewer"}),
    )
    .await;
    let (_, auditor) = new_user(
        &admin,
        json!({"user_id": "aud", "user_role": "proxy_admin_viewer"}),
    )
    .await;
    let (_, boss) = new_user(&admin, json!({"user_id": "bo", "user_role": "proxy_admin"})).await;
    let as_ = |k: &str| gw.handle().with_key(k);

    // An internal user: their own keys only; nothing of anyone else's.
    let ana = as_(&own);
    let keys = ana.get("/key/list?return_full_object=true").await.json();
    let keys = keys["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(keys[0]["user_id"], "ana");
    assert_eq!(ana.get(&format!("/key/info?key={other}")).await.status, 404);
    let steal = ana
        .post("/key/update", &json!({"key": other, "max_budget": 1}))
        .await;
    assert_eq!(steal.status, 404, "{}", steal.text());
    let gift = ana.post("/key/generate", &json!({"user_id": "vic"})).await;
    assert_eq!(gift.status, 403, "{}", gift.text());
    for (path, body) in [("/team/new", json!({})), ("/user/new", json!({}))] {
        assert_eq!(ana.post(path, &body).await.status, 403, "{path}");
    }
    for path in [
        "/user/list",
        "/global/spend",
        "/customer/list",
        "/user/info?user_id=bo",
    ] {
        assert_eq!(ana.get(path).await.status, 403, "{path}");
    }
    assert_eq!(ana.get("/user/info").await.json()["user_id"], "ana");
    // A team that lists her as a member is one of her teams, and she may read it.
    let team = admin
        .post(
            "/team/new",
            &json!({"team_id": "ana-team",
            "members_with_roles": [{"role": "user", "user_id": "ana"}]}),
        )
        .await;
    assert_eq!(team.status, 200, "{}", team.text());
    assert_eq!(
        ana.get("/user/info").await.json()["teams"],
        json!(["ana-team"])
    );
    assert_eq!(ana.get("/team/info?team_id=ana-team").await.status, 200);
    let listed = ana.get("/team/list").await.json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(ana.get("/spend/logs").await.status, 200);

    // An internal user viewer reads their own keys and changes nothing.
    let vic = as_(&viewer);
    assert_eq!(vic.get("/key/list").await.status, 200);
    assert_eq!(vic.post("/key/generate", &json!({})).await.status, 403);

    // A proxy admin viewer reads everything and changes nothing.
    let aud = as_(&auditor);
    let all = aud.get("/key/list").await.json();
    assert_eq!(all["keys"].as_array().unwrap().len(), 5, "{all}");
    assert_eq!(aud.get("/user/list").await.json()["total"], 4);
    assert_eq!(aud.get("/global/spend").await.status, 200);
    assert_eq!(aud.post("/key/generate", &json!({})).await.status, 403);
    assert_eq!(aud.post("/team/new", &json!({})).await.status, 403);

    // A proxy admin does what the master key does.
    let bo = as_(&boss);
    assert_eq!(
        bo.post("/team/new", &json!({"team_alias": "x"}))
            .await
            .status,
        200
    );
    let made = bo.post("/user/new", &json!({"user_id": "new-one"})).await;
    assert_eq!(made.status, 200, "{}", made.text());
}

/// Signs in with the form's fields; the session cookie on success.
async fn sign_in(gw: &TestGateway, form: &str) -> (StatusCode, Option<String>) {
    let res = gw
        .send(Method::POST, "/ui/login", form.to_owned(), &[FORM])
        .await;
    let cookie = res
        .header("set-cookie")
        .map(|c| c.split(';').next().unwrap().to_owned());
    (res.status, cookie)
}

/// The CSRF token of a page the session opens.
async fn csrf(gw: &TestGateway, cookie: &str) -> String {
    let page = gw
        .send(Method::GET, "/ui/keys", "", &[("cookie", cookie)])
        .await;
    assert_eq!(page.status, StatusCode::OK);
    page.text()
        .split("name=\"csrf\" content=\"")
        .nth(1)
        .unwrap()[..64]
        .to_owned()
}

#[tokio::test]
async fn a_user_signs_in_to_the_ui_and_sees_and_changes_only_what_the_role_allows() {
    let mock = MockProvider::start().await;
    let db = TempDb::new("users-ui");
    let (_gateway, gw) = open(&mock, &db.url()).await;
    let admin = gw.handle().with_key(MASTER);
    admin
        .post("/key/generate", &json!({"key_alias": "someone-elses"}))
        .await;
    new_user(
        &admin,
        json!({"user_id": "ana", "user_email": "ana@example.com", "password": "ana-password-1"}),
    )
    .await;
    new_user(&admin, json!({"user_id": "nopass"})).await;
    let gw = gw.handle();

    // Wrong password, unknown user, a user without a password: refused alike.
    for form in [
        "username=ana%40example.com&password=wrong-password",
        "username=nobody&password=ana-password-1",
        "username=nopass&password=ana-password-1",
    ] {
        assert_eq!(
            sign_in(&gw, form).await,
            (StatusCode::UNAUTHORIZED, None),
            "{form}"
        );
    }
    let (status, cookie) = sign_in(&gw, "username=ana%40example.com&password=ana-password-1").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let cookie = cookie.unwrap();
    let token = csrf(&gw, &cookie).await;

    // Her session lists her key only, and makes keys that are hers.
    let keys = gw
        .send(
            Method::GET,
            "/ui/api/key/list",
            "",
            &[("cookie", cookie.as_str())],
        )
        .await
        .json();
    assert_eq!(keys["keys"].as_array().unwrap().len(), 1, "{keys}");
    let made = gw
        .send(
            Method::POST,
            "/ui/api/key/generate",
            "{}",
            &[
                ("cookie", cookie.as_str()),
                ("x-csrf-token", token.as_str()),
            ],
        )
        .await;
    assert_eq!(made.status, 200, "{}", made.text());
    assert_eq!(made.json()["user_id"], "ana");
    // Neither the config nor anyone's teams or users.
    let config = gw
        .send(
            Method::GET,
            "/ui/api/config",
            "",
            &[("cookie", cookie.as_str())],
        )
        .await;
    assert_eq!(config.status, 403);
    let page = gw
        .send(
            Method::GET,
            "/ui/config",
            "",
            &[("cookie", cookie.as_str())],
        )
        .await;
    assert_eq!(page.status, 403);
    // She lands on her keys; the gateway-wide pages and the alerts are not hers.
    let home = gw
        .send(Method::GET, "/ui/", "", &[("cookie", cookie.as_str())])
        .await;
    assert_eq!(home.status, StatusCode::SEE_OTHER);
    assert_eq!(home.header("location"), Some("/ui/keys"));
    for path in [
        "/ui/spend",
        "/ui/alerts",
        "/ui/end-users",
        "/ui/api/alerting/recent",
    ] {
        let res = gw
            .send(Method::GET, path, "", &[("cookie", cookie.as_str())])
            .await;
        assert_eq!(res.status, 403, "{path}");
    }
    for path in ["/ui/teams", "/ui/logs", "/ui/models"] {
        let res = gw
            .send(Method::GET, path, "", &[("cookie", cookie.as_str())])
            .await;
        assert_eq!(res.status, 200, "{path}");
    }
    let team = gw
        .send(
            Method::POST,
            "/ui/api/team/new",
            "{}",
            &[
                ("cookie", cookie.as_str()),
                ("x-csrf-token", token.as_str()),
            ],
        )
        .await;
    assert_eq!(team.status, 403, "{}", team.text());
    let users = gw
        .send(
            Method::GET,
            "/ui/api/user/list",
            "",
            &[("cookie", cookie.as_str())],
        )
        .await;
    assert_eq!(users.status, 403);

    // UI_USERNAME and UI_PASSWORD sign the administrator in: every key, the config.
    assert_eq!(
        sign_in(&gw, "username=root&password=wrong").await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, root) = sign_in(&gw, "username=root&password=root-password-1").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let root = root.unwrap();
    let all = gw
        .send(Method::GET, "/ui/api/key/list", "", &[("cookie", &root)])
        .await
        .json();
    assert_eq!(all["keys"].as_array().unwrap().len(), 4, "{all}");
    let config = gw
        .send(Method::GET, "/ui/api/config", "", &[("cookie", &root)])
        .await;
    assert_ne!(config.status, 403, "{}", config.text());
}

/// Two gateways on one PostgreSQL: a change to a user through one holds the user's keys on the
/// other within a second (`NOTIFY user:<id>`), and the user's budget holds across both.
#[tokio::test]
async fn users_are_shared_across_instances_on_postgres() {
    let Some(url) = llmgate_tests::postgres_url().await else {
        return;
    };
    let mock = MockProvider::start().await;
    let (_one_gw, one) = open(&mock, &url).await;
    let (_two_gw, two) = open(&mock, &url).await;
    let admin = one.handle().with_key(MASTER);
    let id = format!("shared-{}", &llmgate::auth::generate_secret()[3..13]);
    let (_, key) = new_user(&admin, json!({"user_id": id, "max_budget": 0.004})).await;
    assert_eq!(
        chat(&two, &key, "gpt").await.status,
        200,
        "seen by the second"
    );

    let moved = admin
        .post("/user/update", &json!({"user_id": id, "models": ["other"]}))
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text());
    let started = std::time::Instant::now();
    loop {
        let res = chat(&two, &key, "gpt").await;
        if res.status == 403 {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "the change reached the other instance within a second: {}",
            res.text()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // 0.005 spent through instance two already: the budget of 0.004 is spent for both.
    let started = std::time::Instant::now();
    loop {
        let res = chat(&one, &key, "other").await;
        if res.status == 400 {
            assert!(res.text().contains(&format!("User={id}")), "{}", res.text());
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "the budget spent through the other instance holds here: {}",
            res.text()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
