//! LiteLLM's other key fields (issue 18, item 6): `aliases`, `soft_budget`, `key_type`,
//! `allowed_routes`, `enforced_params` are kept and acted on; `permissions`, `guardrails` and
//! `config` are kept and shown with a notice; `/key/health`; `total_count` in `/key/list`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use llmgate_tests::{MockProvider, TempDb, TestGateway};
use serde_json::{json, Value};

const MASTER: &str = "sk-master-key-fields";

async fn open(mock: &MockProvider, db: &TempDb) -> TestGateway {
    let entry = |name: &str, upstream: &str| {
        format!(
            "  - model_name: {name}\n    litellm_params:\n      model: openai/{upstream}\n      api_base: {}\n      api_key: sk-upstream\n",
            mock.v1_url()
        )
    };
    let y = format!(
        "model_list:\n{}{}general_settings:\n  master_key: {MASTER}\n  database_url: {}\n",
        entry("gpt", "upstream-gpt"),
        entry("mini", "upstream-mini"),
        db.url()
    );
    TestGateway::start(&y).await
}

async fn key(admin: &TestGateway, body: Value) -> (String, Value) {
    let res = admin.post("/key/generate", &body).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let v = res.json();
    (v["key"].as_str().unwrap().to_owned(), v)
}

#[tokio::test]
async fn litellms_key_fields_are_kept_and_shown() {
    let mock = MockProvider::start().await;
    let db = TempDb::new("key-fields");
    let gw = open(&mock, &db).await;
    let admin = gw.handle().with_key(MASTER);
    let (secret, made) = key(
        &admin,
        json!({"aliases": {"fast": "mini"}, "soft_budget": 5, "key_type": "llm_api",
            "permissions": {"get_spend_routes": false}, "guardrails": ["pii"],
            "config": {"temperature": 0}, "enforced_params": []}),
    )
    .await;
    let notices = made["llmgate_notices"].as_array().unwrap();
    assert_eq!(notices.len(), 3, "{notices:?}");
    let info = admin.get(&format!("/key/info?key={secret}")).await.json()["info"].clone();
    assert_eq!(info["aliases"], json!({"fast": "mini"}));
    assert_eq!(info["soft_budget"], 5.0);
    assert_eq!(info["key_type"], "llm_api");
    assert_eq!(info["permissions"], json!({"get_spend_routes": false}));
    assert_eq!(info["guardrails"], json!(["pii"]));
    let err = admin
        .post("/key/generate", &json!({"key_type": "root"}))
        .await
        .openai_error(400);
    assert_eq!(err["param"], "key_type", "{err}");

    // total_count counts every key the filter matches, not only the page.
    key(&admin, json!({"user_id": "u-count"})).await;
    key(&admin, json!({"user_id": "u-count"})).await;
    let list = admin.get("/key/list?user_id=u-count&size=1").await.json();
    assert_eq!(
        (
            list["total_count"].clone(),
            list["keys"].as_array().unwrap().len()
        ),
        (json!(2), 1)
    );
    assert_eq!(list["total_pages"], 2);

    // /key/health answers for the caller's own key.
    let user = gw.handle().with_key(&secret);
    let health = user.post("/key/health", &json!({})).await;
    assert_eq!(
        health.status,
        403,
        "an llm_api key may not call the key API: {}",
        health.text()
    );
    let (plain, _) = key(&admin, json!({})).await;
    let health = gw
        .handle()
        .with_key(&plain)
        .post("/key/health", &json!({}))
        .await;
    assert_eq!(health.json()["key"], "healthy");
    gw.shutdown().await;
}

#[tokio::test]
async fn aliases_route_to_the_group_they_name() {
    let mock = MockProvider::start().await;
    let db = TempDb::new("key-fields");
    let gw = open(&mock, &db).await;
    let admin = gw.handle().with_key(MASTER);
    let (secret, _) = key(
        &admin,
        json!({"aliases": {"fast": "mini"}, "models": ["mini"]}),
    )
    .await;
    let res = gw.handle().with_key(&secret).chat("fast", "hi").await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("x-llmgate-model-group"), Some("mini"));
    assert_eq!(mock.requests()[0].json["model"], "upstream-mini");

    // A team's model_aliases apply to its keys; the key's own aliases come first.
    admin
        .post(
            "/team/new",
            &json!({"team_id": "t-alias", "model_aliases": {"smart": "gpt", "fast": "gpt"}}),
        )
        .await
        .json();
    let (member, _) = key(
        &admin,
        json!({"team_id": "t-alias", "aliases": {"fast": "mini"}}),
    )
    .await;
    let member = gw.handle().with_key(&member);
    assert_eq!(
        member
            .chat("smart", "hi")
            .await
            .header("x-llmgate-model-group"),
        Some("gpt")
    );
    assert_eq!(
        member
            .chat("fast", "hi")
            .await
            .header("x-llmgate-model-group"),
        Some("mini")
    );
    // Without an alias the name is a model group as before.
    assert_eq!(member.chat("gpt", "hi").await.status, 200);
    gw.shutdown().await;
}

#[tokio::test]
async fn key_type_allowed_routes_and_enforced_params_hold_requests() {
    let mock = MockProvider::start().await;
    let db = TempDb::new("key-fields");
    let gw = open(&mock, &db).await;
    let admin = gw.handle().with_key(MASTER);

    let (llm, _) = key(&admin, json!({"key_type": "llm_api"})).await;
    let llm = gw.handle().with_key(&llm);
    assert_eq!(llm.chat("gpt", "hi").await.status, 200);
    let err = llm.get("/key/info").await.openai_error(403);
    assert_eq!(err["code"], "route_not_allowed", "{err}");

    let (read_only, _) = key(&admin, json!({"key_type": "read_only"})).await;
    let read_only = gw.handle().with_key(&read_only);
    assert_eq!(read_only.get("/key/info").await.status, 200);
    read_only.chat("gpt", "hi").await.openai_error(403);

    let (routes, _) = key(&admin, json!({"allowed_routes": ["/v1/embeddings"]})).await;
    gw.handle()
        .with_key(&routes)
        .chat("gpt", "hi")
        .await
        .openai_error(403);

    let (strict, _) = key(
        &admin,
        json!({"enforced_params": ["user", "metadata.generation_name"]}),
    )
    .await;
    let strict = gw.handle().with_key(&strict);
    let err = strict.chat("gpt", "hi").await.openai_error(400);
    assert_eq!(err["code"], "missing_enforced_param", "{err}");
    let body = json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}],
        "user": "end-user-1", "metadata": {"generation_name": "nightly"}});
    assert_eq!(strict.post("/v1/chat/completions", &body).await.status, 200);
    let before = mock.requests().len();
    let no_meta =
        json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}], "user": "u"});
    strict
        .post("/v1/chat/completions", &no_meta)
        .await
        .openai_error(400);
    assert_eq!(
        mock.requests().len(),
        before,
        "a refused request reaches no provider"
    );
    gw.shutdown().await;
}
