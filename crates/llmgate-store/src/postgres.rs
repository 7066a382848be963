//! PostgreSQL: for several gateway instances sharing keys. A change made through one instance
//! reaches the others' key caches through `LISTEN`/`NOTIFY` on the channel `llmgate_keys`.

use std::str::FromStr;
use std::time::Duration;

use futures_util::stream;
use llmgate_auth::{Invalidation, Invalidations, StoreError};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::mpsc;

use crate::sql::{unavailable, Embedded};
use crate::{OpenError, StoreOptions};

const MIGRATIONS: Embedded = Embedded(&[
    (
        1,
        "keys",
        include_str!("../migrations/postgres/0001_keys.sql"),
    ),
    (
        2,
        "spend logs",
        include_str!("../migrations/postgres/0002_spend_logs.sql"),
    ),
    (
        3,
        "spend outcome",
        include_str!("../migrations/postgres/0003_spend_outcome.sql"),
    ),
    (
        4,
        "budget ledger",
        include_str!("../migrations/postgres/0004_budget_ledger.sql"),
    ),
    (
        5,
        "spend error class",
        include_str!("../migrations/postgres/0005_spend_error_class.sql"),
    ),
    (
        6,
        "deployment usage",
        include_str!("../migrations/postgres/0006_deployment_usage.sql"),
    ),
    (
        7,
        "request log",
        include_str!("../migrations/postgres/0007_request_log.sql"),
    ),
    (
        8,
        "stored responses",
        include_str!("../migrations/postgres/0008_responses.sql"),
    ),
    (
        9,
        "teams",
        include_str!("../migrations/postgres/0009_records.sql"),
    ),
    (
        10,
        "key extras",
        include_str!("../migrations/postgres/0010_key_extras.sql"),
    ),
    (
        11,
        "spend end user",
        include_str!("../migrations/postgres/0011_spend_end_user.sql"),
    ),
]);

/// The `NOTIFY` channel; the payload is the changed key's token.
pub(crate) const CHANNEL: &str = "llmgate_keys";

/// Invalidations buffered between the listener and the key cache.
const BACKLOG: usize = 1024;

/// How long the listener waits before reconnecting after an error.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// Keys in PostgreSQL.
#[derive(Debug, Clone)]
pub(crate) struct PgKeys {
    pub(crate) pool: PgPool,
}

impl PgKeys {
    const BACKEND: &'static str = "postgres";

    pub(crate) async fn open(url: &str, options: &StoreOptions) -> Result<Self, OpenError> {
        let connect = PgConnectOptions::from_str(url).map_err(|e| OpenError::InvalidUrl {
            url: crate::redact(url),
            reason: e.to_string(),
        })?;
        let target = format!(
            "postgres://{}:{}/{}",
            connect.get_host(),
            connect.get_port(),
            connect.get_database().unwrap_or_default()
        );
        // One connection first, so a failure says why (refused, authentication, no such
        // database) instead of the pool's "timed out"; it also runs the migrations.
        let mut conn = tokio::time::timeout(options.connect_timeout, connect.connect())
            .await
            .map_err(|_| OpenError::timeout(&target, options.connect_timeout))?
            .map_err(|e| OpenError::Connect {
                target: target.clone(),
                reason: e.to_string(),
            })?;
        let migrated = match MIGRATIONS.migrator().await {
            // Several instances starting at once: sqlx holds an advisory lock while migrating.
            Ok(m) => m.run(&mut conn).await,
            Err(e) => Err(e),
        };
        migrated.map_err(|e| OpenError::migrate(&target, e))?;
        let _ = conn.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(options.pool_limit)
            .acquire_timeout(options.connect_timeout)
            .connect_lazy_with(connect);
        Ok(PgKeys { pool })
    }

    async fn notify(&self, token: &str) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(token)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(unavailable)
    }

    /// Spawns the listener task on the current runtime; it ends when the stream is dropped or
    /// the pool is closed.
    fn listen(&self) -> Option<Invalidations> {
        let (tx, rx) = mpsc::channel(BACKLOG);
        tokio::spawn(listen_loop(self.pool.clone(), tx));
        Some(Box::pin(stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|i| (i, rx))
        })))
    }
}

crate::keys::key_store_impl!(PgKeys, sqlx::Postgres);
crate::activity::activity_impl!(PgKeys);
crate::spend_groups::spend_groups_impl!(PgKeys);
crate::spend_report::spend_report_impl!(PgKeys);
crate::daily_activity::daily_activity_impl!(PgKeys);
crate::spend::spend_impl!(PgKeys, sqlx::Postgres, insert_new_by_savepoint);
crate::usage::usage_impl!(PgKeys);
crate::responses::responses_impl!(PgKeys);
crate::records::record_store_impl!(PgKeys, sqlx::Postgres);

/// Forwards notifications until the receiver is gone. Each time it starts listening, the first
/// time included, it sends [`Invalidation::All`]: keys cached before then may have missed a
/// notification (sent before the first LISTEN, or while it was reconnecting).
async fn listen_loop(pool: PgPool, tx: mpsc::Sender<Invalidation>) {
    loop {
        if pool.is_closed() || tx.is_closed() {
            return;
        }
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "key invalidation listener cannot connect; retrying");
                tokio::time::sleep(RECONNECT_DELAY).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::warn!(error = %e, "key invalidation listener cannot LISTEN; retrying");
            tokio::time::sleep(RECONNECT_DELAY).await;
            continue;
        }
        if tx.send(Invalidation::All).await.is_err() {
            return;
        }
        loop {
            let received = tokio::select! {
                r = listener.try_recv() => r,
                () = tx.closed() => return,
            };
            let next = match received {
                Ok(Some(n)) => Invalidation::Token(n.payload().to_string()),
                // Lost and reconnected at once (the listener re-LISTENs itself).
                Ok(None) => {
                    tracing::warn!("key invalidation listener reconnected; forgetting all keys");
                    Invalidation::All
                }
                Err(sqlx::Error::PoolClosed) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "key invalidation listener failed; reconnecting");
                    tokio::time::sleep(RECONNECT_DELAY).await;
                    break;
                }
            };
            if tx.send(next).await.is_err() {
                return;
            }
        }
    }
}
