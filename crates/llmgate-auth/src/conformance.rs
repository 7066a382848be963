//! The suite every [`KeyStore`] backend passes (feature `conformance`): the in-memory store
//! here, SQLite and PostgreSQL in `llmgate-store`.
//!
//! Each run uses fresh random tokens and a fresh `user_id`, so it can run against a shared
//! database, in parallel with other runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use llmgate_core::VirtualKey;

use crate::{KeyFilter, KeyStore, StoreError};

fn token() -> String {
    crate::hash_key(&crate::generate_secret())
}

fn key(user: &str, created_at: i64) -> VirtualKey {
    let token = token();
    VirtualKey {
        key_name: format!("sk-...{}", &token[..4]),
        token,
        user_id: Some(user.to_string()),
        models: vec!["gpt-4o".into(), "claude".into()],
        max_budget: Some(10.0),
        budget_duration: Some(3600),
        budget_reset_at: Some(created_at + 3600),
        rpm_limit: Some(60),
        model_rpm_limit: [("gpt-4o".to_string(), 5)].into(),
        metadata: serde_json::json!({"team": "search", "n": 1}),
        tags: vec!["prod".into()],
        created_at,
        updated_at: created_at,
        ..VirtualKey::default()
    }
}

/// Runs every check against `store`. Panics (it is a test) on the first failure.
pub async fn run(store: Arc<dyn KeyStore>) {
    let user = format!("conformance-{}", &token()[..12]);
    crud(&*store, &user).await;
    list(&*store, &user).await;
    rotate(&*store, &user).await;
    spend(store.clone(), &user).await;
    budget_reset(&*store, &user).await;
    store.ping().await.unwrap();
}

async fn crud(store: &dyn KeyStore, user: &str) {
    let mut k = key(user, 1_000);
    k.key_alias = Some(format!("{user}-alias"));
    store.insert(&k).await.unwrap();
    assert_eq!(store.get(&k.token).await.unwrap().as_ref(), Some(&k));
    assert_eq!(
        store
            .get_by_alias(k.key_alias.as_deref().unwrap())
            .await
            .unwrap(),
        Some(k.clone())
    );
    assert!(store.get(&token()).await.unwrap().is_none());
    assert!(matches!(
        store.insert(&k).await,
        Err(StoreError::Conflict(_))
    ));
    let mut same_alias = key(user, 1_001);
    same_alias.key_alias = k.key_alias.clone();
    assert!(matches!(
        store.insert(&same_alias).await,
        Err(StoreError::Conflict(_))
    ));

    // Update writes settings, never spend.
    store.add_spend(&k.token, "gpt-4o", 0.5).await.unwrap();
    let mut changed = k.clone();
    changed.models = vec![];
    changed.blocked = true;
    changed.spend = 99.0;
    changed.max_budget = None;
    changed.expires = Some(5_000);
    changed.metadata = serde_json::json!({"x": [1, 2]});
    changed.updated_at = 2_000;
    assert!(store.update(&changed).await.unwrap());
    let got = store.get(&k.token).await.unwrap().unwrap();
    assert_eq!(got.spend, 0.5);
    assert_eq!(got.model_spend.get("gpt-4o"), Some(&0.5));
    assert!(got.blocked && got.models.is_empty() && got.max_budget.is_none());
    assert_eq!(
        (got.expires, got.updated_at, got.created_at),
        (Some(5_000), 2_000, 1_000)
    );
    assert_eq!(got.metadata, changed.metadata);
    let mut ghost = key(user, 1_000);
    ghost.key_alias = None;
    assert!(!store.update(&ghost).await.unwrap());

    let deleted = store
        .delete(&[k.token.clone(), ghost.token.clone()])
        .await
        .unwrap();
    assert_eq!(deleted, vec![k.token.clone()]);
    assert!(store.get(&k.token).await.unwrap().is_none());
}

async fn list(store: &dyn KeyStore, user: &str) {
    let user = format!("{user}-list");
    let mut tokens = Vec::new();
    for i in 0..5 {
        let k = key(&user, 10_000 + i);
        store.insert(&k).await.unwrap();
        tokens.push(k.token);
    }
    let page = |page, size| KeyFilter {
        user_id: Some(user.clone()),
        page,
        size,
        ..KeyFilter::default()
    };
    let first = store.list(&page(1, 2)).await.unwrap();
    let names: Vec<_> = first.iter().map(|k| k.token.clone()).collect();
    assert_eq!(
        names,
        vec![tokens[4].clone(), tokens[3].clone()],
        "newest first"
    );
    assert_eq!(store.list(&page(3, 2)).await.unwrap().len(), 1);
    assert_eq!(store.list(&page(1, 100)).await.unwrap().len(), 5);
    let other = KeyFilter {
        user_id: Some(format!("{user}-nobody")),
        page: 1,
        size: 10,
        ..KeyFilter::default()
    };
    assert!(store.list(&other).await.unwrap().is_empty());
    store.delete(&tokens).await.unwrap();
}

async fn rotate(store: &dyn KeyStore, user: &str) {
    let k = key(user, 1_000);
    store.insert(&k).await.unwrap();
    store.add_spend(&k.token, "claude", 0.25).await.unwrap();
    let new = token();
    assert!(store
        .rotate(&k.token, &new, "sk-...new1", 3_000)
        .await
        .unwrap());
    assert!(
        store.get(&k.token).await.unwrap().is_none(),
        "old token gone"
    );
    let got = store.get(&new).await.unwrap().unwrap();
    assert_eq!(
        (got.spend, got.key_name.as_str(), got.updated_at),
        (0.25, "sk-...new1", 3_000)
    );
    assert_eq!(got.model_spend.get("claude"), Some(&0.25));
    assert_eq!(got.rpm_limit, k.rpm_limit);
    assert!(!store.rotate(&k.token, &token(), "x", 3_000).await.unwrap());
    store.delete(&[new]).await.unwrap();
}

async fn spend(store: Arc<dyn KeyStore>, user: &str) {
    let k = key(user, 1_000);
    store.insert(&k).await.unwrap();
    // 100 concurrent charges of an amount exact in binary: the total is exact too.
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let store = store.clone();
            let token = k.token.clone();
            let model = if i % 2 == 0 { "gpt-4o" } else { "claude" };
            tokio::spawn(async move { store.add_spend(&token, model, 0.125).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let got = store.get(&k.token).await.unwrap().unwrap();
    assert_eq!(got.spend, 12.5);
    assert_eq!(got.model_spend.get("gpt-4o"), Some(&6.25));
    assert_eq!(got.model_spend.get("claude"), Some(&6.25));
    // Charging a key that is gone is not an error: the key was deleted mid-request.
    store.add_spend(&token(), "gpt-4o", 1.0).await.unwrap();
    store.delete(&[k.token]).await.unwrap();
}

async fn budget_reset(store: &dyn KeyStore, user: &str) {
    let k = key(user, 1_000); // resets at 4_600
    store.insert(&k).await.unwrap();
    store.add_spend(&k.token, "gpt-4o", 3.0).await.unwrap();
    assert!(
        !store.reset_budget(&k.token, 4_599, 8_200).await.unwrap(),
        "not due"
    );
    assert_eq!(store.get(&k.token).await.unwrap().unwrap().spend, 3.0);
    assert!(store.reset_budget(&k.token, 4_600, 8_200).await.unwrap());
    // A second instance racing to reset the same period finds it done.
    assert!(!store.reset_budget(&k.token, 4_600, 8_200).await.unwrap());
    let got = store.get(&k.token).await.unwrap().unwrap();
    assert_eq!((got.spend, got.budget_reset_at), (0.0, Some(8_200)));
    assert!(got.model_spend.values().all(|v| *v == 0.0));
    store.delete(&[k.token]).await.unwrap();
}

/// Runs every check of a [`crate::RecordStore`] against `store`: insert and conflict, get,
/// update keeping spend, concurrent spend adding up exactly, conditional budget reset, paging
/// with the total, delete. Panics on the first failure.
pub async fn run_records(store: Arc<dyn crate::RecordStore>) {
    use crate::{Record, RecordKind::Team};
    let id = format!("team-conformance-{}", &token()[..12]);
    let rec = Record {
        id: id.clone(),
        doc: serde_json::json!({"team_alias": "search", "models": ["gpt-4o"], "rpm_limit": 5}),
        spend: 0.5,
        budget_reset_at: Some(1_000),
        created_at: 10,
        updated_at: 10,
    };
    store.insert_record(Team, &rec).await.unwrap();
    assert!(matches!(
        store.insert_record(Team, &rec).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.get_record(Team, &id).await.unwrap(),
        Some(rec.clone())
    );
    assert_eq!(store.get_record(Team, "no-such-team").await.unwrap(), None);

    let changed = Record {
        doc: serde_json::json!({"team_alias": "search-2"}),
        spend: 99.0,
        created_at: 99,
        updated_at: 20,
        budget_reset_at: Some(2_000),
        ..rec.clone()
    };
    assert!(store.update_record(Team, &changed).await.unwrap());
    let got = store.get_record(Team, &id).await.unwrap().unwrap();
    assert_eq!(got.doc, changed.doc);
    assert_eq!(
        (got.spend, got.created_at),
        (0.5, 10),
        "update keeps spend and creation"
    );
    assert_eq!((got.updated_at, got.budget_reset_at), (20, Some(2_000)));
    let ghost = Record {
        id: "no-such-team".into(),
        ..changed.clone()
    };
    assert!(!store.update_record(Team, &ghost).await.unwrap());

    let charges = (0..20).map(|_| {
        let (store, id) = (store.clone(), id.clone());
        tokio::spawn(async move { store.add_record_spend(Team, &id, 0.25).await })
    });
    for c in charges.collect::<Vec<_>>() {
        c.await.unwrap().unwrap();
    }
    let got = store.get_record(Team, &id).await.unwrap().unwrap();
    assert!(
        (got.spend - 5.5).abs() < 1e-9,
        "concurrent charges add up: {}",
        got.spend
    );
    store
        .add_record_spend(Team, "no-such-team", 1.0)
        .await
        .unwrap();

    assert!(!store
        .reset_record_budget(Team, &id, 1_999, 3_000)
        .await
        .unwrap());
    assert!(store
        .reset_record_budget(Team, &id, 2_000, 3_000)
        .await
        .unwrap());
    assert!(
        !store
            .reset_record_budget(Team, &id, 2_000, 3_000)
            .await
            .unwrap(),
        "a second instance's reset of the same period does nothing"
    );
    let got = store.get_record(Team, &id).await.unwrap().unwrap();
    assert_eq!((got.spend, got.budget_reset_at), (0.0, Some(3_000)));

    let first = store.list_records(Team, 1, 1000).await.unwrap();
    assert!(first.records.iter().any(|r| r.id == id));
    assert!(first.total as usize >= first.records.len());
    let one = store.list_records(Team, 1, 1).await.unwrap();
    assert!(one.records.len() == 1 && one.total >= 1);

    assert!(store.delete_record(Team, &id).await.unwrap());
    assert!(!store.delete_record(Team, &id).await.unwrap());
    assert_eq!(store.get_record(Team, &id).await.unwrap(), None);
    kinds_are_apart(&store, &rec).await;
}

/// A record of another kind (a budget object) with a team's id is another record: kept,
/// listed and deleted apart from the team.
async fn kinds_are_apart(store: &Arc<dyn crate::RecordStore>, team: &crate::Record) {
    use crate::RecordKind::{Budget, Team};
    let budget = crate::Record {
        doc: serde_json::json!({"max_budget": 5.0, "soft_budget": 4.0}),
        spend: 0.0,
        budget_reset_at: None,
        created_at: 30,
        updated_at: 30,
        ..team.clone()
    };
    store.insert_record(Team, team).await.unwrap();
    store.insert_record(Budget, &budget).await.unwrap();
    assert_eq!(
        store.get_record(Budget, &team.id).await.unwrap(),
        Some(budget.clone())
    );
    let budgets = store.list_records(Budget, 1, 1000).await.unwrap();
    assert!(budgets.records.contains(&budget));
    let teams = store.list_records(Team, 1, 1000).await.unwrap();
    assert!(!teams.records.contains(&budget));
    assert!(store.delete_record(Budget, &team.id).await.unwrap());
    assert_eq!(
        store
            .get_record(Team, &team.id)
            .await
            .unwrap()
            .map(|r| r.doc),
        Some(team.doc.clone()),
        "deleting the budget leaves the team"
    );
    assert!(store.delete_record(Team, &team.id).await.unwrap());
}
