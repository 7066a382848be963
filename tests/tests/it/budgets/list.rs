//! `GET /budget/list`: at most 1,000 budgets, oldest first (by the creation second, then by
//! id).

use std::time::Duration;

use llmgate_tests::{MockProvider, TempDb};
use serde_json::json;

use super::{ok, open, MASTER};

/// A budget made a second before another is listed first though its id sorts last; of 1,001
/// budgets the 1,000 oldest are listed, in the order they were made, and the newest is left
/// out.
#[tokio::test]
async fn the_budget_list_is_oldest_first_and_at_most_a_thousand() {
    let mock = MockProvider::start().await;
    let db = TempDb::new("budgets-list");
    let gw = open(&mock, &db.url()).await;
    let admin = gw.handle().with_key(MASTER);
    let ids = |list: serde_json::Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|b| b["budget_id"].as_str().unwrap().to_owned())
            .collect()
    };
    ok(&admin, "/budget/new", json!({"budget_id": "zz-first"})).await;
    // Creation times are whole seconds.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    ok(&admin, "/budget/new", json!({"budget_id": "aa-second"})).await;
    assert_eq!(
        ids(admin.get("/budget/list").await.json()),
        ["zz-first", "aa-second"]
    );

    let mut made = vec!["zz-first".to_owned(), "aa-second".to_owned()];
    for i in 0..999 {
        let id = format!("b-{i:04}");
        ok(&admin, "/budget/new", json!({"budget_id": id})).await;
        made.push(id);
    }
    let listed = ids(admin.get("/budget/list").await.json());
    assert_eq!(listed.len(), 1_000);
    assert_eq!(listed, made[..1_000], "oldest first; the newest left out");
    gw.shutdown().await;
}
