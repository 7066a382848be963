//! What the backend tests share: a database per test (a SQLite file, or a PostgreSQL schema),
//! spend records at fixed times, a key, and `on_both!`, which runs a test body on each backend.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use llmgate_auth::{generate_secret, hash_key, KeyStore};
use llmgate_core::VirtualKey;
use llmgate_metering::{SpendRecord, Tokens};
use llmgate_store::{Store, StoreOptions};
use sqlx::{Connection, Executor, PgConnection};

/// The PostgreSQL database the tests use: `LLMGATE_TEST_PG_URL`, else the machine's `test`.
pub fn pg_url() -> String {
    std::env::var("LLMGATE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

pub fn unique() -> String {
    hash_key(&generate_secret())[..16].to_string()
}

/// A database for one test: a SQLite file, or a PostgreSQL schema; removed when dropped.
pub enum TestDb {
    Sqlite(PathBuf),
    Postgres(String),
}

impl TestDb {
    pub async fn sqlite() -> (TestDb, Store) {
        let path = std::env::temp_dir().join(format!("llmgate-spend-{}.db", unique()));
        let store = Store::open_sqlite(&path, &StoreOptions::new())
            .await
            .unwrap();
        (TestDb::Sqlite(path), store)
    }

    pub async fn postgres() -> Option<(TestDb, Store)> {
        let pg_url = pg_url();
        let conn = tokio::time::timeout(Duration::from_secs(1), PgConnection::connect(&pg_url));
        let Ok(Ok(mut conn)) = conn.await else {
            // `.ci/run` sets it when it has the machine's backends running: a skip there is a failure.
            assert!(
                !std::env::var("LLMGATE_REQUIRE_BACKENDS")
                    .unwrap_or_default()
                    .contains("postgres"),
                "postgres is not reachable and LLMGATE_REQUIRE_BACKENDS requires it"
            );
            eprintln!("PostgreSQL not reachable at {pg_url}: skipping");
            return None;
        };
        let schema = format!("spend_{}", unique());
        conn.execute(format!("CREATE SCHEMA {schema}").as_str())
            .await
            .unwrap();
        let url = format!("{pg_url}?options=-c%20search_path%3D{schema}");
        let store = Store::open(&url, &StoreOptions::new()).await.unwrap();
        Some((TestDb::Postgres(schema), store))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match self {
            TestDb::Sqlite(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut p = path.clone().into_os_string();
                    p.push(suffix);
                    let _ = std::fs::remove_file(p);
                }
            }
            TestDb::Postgres(schema) => {
                let sql = format!("DROP SCHEMA {schema} CASCADE");
                // Drop runs outside the test's runtime: a thread with its own.
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async {
                        if let Ok(mut c) = PgConnection::connect(&pg_url()).await {
                            let _ = c.execute(sql.as_str()).await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

/// 2026-03-10T12:00:00Z plus `minutes`.
pub fn at(minutes: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_773_144_000 + minutes * 60)
}

pub fn record(
    id: &str,
    key: Option<&str>,
    group: &str,
    cost: Option<f64>,
    minute: u64,
) -> SpendRecord {
    SpendRecord {
        request_id: Arc::from(id),
        key_token: key.map(str::to_owned),
        key_alias: key.map(|_| "team-a".to_owned()),
        team_id: None,
        user_id: Some("u1".to_owned()),
        end_user: None,
        requested_model: group.to_owned(),
        model_group: Some(Arc::from(group)),
        deployment: Some(Arc::from(format!("{group}-0"))),
        provider: Some("openai".to_owned()),
        upstream_model: Some(Arc::from("gpt-x")),
        endpoint: "/v1/chat/completions",
        tokens: Tokens {
            prompt: 100,
            completion: 20,
            cache_read: 10,
            cache_creation: 0,
            reasoning: 5,
        },
        cost,
        status: 200,
        outcome: llmgate_metering::Outcome::Success,
        error_class: None,
        usage_estimated: false,
        stream: false,
        cache_hit: false,
        attempts: 1,
        fallbacks: 0,
        start_time: at(minute),
        end_time: at(minute) + Duration::from_millis(250),
        latency: Duration::from_millis(250),
        time_to_first_token: None,
        tags: vec!["prod".to_owned()],
        error_message: None,
        messages: None,
        response: None,
    }
}

pub async fn new_key(store: &Store) -> String {
    let token = hash_key(&generate_secret());
    store
        .insert(&VirtualKey {
            token: token.clone(),
            key_name: "sk-...test".into(),
            key_alias: Some(format!("alias-{}", &token[..8])),
            ..VirtualKey::default()
        })
        .await
        .unwrap();
    token
}

/// Runs each named test body (`async fn(Store)`) on a SQLite file and on PostgreSQL (which
/// prints a line and passes when PostgreSQL is not there).
#[macro_export]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let (_db, store) = super::TestDb::sqlite().await;
                    super::$name(store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some((_db, store)) = super::TestDb::postgres().await else { return };
                    super::$name(store.clone()).await;
                    store.close().await;
                }
            )*
        }
    };
}
