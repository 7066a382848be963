//! Handles of the metrics a finished request updates, cached per label set.
//!
//! A labelled metric is reached through its family: `Family::get_or_create` takes the family's
//! read lock, hashes the label set and compares it with the stored one, once per metric. A
//! request updates a dozen of them, all under the same few labels (its model group and
//! deployment; for LiteLLM's names also its key and model), which cost about 8,000
//! instructions a request (`bench/callgrind`, `docs/benchmarks.md`).
//!
//! A [`HandleCache`] keeps, per label set, a struct of the metrics' handles, so a request
//! hashes its labels once. A handle is a clone of the family's own metric (prometheus-client's
//! metrics are `Arc`s inside): updating it is updating the family's series. Each handle is
//! made on its first use ([`handle`]), through the family, so a series appears in `/metrics`
//! exactly when it did before: a deployment that never failed has no failure series.
//! The families that drop series (`deployment_state`) are not cached.
//!
//! The cache holds one entry per label set the families already hold, so it is bounded as they
//! are: by the config's names and the admin's keys.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, OnceLock, RwLock};

use prometheus_client::metrics::family::{Family, MetricConstructor};

/// Per label set `K`, an `Arc<H>` of handles, made once.
pub(crate) struct HandleCache<K, H> {
    map: RwLock<HashMap<K, Arc<H>, foldhash::fast::RandomState>>,
}

impl<K, H> Default for HandleCache<K, H> {
    fn default() -> Self {
        Self {
            map: RwLock::new(HashMap::default()),
        }
    }
}

impl<K: Hash + Eq + Clone, H: Default> HandleCache<K, H> {
    /// The handles for `key`, made empty on the first request with it.
    pub(crate) fn get(&self, key: &K) -> Arc<H> {
        // A poisoned lock only means a panic while inserting: the map is still whole.
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = map.get(key) {
            return h.clone();
        }
        drop(map);
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        map.entry(key.clone()).or_default().clone()
    }
}

/// The metric in `slot`, taken from `family` under `labels()` the first time.
pub(crate) fn handle<'a, S, M, C>(
    slot: &'a OnceLock<M>,
    family: &Family<S, M, C>,
    labels: impl FnOnce() -> S,
) -> &'a M
where
    S: Clone + Hash + Eq,
    M: Clone,
    C: MetricConstructor<M>,
{
    slot.get_or_init(|| family.get_or_create_owned(&labels()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::EncodeLabelSet;
    use prometheus_client::metrics::counter::Counter;

    #[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct L {
        name: String,
    }

    #[test]
    fn a_cached_handle_updates_the_familys_series() {
        let family = Family::<L, Counter>::default();
        let cache = HandleCache::<L, OnceLock<Counter>>::default();
        let key = L { name: "a".into() };
        for _ in 0..3 {
            handle(&cache.get(&key), &family, || key.clone()).inc();
        }
        assert_eq!(family.get_or_create(&key).get(), 3);
        assert!(Arc::ptr_eq(&cache.get(&key), &cache.get(&key)));
    }

    #[test]
    fn a_series_appears_only_once_used() {
        let family = Family::<L, Counter>::default();
        let cache = HandleCache::<L, OnceLock<Counter>>::default();
        let key = L { name: "b".into() };
        let _unused = cache.get(&key);
        assert!(family.get(&key).is_none());
        handle(&cache.get(&key), &family, || key.clone()).inc();
        assert_eq!(family.get(&key).map(|c| c.get()), Some(1));
    }
}
