//! [`CacheStore`]: where answers are kept, and [`LocalStore`], the in-memory default.

use std::fmt;
use std::future::{self, Future};
use std::pin::Pin;
use std::time::{Duration, Instant};

use bytes::Bytes;
use moka::sync::Cache;
use moka::Expiry;

use crate::Error;

/// A boxed, sendable future returned by [`CacheStore`] methods.
pub type StoreFuture<T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'static>>;

/// A key-value store for encoded answers, with a time to live per entry.
///
/// Rules for implementations:
/// - `get` returns `Ok(None)` for a key that is absent or expired; it never returns an entry
///   older than the TTL it was stored with.
/// - `put` replaces any value under the key and sets its TTL.
/// - Errors are reported, not hidden: the layer logs them and treats the request as a miss
///   (a broken cache never fails a request).
/// - Both are called on the request path: answer quickly, and bound waits with timeouts.
pub trait CacheStore: Send + Sync + fmt::Debug + 'static {
    /// The value stored under `key`, if any and not expired.
    fn get(&self, key: &str) -> StoreFuture<Option<Bytes>>;

    /// Stores `value` under `key` for `ttl`.
    fn put(&self, key: &str, value: Bytes, ttl: Duration) -> StoreFuture<()>;

    /// A short name for logs and `/health/readiness` (`local`, `redis`).
    fn kind(&self) -> &'static str;

    /// Whether the store answers now, for readiness. A store without I/O always does.
    fn ping(&self) -> StoreFuture<()> {
        Box::pin(future::ready(Ok(())))
    }
}

/// The in-memory store (`cache_params.type: local`): a [moka] cache bounded by both a number
/// of entries and a number of bytes, with a TTL per entry.
///
/// Both bounds are kept with one weight: an entry weighs its length in bytes, but at least
/// `max_bytes / max_entries`, so no more than `max_entries` entries fit and their bytes never
/// sum to more than `max_bytes`. When full, moka evicts by its TinyLFU policy (rarely used
/// entries first).
#[derive(Clone)]
pub struct LocalStore {
    cache: Cache<String, Stored>,
    max_entries: u64,
    max_bytes: u64,
}

#[derive(Clone)]
struct Stored {
    value: Bytes,
    ttl: Duration,
}

struct PerEntryTtl;

impl Expiry<String, Stored> for PerEntryTtl {
    fn expire_after_create(&self, _key: &String, v: &Stored, _at: Instant) -> Option<Duration> {
        Some(v.ttl)
    }
    fn expire_after_update(
        &self,
        _key: &String,
        v: &Stored,
        _at: Instant,
        _current: Option<Duration>,
    ) -> Option<Duration> {
        Some(v.ttl)
    }
}

impl LocalStore {
    /// A store holding at most `max_entries` answers and `max_bytes` bytes of them.
    pub fn new(max_entries: u64, max_bytes: u64) -> Self {
        let max_entries = max_entries.max(1);
        let max_bytes = max_bytes.max(1);
        let floor = u32::try_from(max_bytes / max_entries).unwrap_or(u32::MAX);
        let cache = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(move |k: &String, v: &Stored| {
                let len = u32::try_from(k.len() + v.value.len()).unwrap_or(u32::MAX);
                len.max(floor)
            })
            .expire_after(PerEntryTtl)
            .build();
        LocalStore {
            cache,
            max_entries,
            max_bytes,
        }
    }

    /// Entries held now (approximate: moka applies writes and evictions in batches).
    pub fn entry_count(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.entry_count()
    }
}

impl fmt::Debug for LocalStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalStore")
            .field("max_entries", &self.max_entries)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

impl CacheStore for LocalStore {
    fn get(&self, key: &str) -> StoreFuture<Option<Bytes>> {
        let v = self.cache.get(key).map(|s| s.value);
        Box::pin(future::ready(Ok(v)))
    }

    fn put(&self, key: &str, value: Bytes, ttl: Duration) -> StoreFuture<()> {
        if !ttl.is_zero() {
            self.cache.insert(key.to_owned(), Stored { value, ttl });
        }
        Box::pin(future::ready(Ok(())))
    }

    fn kind(&self) -> &'static str {
        "local"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stores_and_expires_per_entry() {
        let s = LocalStore::new(10, 1 << 20);
        s.put(
            "short",
            Bytes::from_static(b"a"),
            Duration::from_millis(150),
        )
        .await
        .unwrap();
        s.put("long", Bytes::from_static(b"b"), Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(s.get("short").await.unwrap().as_deref(), Some(&b"a"[..]));
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(s.get("short").await.unwrap(), None);
        assert_eq!(s.get("long").await.unwrap().as_deref(), Some(&b"b"[..]));
        assert_eq!(s.get("absent").await.unwrap(), None);
    }

    #[tokio::test]
    async fn bounded_by_entries_and_by_bytes() {
        let by_count = LocalStore::new(3, 1 << 20);
        for i in 0..20 {
            by_count
                .put(
                    &format!("k{i}"),
                    Bytes::from_static(b"x"),
                    Duration::from_secs(60),
                )
                .await
                .unwrap();
        }
        assert!(by_count.entry_count() <= 3, "{}", by_count.entry_count());

        let by_bytes = LocalStore::new(1000, 10_000);
        for i in 0..20 {
            by_bytes
                .put(
                    &format!("k{i}"),
                    Bytes::from(vec![0u8; 2_000]),
                    Duration::from_secs(60),
                )
                .await
                .unwrap();
        }
        assert!(by_bytes.entry_count() <= 5, "{}", by_bytes.entry_count());
    }
}
