//! [`RecordCache`]: records for the request path (the teams keys belong to, [`Teams`]; the end
//! users requests name, [`EndUsers`]) through a short-lived cache in front of a
//! [`RecordStore`], as [`crate::Keys`] does for keys.
//!
//! A team is looked up when one of its keys is used (concurrent misses make one store call) and
//! trusted for the key cache's TTL; a change made here, or announced by another instance
//! (`team:<id>` on the key store's invalidation feed), drops it at once. Spend charged through
//! this instance is added to the cached entry, so a team's budget holds here at once; other
//! instances' spend is seen on reload, and across instances the budget ledger holds it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use llmgate_core::{EndUser, Team, User};
use moka::future::Cache;

use crate::{Record, RecordKind, RecordStore, StoreError};

/// The prefix of a team's id on the key store's invalidation feed (key tokens are hex, so it
/// cannot collide with one).
pub const TEAM_INVALIDATION_PREFIX: &str = "team:";

/// What a record cache holds: an object kept as a [`Record`] with a budget period.
pub trait Cached: Send + Sync + std::fmt::Debug + Sized + 'static {
    /// Its kind of record.
    const KIND: RecordKind;
    /// The object a record holds.
    fn from_record(r: &Record) -> Result<Self, StoreError>;
    /// Its stored spend.
    fn stored_spend(&self) -> f64;
    /// Whether its budget period ended at `now`.
    fn due(&self, now: i64) -> bool;
    /// Its next reset after `now`.
    fn next_reset(&self, now: i64) -> Option<i64>;
}

/// `Cached` for a type with `spend`, `budget_due` and `next_budget_reset`, read by `$read`.
macro_rules! cached {
    ($t:ty, $kind:expr, $read:ident) => {
        impl Cached for $t {
            const KIND: RecordKind = $kind;
            fn from_record(r: &Record) -> Result<Self, StoreError> {
                r.$read()
            }
            fn stored_spend(&self) -> f64 {
                self.spend
            }
            fn due(&self, now: i64) -> bool {
                self.budget_due(now)
            }
            fn next_reset(&self, now: i64) -> Option<i64> {
                self.next_budget_reset(now)
            }
        }
    };
}
cached!(Team, RecordKind::Team, to_team);
cached!(EndUser, RecordKind::EndUser, to_end_user);
cached!(User, RecordKind::User, to_user);

/// An object as cached: its record when loaded, plus what this instance charged it since.
#[derive(Debug)]
struct Entry<T> {
    item: Arc<T>,
    /// f64 bits: spend charged through this instance since the record was loaded.
    charged: AtomicU64,
}

impl<T: Cached> Entry<T> {
    fn new(item: T) -> Arc<Entry<T>> {
        Arc::new(Entry {
            item: Arc::new(item),
            charged: AtomicU64::new(0f64.to_bits()),
        })
    }

    fn spend(&self) -> f64 {
        self.item.stored_spend() + f64::from_bits(self.charged.load(Ordering::Relaxed))
    }
}

/// An object as the request sees it: its settings and its spend as this instance knows it.
#[derive(Debug, Clone)]
pub struct View<T> {
    /// The object.
    pub item: Arc<T>,
    /// USD spent in its current period (the stored spend plus what this instance charged).
    pub spend: f64,
}

/// A key's team as the request sees it.
pub type TeamView = View<Team>;
/// A request's end user as the request sees it.
pub type EndUserView = View<EndUser>;
/// The teams keys belong to.
pub type Teams = RecordCache<Team>;
/// The end users requests name.
pub type EndUsers = RecordCache<EndUser>;
/// A key's user as the request sees it.
pub type UserView = View<User>;
/// The internal users keys belong to.
pub type Users = RecordCache<User>;

/// Records of one kind for the auth layer: a record store and the cache in front of it. Cheap
/// to clone.
pub struct RecordCache<T> {
    store: Arc<dyn RecordStore>,
    cache: Cache<String, Option<Arc<Entry<T>>>>,
}

impl<T: Cached> std::fmt::Debug for RecordCache<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordCache")
            .field("kind", &T::KIND)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl<T: Cached> Clone for RecordCache<T> {
    fn clone(&self) -> Self {
        RecordCache {
            store: self.store.clone(),
            cache: self.cache.clone(),
        }
    }
}

impl<T: Cached> RecordCache<T> {
    /// Records from `store`, each trusted for `ttl`.
    pub fn new(store: Arc<dyn RecordStore>, ttl: Duration) -> Self {
        RecordCache {
            store,
            cache: Cache::builder()
                .max_capacity(crate::DEFAULT_CACHE_CAPACITY)
                .time_to_live(ttl.min(Duration::from_secs(llmgate_core::seconds::MAX_SECONDS)))
                .build(),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn RecordStore> {
        &self.store
    }

    /// The object `id`, from the cache or the store; its spend reset first when its budget
    /// period ended at `now`. `None` when there is no such record.
    pub async fn get(&self, id: &str, now: i64) -> Result<Option<View<T>>, StoreError> {
        let store = &self.store;
        let entry = self
            .cache
            .try_get_with_by_ref(id, async {
                let rec = store.get_record(T::KIND, id).await?;
                rec.map(|r| T::from_record(&r).map(Entry::new)).transpose()
            })
            .await
            .map_err(|e: Arc<StoreError>| StoreError::Unavailable(e.to_string()))?;
        let entry = match entry {
            Some(e) if e.item.due(now) => {
                let next = e.item.next_reset(now).unwrap_or(i64::MAX);
                store.reset_record_budget(T::KIND, id, now, next).await?;
                let fresh = store
                    .get_record(T::KIND, id)
                    .await?
                    .map(|r| T::from_record(&r).map(Entry::new))
                    .transpose()?;
                self.cache.insert(id.to_string(), fresh.clone()).await;
                fresh
            }
            other => other,
        };
        Ok(entry.map(|e| View {
            spend: e.spend(),
            item: e.item.clone(),
        }))
    }

    /// Records `cost` USD against the object in this instance's cache (the store is charged
    /// with the spend log).
    pub async fn note_spend(&self, id: &str, cost: f64) {
        if let Some(Some(entry)) = self.cache.get(id).await {
            let _ = entry
                .charged
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                    Some((f64::from_bits(bits) + cost).to_bits())
                });
        }
    }

    /// Forgets the object here (call after changing it; [`crate::Keys::team_changed`] also
    /// tells other instances).
    pub async fn forget(&self, id: &str) {
        self.cache.invalidate(id).await;
    }

    /// Forgets every cached object.
    pub fn forget_all(&self) {
        self.cache.invalidate_all();
    }
}

/// The fields of a [`Team`] (and an [`EndUser`]) kept outside its record's document.
const OUTSIDE_DOC: [&str; 6] = [
    "user_id",
    "team_id",
    "spend",
    "budget_reset_at",
    "created_at",
    "updated_at",
];

impl Record {
    /// The record of an object whose id, spend and times are columns: `doc` is the rest.
    fn outside_doc(
        id: &str,
        item: &impl serde::Serialize,
        spend: f64,
        budget_reset_at: Option<i64>,
        (created_at, updated_at): (i64, i64),
    ) -> Record {
        let mut doc = serde_json::to_value(item).unwrap_or(serde_json::Value::Null);
        if let Some(m) = doc.as_object_mut() {
            for k in OUTSIDE_DOC {
                m.remove(k);
            }
        }
        Record {
            id: id.to_owned(),
            doc,
            spend,
            budget_reset_at,
            created_at,
            updated_at,
        }
    }

    /// The document as a `what` (for the message when it is not one).
    fn doc_as<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T, StoreError> {
        serde_json::from_value(self.doc.clone())
            .map_err(|e| StoreError::Unavailable(format!("{what} {:?} is not valid: {e}", self.id)))
    }

    /// The record of `team`.
    pub fn of_team(t: &Team) -> Record {
        let times = (t.created_at, t.updated_at);
        Record::outside_doc(&t.team_id, t, t.spend, t.budget_reset_at, times)
    }

    /// The record of `end_user`.
    pub fn of_end_user(u: &EndUser) -> Record {
        let times = (u.created_at, u.updated_at);
        Record::outside_doc(&u.user_id, u, u.spend, u.budget_reset_at, times)
    }

    /// The record of `user`.
    pub fn of_user(u: &User) -> Record {
        let times = (u.created_at, u.updated_at);
        Record::outside_doc(&u.user_id, u, u.spend, u.budget_reset_at, times)
    }

    /// The user this record holds.
    pub fn to_user(&self) -> Result<User, StoreError> {
        Ok(User {
            user_id: self.id.clone(),
            spend: self.spend,
            budget_reset_at: self.budget_reset_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
            ..self.doc_as("user")?
        })
    }

    /// The end user this record holds.
    pub fn to_end_user(&self) -> Result<EndUser, StoreError> {
        Ok(EndUser {
            user_id: self.id.clone(),
            spend: self.spend,
            budget_reset_at: self.budget_reset_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
            ..self.doc_as("end user")?
        })
    }

    /// The team this record holds.
    pub fn to_team(&self) -> Result<Team, StoreError> {
        Ok(Team {
            team_id: self.id.clone(),
            spend: self.spend,
            budget_reset_at: self.budget_reset_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
            ..self.doc_as("team")?
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryRecordStore;

    #[test]
    fn a_team_round_trips_through_its_record() {
        let team = Team {
            team_id: "t1".into(),
            team_alias: Some("search".into()),
            models: vec!["gpt-4o".into()],
            spend: 1.5,
            max_budget: Some(10.0),
            budget_reset_at: Some(100),
            rpm_limit: Some(5),
            created_at: 1,
            updated_at: 2,
            ..Team::default()
        };
        let rec = Record::of_team(&team);
        assert!(rec.doc.get("spend").is_none() && rec.doc.get("team_id").is_none());
        assert_eq!(rec.to_team().ok(), Some(team));
    }

    #[tokio::test]
    async fn a_due_team_is_reset_once_and_local_charges_count() {
        let store = Arc::new(MemoryRecordStore::new());
        let team = Team {
            team_id: "t".into(),
            spend: 3.0,
            max_budget: Some(5.0),
            budget_duration: Some(100),
            budget_reset_at: Some(1_000),
            ..Team::default()
        };
        store
            .insert_record(RecordKind::Team, &Record::of_team(&team))
            .await
            .unwrap();
        let teams = Teams::new(store.clone(), Duration::from_secs(60));
        let v = teams.get("t", 999).await.unwrap().unwrap();
        assert_eq!(v.spend, 3.0);
        teams.note_spend("t", 1.25).await;
        assert_eq!(teams.get("t", 999).await.unwrap().unwrap().spend, 4.25);
        let v = teams.get("t", 1_050).await.unwrap().unwrap();
        assert_eq!((v.spend, v.item.budget_reset_at), (0.0, Some(1_100)));
        assert!(teams.get("nope", 0).await.unwrap().is_none());
    }
}
