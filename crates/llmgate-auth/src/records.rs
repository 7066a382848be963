//! [`RecordStore`]: where teams (and, as they come, the other things LiteLLM's admin API
//! manages beside keys) are kept, and [`MemoryRecordStore`], the in-process one.
//!
//! A record is a JSON document (the object's settings) plus the state that must change
//! atomically under concurrent writers: its spend and its next budget reset. Spend is only
//! ever added with `spend = spend + cost` in the store, so charges from any number of
//! instances add up exactly, as for keys. The SQL backends are in `llmgate-store`; every
//! backend passes [`crate::conformance::run_records`].

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::StoreError;

/// What a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecordKind {
    /// A team (`/team/*`).
    Team,
    /// An end user (`/customer/*`, `/end_user/*`).
    EndUser,
    /// An internal user (`/user/*`).
    User,
}

impl RecordKind {
    /// The name stored in the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Team => "team",
            RecordKind::EndUser => "end_user",
            RecordKind::User => "user",
        }
    }
}

/// One stored record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Its id, unique per kind.
    pub id: String,
    /// Its settings (a JSON object).
    pub doc: serde_json::Value,
    /// USD spent in the current budget period.
    pub spend: f64,
    /// When spend next resets.
    pub budget_reset_at: Option<i64>,
    /// Created at (Unix seconds).
    pub created_at: i64,
    /// Last changed at (Unix seconds).
    pub updated_at: i64,
}

/// A page of records and how many there are in all.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordPage {
    /// The page, oldest first.
    pub records: Vec<Record>,
    /// Records of this kind in all.
    pub total: u64,
}

/// Where teams (and other records) are kept.
#[async_trait::async_trait]
pub trait RecordStore: Send + Sync + std::fmt::Debug + 'static {
    /// Adds a record. [`StoreError::Conflict`] when one of this kind has its id.
    async fn insert_record(&self, kind: RecordKind, record: &Record) -> Result<(), StoreError>;

    /// The record of this kind with this id.
    async fn get_record(&self, kind: RecordKind, id: &str) -> Result<Option<Record>, StoreError>;

    /// Writes `doc`, `budget_reset_at` and `updated_at` of an existing record (never `spend`
    /// or `created_at`). `false` when there is no such record.
    async fn update_record(&self, kind: RecordKind, record: &Record) -> Result<bool, StoreError>;

    /// Deletes a record; `false` when there was none.
    async fn delete_record(&self, kind: RecordKind, id: &str) -> Result<bool, StoreError>;

    /// Records of this kind, oldest first, `size` per 1-based `page`.
    async fn list_records(
        &self,
        kind: RecordKind,
        page: u32,
        size: u32,
    ) -> Result<RecordPage, StoreError>;

    /// Adds `cost` USD to the record's spend (nothing when it does not exist).
    async fn add_record_spend(
        &self,
        kind: RecordKind,
        id: &str,
        cost: f64,
    ) -> Result<(), StoreError>;

    /// Resets the record's spend to zero and its next reset to `next`, if its period ended at
    /// `now`; `false` when it had not (another instance reset it).
    async fn reset_record_budget(
        &self,
        kind: RecordKind,
        id: &str,
        now: i64,
        next: i64,
    ) -> Result<bool, StoreError>;
}

/// Records in a map in this process: for tests and library users without a database.
#[derive(Debug, Default, Clone)]
pub struct MemoryRecordStore {
    // Admin calls and cache misses only; the request path reads the auth cache.
    records: Arc<RwLock<HashMap<(RecordKind, String), Record>>>,
}

type Map = HashMap<(RecordKind, String), Record>;

impl MemoryRecordStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Map> {
        self.records.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Map> {
        self.records.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait::async_trait]
impl RecordStore for MemoryRecordStore {
    async fn insert_record(&self, kind: RecordKind, record: &Record) -> Result<(), StoreError> {
        let mut map = self.write();
        let slot = (kind, record.id.clone());
        if map.contains_key(&slot) {
            return Err(StoreError::Conflict(format!(
                "a {} with id {:?} exists already",
                kind.as_str(),
                record.id
            )));
        }
        map.insert(slot, record.clone());
        Ok(())
    }

    async fn get_record(&self, kind: RecordKind, id: &str) -> Result<Option<Record>, StoreError> {
        Ok(self.read().get(&(kind, id.to_owned())).cloned())
    }

    async fn update_record(&self, kind: RecordKind, record: &Record) -> Result<bool, StoreError> {
        let mut map = self.write();
        let Some(old) = map.get_mut(&(kind, record.id.clone())) else {
            return Ok(false);
        };
        old.doc = record.doc.clone();
        old.budget_reset_at = record.budget_reset_at;
        old.updated_at = record.updated_at;
        Ok(true)
    }

    async fn delete_record(&self, kind: RecordKind, id: &str) -> Result<bool, StoreError> {
        Ok(self.write().remove(&(kind, id.to_owned())).is_some())
    }

    async fn list_records(
        &self,
        kind: RecordKind,
        page: u32,
        size: u32,
    ) -> Result<RecordPage, StoreError> {
        let map = self.read();
        let mut all: Vec<&Record> = map
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|(_, r)| r)
            .collect();
        all.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        let size = size.max(1) as usize;
        let skip = (page.max(1) as usize - 1) * size;
        Ok(RecordPage {
            total: all.len() as u64,
            records: all.into_iter().skip(skip).take(size).cloned().collect(),
        })
    }

    async fn add_record_spend(
        &self,
        kind: RecordKind,
        id: &str,
        cost: f64,
    ) -> Result<(), StoreError> {
        if let Some(r) = self.write().get_mut(&(kind, id.to_owned())) {
            r.spend += cost;
        }
        Ok(())
    }

    async fn reset_record_budget(
        &self,
        kind: RecordKind,
        id: &str,
        now: i64,
        next: i64,
    ) -> Result<bool, StoreError> {
        match self.write().get_mut(&(kind, id.to_owned())) {
            Some(r) if r.budget_reset_at.is_some_and(|at| at <= now) => {
                r.spend = 0.0;
                r.budget_reset_at = Some(next);
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory_store_passes_the_suite() {
        crate::conformance::run_records(std::sync::Arc::new(super::MemoryRecordStore::new())).await;
    }
}
