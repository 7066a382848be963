//! `/key/generate`, `/key/update` and `/key/regenerate` refuse values out of range with a 400
//! naming the field (bounds in docs/keys.md), instead of storing a key that never expires,
//! limits clamped to `u64::MAX`, or megabytes of metadata.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use llmgate_tests::{config_for, MockProvider, TestGateway};
use serde_json::{json, Value};

const MASTER: &str = "sk-master-key-bounds";

async fn admin() -> (MockProvider, TestGateway) {
    let mock = MockProvider::start().await;
    let gw = TestGateway::start(&config_for(&[("gpt", &mock.v1_url())], Some(MASTER)))
        .await
        .with_key(MASTER);
    (mock, gw)
}

fn big_metadata() -> Value {
    json!({"blob": "x".repeat(17 * 1024)})
}

fn long(n: usize) -> String {
    "a".repeat(n)
}

/// `(field, value)` pairs each out of range.
fn out_of_range() -> Vec<(&'static str, Value)> {
    vec![
        ("duration", json!("9223372036854775807s")),
        ("duration", json!(9_223_372_036_854_775_807_i64)),
        ("duration", json!("101000d")),
        ("budget_duration", json!("9223372036854775807s")),
        ("budget_duration", json!("400d")),
        ("rpm_limit", json!(1e30)),
        ("rpm_limit", json!(-1)),
        ("rpm_limit", json!(2.5)),
        ("rpm_limit", json!(u64::MAX)),
        ("tpm_limit", json!(1e30)),
        ("max_parallel_requests", json!(1e30)),
        ("max_parallel_requests", json!(-3)),
        ("max_budget", json!(-1)),
        ("max_budget", json!(1e300)),
        ("metadata", big_metadata()),
        ("key_alias", json!(long(257))),
        ("user_id", json!(long(257))),
        ("team_id", json!(long(257))),
        ("models", json!(vec!["gpt"; 1001])),
        ("models", json!([long(257)])),
        ("tags", json!(vec!["t"; 101])),
        ("tags", json!([long(257)])),
        ("model_max_budget", json!({"gpt": 1e300})),
        ("model_max_budget", json!({"gpt": -1})),
        ("model_rpm_limit", json!({"gpt": 1e30})),
        ("model_tpm_limit", json!({"gpt": 1e30})),
        ("model_rpm_limit", json!({ long(257): 5 })),
    ]
}

fn assert_names(res: &llmgate_tests::TestResponse, field: &str, value: &Value) {
    assert_eq!(res.status, 400, "{field} = {value}: {}", res.text());
    let e = &res.json()["error"];
    assert_eq!(e["param"], field, "{field}: {e}");
    assert!(
        e["message"].as_str().unwrap().contains(field),
        "{field}: {e}"
    );
}

#[tokio::test]
async fn generate_refuses_out_of_range_values_naming_the_field() {
    let (_mock, gw) = admin().await;
    for (field, value) in out_of_range() {
        let res = gw.post("/key/generate", &json!({ field: value })).await;
        assert_names(&res, field, &value);
    }
    // Nothing was stored.
    let keys = gw.get("/key/list").await.json();
    assert_eq!(keys["keys"], json!([]), "{keys}");
}

#[tokio::test]
async fn update_and_regenerate_refuse_them_too() {
    let (_mock, gw) = admin().await;
    let created = gw.post("/key/generate", &json!({"rpm_limit": 5})).await;
    assert_eq!(created.status, 200, "{}", created.text());
    let secret = created.json()["key"].as_str().unwrap().to_string();
    for (field, value) in out_of_range() {
        let res = gw
            .post("/key/update", &json!({"key": secret, field: value}))
            .await;
        assert_names(&res, field, &value);
        let res = gw
            .post("/key/regenerate", &json!({"key": secret, field: value}))
            .await;
        assert_names(&res, field, &value);
    }
    // The key kept its settings (and its secret: regenerate refused before rotating).
    let info = gw.get(&format!("/key/info?key={secret}")).await;
    assert_eq!(info.status, 200, "{}", info.text());
    assert_eq!(info.json()["info"]["rpm_limit"], 5);
}

#[tokio::test]
async fn values_at_the_bounds_are_accepted() {
    let (_mock, gw) = admin().await;
    let body = json!({
        "duration": "36500d",
        "budget_duration": "366d",
        "rpm_limit": 1_000_000_000_000_u64,
        "tpm_limit": 1e12,
        "max_parallel_requests": 0,
        "max_budget": 1e12,
        "metadata": {"blob": "x".repeat(15 * 1024)},
        "key_alias": long(256),
        "models": vec!["gpt"; 1000],
        "tags": vec!["t"; 100],
        "model_max_budget": {"gpt": 1e12},
        "model_rpm_limit": {"gpt": 1_000_000_000_000_u64},
    });
    let res = gw.post("/key/generate", &body).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["rpm_limit"], 1_000_000_000_000_u64);
}
