//! `/key/regenerate` through a gateway (docs/keys.md): the key keeps its settings and its spend
//! under the new secret, the old secret is refused at once and the new one is served; in memory,
//! on SQLite and on PostgreSQL.
//!
//! Prices are powers of two, so spend is exact: the mock answers "hi" with 1 input and 4 output
//! tokens, 2^-10 + 4 x 2^-12 = 2^-9 USD a request.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use llmgate_tests::open_gateway as open;
use llmgate_tests::{postgres_url, MockProvider, TempDb, TestGateway};
use serde_json::{json, Value};

const MASTER: &str = "sk-master-key-regenerate";
/// What one "hi" costs.
const COST: f64 = 1.0 / 512.0;

fn yaml(mock: &MockProvider, database_url: Option<&str>) -> String {
    let mut y = String::from("model_list:\n");
    for name in ["gpt", "claude"] {
        y.push_str(&format!(
            "  - model_name: {name}\n    litellm_params:\n      model: openai/{name}-upstream\n      api_base: {}\n      api_key: sk-upstream\n    model_info:\n      input_cost_per_token: 0.0009765625\n      output_cost_per_token: 0.000244140625\n",
            mock.v1_url()
        ));
    }
    y.push_str(&format!("general_settings:\n  master_key: {MASTER}\n"));
    if let Some(url) = database_url {
        y.push_str(&format!("  database_url: {url}\n"));
    }
    y
}

/// `/key/info`'s `info` for `key`, less what a new secret changes (its token, its name and
/// the time of the change).
async fn kept(admin: &TestGateway, key: &str) -> Value {
    let res = admin.get(&format!("/key/info?key={key}")).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let mut info = res.json()["info"].clone();
    let m = info.as_object_mut().unwrap();
    for changes in ["token", "key_name", "updated_at"] {
        assert!(m.remove(changes).is_some(), "/key/info shows no {changes}");
    }
    info
}

/// Generate a key with settings, spend through it, regenerate it, and read it back.
async fn regenerate_keeps_settings_and_spend(database_url: Option<&str>) {
    let mock = MockProvider::start().await;
    let gateway = open(&yaml(&mock, database_url)).await;
    let gw = TestGateway::serve(gateway.clone()).await;
    let admin = gw.handle().with_key(MASTER);
    let alias = format!("regen-{}", &llmgate::auth::generate_secret()[3..15]);
    let body = json!({
        "models": ["gpt"], "max_budget": 7.5, "budget_duration": "1d", "rpm_limit": 40,
        "tpm_limit": 50_000, "max_parallel_requests": 3, "key_alias": alias,
        "metadata": {"team": "search"}, "tags": ["a"], "model_max_budget": {"gpt": 2.0},
    });
    let res = admin.post("/key/generate", &body).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let old = res.json()["key"].as_str().unwrap().to_string();
    let user = gw.handle().with_key(&old);
    for _ in 0..3 {
        assert_eq!(user.chat("gpt", "hi").await.status, 200);
    }
    gateway.flush_spend().await;
    let before = kept(&admin, &old).await;
    assert_eq!(before["spend"], 3.0 * COST, "{before}");
    assert_eq!(before["model_spend"]["gpt"], 3.0 * COST, "{before}");

    let res = admin.post("/key/regenerate", &json!({"key": old})).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let new = res.json()["key"].as_str().unwrap().to_string();
    assert_ne!(new, old);

    // The old secret is refused at once, the new one served, with the key's limits.
    let e = user.chat("gpt", "hi").await.openai_error(401);
    assert_eq!(e["code"], "invalid_api_key", "{e}");
    let renewed = gw.handle().with_key(&new);
    let res = renewed.chat("gpt", "hi").await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("x-ratelimit-limit-requests"), Some("40"));
    renewed.chat("claude", "hi").await.openai_error(403);

    // Settings and spend as they were (the request just made adds its own cost).
    gateway.flush_spend().await;
    let mut after = kept(&admin, &new).await;
    assert_eq!(after["spend"], 4.0 * COST, "{after}");
    assert_eq!(after["model_spend"]["gpt"], 4.0 * COST, "{after}");
    after["spend"] = before["spend"].clone();
    after["model_spend"] = before["model_spend"].clone();
    assert_eq!(after, before);
    gw.shutdown().await;
}

#[tokio::test]
async fn regenerate_keeps_settings_and_spend_in_memory() {
    regenerate_keeps_settings_and_spend(None).await;
}

#[tokio::test]
async fn regenerate_keeps_settings_and_spend_on_sqlite() {
    let db = TempDb::new("key-regenerate");
    regenerate_keeps_settings_and_spend(Some(&db.url())).await;
}

#[tokio::test]
async fn regenerate_keeps_settings_and_spend_on_postgres() {
    let Some(url) = postgres_url().await else {
        return;
    };
    regenerate_keeps_settings_and_spend(Some(&url)).await;
}
