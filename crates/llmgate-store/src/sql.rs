//! What SQLite and PostgreSQL share: the SQL text (both take `$1`-style parameters), the
//! embedded migrations, how a [`VirtualKey`] becomes columns and back, and error mapping.
//!
//! The [`KeyStore`](llmgate_auth::KeyStore) implementation itself is written once, in
//! [`key_store_impl!`], and expanded for each backend's concrete sqlx types: sqlx's generic
//! bounds over `Database` are heavier to read than the one macro.

use std::borrow::Cow;
use std::collections::HashMap;

use futures_util::future::BoxFuture;
use llmgate_auth::{alias_conflict, StoreError};
use llmgate_core::VirtualKey;
use serde::de::DeserializeOwned;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

/// The migrations of one backend, embedded in the binary: `(version, description, sql)`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Embedded(pub(crate) &'static [(i64, &'static str, &'static str)]);

impl MigrationSource<'static> for Embedded {
    fn resolve(self) -> BoxFuture<'static, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async move {
            Ok(self
                .0
                .iter()
                .map(|(version, description, sql)| {
                    Migration::new(
                        *version,
                        Cow::Borrowed(*description),
                        MigrationType::Simple,
                        Cow::Borrowed(*sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

impl Embedded {
    /// The migrator, recording applied versions in `_sqlx_migrations` (as the sqlx CLI does).
    pub(crate) async fn migrator(self) -> Result<Migrator, sqlx::migrate::MigrateError> {
        Migrator::new(self).await
    }
}

/// The key columns of a `SELECT`, with the key's per-model spend joined in (one row per model,
/// `ms_model` NULL for a key without any).
macro_rules! select_keys {
    ($from:literal, $tail:literal) => {
        concat!(
            "SELECT k.token, k.key_name, k.key_alias, k.models, k.spend, k.max_budget, ",
            "k.budget_duration, k.budget_reset_at, k.expires, k.rpm_limit, k.tpm_limit, ",
            "k.max_parallel_requests, k.model_rpm_limit, k.model_tpm_limit, k.model_max_budget, ",
            "k.metadata, k.team_id, k.user_id, k.tags, k.blocked, k.created_at, k.updated_at, k.extras, ",
            "m.model AS ms_model, m.spend AS ms_spend FROM ",
            $from,
            " k LEFT JOIN llmgate_key_model_spend m ON m.token = k.token ",
            $tail
        )
    };
}
pub(crate) use select_keys;

pub(crate) const INSERT_KEY: &str = "INSERT INTO llmgate_keys (token, key_name, key_alias, \
    models, spend, max_budget, budget_duration, budget_reset_at, expires, rpm_limit, tpm_limit, \
    max_parallel_requests, model_rpm_limit, model_tpm_limit, model_max_budget, metadata, team_id, \
    user_id, tags, blocked, created_at, updated_at, extras) VALUES ($1, $2, $3, $4, $5, $6, $7, \
    $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)";

/// Every column but `token`, `spend` and `created_at`.
pub(crate) const UPDATE_KEY: &str = "UPDATE llmgate_keys SET key_name = $2, key_alias = $3, \
    models = $4, max_budget = $5, budget_duration = $6, budget_reset_at = $7, expires = $8, \
    rpm_limit = $9, tpm_limit = $10, max_parallel_requests = $11, model_rpm_limit = $12, \
    model_tpm_limit = $13, model_max_budget = $14, metadata = $15, team_id = $16, user_id = $17, \
    tags = $18, blocked = $19, updated_at = $20, extras = $21 WHERE token = $1";

pub(crate) const INSERT_MODEL_SPEND: &str =
    "INSERT INTO llmgate_key_model_spend (token, model, spend) VALUES ($1, $2, $3)";

pub(crate) const DELETE_KEY: &str = "DELETE FROM llmgate_keys WHERE token = $1";
pub(crate) const DELETE_MODEL_SPEND: &str = "DELETE FROM llmgate_key_model_spend WHERE token = $1";

pub(crate) const ROTATE_KEY: &str =
    "UPDATE llmgate_keys SET token = $2, key_name = $3, updated_at = $4 WHERE token = $1";
pub(crate) const ROTATE_MODEL_SPEND: &str =
    "UPDATE llmgate_key_model_spend SET token = $2 WHERE token = $1";

/// The atomic charge: the database adds, so concurrent charges from any number of instances
/// never overwrite each other.
pub(crate) const ADD_SPEND: &str = "UPDATE llmgate_keys SET spend = spend + $2 WHERE token = $1";
pub(crate) const ADD_MODEL_SPEND: &str = "INSERT INTO llmgate_key_model_spend (token, model, \
    spend) VALUES ($1, $2, $3) ON CONFLICT (token, model) DO UPDATE SET \
    spend = llmgate_key_model_spend.spend + excluded.spend";

/// Conditional, so of several instances racing to reset one period exactly one does.
pub(crate) const RESET_BUDGET: &str = "UPDATE llmgate_keys SET spend = 0, budget_reset_at = $3 \
    WHERE token = $1 AND budget_reset_at IS NOT NULL AND budget_reset_at <= $2";

/// A key's fields as column values, in [`INSERT_KEY`]'s order.
#[derive(Debug)]
pub(crate) struct Columns {
    pub(crate) models: String,
    pub(crate) rpm_limit: Option<i64>,
    pub(crate) tpm_limit: Option<i64>,
    pub(crate) max_parallel_requests: Option<i64>,
    pub(crate) model_rpm_limit: String,
    pub(crate) model_tpm_limit: String,
    pub(crate) model_max_budget: String,
    pub(crate) metadata: String,
    pub(crate) tags: String,
    pub(crate) extras: String,
}

impl Columns {
    pub(crate) fn of(key: &VirtualKey) -> Self {
        Columns {
            models: to_json(&key.models),
            rpm_limit: key.rpm_limit.map(to_i64),
            tpm_limit: key.tpm_limit.map(to_i64),
            max_parallel_requests: key.max_parallel_requests.map(to_i64),
            model_rpm_limit: to_json(&key.model_rpm_limit),
            model_tpm_limit: to_json(&key.model_tpm_limit),
            model_max_budget: to_json(&key.model_max_budget),
            metadata: to_json(&key.metadata),
            tags: to_json(&key.tags),
            extras: to_json(&key.extras),
        }
    }
}

/// A key's row as read, before its JSON columns are parsed.
#[derive(Debug)]
pub(crate) struct Row {
    pub(crate) token: String,
    pub(crate) key_name: String,
    pub(crate) key_alias: Option<String>,
    pub(crate) models: String,
    pub(crate) spend: f64,
    pub(crate) max_budget: Option<f64>,
    pub(crate) budget_duration: Option<i64>,
    pub(crate) budget_reset_at: Option<i64>,
    pub(crate) expires: Option<i64>,
    pub(crate) rpm_limit: Option<i64>,
    pub(crate) tpm_limit: Option<i64>,
    pub(crate) max_parallel_requests: Option<i64>,
    pub(crate) model_rpm_limit: String,
    pub(crate) model_tpm_limit: String,
    pub(crate) model_max_budget: String,
    pub(crate) metadata: String,
    pub(crate) team_id: Option<String>,
    pub(crate) user_id: Option<String>,
    pub(crate) tags: String,
    pub(crate) blocked: bool,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
    pub(crate) extras: String,
}

impl Row {
    fn into_key(self) -> Result<VirtualKey, StoreError> {
        Ok(VirtualKey {
            models: from_json(&self.models, "models")?,
            model_rpm_limit: from_json(&self.model_rpm_limit, "model_rpm_limit")?,
            model_tpm_limit: from_json(&self.model_tpm_limit, "model_tpm_limit")?,
            model_max_budget: from_json(&self.model_max_budget, "model_max_budget")?,
            metadata: from_json(&self.metadata, "metadata")?,
            tags: from_json(&self.tags, "tags")?,
            extras: from_json(&self.extras, "extras")?,
            token: self.token,
            key_name: self.key_name,
            key_alias: self.key_alias,
            spend: self.spend,
            max_budget: self.max_budget,
            budget_duration: self.budget_duration,
            budget_reset_at: self.budget_reset_at,
            expires: self.expires,
            rpm_limit: self.rpm_limit.map(to_u64),
            tpm_limit: self.tpm_limit.map(to_u64),
            max_parallel_requests: self.max_parallel_requests.map(to_u64),
            model_spend: HashMap::new(),
            team_id: self.team_id,
            user_id: self.user_id,
            blocked: self.blocked,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// Folds joined rows (a key's columns and one of its per-model spends each, in key order) into
/// keys, keeping the order.
pub(crate) fn fold_keys(
    rows: impl IntoIterator<Item = (Row, Option<String>, Option<f64>)>,
) -> Result<Vec<VirtualKey>, StoreError> {
    let mut keys: Vec<VirtualKey> = Vec::new();
    for (row, model, spend) in rows {
        let same = keys.last().is_some_and(|k| k.token == row.token);
        if !same {
            keys.push(row.into_key()?);
        }
        if let (Some(model), Some(spend), Some(key)) = (model, spend, keys.last_mut()) {
            key.model_spend.insert(model, spend);
        }
    }
    Ok(keys)
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Strings, numbers and JSON values only: serialising them cannot fail.
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_string())
}

fn from_json<T: DeserializeOwned>(text: &str, column: &str) -> Result<T, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Unavailable(format!("llmgate_keys.{column} is not valid: {e}")))
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Any database error but a conflict: the store is unavailable, and the request fails closed.
pub(crate) fn unavailable(e: sqlx::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// A unique violation on insert or update is a conflict: on `key_alias`, or on the token.
pub(crate) fn conflict_or_unavailable(e: sqlx::Error, key: &VirtualKey) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            let on_alias = db
                .constraint()
                .unwrap_or_else(|| db.message())
                .contains("key_alias");
            StoreError::Conflict(if on_alias {
                alias_conflict(key)
            } else {
                "this key exists already".to_string()
            })
        }
        _ => unavailable(e),
    }
}

/// The same token taken on rotate.
pub(crate) fn token_conflict_or_unavailable(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict("this key exists already".to_string())
        }
        _ => unavailable(e),
    }
}
