//! The PostgreSQL budget ledger keeps the ledger rules, and holds a budget exactly when two
//! instances (two pools) reserve against it at once. Uses the machine's PostgreSQL.

#![allow(clippy::unwrap_used, reason = "test helpers")]

use std::sync::Arc;

use llmgate_auth::{Admission, Budget, BudgetLedger};
use llmgate_store::{Store, StoreOptions};

/// The PostgreSQL database: `LLMGATE_TEST_PG_URL`, else the machine's `test` (a branch that adds
/// a migration runs its tests on a database of its own).
static PG_URL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    std::env::var("LLMGATE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
});

fn run_id() -> String {
    format!(
        "ledger-test-{}-{}:",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

async fn postgres_up() -> bool {
    let up = tokio::time::timeout(
        std::time::Duration::from_secs(1),
        tokio::net::TcpStream::connect("127.0.0.1:5432"),
    )
    .await
    .is_ok_and(|c| c.is_ok());
    if !up {
        // `.ci/run` sets it when it has the machine's backends running: a skip there is a failure.
        assert!(
            !std::env::var("LLMGATE_REQUIRE_BACKENDS")
                .unwrap_or_default()
                .contains("postgres"),
            "postgres is not reachable and LLMGATE_REQUIRE_BACKENDS requires it"
        );
        eprintln!("PostgreSQL not reachable at {}: skipping", *PG_URL);
    }
    up
}

async fn ledger() -> Arc<dyn BudgetLedger> {
    let store = Store::open(&PG_URL, &StoreOptions::new()).await.unwrap();
    Arc::new(store.budget_ledger().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_ledger_keeps_the_ledger_rules() {
    if !postgres_up().await {
        return;
    }
    let ledger = ledger().await;
    llmgate_auth::ledger_conformance(ledger.as_ref(), &run_id()).await;
}

/// 50 reservations of 0.1 against a budget of 1.0, from two instances at once: exactly 10 are
/// admitted; once 10 settle at 0.1 each, none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_reserving_at_once_are_held_to_the_budget() {
    if !postgres_up().await {
        return;
    }
    let (a, b) = (ledger().await, ledger().await);
    let budget = Budget {
        id: format!("{}k", run_id()),
        max: 1.0,
        known: 0.0,
        expires_at: i64::from(i32::MAX),
    };
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let ledger = if i % 2 == 0 { a.clone() } else { b.clone() };
            let budget = budget.clone();
            tokio::spawn(async move { ledger.reserve(&[budget], 0.1).await.unwrap() })
        })
        .collect();
    let mut admitted = 0;
    for t in tasks {
        if t.await.unwrap() == Admission::Admitted {
            admitted += 1;
        }
    }
    // 0.1 ten times is 0.9999999999999999 in binary floating point: the tenth still fits.
    assert!((10..=11).contains(&admitted), "{admitted}");
    for _ in 0..admitted {
        a.settle(std::slice::from_ref(&budget), 0.1, 0.1)
            .await
            .unwrap();
    }
    assert!(matches!(
        b.reserve(std::slice::from_ref(&budget), 0.0).await.unwrap(),
        Admission::Denied { index: 0, .. }
    ));
}
