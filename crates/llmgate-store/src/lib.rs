//! llmgate's SQL backends: [`Store`] keeps virtual keys ([`KeyStore`]) in SQLite, the embedded
//! default, or in PostgreSQL, for several gateway instances sharing keys.
//!
//! [`Store::open`] picks the backend by the URL's scheme, connects (giving up after
//! [`StoreOptions::connect_timeout`], with an [`OpenError`] naming the database, never its
//! password), runs the embedded migrations, and answers a store ready to use:
//!
//! | URL | backend |
//! |---|---|
//! | `sqlite://llmgate.db`, `sqlite:llmgate.db`, `sqlite::memory:` | SQLite (file created if missing, WAL) |
//! | `postgres://user:pw@host:5432/db`, `postgresql://...` | PostgreSQL (pool of [`StoreOptions::pool_limit`]) |
//!
//! A SQLite file belongs to one gateway instance; several instances need PostgreSQL, whose
//! [`KeyStore::publish`]/[`KeyStore::subscribe`] carry invalidations between them over
//! `LISTEN`/`NOTIFY`. Both backends share one schema shape (`llmgate_keys`,
//! `llmgate_key_model_spend`; times as BIGINT Unix seconds, lists and maps as JSON text) and
//! pass `llmgate_auth::conformance`. See `docs/keys.md`.
//!
//! The same database keeps the spend log: [`Store`] is the metering layer's [`SpendSink`]
//! (each batch of records stored and charged to its keys in one transaction, idempotent per
//! request id) and answers the spend endpoints' queries ([`Store::spend_logs`],
//! [`Store::spend_by_model`], [`Store::spend_by_key`], [`Store::spend_total`]). See
//! `docs/cost-tracking.md`.
//!
//! ```
//! use llmgate_auth::KeyStore;
//! use llmgate_store::{Store, StoreOptions};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Store::open("sqlite::memory:", &StoreOptions::new()).await?;
//! assert_eq!(store.backend(), "sqlite");
//! assert!(store.get("no-such-token").await?.is_none());
//!
//! // The auth layer takes it as a shared trait object.
//! let _keys: std::sync::Arc<dyn KeyStore> = std::sync::Arc::new(store);
//! # Ok(()) }
//! ```

use std::path::Path;
use std::time::Duration;

use llmgate_auth::{Invalidations, KeyFilter, KeyStore, StoreError};
use llmgate_core::{BoxError, VirtualKey};
use llmgate_metering::{SpendRecord, SpendSink};

mod activity;
mod daily_activity;
mod database;
mod end_users;
pub mod import;
mod keys;
mod ledger;
mod postgres;
mod records;
mod responses;
mod spend;
mod spend_groups;
mod spend_report;
mod sql;
mod sqlite;
mod usage;

pub use activity::{Activity, ActivityQuery, ActivityTop, ActivityTotals};
pub use daily_activity::{ActivityFilter, ActivityRow};
pub use database::Database;
pub use ledger::PgLedger;
pub use spend::{Charge, KeySpend, LogCursor, LogFilter, ModelSpend, SpendLog, SpendRange};
pub use spend_groups::{GroupSpend, SpendGroup};
pub use spend_report::{ReportGroup, ReportRow};

/// Connections a PostgreSQL pool opens at most, as LiteLLM's `database_connection_pool_limit`.
pub const DEFAULT_POOL_LIMIT: u32 = 10;

/// How long [`Store::open`] waits for the database, and a request for a pooled connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How [`Store::open`] connects.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pool_limit: u32,
    connect_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            pool_limit: DEFAULT_POOL_LIMIT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

impl StoreOptions {
    /// [`DEFAULT_POOL_LIMIT`] connections, [`DEFAULT_CONNECT_TIMEOUT`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Connections the pool opens at most (`database_connection_pool_limit`); at least 1.
    #[must_use]
    pub fn pool_limit(mut self, limit: u32) -> Self {
        self.pool_limit = limit.max(1);
        self
    }

    /// How long opening waits for the database, and later how long a call waits for a pooled
    /// connection before failing with [`StoreError::Unavailable`].
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
}

/// Why [`Store::open`] failed. The messages name the database (host, port and database, or
/// the file) and never a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Neither `sqlite:` nor `postgres:`/`postgresql:`.
    #[error("database URL {url:?} is not supported: use sqlite://FILE or postgres://HOST/DB")]
    UnsupportedUrl {
        /// The URL without credentials.
        url: String,
    },
    /// The URL could not be parsed.
    #[error("database URL {url:?} is not valid: {reason}")]
    InvalidUrl {
        /// The URL without credentials.
        url: String,
        /// The driver's reason.
        reason: String,
    },
    /// The database refused the connection, did not answer in time, or rejected the login.
    #[error("cannot connect to the key database at {target}: {reason}")]
    Connect {
        /// The database: `postgres://host:port/db` or `sqlite://path`.
        target: String,
        /// The driver's reason.
        reason: String,
    },
    /// The schema could not be brought up to date.
    #[error("cannot migrate the key database at {target}: {reason}")]
    Migrate {
        /// The database: `postgres://host:port/db` or `sqlite://path`.
        target: String,
        /// The driver's reason.
        reason: String,
    },
}

impl OpenError {
    fn timeout(target: &str, after: Duration) -> Self {
        OpenError::Connect {
            target: target.to_string(),
            reason: format!("no answer within {after:?}"),
        }
    }

    fn migrate(target: &str, e: sqlx::migrate::MigrateError) -> Self {
        OpenError::Migrate {
            target: target.to_string(),
            reason: e.to_string(),
        }
    }
}

/// Virtual keys in SQLite or PostgreSQL: a [`KeyStore`]. Cloning shares the connection pool.
#[derive(Debug, Clone)]
pub struct Store(Backend);

#[derive(Debug, Clone)]
enum Backend {
    Sqlite(sqlite::SqliteKeys),
    Postgres(postgres::PgKeys),
}

/// Runs `$e` with `$s` bound to the backend.
macro_rules! on_backend {
    ($self:ident, $s:ident => $e:expr) => {
        match &$self.0 {
            Backend::Sqlite($s) => $e,
            Backend::Postgres($s) => $e,
        }
    };
}

impl Store {
    /// Opens the database `url` names (see the crate docs for the schemes), creating a SQLite
    /// file if missing, and brings its schema up to date.
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Store, OpenError> {
        let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("sqlite") => Ok(Store(Backend::Sqlite(
                sqlite::SqliteKeys::open_url(url, options).await?,
            ))),
            Some("postgres" | "postgresql") => Ok(Store(Backend::Postgres(
                postgres::PgKeys::open(url, options).await?,
            ))),
            _ => Err(OpenError::UnsupportedUrl { url: redact(url) }),
        }
    }

    /// Opens (or creates) the SQLite file at `path`, as [`Store::open`] with a `sqlite:` URL
    /// but without escaping the path into one. Its directory must exist.
    pub async fn open_sqlite(path: &Path, options: &StoreOptions) -> Result<Store, OpenError> {
        Ok(Store(Backend::Sqlite(
            sqlite::SqliteKeys::open_path(path, options).await?,
        )))
    }

    /// A budget ledger in this database that every instance sharing it sees: PostgreSQL only
    /// (a SQLite file serves one instance, whose ledger can live in memory).
    pub fn budget_ledger(&self) -> Option<ledger::PgLedger> {
        match &self.0 {
            Backend::Postgres(pg) => Some(ledger::PgLedger::new(pg.pool.clone())),
            Backend::Sqlite(_) => None,
        }
    }

    /// Adds the requests this instance `sent` to each deployment on UTC `day` (days since the
    /// epoch) since its last call, and returns the day's totals for every deployment: what
    /// every instance on this database sent, for the router's `rpd`. Forgets days over a week
    /// old.
    pub async fn sync_deployment_usage(
        &self,
        day: i64,
        sent: &[(String, u64)],
    ) -> Result<Vec<(String, u64)>, StoreError> {
        on_backend!(self, s => s.sync_deployment_usage(day, sent).await)
    }

    /// Saves a Responses API response (replacing one with its id).
    pub async fn save_response(
        &self,
        r: &llmgate_responses::StoredResponse,
    ) -> Result<(), llmgate_responses::StoreError> {
        on_backend!(self, s => s.save_response(r).await)
    }

    /// The response `id` of `owner`.
    pub async fn load_response(
        &self,
        owner: &str,
        id: &str,
    ) -> Result<Option<llmgate_responses::StoredResponse>, llmgate_responses::StoreError> {
        on_backend!(self, s => s.load_response(owner, id).await)
    }

    /// Deletes the response `id` of `owner`; `false` when there was none.
    pub async fn delete_response(
        &self,
        owner: &str,
        id: &str,
    ) -> Result<bool, llmgate_responses::StoreError> {
        on_backend!(self, s => s.delete_response(owner, id).await)
    }

    /// Closes the pool: waits for calls in flight, then every later call fails with
    /// [`StoreError::Unavailable`]. For a clean shutdown (SQLite checkpoints its WAL).
    pub async fn close(&self) {
        on_backend!(self, s => s.pool.close().await)
    }

    /// Writes a batch of spend records and charges their keys, in one transaction (see
    /// [`SpendSink`]): inserts the records into `llmgate_spend_logs` (when `keep_logs`; off
    /// for `disable_spend_logs`), skipping request ids already there, and adds the cost of
    /// each record inserted to its key's spend and to its spend on the record's model group
    /// (else the model asked for). Answers what was charged, per key, so a key cache can
    /// follow.
    ///
    /// A batch written again (a retry after a commit whose answer was lost) charges nothing
    /// twice: only rows actually inserted are charged. Without logs there is nothing to
    /// recognise a retry by, so such a retry would charge again.
    pub async fn write_spend(
        &self,
        batch: &[SpendRecord],
        keep_logs: bool,
    ) -> Result<Vec<Charge>, StoreError> {
        on_backend!(self, s => s.write_spend(batch, keep_logs).await)
    }

    /// Spend log rows matching `filter`, newest first.
    pub async fn spend_logs(&self, filter: &LogFilter) -> Result<Vec<SpendLog>, StoreError> {
        on_backend!(self, s => s.spend_logs(filter).await)
    }

    /// Total spend per model group in `range`, largest first, at most `limit`.
    pub async fn spend_by_model(
        &self,
        range: SpendRange,
        limit: u32,
    ) -> Result<Vec<ModelSpend>, StoreError> {
        on_backend!(self, s => s.spend_by_model(range, limit).await)
    }

    /// Total spend per key in `range`, largest first, at most `limit`.
    pub async fn spend_by_key(
        &self,
        range: SpendRange,
        limit: u32,
    ) -> Result<Vec<KeySpend>, StoreError> {
        on_backend!(self, s => s.spend_by_key(range, limit).await)
    }

    /// Requests and spend per provider in `range`, largest spend first.
    pub async fn spend_by_provider(
        &self,
        range: SpendRange,
    ) -> Result<Vec<GroupSpend>, StoreError> {
        self.spend_by(SpendGroup::Provider, range).await
    }

    /// Requests and spend per UTC day in `range`, newest first.
    pub async fn spend_by_day(&self, range: SpendRange) -> Result<Vec<GroupSpend>, StoreError> {
        self.spend_by(SpendGroup::Day, range).await
    }

    /// LiteLLM's daily activity: per UTC day, model, key, provider and outcome, in `range`.
    pub async fn daily_activity(
        &self,
        range: SpendRange,
        filter: &ActivityFilter,
    ) -> Result<Vec<ActivityRow>, StoreError> {
        on_backend!(self, s => s.daily_activity(range, filter).await)
    }

    /// LiteLLM's spend report: per UTC day, per `group` and per model, in `range`.
    pub async fn spend_report(
        &self,
        group: ReportGroup,
        range: SpendRange,
    ) -> Result<Vec<ReportRow>, StoreError> {
        on_backend!(self, s => s.spend_report(group, range).await)
    }

    /// Requests and spend per `group` (provider, day, team or user) in `range`: largest spend
    /// first (days: newest first).
    pub async fn spend_by(
        &self,
        group: SpendGroup,
        range: SpendRange,
    ) -> Result<Vec<GroupSpend>, StoreError> {
        on_backend!(self, s => s.spend_by(group, range).await)
    }

    /// The request log summed over `q`'s window: totals, buckets, latency percentiles and
    /// top tables, all computed in the database (see the `activity` module).
    pub async fn activity(&self, q: ActivityQuery) -> Result<Activity, StoreError> {
        on_backend!(self, s => s.activity(q).await)
    }

    /// Total spend in `range` (unknown costs left out).
    pub async fn spend_total(&self, range: SpendRange) -> Result<f64, StoreError> {
        on_backend!(self, s => s.spend_total(range).await)
    }
}

/// Stores the batch in `llmgate_spend_logs` and charges key spend in one transaction
/// ([`Store::write_spend`] with logs kept).
#[async_trait::async_trait]
impl SpendSink for Store {
    async fn write(&self, batch: &[SpendRecord]) -> Result<(), BoxError> {
        self.write_spend(batch, true).await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl KeyStore for Store {
    async fn insert(&self, key: &VirtualKey) -> Result<(), StoreError> {
        on_backend!(self, s => s.insert(key).await)
    }

    async fn get(&self, token: &str) -> Result<Option<VirtualKey>, StoreError> {
        on_backend!(self, s => s.get(token).await)
    }

    async fn get_by_alias(&self, alias: &str) -> Result<Option<VirtualKey>, StoreError> {
        on_backend!(self, s => s.get_by_alias(alias).await)
    }

    async fn update(&self, key: &VirtualKey) -> Result<bool, StoreError> {
        on_backend!(self, s => s.update(key).await)
    }

    async fn delete(&self, tokens: &[String]) -> Result<Vec<String>, StoreError> {
        on_backend!(self, s => s.delete(tokens).await)
    }

    async fn list(&self, filter: &KeyFilter) -> Result<Vec<VirtualKey>, StoreError> {
        on_backend!(self, s => s.list(filter).await)
    }

    async fn count(&self, filter: &KeyFilter) -> Result<u64, StoreError> {
        on_backend!(self, s => s.count(filter).await)
    }

    async fn rotate(
        &self,
        old: &str,
        new_token: &str,
        new_name: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        on_backend!(self, s => s.rotate(old, new_token, new_name, now).await)
    }

    async fn add_spend(&self, token: &str, model: &str, cost: f64) -> Result<(), StoreError> {
        on_backend!(self, s => s.add_spend(token, model, cost).await)
    }

    async fn reset_budget(&self, token: &str, now: i64, next: i64) -> Result<bool, StoreError> {
        on_backend!(self, s => s.reset_budget(token, now, next).await)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        on_backend!(self, s => s.ping().await)
    }

    /// PostgreSQL: `NOTIFY llmgate_keys, '<token>'`. SQLite: nothing (one instance).
    async fn publish(&self, token: &str) -> Result<(), StoreError> {
        on_backend!(self, s => s.publish(token).await)
    }

    /// PostgreSQL: spawns a `LISTEN llmgate_keys` task on the current runtime and streams what
    /// other instances publish, and [`Invalidation::All`](llmgate_auth::Invalidation::All)
    /// each time it starts listening (the first time included: keys cached before then may
    /// have missed a notification). SQLite: `None`, a file has one instance.
    fn subscribe(&self) -> Option<Invalidations> {
        on_backend!(self, s => s.subscribe())
    }

    fn backend(&self) -> &'static str {
        on_backend!(self, s => s.backend())
    }
}

/// `url` without user, password or query (which may carry `password=`), for messages.
fn redact(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_drops_credentials_and_query() {
        assert_eq!(
            redact("postgres://u:secret@db.example:5432/keys?password=x"),
            "postgres://db.example:5432/keys"
        );
        assert_eq!(redact("postgresql://db/keys"), "postgresql://db/keys");
        assert_eq!(redact("mysql://u:p@h/db"), "mysql://h/db");
        assert_eq!(redact("sqlite:llmgate.db"), "sqlite:llmgate.db");
    }
}
