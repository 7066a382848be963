//! SQLite: the embedded default. One file (`llmgate.db` beside the config), in WAL mode so
//! readers never wait for the writer, owned by one gateway instance.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use llmgate_auth::{Invalidations, StoreError};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::sql::Embedded;
use crate::{OpenError, StoreOptions};

const MIGRATIONS: Embedded = Embedded(&[
    (
        1,
        "keys",
        include_str!("../migrations/sqlite/0001_keys.sql"),
    ),
    (
        2,
        "spend logs",
        include_str!("../migrations/sqlite/0002_spend_logs.sql"),
    ),
    (
        3,
        "spend outcome",
        include_str!("../migrations/sqlite/0003_spend_outcome.sql"),
    ),
    // Version 4 (the budget ledger) is PostgreSQL's only: one instance keeps budgets in memory.
    (
        5,
        "spend error class",
        include_str!("../migrations/sqlite/0005_spend_error_class.sql"),
    ),
    (
        6,
        "deployment usage",
        include_str!("../migrations/sqlite/0006_deployment_usage.sql"),
    ),
    (
        7,
        "request log",
        include_str!("../migrations/sqlite/0007_request_log.sql"),
    ),
    (
        8,
        "stored responses",
        include_str!("../migrations/sqlite/0008_responses.sql"),
    ),
    (
        9,
        "teams",
        include_str!("../migrations/sqlite/0009_records.sql"),
    ),
    (
        10,
        "key extras",
        include_str!("../migrations/sqlite/0010_key_extras.sql"),
    ),
    (
        11,
        "spend end user",
        include_str!("../migrations/sqlite/0011_spend_end_user.sql"),
    ),
]);

/// How long a writer waits for another writer's transaction before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Keys in a SQLite file.
#[derive(Debug, Clone)]
pub(crate) struct SqliteKeys {
    pub(crate) pool: SqlitePool,
}

impl SqliteKeys {
    const BACKEND: &'static str = "sqlite";

    pub(crate) async fn open_url(url: &str, options: &StoreOptions) -> Result<Self, OpenError> {
        let connect = SqliteConnectOptions::from_str(url).map_err(|e| OpenError::InvalidUrl {
            url: crate::redact(url),
            reason: e.to_string(),
        })?;
        // `sqlite::memory:` (and `mode=memory`): every connection would otherwise be a database
        // of its own, or share one through SQLite's table-locking shared cache.
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        Self::open(connect, in_memory, options).await
    }

    pub(crate) async fn open_path(path: &Path, options: &StoreOptions) -> Result<Self, OpenError> {
        Self::open(SqliteConnectOptions::new().filename(path), false, options).await
    }

    async fn open(
        connect: SqliteConnectOptions,
        in_memory: bool,
        options: &StoreOptions,
    ) -> Result<Self, OpenError> {
        let target = format!("sqlite://{}", connect.get_filename().display());
        let connect = connect
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // With WAL, NORMAL loses at most the last transactions on power loss, never
            // corrupts the file.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT);
        let mut pool = SqlitePoolOptions::new()
            .max_connections(options.pool_limit)
            .acquire_timeout(options.connect_timeout);
        if in_memory {
            pool = pool
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
        }
        let pool = tokio::time::timeout(options.connect_timeout, pool.connect_with(connect))
            .await
            .map_err(|_| OpenError::timeout(&target, options.connect_timeout))?
            .map_err(|e| OpenError::Connect {
                target: target.clone(),
                reason: e.to_string(),
            })?;
        let migrator = MIGRATIONS.migrator().await;
        let migrated = match migrator {
            Ok(m) => m.run(&pool).await,
            Err(e) => Err(e),
        };
        migrated.map_err(|e| OpenError::migrate(&target, e))?;
        Ok(SqliteKeys { pool })
    }

    async fn notify(&self, _token: &str) -> Result<(), StoreError> {
        // One instance owns the file: nobody else to tell.
        Ok(())
    }

    fn listen(&self) -> Option<Invalidations> {
        None
    }
}

crate::keys::key_store_impl!(SqliteKeys, sqlx::Sqlite);
crate::activity::activity_impl!(SqliteKeys);
crate::spend_groups::spend_groups_impl!(SqliteKeys);
crate::spend_report::spend_report_impl!(SqliteKeys);
crate::daily_activity::daily_activity_impl!(SqliteKeys);
crate::spend::spend_impl!(SqliteKeys, sqlx::Sqlite, insert_new_by_rollback);
crate::usage::usage_impl!(SqliteKeys);
crate::responses::responses_impl!(SqliteKeys);
crate::records::record_store_impl!(SqliteKeys, sqlx::Sqlite);
