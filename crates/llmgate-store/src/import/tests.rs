//! The plan from rows, and writing it twice into a SQLite store.

use serde_json::{json, Map, Value};

use super::source::Rows;
use super::*;
use crate::{Database, Store, StoreOptions};

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

fn rows() -> Rows {
    Rows {
        keys: vec![
            obj(
                json!({"token": "a".repeat(64), "key_alias": "spent", "spend": 0.75,
                       "max_budget": 1.0, "model_spend": {"m": 0.25}}),
            ),
            obj(json!({"token": "bad"})),
        ],
        teams: vec![obj(
            json!({"team_id": "t1", "spend": 2.0, "soft_budget": 5.0,
                   "model_max_budget": {"m": 1.0}}),
        )],
        end_users: vec![obj(json!({"user_id": "c1", "budget_id": "b1"}))],
        users: vec![obj(
            json!({"user_id": "u1", "user_email": "ana@example.com", "user_role": "proxy_admin_viewer",
                   "spend": 1.5, "max_budget": 10.0, "rpm_limit": 7, "teams": ["t1"],
                   "password": "whatever-litellm-kept"}),
        )],
        organizations: 0,
        budgets: vec![obj(
            json!({"budget_id": "b1", "max_budget": 3.0, "rpm_limit": 4,
                   "budget_duration": "1d", "created_by": "admin"}),
        )],
        memberships: 0,
    }
}

#[test]
fn the_plan_says_what_it_cannot_import() {
    let plan = Plan::of_rows(&rows(), 0);
    assert_eq!((plan.keys.len(), plan.refused.len()), (1, 1));
    let shown = plan.to_string();
    assert!(
        shown.contains("to import: 1 key, 1 team, 1 user, 1 end user, 1 budget"),
        "{shown}"
    );
    assert!(
        shown.contains("key spent: 0.250000 of 1 USD left"),
        "{shown}"
    );
    assert!(shown.contains("cannot import key (unnamed)"), "{shown}");
    assert!(
        shown.contains("user u1 (proxy_admin_viewer): spend 1.5 USD"),
        "{shown}"
    );
    assert!(
        shown.contains("user \"u1\": password not carried"),
        "{shown}"
    );
    assert!(!shown.contains("LiteLLM_UserTable"), "{shown}");
    assert!(!shown.contains("LiteLLM_OrganizationTable"), "{shown}");
    assert!(
        shown.contains("team \"t1\": soft_budget not carried"),
        "{shown}"
    );
    assert!(
        shown.contains("team \"t1\": model_max_budget not carried"),
        "{shown}"
    );
    // End users take their budget's rate limits: nothing to note.
    assert!(!shown.contains("end user \"c1\":"), "{shown}");
}

#[tokio::test]
async fn applying_twice_creates_once_with_the_spend_kept() {
    let store = Store::open("sqlite::memory:", &StoreOptions::new())
        .await
        .unwrap();
    let db = Database::new(store, tokio::runtime::Handle::current());
    let (keys, records) = (db.key_store(), db.record_store());
    let plan = Plan::of_rows(&rows(), 0);

    let first = plan.apply(keys.as_ref(), records.as_ref()).await;
    assert_eq!(
        (first.created.len(), first.skipped.len()),
        (5, 0),
        "{first}"
    );
    let key = keys.get(&"a".repeat(64)).await.unwrap().unwrap();
    assert!((key.spend - 0.75).abs() < 1e-12, "{}", key.spend);
    assert_eq!(key.model_spend.get("m"), Some(&0.25));
    let team = records
        .get_record(RecordKind::Team, "t1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(team.spend, 2.0);
    let user = records
        .get_record(RecordKind::EndUser, "c1")
        .await
        .unwrap()
        .unwrap();
    let user = user.to_end_user().unwrap();
    assert_eq!(
        (user.budget_id.as_deref(), user.max_budget),
        (Some("b1"), None)
    );
    assert_eq!(
        user.budget_reset_at,
        Some(86_400),
        "the budget's period starts"
    );
    let budget = records
        .get_record(RecordKind::Budget, "b1")
        .await
        .unwrap()
        .unwrap()
        .to_budget()
        .unwrap();
    assert_eq!((budget.max_budget, budget.rpm_limit), (Some(3.0), Some(4)));
    let internal = records
        .get_record(RecordKind::User, "u1")
        .await
        .unwrap()
        .unwrap()
        .to_user()
        .unwrap();
    assert_eq!(
        (internal.spend, internal.max_budget, internal.rpm_limit),
        (1.5, Some(10.0), Some(7))
    );
    assert_eq!(internal.user_role, llmgate_core::UserRole::ProxyAdminViewer);
    assert_eq!(internal.password_hash, None);

    let second = plan.apply(keys.as_ref(), records.as_ref()).await;
    assert_eq!(
        (second.created.len(), second.skipped.len()),
        (0, 5),
        "{second}"
    );
    let again = keys.get(&"a".repeat(64)).await.unwrap().unwrap();
    assert!((again.spend - 0.75).abs() < 1e-12);
}

#[tokio::test]
async fn a_key_whose_alias_is_taken_fails_and_the_rest_is_written() {
    let store = Store::open("sqlite::memory:", &StoreOptions::new())
        .await
        .unwrap();
    let db = Database::new(store, tokio::runtime::Handle::current());
    let (keys, records) = (db.key_store(), db.record_store());
    let other = llmgate_core::VirtualKey {
        token: "c".repeat(64),
        key_alias: Some("spent".into()),
        ..Default::default()
    };
    keys.insert(&other).await.unwrap();

    let outcome = Plan::of_rows(&rows(), 0)
        .apply(keys.as_ref(), records.as_ref())
        .await;
    assert_eq!(
        (outcome.created.len(), outcome.failed.len()),
        (4, 1),
        "{outcome}"
    );
    assert!(outcome.failed[0].starts_with("key spent:"), "{outcome}");
    assert!(keys.get(&"a".repeat(64)).await.unwrap().is_none());
}
