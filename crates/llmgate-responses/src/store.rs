//! Stored responses: what `previous_response_id` and `GET`/`DELETE /v1/responses/{id}` read.
//!
//! A [`StoredResponse`] is kept under its owner, the calling key's scope (see
//! [`crate::owner`]): a response is found, listed and deleted only by the key that made it.
//! [`MemoryStore`] is the in-process default; `llmgate-store` implements [`ResponseStore`]
//! over SQLite and PostgreSQL.

use std::sync::Arc;

use serde_json::Value;

/// A stored response: the response object as answered, and the conversation that led to it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResponse {
    /// The response's id (`resp_…`).
    pub id: String,
    /// The calling key's scope ([`crate::owner`]).
    pub owner: String,
    /// Unix seconds.
    pub created_at: i64,
    /// The conversation's input items in Responses form, the earlier turns' items (from
    /// `previous_response_id`) first; `instructions` are not among them (they do not carry
    /// over, as OpenAI's API defines).
    pub input: Vec<Value>,
    /// The response object, as answered (its `output` is the model's turn).
    pub response: Value,
}

impl StoredResponse {
    /// The conversation so far: the input items, then the response's output items.
    pub fn conversation(&self) -> Vec<Value> {
        let mut items = self.input.clone();
        if let Some(Value::Array(output)) = self.response.get("output") {
            items.extend(output.iter().cloned());
        }
        items
    }
}

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend failed (connection, query); the message names no secret.
    #[error("response store: {0}")]
    Backend(String),
}

/// Where stored responses live. Each call is scoped by `owner`: another owner's response is
/// "not found", never an error that says it exists.
#[async_trait::async_trait]
pub trait ResponseStore: Send + Sync + std::fmt::Debug + 'static {
    /// Saves (or replaces) `record`.
    async fn save(&self, record: &StoredResponse) -> Result<(), StoreError>;

    /// The response `id` of `owner`.
    async fn load(&self, owner: &str, id: &str) -> Result<Option<StoredResponse>, StoreError>;

    /// Deletes the response `id` of `owner`; `false` when there was none.
    async fn delete(&self, owner: &str, id: &str) -> Result<bool, StoreError>;
}

/// A shared store.
pub type SharedStore = Arc<dyn ResponseStore>;

/// How many responses a [`MemoryStore::new`] keeps; past it, the least used are forgotten.
pub const MEMORY_CAPACITY: u64 = 10_000;

/// Responses in this process's memory (a bounded, concurrent cache: no global lock), lost at
/// exit. For one instance without a database, and for tests.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    records: moka::future::Cache<String, StoredResponse>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_capacity(MEMORY_CAPACITY)
    }
}

impl MemoryStore {
    /// An empty store keeping at most [`MEMORY_CAPACITY`] responses.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store keeping at most `capacity` responses (the least recently used forgotten
    /// first). LRU, not moka's default TinyLFU: its admission policy refuses a new entry no
    /// more popular than the one it would replace, so a full store kept its oldest responses
    /// and dropped every new one (a follow-up could not find the answer it had just received).
    pub fn with_capacity(capacity: u64) -> Self {
        MemoryStore {
            records: moka::future::Cache::builder()
                .max_capacity(capacity)
                .eviction_policy(moka::policy::EvictionPolicy::lru())
                .build(),
        }
    }
}

#[async_trait::async_trait]
impl ResponseStore for MemoryStore {
    async fn save(&self, record: &StoredResponse) -> Result<(), StoreError> {
        self.records.insert(record.id.clone(), record.clone()).await;
        Ok(())
    }

    async fn load(&self, owner: &str, id: &str) -> Result<Option<StoredResponse>, StoreError> {
        Ok(self.records.get(id).await.filter(|r| r.owner == owner))
    }

    async fn delete(&self, owner: &str, id: &str) -> Result<bool, StoreError> {
        match self.records.get(id).await {
            Some(r) if r.owner == owner => Ok(self.records.remove(id).await.is_some()),
            _ => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn scoped_by_owner() {
        let store = MemoryStore::new();
        let r = StoredResponse {
            id: "resp_1".into(),
            owner: "a".into(),
            created_at: 1,
            input: vec![json!({"type": "message", "role": "user", "content": "hi"})],
            response: json!({"id": "resp_1", "output": [{"type": "message", "role": "assistant"}]}),
        };
        store.save(&r).await.unwrap();
        assert_eq!(store.load("b", "resp_1").await.unwrap(), None);
        assert!(!store.delete("b", "resp_1").await.unwrap());
        let got = store.load("a", "resp_1").await.unwrap().unwrap();
        assert_eq!(got.conversation().len(), 2);
        assert!(store.delete("a", "resp_1").await.unwrap());
        assert_eq!(store.load("a", "resp_1").await.unwrap(), None);
    }

    fn record(id: &str) -> StoredResponse {
        StoredResponse {
            id: id.into(),
            owner: "a".into(),
            created_at: 0,
            input: Vec::new(),
            response: json!({}),
        }
    }

    /// Which of `ids` the store still holds.
    fn kept(store: &MemoryStore, ids: &[String]) -> Vec<String> {
        ids.iter()
            .filter(|id| store.records.contains_key(id.as_str()))
            .cloned()
            .collect()
    }

    /// Full, the store forgets the least recently used response first: five of ten read
    /// again, five new ones saved (each found right after it is saved, as a follow-up would
    /// look for it), and the five not read since they were saved are the ones gone.
    #[tokio::test]
    async fn the_least_used_response_is_forgotten_first() {
        let store = MemoryStore::with_capacity(10);
        let ids = |p: &str| (0..5).map(|i| format!("{p}{i}")).collect::<Vec<_>>();
        let (read, unread, new) = (ids("read"), ids("unread"), ids("new"));
        for id in read.iter().chain(&unread) {
            store.save(&record(id)).await.unwrap();
        }
        store.records.run_pending_tasks().await;
        for id in &read {
            assert!(store.load("a", id).await.unwrap().is_some(), "{id}");
        }
        store.records.run_pending_tasks().await;
        for id in &new {
            store.save(&record(id)).await.unwrap();
            store.records.run_pending_tasks().await;
            assert!(
                store.load("a", id).await.unwrap().is_some(),
                "{id} just saved"
            );
        }
        assert_eq!(kept(&store, &read), read);
        assert_eq!(kept(&store, &new), new);
        assert_eq!(kept(&store, &unread), Vec::<String>::new());
    }

    /// [`MemoryStore::new`] keeps 10,000 responses: the 10,001st saved pushes out the first.
    #[tokio::test]
    async fn the_default_capacity_is_ten_thousand() {
        let store = MemoryStore::new();
        let ids: Vec<String> = (0..10_001).map(|i| format!("resp_{i}")).collect();
        for id in &ids {
            store.save(&record(id)).await.unwrap();
        }
        store.records.run_pending_tasks().await;
        assert_eq!(store.records.entry_count(), 10_000);
        assert_eq!(kept(&store, &ids[..1]), Vec::<String>::new());
        assert_eq!(kept(&store, &ids[1..]).len(), 10_000);
    }

    #[tokio::test]
    async fn memory_is_bounded() {
        let store = MemoryStore::with_capacity(10);
        for i in 0..100 {
            let r = StoredResponse {
                id: format!("resp_{i}"),
                owner: "a".into(),
                created_at: i,
                input: Vec::new(),
                response: json!({}),
            };
            store.save(&r).await.unwrap();
        }
        store.records.run_pending_tasks().await;
        assert!(
            store.records.entry_count() <= 10,
            "{}",
            store.records.entry_count()
        );
    }
}
