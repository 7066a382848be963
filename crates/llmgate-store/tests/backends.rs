//! Both backends against the shared KeyStore suite, and what only a real database shows:
//! migrations, start-up failures, invalidation between instances, failures after start.
//!
//! The PostgreSQL tests use the machine's server at `postgres://postgres@127.0.0.1:5432/test`
//! and print a line and return when it is not there.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use llmgate_auth::{conformance, generate_secret, hash_key, Invalidation, KeyStore, StoreError};
use llmgate_core::VirtualKey;
use llmgate_store::{OpenError, Store, StoreOptions};
use sqlx::{Connection, Executor, PgConnection};

/// The PostgreSQL database: `LLMGATE_TEST_PG_URL`, else the machine's `test` (a branch that adds
/// a migration runs its tests on a database of its own).
static PG_URL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    std::env::var("LLMGATE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
});

fn unique() -> String {
    hash_key(&generate_secret())[..16].to_string()
}

/// A SQLite file in the temp dir, removed (with its WAL files) when dropped.
struct TempDb(PathBuf);

impl TempDb {
    fn new() -> Self {
        TempDb(std::env::temp_dir().join(format!("llmgate-store-{}.db", unique())))
    }

    fn url(&self) -> String {
        format!("sqlite://{}", self.0.display())
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

async fn pg_admin() -> Option<PgConnection> {
    match tokio::time::timeout(Duration::from_secs(1), PgConnection::connect(&PG_URL)).await {
        Ok(Ok(conn)) => Some(conn),
        _ => {
            // `.ci/run` sets it when it has the machine's backends running: a skip there is a failure.
            assert!(
                !std::env::var("LLMGATE_REQUIRE_BACKENDS")
                    .unwrap_or_default()
                    .contains("postgres"),
                "postgres is not reachable and LLMGATE_REQUIRE_BACKENDS requires it"
            );
            eprintln!("PostgreSQL not reachable at {}: skipping", *PG_URL);
            None
        }
    }
}

/// The shared test database, opened as a store; `None` (after a line) without PostgreSQL.
async fn pg_store() -> Option<Store> {
    pg_admin().await?;
    Some(Store::open(&PG_URL, &StoreOptions::new()).await.unwrap())
}

/// A database of its own, for tests that drop it, migrate it from scratch or kill its
/// connections. Dropped by [`FreshDb::drop_db`].
struct FreshDb {
    admin: PgConnection,
    name: String,
}

impl FreshDb {
    async fn new() -> Option<Self> {
        let mut admin = pg_admin().await?;
        let name = format!("llmgate_store_{}", unique());
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        Some(FreshDb { admin, name })
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }

    async fn drop_db(mut self) {
        self.admin
            .execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name).as_str())
            .await
            .unwrap();
    }
}

fn key() -> VirtualKey {
    let token = hash_key(&generate_secret());
    VirtualKey {
        key_name: format!("sk-...{}", &token[..4]),
        token,
        created_at: 1_000,
        updated_at: 1_000,
        ..VirtualKey::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_file_passes_the_suite() {
    let db = TempDb::new();
    let store = Store::open(&db.url(), &StoreOptions::new()).await.unwrap();
    assert_eq!(store.backend(), "sqlite");
    assert!(store.subscribe().is_none(), "a file has one instance");
    conformance::run(Arc::new(store.clone())).await;
    store.close().await;
    assert!(db.0.exists(), "the file was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_in_memory_passes_the_suite() {
    let store = Store::open("sqlite::memory:", &StoreOptions::new())
        .await
        .unwrap();
    conformance::run(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_passes_the_suite() {
    let Some(store) = pg_store().await else {
        return;
    };
    assert_eq!(store.backend(), "postgres");
    conformance::run(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn teams_pass_the_record_suite_on_sqlite_and_postgres() {
    let db = TempDb::new();
    let store = Store::open(&db.url(), &StoreOptions::new()).await.unwrap();
    conformance::run_records(Arc::new(store)).await;
    if let Some(store) = pg_store().await {
        conformance::run_records(Arc::new(store)).await;
    }
}

#[tokio::test]
async fn sqlite_opens_in_wal_mode_and_migrates_once() {
    let db = TempDb::new();
    let first = Store::open_sqlite(&db.0, &StoreOptions::new())
        .await
        .unwrap();
    let k = key();
    first.insert(&k).await.unwrap();
    first.close().await;

    // Reopening keeps the data and applies nothing twice.
    let again = Store::open(&db.url(), &StoreOptions::new()).await.unwrap();
    assert_eq!(again.get(&k.token).await.unwrap(), Some(k));
    again.close().await;

    let mut conn = sqlx::SqliteConnection::connect(&db.url()).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        applied, 10,
        "keys, spend logs, spend outcome, spend error class, deployment usage, request log, stored responses, teams, key extras, spend end user"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_migrations_are_idempotent_and_safe_to_race() {
    let Some(db) = FreshDb::new().await else {
        return;
    };
    let url = db.url();
    let opts = StoreOptions::new().pool_limit(2);
    // Two instances starting at once on an empty database, then a restart.
    let (a, b) = tokio::join!(Store::open(&url, &opts), Store::open(&url, &opts));
    let (a, b) = (a.unwrap(), b.unwrap());
    let k = key();
    a.insert(&k).await.unwrap();
    assert_eq!(b.get(&k.token).await.unwrap(), Some(k.clone()));
    let c = Store::open(&url, &opts).await.unwrap();
    assert_eq!(c.get(&k.token).await.unwrap(), Some(k));
    for s in [a, b, c] {
        s.close().await;
    }
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_spend_from_two_instances_adds_exactly() {
    let Some(a) = pg_store().await else { return };
    let b = Store::open(&PG_URL, &StoreOptions::new()).await.unwrap();
    let k = key();
    a.insert(&k).await.unwrap();
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            let token = k.token.clone();
            tokio::spawn(async move { store.add_spend(&token, "gpt-4o", 0.25).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let got = a.get(&k.token).await.unwrap().unwrap();
    assert_eq!(got.spend, 25.0);
    assert_eq!(got.model_spend.get("gpt-4o"), Some(&25.0));
    a.delete(&[k.token]).await.unwrap();
}

/// Two instances (two pools) of one store racing, 50 tasks at once, to reset one key's due
/// budget period: exactly one reset happens (docs/keys.md, "Schema and migrations").
async fn one_reset_wins_the_race(a: Store, b: Store) {
    let mut k = key();
    k.budget_duration = Some(3_600);
    k.budget_reset_at = Some(2_000);
    a.insert(&k).await.unwrap();
    a.add_spend(&k.token, "gpt-4o", 1.5).await.unwrap();
    let start = Arc::new(tokio::sync::Barrier::new(50));
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            let (token, start) = (k.token.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                store.reset_budget(&token, 2_500, 5_600).await
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() {
            won += 1;
        }
    }
    assert_eq!(won, 1, "{}: resets of one period", a.backend());
    let got = b.get(&k.token).await.unwrap().unwrap();
    assert_eq!(got.spend, 0.0);
    assert!(got.model_spend.is_empty(), "{:?}", got.model_spend);
    assert_eq!(got.budget_reset_at, Some(5_600));
    a.delete(&[k.token]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_budget_reset_race_has_one_winner() {
    let db = TempDb::new();
    let a = Store::open(&db.url(), &StoreOptions::new()).await.unwrap();
    let b = Store::open(&db.url(), &StoreOptions::new()).await.unwrap();
    one_reset_wins_the_race(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_budget_reset_race_has_one_winner() {
    let Some(a) = pg_store().await else { return };
    let b = Store::open(&PG_URL, &StoreOptions::new()).await.unwrap();
    one_reset_wins_the_race(a, b).await;
}

/// Waits for `want` on `stream`, skipping other tests' tokens on the shared channel.
async fn next_matching(
    stream: &mut llmgate_auth::Invalidations,
    want: &Invalidation,
    within: Duration,
) -> bool {
    tokio::time::timeout(within, async {
        while let Some(i) = stream.next().await {
            if &i == want {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_publish_reaches_another_instance_within_a_second() {
    let Some(a) = pg_store().await else { return };
    let b = Store::open(&PG_URL, &StoreOptions::new()).await.unwrap();
    let mut changes = b.subscribe().expect("postgres is shared");

    // The listener connects in the background: wait until it hears a first token.
    let ready = Invalidation::Token(format!("warm-up-{}", unique()));
    let start = Instant::now();
    loop {
        let Invalidation::Token(t) = &ready else {
            unreachable!()
        };
        a.publish(t).await.unwrap();
        if next_matching(&mut changes, &ready, Duration::from_millis(200)).await {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "listener never ready"
        );
    }

    let token = hash_key(&generate_secret());
    let sent = Instant::now();
    a.publish(&token).await.unwrap();
    assert!(
        next_matching(
            &mut changes,
            &Invalidation::Token(token),
            Duration::from_secs(1)
        )
        .await,
        "no invalidation within 1 s"
    );
    eprintln!("invalidation delivered in {:?}", sent.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_listener_reconnects_and_asks_to_forget_everything() {
    let Some(mut db) = FreshDb::new().await else {
        return;
    };
    let store = Store::open(&db.url(), &StoreOptions::new()).await.unwrap();
    let mut changes = store.subscribe().unwrap();
    let ready = Invalidation::Token("ready".into());
    for _ in 0..50 {
        store.publish("ready").await.unwrap();
        if next_matching(&mut changes, &ready, Duration::from_millis(200)).await {
            break;
        }
    }

    // Kill the listener's connection (only this database's): it comes back with `All`.
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND query LIKE 'LISTEN%'",
    )
    .bind(&db.name)
    .fetch_all(&mut db.admin)
    .await
    .unwrap();
    assert_eq!(killed, vec![true]);
    assert!(next_matching(&mut changes, &Invalidation::All, Duration::from_secs(5)).await);

    // And it still hears changes afterwards.
    let after = Invalidation::Token("after".into());
    let mut heard = false;
    for _ in 0..10 {
        store.publish("after").await.unwrap();
        if next_matching(&mut changes, &after, Duration::from_millis(500)).await {
            heard = true;
            break;
        }
    }
    assert!(heard);
    drop(changes);
    store.close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn unreachable_postgres_fails_fast_without_the_password() {
    let start = Instant::now();
    let err = Store::open(
        "postgres://postgres:hunter2@127.0.0.1:1/test",
        &StoreOptions::new(),
    )
    .await
    .unwrap_err();
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(matches!(err, OpenError::Connect { .. }), "{msg}");
    assert!(msg.contains("127.0.0.1:1/test"), "{msg}");
    assert!(!msg.contains("hunter2"), "{msg}");
    assert!(start.elapsed() < Duration::from_secs(2), "{msg}");
}

#[tokio::test]
async fn a_database_that_never_answers_times_out() {
    // Accepts the connection, then says nothing.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let start = Instant::now();
    let opts = StoreOptions::new().connect_timeout(Duration::from_millis(300));
    let err = Store::open(&format!("postgres://u:pw@127.0.0.1:{port}/db"), &opts)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(start.elapsed() < Duration::from_secs(2), "{msg}");
    assert_eq!(
        msg,
        format!(
            "cannot connect to the key database at postgres://127.0.0.1:{port}/db: \
             no answer within 300ms"
        )
    );
    hold.abort();
}

#[tokio::test]
async fn other_schemes_are_refused() {
    let err = Store::open("mysql://root:pw@localhost/keys", &StoreOptions::new())
        .await
        .unwrap_err();
    assert!(matches!(err, OpenError::UnsupportedUrl { .. }));
    assert!(!err.to_string().contains("pw"), "{err}");
}

#[tokio::test]
async fn a_closed_sqlite_store_is_unavailable() {
    let db = TempDb::new();
    let store = Store::open(&db.url(), &StoreOptions::new()).await.unwrap();
    store.close().await;
    assert!(matches!(
        store.get("x").await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        store.add_spend("x", "m", 1.0).await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(store.ping().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_postgres_database_is_unavailable() {
    let Some(db) = FreshDb::new().await else {
        return;
    };
    let opts = StoreOptions::new().connect_timeout(Duration::from_secs(1));
    let store = Store::open(&db.url(), &opts).await.unwrap();
    let k = key();
    store.insert(&k).await.unwrap();
    db.drop_db().await;
    for _ in 0..2 {
        let got = store.get(&k.token).await;
        assert!(matches!(got, Err(StoreError::Unavailable(_))), "{got:?}");
    }
    assert!(store.ping().await.is_err());
    assert!(matches!(
        store.insert(&key()).await,
        Err(StoreError::Unavailable(_))
    ));
}
