//! The gateway's own budget, `litellm_settings.max_budget` and `budget_duration` (issue 17,
//! item 4): every caller is held to it (the master key and virtual keys alike), it survives a
//! restart (its period's spend is read back from the spend log), and a new period admits
//! again. Each test runs the gateway on its own SQLite file, through HTTP, as a user would.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::Duration;

use llmgate_tests::{MockProvider, TestGateway};
use serde_json::json;

const MASTER: &str = "sk-master-proxy-budget";

/// A SQLite file in the temp dir, removed with its WAL files when dropped.
struct TempDb(PathBuf);

impl TempDb {
    fn new() -> Self {
        let name = llmgate::auth::generate_secret()[3..15].to_ascii_lowercase();
        TempDb(std::env::temp_dir().join(format!("llmgate-proxy-budget-{name}.db")))
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.0.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

/// One priced deployment `gpt` at `mock`: each answer of the mock costs more than 0.001 USD
/// (its usage to "hi" is 1 prompt and 4 completion tokens, at 0.001 USD a token).
async fn open(mock: &MockProvider, db: &TempDb, budget: &str) -> (llmgate::Gateway, TestGateway) {
    let y = format!(
        "model_list:\n  - model_name: gpt\n    litellm_params:\n      model: openai/private-x\n      api_base: {}\n      api_key: sk-upstream\n    model_info:\n      input_cost_per_token: 0.001\n      output_cost_per_token: 0.001\nlitellm_settings:\n{budget}\ngeneral_settings:\n  master_key: {MASTER}\n  database_url: sqlite://{}\n",
        mock.v1_url(),
        db.0.display()
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

fn assert_gateway_budget_refused(res: &llmgate_tests::TestResponse) {
    let err = res.openai_error(400);
    assert_eq!(err["type"], "budget_exceeded", "{err}");
    let message = err["message"].as_str().unwrap();
    assert!(message.contains("litellm_settings.max_budget"), "{message}");
}

#[tokio::test]
async fn the_gateways_budget_holds_every_caller() {
    let mock = MockProvider::start().await;
    let db = TempDb::new();
    let (_gateway, gw) = open(&mock, &db, "  max_budget: 0.001").await;
    let admin = gw.handle().with_key(MASTER);
    let key = admin.post("/key/generate", &json!({})).await.json()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let user = gw.handle().with_key(&key);
    assert_eq!(user.chat("gpt", "hi").await.status, 200, "spend 0 < 0.001");
    assert_eq!(mock.requests().len(), 1);
    assert_gateway_budget_refused(&admin.chat("gpt", "hi").await);
    assert_gateway_budget_refused(&user.chat("gpt", "hi").await);
    assert_eq!(
        mock.requests().len(),
        1,
        "nothing refused reached the provider"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn the_gateways_budget_survives_a_restart() {
    let mock = MockProvider::start().await;
    let db = TempDb::new();
    let (gateway, gw) = open(&mock, &db, "  max_budget: 0.001").await;
    let admin = gw.handle().with_key(MASTER);
    assert_eq!(admin.chat("gpt", "hi").await.status, 200);
    gateway.flush_spend().await;
    gw.shutdown().await;
    drop(gateway);

    let (_gateway, gw) = open(&mock, &db, "  max_budget: 0.001").await;
    assert_gateway_budget_refused(&gw.handle().with_key(MASTER).chat("gpt", "hi").await);
    assert_eq!(mock.requests().len(), 1);
    gw.shutdown().await;
}

/// `budget_duration: 2s`: periods are whole multiples of 2 s since the epoch, so the request
/// after the next boundary is admitted again.
#[tokio::test]
async fn a_new_period_admits_again() {
    let mock = MockProvider::start().await;
    let db = TempDb::new();
    let (_gateway, gw) = open(&mock, &db, "  max_budget: 0.001\n  budget_duration: 2s").await;
    let admin = gw.handle().with_key(MASTER);
    // Start just after a boundary, so the refusal below falls in the same period.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let into = Duration::from_millis(u64::try_from(now.as_millis() % 2000).unwrap());
    tokio::time::sleep(Duration::from_millis(2050).saturating_sub(into)).await;
    assert_eq!(admin.chat("gpt", "hi").await.status, 200);
    let refused = admin.chat("gpt", "hi").await;
    assert_gateway_budget_refused(&refused);
    let message = refused.openai_error(400)["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("resets at"), "{message}");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(admin.chat("gpt", "hi").await.status, 200, "a new period");
    gw.shutdown().await;
}
