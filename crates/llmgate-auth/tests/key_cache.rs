//! The key cache in front of the store (docs/keys.md, "How lookups stay off the database"): a
//! miss reads the store once however many requests wait for the key, unknown keys are cached
//! too, and an entry is read again only once its TTL has passed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use llmgate_auth::{
    generate_secret, hash_key, Error, KeyFilter, KeyStore, Keys, MemoryKeyStore, StoreError,
};
use llmgate_core::VirtualKey;

/// A memory store that counts its reads by token and makes each one slow, so that concurrent
/// requests all miss the cache while the first read is under way.
#[derive(Debug, Default)]
struct Counting {
    inner: MemoryKeyStore,
    gets: AtomicUsize,
}

#[async_trait::async_trait]
impl KeyStore for Counting {
    async fn insert(&self, key: &VirtualKey) -> Result<(), StoreError> {
        self.inner.insert(key).await
    }
    async fn get(&self, token: &str) -> Result<Option<VirtualKey>, StoreError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.inner.get(token).await
    }
    async fn get_by_alias(&self, alias: &str) -> Result<Option<VirtualKey>, StoreError> {
        self.inner.get_by_alias(alias).await
    }
    async fn update(&self, key: &VirtualKey) -> Result<bool, StoreError> {
        self.inner.update(key).await
    }
    async fn delete(&self, tokens: &[String]) -> Result<Vec<String>, StoreError> {
        self.inner.delete(tokens).await
    }
    async fn list(&self, filter: &KeyFilter) -> Result<Vec<VirtualKey>, StoreError> {
        self.inner.list(filter).await
    }
    async fn count(&self, filter: &KeyFilter) -> Result<u64, StoreError> {
        self.inner.count(filter).await
    }
    async fn rotate(&self, old: &str, new: &str, name: &str, now: i64) -> Result<bool, StoreError> {
        self.inner.rotate(old, new, name, now).await
    }
    async fn add_spend(&self, token: &str, model: &str, cost: f64) -> Result<(), StoreError> {
        self.inner.add_spend(token, model, cost).await
    }
    async fn reset_budget(&self, token: &str, now: i64, next: i64) -> Result<bool, StoreError> {
        self.inner.reset_budget(token, now, next).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
    fn backend(&self) -> &'static str {
        "counting"
    }
}

const TTL: Duration = Duration::from_millis(1_000);

/// `n` requests presenting `secret` at once; how many were let in.
async fn at_once(keys: &Keys, secret: &str, n: usize) -> usize {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (keys, secret) = (keys.clone(), secret.to_owned());
            tokio::spawn(async move { keys.authenticate(&secret, None, None).await })
        })
        .collect();
    let mut admitted = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => admitted += 1,
            Err(Error::InvalidKey) => {}
            Err(e) => panic!("{e}"),
        }
    }
    admitted
}

/// Reads for `secret`: `n` concurrent requests make one; more within the TTL make none; the
/// first after it makes one again.
async fn one_read_per_ttl(store: &Counting, keys: &Keys, secret: &str, known: bool) {
    let before = store.gets.load(Ordering::SeqCst);
    let admitted = |n: usize| if known { n } else { 0 };
    assert_eq!(at_once(keys, secret, 50).await, admitted(50));
    assert_eq!(
        store.gets.load(Ordering::SeqCst) - before,
        1,
        "one read on a miss"
    );
    for _ in 0..3 {
        assert_eq!(at_once(keys, secret, 20).await, admitted(20));
    }
    assert_eq!(
        store.gets.load(Ordering::SeqCst) - before,
        1,
        "no read while the entry is fresh"
    );
    tokio::time::sleep(TTL + Duration::from_millis(200)).await;
    assert_eq!(at_once(keys, secret, 20).await, admitted(20));
    assert_eq!(
        store.gets.load(Ordering::SeqCst) - before,
        2,
        "read again once the TTL has passed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_for_an_unknown_key_read_the_store_once() {
    let store = Arc::new(Counting::default());
    let keys = Keys::new(store.clone()).with_cache_ttl(TTL);
    one_read_per_ttl(&store, &keys, &generate_secret(), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_for_a_known_key_read_the_store_once() {
    let store = Arc::new(Counting::default());
    let secret = generate_secret();
    store
        .insert(&VirtualKey {
            token: hash_key(&secret),
            ..VirtualKey::default()
        })
        .await
        .unwrap();
    let keys = Keys::new(store.clone()).with_cache_ttl(TTL);
    one_read_per_ttl(&store, &keys, &secret, true).await;
}
