//! Soft budgets from a budget object (`/budget/new` with `soft_budget`): a key, a team and an
//! end user linked to it each send one `soft_budget_crossed` alert when their own spend
//! crosses it, and their requests are still served.

use std::collections::HashMap;
use std::time::Duration;

use llmgate_tests::TestGateway;
use serde_json::{json, Value};

use super::backends::TempDb;
use super::{alerting, stable, Receiver};

const MASTER: &str = "sk-master-soft";
/// What one "hi" costs: 1 input and 4 output tokens at 0.001.
const COST: f64 = 0.005;

#[tokio::test]
async fn a_budget_objects_soft_budget_alerts_each_linked_owner_once_and_refuses_nothing() {
    let receiver = Receiver::ok().await;
    let mock = llmgate_tests::MockProvider::start().await;
    let db = TempDb(std::env::temp_dir().join(format!(
        "llmgate-soft-{}.db",
        &llmgate::auth::generate_secret()[3..15]
    )));
    let yaml = format!(
        "model_list:\n  - model_name: gpt\n    litellm_params:\n      model: openai/gpt-upstream\n      api_base: {}\n      api_key: sk-upstream\n    model_info:\n      input_cost_per_token: 0.001\n      output_cost_per_token: 0.001\nlitellm_settings:\n  drop_params: true\n{}  master_key: {MASTER}\n  database_url: sqlite://{}\n",
        mock.v1_url(),
        alerting("  alert_types: [\"budget_alerts\"]\n"),
        db.0.display()
    );
    let env = HashMap::from([("WEBHOOK_URL".to_owned(), receiver.url.clone())]);
    let loaded = llmgate_config::from_yaml(&yaml, std::path::Path::new("."), &env)
        .unwrap_or_else(|p| panic!("config rejected:\n{p}"));
    let gateway = llmgate::Gateway::open(loaded.config).await.unwrap();
    let gw = TestGateway::serve(gateway.clone()).await;
    let admin = gw.handle().with_key(MASTER);
    let post = |path: &'static str, body: Value| {
        let admin = admin.handle();
        async move {
            let res = admin.post(path, &body).await;
            assert_eq!(res.status, 200, "{path}: {}", res.text());
            res.json()
        }
    };
    post(
        "/budget/new",
        json!({"budget_id": "soft", "soft_budget": 1.5 * COST}),
    )
    .await;
    let key = post(
        "/key/generate",
        json!({"budget_id": "soft", "key_alias": "soft-app"}),
    )
    .await;
    let team = post(
        "/team/new",
        json!({"team_id": "soft-team", "budget_id": "soft"}),
    )
    .await;
    assert_eq!(team["budget_id"], "soft");
    let in_team = post("/key/generate", json!({"team_id": "soft-team"})).await;
    post(
        "/customer/new",
        json!({"user_id": "soft-user", "budget_id": "soft"}),
    )
    .await;

    // Three requests each: the soft budget is crossed at the second, and nothing is refused.
    let linked = gw.handle().with_key(key["key"].as_str().unwrap());
    let teamed = gw.handle().with_key(in_team["key"].as_str().unwrap());
    let as_user = json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}], "user": "soft-user"});
    for _ in 0..3 {
        assert_eq!(linked.chat("gpt", "hi").await.status, 200);
        assert_eq!(teamed.chat("gpt", "hi").await.status, 200);
        let res = admin.post("/v1/chat/completions", &as_user).await;
        assert_eq!(res.status, 200, "{}", res.text());
        gateway.flush_spend().await;
    }
    let alerts = receiver.wait_for(3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let alerts: Vec<Value> = alerts.into_iter().map(stable).collect();
    assert_eq!(receiver.alerts().len(), 3, "one each: {alerts:#?}");
    let of = |group: &str| {
        alerts
            .iter()
            .find(|a| a["event_group"] == group)
            .unwrap_or_else(|| panic!("no {group} alert: {alerts:#?}"))
            .clone()
    };
    let k = of("key");
    assert_eq!(k["event"], "soft_budget_crossed");
    assert_eq!(k["key_alias"], "soft-app");
    assert_eq!(k["soft_budget"], 1.5 * COST);
    assert_eq!(k["spend"], 2.0 * COST);
    let t = of("team");
    assert_eq!(
        (&t["team_id"], &t["spend"]),
        (&json!("soft-team"), &json!(2.0 * COST))
    );
    assert!(
        t["event_message"]
            .as_str()
            .unwrap()
            .starts_with("Soft budget of team soft-team crossed"),
        "{t}"
    );
    let u = of("customer");
    assert_eq!(u["customer_id"], "soft-user");
    assert_eq!(u["level"], "Low");
    gw.shutdown().await;
}
