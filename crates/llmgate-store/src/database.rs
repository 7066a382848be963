//! [`Database`]: the store plus the runtime its I/O runs on, so that calls made from any
//! runtime (a host like Pingora serves from runtimes of its own, which stop before the process
//! writes its last records) run where the pool lives.

use std::sync::Arc;

use llmgate_auth::{Invalidations, KeyFilter, KeyStore, StoreError};
use llmgate_core::VirtualKey;
use tokio::runtime::Handle;

use llmgate_responses::{ResponseStore, StoreError as ResponseStoreError, StoredResponse};

use crate::Store;

/// The gateway's database (keys and spend), with the runtime its I/O runs on. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Database {
    store: Store,
    handle: Handle,
}

impl Database {
    /// `store`, whose every call will run as a task on `handle`'s runtime (which must outlive
    /// the gateway, its last spend records included).
    pub fn new(store: Store, handle: Handle) -> Self {
        Database { store, handle }
    }

    /// The store, for calls made on a runtime of the caller's choosing.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The runtime its I/O runs on.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// The keys in it, as the auth layer takes them.
    pub fn key_store(&self) -> Arc<dyn KeyStore> {
        Arc::new(OnRuntime {
            inner: Arc::new(self.store.clone()),
            handle: self.handle.clone(),
        })
    }

    /// The teams in it, as the auth layer and the admin API take them, each call run on the
    /// store's runtime.
    pub fn record_store(&self) -> Arc<dyn llmgate_auth::RecordStore> {
        Arc::new(crate::records::RecordsOnRuntime(self.clone()))
    }

    /// The Responses API's stored responses in it, each call run on the store's runtime.
    pub fn response_store(&self) -> llmgate_responses::SharedStore {
        Arc::new(ResponsesOnRuntime {
            store: self.store.clone(),
            handle: self.handle.clone(),
        })
    }

    /// Runs `f` on the store's runtime (a task there; a task that fails is `Unavailable`).
    pub async fn run<T, F>(&self, f: impl FnOnce(Store) -> F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        match self.handle.spawn(f(self.store.clone())).await {
            Ok(r) => r,
            Err(e) => Err(StoreError::Unavailable(format!("store task failed: {e}"))),
        }
    }
}

/// A store whose every call runs as a task on one runtime.
#[derive(Debug)]
struct OnRuntime {
    inner: Arc<dyn KeyStore>,
    handle: Handle,
}

impl OnRuntime {
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(
                Arc<dyn KeyStore>,
            ) -> std::pin::Pin<
                Box<dyn std::future::Future<Output = Result<T, StoreError>> + Send>,
            > + Send
            + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        match self.handle.spawn(f(inner)).await {
            Ok(r) => r,
            Err(e) => Err(StoreError::Unavailable(format!("store task failed: {e}"))),
        }
    }
}

#[async_trait::async_trait]
impl KeyStore for OnRuntime {
    async fn insert(&self, key: &VirtualKey) -> Result<(), StoreError> {
        let key = key.clone();
        self.run(move |s| Box::pin(async move { s.insert(&key).await }))
            .await
    }
    async fn get(&self, token: &str) -> Result<Option<VirtualKey>, StoreError> {
        let token = token.to_string();
        self.run(move |s| Box::pin(async move { s.get(&token).await }))
            .await
    }
    async fn get_by_alias(&self, alias: &str) -> Result<Option<VirtualKey>, StoreError> {
        let alias = alias.to_string();
        self.run(move |s| Box::pin(async move { s.get_by_alias(&alias).await }))
            .await
    }
    async fn update(&self, key: &VirtualKey) -> Result<bool, StoreError> {
        let key = key.clone();
        self.run(move |s| Box::pin(async move { s.update(&key).await }))
            .await
    }
    async fn delete(&self, tokens: &[String]) -> Result<Vec<String>, StoreError> {
        let tokens = tokens.to_vec();
        self.run(move |s| Box::pin(async move { s.delete(&tokens).await }))
            .await
    }
    async fn list(&self, filter: &KeyFilter) -> Result<Vec<VirtualKey>, StoreError> {
        let filter = filter.clone();
        self.run(move |s| Box::pin(async move { s.list(&filter).await }))
            .await
    }
    async fn count(&self, filter: &KeyFilter) -> Result<u64, StoreError> {
        let filter = filter.clone();
        self.run(move |s| Box::pin(async move { s.count(&filter).await }))
            .await
    }
    async fn rotate(
        &self,
        old: &str,
        new_token: &str,
        new_name: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let (old, new_token, new_name) =
            (old.to_string(), new_token.to_string(), new_name.to_string());
        self.run(move |s| Box::pin(async move { s.rotate(&old, &new_token, &new_name, now).await }))
            .await
    }
    async fn add_spend(&self, token: &str, model: &str, cost: f64) -> Result<(), StoreError> {
        let (token, model) = (token.to_string(), model.to_string());
        self.run(move |s| Box::pin(async move { s.add_spend(&token, &model, cost).await }))
            .await
    }
    async fn reset_budget(&self, token: &str, now: i64, next: i64) -> Result<bool, StoreError> {
        let token = token.to_string();
        self.run(move |s| Box::pin(async move { s.reset_budget(&token, now, next).await }))
            .await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.run(move |s| Box::pin(async move { s.ping().await }))
            .await
    }
    async fn publish(&self, token: &str) -> Result<(), StoreError> {
        let token = token.to_string();
        self.run(move |s| Box::pin(async move { s.publish(&token).await }))
            .await
    }
    fn subscribe(&self) -> Option<Invalidations> {
        let _guard = self.handle.enter();
        self.inner.subscribe()
    }
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
}

/// The stored responses, every call a task on the store's runtime.
#[derive(Debug)]
struct ResponsesOnRuntime {
    store: Store,
    handle: Handle,
}

impl ResponsesOnRuntime {
    async fn run<T, F>(&self, f: impl FnOnce(Store) -> F) -> Result<T, ResponseStoreError>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T, ResponseStoreError>> + Send + 'static,
    {
        match self.handle.spawn(f(self.store.clone())).await {
            Ok(r) => r,
            Err(e) => Err(ResponseStoreError::Backend(format!(
                "store task failed: {e}"
            ))),
        }
    }
}

#[async_trait::async_trait]
impl ResponseStore for ResponsesOnRuntime {
    async fn save(&self, record: &StoredResponse) -> Result<(), ResponseStoreError> {
        let record = record.clone();
        self.run(|s| async move { s.save_response(&record).await })
            .await
    }

    async fn load(
        &self,
        owner: &str,
        id: &str,
    ) -> Result<Option<StoredResponse>, ResponseStoreError> {
        let (owner, id) = (owner.to_owned(), id.to_owned());
        self.run(|s| async move { s.load_response(&owner, &id).await })
            .await
    }

    async fn delete(&self, owner: &str, id: &str) -> Result<bool, ResponseStoreError> {
        let (owner, id) = (owner.to_owned(), id.to_owned());
        self.run(|s| async move { s.delete_response(&owner, &id).await })
            .await
    }
}
