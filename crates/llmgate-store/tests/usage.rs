//! Daily deployment usage (`rpd`) in the store: what each instance adds is summed per day, read
//! back whole, and days over a week old are forgotten. On SQLite, and on the machine's
//! PostgreSQL with two stores standing for two instances.

#![allow(clippy::unwrap_used, reason = "test helpers")]

use llmgate_store::{Store, StoreOptions};

/// The PostgreSQL database: `LLMGATE_TEST_PG_URL`, else the machine's `test` (a branch that adds
/// a migration runs its tests on a database of its own).
static PG_URL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    std::env::var("LLMGATE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
});

fn unique(name: &str) -> String {
    format!(
        "{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

fn total(rows: &[(String, u64)], id: &str) -> u64 {
    rows.iter().find(|(d, _)| d == id).map_or(0, |(_, n)| *n)
}

async fn sums_and_forgets(a: &Store, b: &Store) {
    let (x, y) = (unique("dep-x"), unique("dep-y"));
    // Long before any real day (about 20,800 in 2026), so forgetting old days here never
    // touches a running gateway's rows on the shared database.
    let day = 100 + i64::from(std::process::id() % 1000) * 20;
    let rows = a
        .sync_deployment_usage(day, &[(x.clone(), 3)])
        .await
        .unwrap();
    assert_eq!(total(&rows, &x), 3);
    let rows = b
        .sync_deployment_usage(day, &[(x.clone(), 2), (y.clone(), 1)])
        .await
        .unwrap();
    assert_eq!((total(&rows, &x), total(&rows, &y)), (5, 1));
    // Reading alone changes nothing.
    let rows = a.sync_deployment_usage(day, &[]).await.unwrap();
    assert_eq!((total(&rows, &x), total(&rows, &y)), (5, 1));
    // Another day starts at zero; a week later, this day is gone.
    assert_eq!(
        total(&a.sync_deployment_usage(day + 1, &[]).await.unwrap(), &x),
        0
    );
    a.sync_deployment_usage(day + 8, &[]).await.unwrap();
    assert_eq!(
        total(&a.sync_deployment_usage(day, &[]).await.unwrap(), &x),
        0
    );
}

#[tokio::test]
async fn sqlite_keeps_daily_usage() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(unique("usage"));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open_sqlite(&dir.join("u.db"), &StoreOptions::new())
        .await
        .unwrap();
    sums_and_forgets(&store, &store).await;
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sums_daily_usage_across_instances() {
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
        return;
    }
    let a = Store::open(&PG_URL, &StoreOptions::new()).await.unwrap();
    let b = Store::open(&PG_URL, &StoreOptions::new()).await.unwrap();
    sums_and_forgets(&a, &b).await;
}
