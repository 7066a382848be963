//! [`KeyStore`]: where virtual keys live, and [`MemoryKeyStore`], the in-process one.
//!
//! The SQL backends (SQLite, the embedded default, and PostgreSQL for several instances) are in
//! `llmgate-store`. Every backend passes the same suite, [`crate::conformance`].

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use futures_util::Stream;
use llmgate_core::VirtualKey;

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store could not be reached or answered with an error: the request fails closed
    /// (503) unless `allow_requests_on_db_unavailable` is set.
    #[error("key store unavailable: {0}")]
    Unavailable(String),
    /// A key with this token (or alias) exists already.
    #[error("{0}")]
    Conflict(String),
}

/// A change another instance made, which this instance's key cache must forget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalidation {
    /// One key changed (updated, blocked, deleted, regenerated).
    Token(String),
    /// Notifications may have been missed (the listener reconnected): forget every key.
    All,
}

/// A stream of [`Invalidation`]s from other instances.
pub type Invalidations = Pin<Box<dyn Stream<Item = Invalidation> + Send>>;

/// Which keys `GET /key/list` returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyFilter {
    /// Only this user's keys.
    pub user_id: Option<String>,
    /// Only this team's keys.
    pub team_id: Option<String>,
    /// Only the key with this alias.
    pub key_alias: Option<String>,
    /// 1-based page.
    pub page: u32,
    /// Keys per page.
    pub size: u32,
}

/// Where virtual keys are kept. Lookups are by token (the SHA-256 of the secret, see
/// [`crate::hash_key`]); the secret itself is never given to a store.
///
/// Spend is changed only through [`KeyStore::add_spend`] and [`KeyStore::reset_budget`], which
/// are atomic in the store, so concurrent charges from any number of instances add up exactly;
/// [`KeyStore::update`] writes every other field.
#[async_trait::async_trait]
pub trait KeyStore: Send + Sync + std::fmt::Debug + 'static {
    /// Adds a key. [`StoreError::Conflict`] when the token or the alias is taken.
    async fn insert(&self, key: &VirtualKey) -> Result<(), StoreError>;

    /// The key with this token.
    async fn get(&self, token: &str) -> Result<Option<VirtualKey>, StoreError>;

    /// The key with this alias.
    async fn get_by_alias(&self, alias: &str) -> Result<Option<VirtualKey>, StoreError>;

    /// Writes every field of an existing key but `spend`, `model_spend`, `token` and
    /// `created_at`. `false` when there is no such key. [`StoreError::Conflict`] when the new
    /// alias is taken.
    async fn update(&self, key: &VirtualKey) -> Result<bool, StoreError>;

    /// Deletes these keys; answers the tokens that existed.
    async fn delete(&self, tokens: &[String]) -> Result<Vec<String>, StoreError>;

    /// Keys, newest first.
    async fn list(&self, filter: &KeyFilter) -> Result<Vec<VirtualKey>, StoreError>;

    /// How many keys pass `filter`'s field filters (its paging aside): `/key/list`'s
    /// `total_count`.
    async fn count(&self, filter: &KeyFilter) -> Result<u64, StoreError>;

    /// Gives the key `old` a new token and name (`/key/regenerate`), keeping its settings and
    /// spend. `false` when there is no such key.
    async fn rotate(
        &self,
        old: &str,
        new_token: &str,
        new_name: &str,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Adds `cost` USD to the key's spend, and to its spend on `model` (a model group).
    async fn add_spend(&self, token: &str, model: &str, cost: f64) -> Result<(), StoreError>;

    /// Resets the key's spend to zero and its next reset to `next`, if its period ended at
    /// `now` (`budget_reset_at <= now`); `false` when it had not (another instance reset it).
    async fn reset_budget(&self, token: &str, now: i64, next: i64) -> Result<bool, StoreError>;

    /// Whether the store answers (readiness).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Tells other instances sharing this store that `token` changed. A store no other
    /// instance can share does nothing.
    async fn publish(&self, _token: &str) -> Result<(), StoreError> {
        Ok(())
    }

    /// Changes published by other instances, if the store is shared. Called once, inside the
    /// runtime that serves requests.
    fn subscribe(&self) -> Option<Invalidations> {
        None
    }

    /// The backend's name, for `/health/readiness` and logs: `memory`, `sqlite`, `postgres`.
    fn backend(&self) -> &'static str;
}

/// Keys in a map in this process: for tests and library users without a database.
#[derive(Debug, Default, Clone)]
pub struct MemoryKeyStore {
    // Admin calls and cache misses only; the request path reads the auth cache.
    keys: Arc<RwLock<HashMap<String, VirtualKey>>>,
}

impl MemoryKeyStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, VirtualKey>> {
        self.keys.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, VirtualKey>> {
        self.keys.write().unwrap_or_else(|e| e.into_inner())
    }
}

fn alias_taken(keys: &HashMap<String, VirtualKey>, key: &VirtualKey) -> bool {
    key.key_alias.as_ref().is_some_and(|alias| {
        keys.values()
            .any(|k| k.token != key.token && k.key_alias.as_ref() == Some(alias))
    })
}

#[async_trait::async_trait]
impl KeyStore for MemoryKeyStore {
    async fn insert(&self, key: &VirtualKey) -> Result<(), StoreError> {
        let mut keys = self.write();
        if keys.contains_key(&key.token) {
            return Err(StoreError::Conflict("this key exists already".into()));
        }
        if alias_taken(&keys, key) {
            return Err(StoreError::Conflict(alias_conflict(key)));
        }
        keys.insert(key.token.clone(), key.clone());
        Ok(())
    }

    async fn get(&self, token: &str) -> Result<Option<VirtualKey>, StoreError> {
        Ok(self.read().get(token).cloned())
    }

    async fn get_by_alias(&self, alias: &str) -> Result<Option<VirtualKey>, StoreError> {
        Ok(self
            .read()
            .values()
            .find(|k| k.key_alias.as_deref() == Some(alias))
            .cloned())
    }

    async fn update(&self, key: &VirtualKey) -> Result<bool, StoreError> {
        let mut keys = self.write();
        if alias_taken(&keys, key) {
            return Err(StoreError::Conflict(alias_conflict(key)));
        }
        let Some(old) = keys.get_mut(&key.token) else {
            return Ok(false);
        };
        let kept = (
            old.spend,
            std::mem::take(&mut old.model_spend),
            old.created_at,
        );
        *old = key.clone();
        (old.spend, old.model_spend, old.created_at) = kept;
        Ok(true)
    }

    async fn delete(&self, tokens: &[String]) -> Result<Vec<String>, StoreError> {
        let mut keys = self.write();
        Ok(tokens
            .iter()
            .filter(|t| keys.remove(t.as_str()).is_some())
            .cloned()
            .collect())
    }

    async fn list(&self, filter: &KeyFilter) -> Result<Vec<VirtualKey>, StoreError> {
        let keys = self.read();
        let mut all: Vec<VirtualKey> = keys
            .values()
            .filter(|k| matches_filter(k, filter))
            .cloned()
            .collect();
        all.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| a.token.cmp(&b.token))
        });
        let size = filter.size.max(1) as usize;
        let skip = (filter.page.max(1) as usize - 1) * size;
        Ok(all.into_iter().skip(skip).take(size).collect())
    }

    async fn count(&self, filter: &KeyFilter) -> Result<u64, StoreError> {
        Ok(self
            .read()
            .values()
            .filter(|k| matches_filter(k, filter))
            .count() as u64)
    }

    async fn rotate(
        &self,
        old: &str,
        new_token: &str,
        new_name: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut keys = self.write();
        if keys.contains_key(new_token) {
            return Err(StoreError::Conflict("this key exists already".into()));
        }
        let Some(mut key) = keys.remove(old) else {
            return Ok(false);
        };
        key.token = new_token.to_string();
        key.key_name = new_name.to_string();
        key.updated_at = now;
        keys.insert(new_token.to_string(), key);
        Ok(true)
    }

    async fn add_spend(&self, token: &str, model: &str, cost: f64) -> Result<(), StoreError> {
        if let Some(k) = self.write().get_mut(token) {
            k.spend += cost;
            *k.model_spend.entry(model.to_string()).or_default() += cost;
        }
        Ok(())
    }

    async fn reset_budget(&self, token: &str, now: i64, next: i64) -> Result<bool, StoreError> {
        let mut keys = self.write();
        match keys.get_mut(token) {
            Some(k) if k.budget_due(now) => {
                k.spend = 0.0;
                k.model_spend.clear();
                k.budget_reset_at = Some(next);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}

/// Whether `key` passes `filter`'s field filters (not its paging).
pub fn matches_filter(key: &VirtualKey, filter: &KeyFilter) -> bool {
    let eq = |want: &Option<String>, have: &Option<String>| {
        want.as_ref().is_none_or(|w| have.as_ref() == Some(w))
    };
    eq(&filter.user_id, &key.user_id)
        && eq(&filter.team_id, &key.team_id)
        && eq(&filter.key_alias, &key.key_alias)
}

/// The message for an alias another key has.
pub fn alias_conflict(key: &VirtualKey) -> String {
    format!(
        "key_alias \"{}\" is already used by another key",
        key.key_alias.as_deref().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory_store_passes_the_suite() {
        crate::conformance::run(std::sync::Arc::new(super::MemoryKeyStore::new())).await;
    }
}
