//! [`Keys`]: virtual-key lookups for the request path, through a bounded, short-lived cache in
//! front of a [`KeyStore`].
//!
//! A request's key is hashed, looked up in the cache and, on a miss, in the store (concurrent
//! misses for one key make one store call). Entries live `ttl` (10 s by default); a change made
//! through this instance, or announced by another instance through the store's
//! [`KeyStore::subscribe`], drops the entry at once. Spend charged through this instance is
//! added to the cached entry as well, so a key's budget holds here without waiting for the TTL;
//! spend charged by other instances is seen when the entry is reloaded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use llmgate_core::{ModelAccess, ResolveModel, SharedClock, SystemClock, VirtualKey};
use moka::future::Cache;

use crate::hold::EndUserBudget;
use crate::teams::{EndUsers, TeamView, Teams, UserView, Users, TEAM_INVALIDATION_PREFIX};

/// The prefix of an end user's id on the key store's invalidation feed.
pub const END_USER_INVALIDATION_PREFIX: &str = "end_user:";
use crate::{Error, Invalidation, KeyStore, RecordStore, StoreError, BUDGET_INVALIDATION_PREFIX};

/// How long a looked-up key is trusted before it is read again.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(10);
/// How many keys the cache holds.
pub const DEFAULT_CACHE_CAPACITY: u64 = 100_000;

/// A key as cached: its record when loaded, plus what this instance charged it since.
#[derive(Debug)]
struct Entry {
    key: Arc<VirtualKey>,
    /// f64 bits: spend charged through this instance since the record was loaded.
    charged: AtomicU64,
}

impl Entry {
    fn spend(&self) -> f64 {
        self.key.spend + f64::from_bits(self.charged.load(Ordering::Relaxed))
    }

    fn charge(&self, cost: f64) {
        let _ = self
            .charged
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + cost).to_bits())
            });
    }
}

/// Virtual keys for the auth layer: a store and the cache in front of it. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Keys {
    pub(crate) store: Arc<dyn KeyStore>,
    /// `None` caches "no such key", so a flood of wrong keys does not reach the store.
    cache: KeyCache,
    pub(crate) clock: SharedClock,
    pub(crate) allow_on_store_error: bool,
    /// Budgets as every instance sees them (see `ledger.rs`); `None`: the cached record only.
    budgets: Option<crate::hold::Budgets>,
    /// Where budget thresholds are told (see `tell.rs`).
    budget_events: crate::tell::BudgetEvents,
    /// The teams keys belong to, when the store keeps them.
    teams: Option<Teams>,
    /// The end users requests name, in the same store.
    end_users: Option<EndUsers>,
    /// The internal users keys belong to, in the same store.
    pub(crate) users: Option<Users>,
    /// `litellm_settings.max_end_user_budget`: an end user's budget when it has none of its own.
    end_user_budget: Option<f64>,
    ttl: Duration,
}

/// The request's end user as the auth layer holds it.
#[derive(Debug, Clone, Default)]
pub struct EndUserFound {
    /// Its budget (its own, else `max_end_user_budget`), when it has one.
    pub budget: Option<EndUserBudget>,
    /// The end user, when it has rpm/tpm/parallel limits (for the rate limiter).
    pub limited: Option<Arc<llmgate_core::EndUser>>,
}

/// A key that may be used now, and its team when it belongs to a stored one.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The key.
    pub key: Arc<VirtualKey>,
    /// Its team (a `team_id` naming no stored team is a label only, as before teams existed).
    pub team: Option<TeamView>,
    /// Its user (a `user_id` naming no stored user is a label only, as before users existed).
    pub user: Option<UserView>,
    /// The model group the requested name is an alias of (the key's `aliases`, else its
    /// team's `model_aliases`): the request goes there.
    pub alias: Option<String>,
}

impl Keys {
    /// Keys from `store`, cached for [`DEFAULT_CACHE_TTL`].
    pub fn new(store: Arc<dyn KeyStore>) -> Self {
        Keys {
            store,
            cache: build_cache(DEFAULT_CACHE_TTL, DEFAULT_CACHE_CAPACITY),
            clock: Arc::new(SystemClock),
            allow_on_store_error: false,
            budgets: None,
            budget_events: crate::tell::BudgetEvents::default(),
            teams: None,
            end_users: None,
            users: None,
            end_user_budget: None,
            ttl: DEFAULT_CACHE_TTL,
        }
    }

    /// Holds keys with a `team_id` to the team of that id in `store` (its models, budget and
    /// limits), when there is one.
    pub fn with_teams(mut self, store: Arc<dyn RecordStore>) -> Self {
        self.end_users = Some(EndUsers::new(store.clone(), self.ttl));
        self.users = Some(Users::new(store.clone(), self.ttl));
        self.teams = Some(Teams::new(store, self.ttl));
        self
    }

    /// Holds every end user without a budget of its own to `max` USD
    /// (`litellm_settings.max_end_user_budget`).
    pub fn with_end_user_budget(mut self, max: Option<f64>) -> Self {
        self.end_user_budget = max;
        self
    }

    /// The end users, when the store keeps them.
    pub fn end_users(&self) -> Option<&EndUsers> {
        self.end_users.as_ref()
    }

    /// The end user `id` named by a request, checked: not blocked, within its budget (its own,
    /// else `max_end_user_budget`). The budget to hold the request to, if it has one.
    pub async fn end_user(&self, id: &str) -> Result<EndUserFound, Error> {
        let Some(users) = &self.end_users else {
            return Ok(EndUserFound::default());
        };
        let now = self.clock.now();
        let view = match users.get(id, now).await {
            Ok(v) => v,
            Err(e) if self.allow_on_store_error => {
                tracing::warn!(error = %e, "end-user store unavailable; judging the request without its end user (allow_requests_on_db_unavailable)");
                return Ok(EndUserFound::default());
            }
            Err(e) => return Err(Error::StoreUnavailable(e.to_string())),
        };
        let (spend, own, reset_at) = match &view {
            Some(v) if v.item.blocked => return Err(Error::EndUserBlocked(id.to_owned())),
            Some(v) => (v.spend, v.item.max_budget, v.item.budget_reset_at),
            None => (0.0, None, None),
        };
        let limited = view
            .as_ref()
            .filter(|v| v.item.has_limits())
            .map(|v| v.item.clone());
        let Some(max) = own.or(self.end_user_budget) else {
            return Ok(EndUserFound {
                budget: None,
                limited,
            });
        };
        if spend >= max {
            return Err(Error::EndUserBudgetExceeded {
                end_user: id.to_owned(),
                spend,
                max_budget: max,
            });
        }
        Ok(EndUserFound {
            budget: Some(EndUserBudget {
                id: id.to_owned(),
                max,
                spend,
                reset_at,
            }),
            limited,
        })
    }

    /// Records `cost` USD against the end user in this instance's cache (and tells when it
    /// crosses its soft budget).
    pub async fn note_end_user_spend(&self, id: &str, cost: f64) {
        let Some(users) = &self.end_users else {
            return;
        };
        if let Some((user, before, after)) = users.note_spend(id, cost).await {
            let owner = || crate::tell::end_user_owner(id);
            self.budget_events
                .soft(user.soft_budget, before, after, owner);
        }
    }

    /// The teams, when the store keeps them.
    pub fn teams(&self) -> Option<&Teams> {
        self.teams.as_ref()
    }

    /// Holds keys with a budget to `ledger`: each request reserves `estimate`'s USD for it when
    /// admitted and settles its real cost when it ends (see [`crate::BudgetLedger`]).
    pub fn with_budget_ledger(
        mut self,
        ledger: Arc<dyn crate::BudgetLedger>,
        estimate: crate::CostEstimate,
    ) -> Self {
        self.budgets = Some(crate::hold::Budgets::new(ledger, estimate));
        self
    }

    /// Holds requests to `budgets` (its ledger, estimate and the gateway's own budget, if it
    /// has one): [`Keys::with_budget_ledger`] with a [`crate::ProxyBudget`].
    pub fn with_budgets(mut self, budgets: crate::hold::Budgets) -> Self {
        self.budgets = Some(budgets);
        self
    }

    /// Tells `events` when spend charged here takes a key past `percent` % of its
    /// `max_budget`, and when it reaches it (see [`llmgate_core::events::Event::BudgetThreshold`]).
    pub fn with_events(mut self, events: llmgate_core::events::Events, percent: u8) -> Self {
        self.budget_events = crate::tell::BudgetEvents {
            events,
            percent: percent.clamp(1, 99),
        };
        self
    }

    /// The budget ledger, if any.
    pub fn budget_ledger(&self) -> Option<&crate::hold::Budgets> {
        self.budgets.as_ref()
    }

    /// How long a looked-up key is trusted (`general_settings.user_api_key_cache_ttl`).
    pub fn with_cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache = build_cache(ttl, DEFAULT_CACHE_CAPACITY);
        self.ttl = ttl;
        if let Some(t) = self.teams.take() {
            self.end_users = Some(EndUsers::new(t.store().clone(), ttl));
            self.users = Some(Users::new(t.store().clone(), ttl));
            self.teams = Some(Teams::new(t.store().clone(), ttl));
        }
        self
    }

    /// The clock expiry and budget periods are judged by.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Let requests through when the store cannot be reached
    /// (`general_settings.allow_requests_on_db_unavailable`). Such a request runs as a key
    /// without limits; the default is to refuse it with a 503.
    pub fn allow_requests_on_store_error(mut self, allow: bool) -> Self {
        self.allow_on_store_error = allow;
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn KeyStore> {
        &self.store
    }

    /// The clock.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Resolves a presented secret to its key, checking that it may be used now: not deleted,
    /// blocked or expired, within budget and (when `model` is given) allowed that model.
    /// `group` is the model group `model` resolves to (an alias's target, or the catch-all),
    /// when known: LiteLLM's rule lets a key call a name when either is on its list
    /// ([`ModelAccess::permits`]).
    pub async fn authenticate(
        &self,
        secret: &str,
        model: Option<&str>,
        resolver: Option<&dyn ResolveModel>,
    ) -> Result<Authenticated, Error> {
        let token = crate::hash_key(secret);
        let entry = match self.lookup(&token).await {
            Ok(Some(e)) => e,
            Ok(None) => return Err(Error::InvalidKey),
            Err(e) if self.allow_on_store_error => {
                tracing::warn!(error = %e, "key store unavailable; letting the request through (allow_requests_on_db_unavailable)");
                return Ok(Authenticated {
                    key: Arc::new(VirtualKey {
                        token,
                        ..VirtualKey::default()
                    }),
                    team: None,
                    user: None,
                    alias: None,
                });
            }
            Err(e) => return Err(Error::StoreUnavailable(e.to_string())),
        };
        let key = &entry.key;
        let now = self.clock.now();
        if key.blocked {
            return Err(Error::Blocked);
        }
        if let Some(at) = key.expires.filter(|_| key.expired(now)) {
            return Err(Error::Expired(at));
        }
        let team = self.team_of(key, now).await?;
        // A name the key (or its team) aliases is judged, and routed, as the group it names.
        let alias = model
            .and_then(|m| crate::rules::alias(key, team.as_ref().map(|t| &*t.item), m))
            .map(str::to_owned);
        let model = alias.as_deref().or(model);
        let group = model.zip(resolver).and_then(|(m, r)| r.resolve_group(m));
        self.check_key(&entry, model, group.as_deref())?;
        if let Some(team) = &team {
            check_team(team, model, group.as_deref())?;
        }
        let user = self.user_of(key, now).await?;
        if let Some(user) = &user {
            crate::users::check_user(user, model, group.as_deref())?;
        }
        Ok(Authenticated {
            key: key.clone(),
            team,
            user,
            alias,
        })
    }

    /// The key's models and budgets, for `model` (resolving to `group`).
    fn check_key(
        &self,
        entry: &Entry,
        model: Option<&str>,
        group: Option<&str>,
    ) -> Result<(), Error> {
        let key = &entry.key;
        if let Some(model) = model {
            let group = group.unwrap_or(model);
            if !ModelAccess::new(key.clone()).permits(model, group) {
                return Err(Error::ModelNotAllowed {
                    model: model.to_string(),
                    allowed: key.models.clone(),
                });
            }
            if let Some(max) = key.model_max_budget.get(model) {
                let spend = key.model_spend.get(model).copied().unwrap_or(0.0);
                if spend >= *max {
                    return Err(Error::ModelBudgetExceeded {
                        model: model.to_string(),
                        spend,
                        max_budget: *max,
                    });
                }
            }
        }
        if let Some(max) = key.max_budget {
            let spend = entry.spend();
            if spend >= max {
                self.budget_events.exhausted(key, spend);
                return Err(Error::BudgetExceeded {
                    spend,
                    max_budget: max,
                    reset_at: key.budget_reset_at,
                });
            }
        }
        Ok(())
    }

    /// The key's team, when it names a stored one.
    async fn team_of(&self, key: &VirtualKey, now: i64) -> Result<Option<TeamView>, Error> {
        let (Some(teams), Some(id)) = (&self.teams, &key.team_id) else {
            return Ok(None);
        };
        match teams.get(id, now).await {
            Ok(v) => Ok(v),
            Err(e) if self.allow_on_store_error => {
                tracing::warn!(error = %e, team = %id, "team store unavailable; judging the key without its team (allow_requests_on_db_unavailable)");
                Ok(None)
            }
            Err(e) => Err(Error::StoreUnavailable(e.to_string())),
        }
    }

    /// The key with this token, from the cache or the store; resets its spend first when its
    /// budget period has ended.
    async fn lookup(&self, token: &str) -> Result<Option<Arc<Entry>>, StoreError> {
        let entry = self
            .cache
            .try_get_with_by_ref(token, self.load(token))
            .await
            .map_err(|e: Arc<StoreError>| StoreError::Unavailable(e.to_string()))?;
        let now = self.clock.now();
        match entry {
            Some(e) if e.key.budget_due(now) => {
                let next = e.key.next_budget_reset(now).unwrap_or(i64::MAX);
                self.store.reset_budget(token, now, next).await?;
                self.cache.invalidate(token).await;
                let fresh = self.load(token).await?;
                self.cache.insert(token.to_string(), fresh.clone()).await;
                Ok(fresh)
            }
            other => Ok(other),
        }
    }

    /// The key with this token from the store, with the limits of the budget object it links
    /// to (where it sets none itself).
    async fn load(&self, token: &str) -> Result<Option<Arc<Entry>>, StoreError> {
        let Some(mut key) = self.store.get(token).await? else {
            return Ok(None);
        };
        let records = self.teams.as_ref().map(|t| t.store());
        if let (Some(id), Some(records)) = (key.extras.budget_id.clone(), records) {
            if let Some(budget) = crate::budgets::linked_budget(records, &id).await? {
                budget.apply_to_key(&mut key);
            }
        }
        Ok(Some(Arc::new(Entry {
            key: Arc::new(key),
            charged: AtomicU64::new(0f64.to_bits()),
        })))
    }

    /// Records `cost` USD against the key in this instance's cache (the store is charged by
    /// whoever writes the spend: [`Keys::charge`] or the metering sink).
    pub async fn note_spend(&self, token: &str, cost: f64) {
        if let Some(Some(entry)) = self.cache.get(token).await {
            let before = entry.spend();
            entry.charge(cost);
            self.budget_events
                .charged(&entry.key, before, entry.spend());
        }
    }

    /// Charges `cost` USD to the key (and to its spend on `model`) in the store and here.
    pub async fn charge(&self, token: &str, model: &str, cost: f64) -> Result<(), StoreError> {
        self.store.add_spend(token, model, cost).await?;
        self.note_spend(token, cost).await;
        Ok(())
    }

    /// Records `cost` USD against the team in this instance's cache (and tells when it
    /// crosses its soft budget).
    pub async fn note_team_spend(&self, team_id: &str, cost: f64) {
        let Some(teams) = &self.teams else {
            return;
        };
        if let Some((team, before, after)) = teams.note_spend(team_id, cost).await {
            let owner = || crate::tell::team_owner(team_id);
            self.budget_events
                .soft(team.soft_budget, before, after, owner);
        }
    }

    /// Forgets a team here and tells other instances to forget it: call after changing it.
    pub async fn team_changed(&self, team_id: &str) {
        if let Some(teams) = &self.teams {
            teams.forget(team_id).await;
        }
        let name = format!("{TEAM_INVALIDATION_PREFIX}{team_id}");
        if let Err(e) = self.store.publish(&name).await {
            tracing::warn!(error = %e, "could not tell other instances that a team changed; they see it within the cache TTL");
        }
    }

    /// Forgets an end user here and tells other instances to forget it: call after changing it.
    pub async fn end_user_changed(&self, id: &str) {
        if let Some(users) = &self.end_users {
            users.forget(id).await;
        }
        let name = format!("{END_USER_INVALIDATION_PREFIX}{id}");
        if let Err(e) = self.store.publish(&name).await {
            tracing::warn!(error = %e, "could not tell other instances that an end user changed; they see it within the cache TTL");
        }
    }

    /// Forgets every key, team and end user linked to the budget object `budget_id` here and
    /// tells other instances to forget them: call after changing the budget.
    pub async fn budget_changed(&self, budget_id: &str) {
        self.forget_budget(budget_id);
        let name = format!("{BUDGET_INVALIDATION_PREFIX}{budget_id}");
        if let Err(e) = self.store.publish(&name).await {
            tracing::warn!(error = %e, "could not tell other instances that a budget changed; they see it within the cache TTL");
        }
    }

    /// Forgets, here, every cached object linked to the budget `budget_id`.
    fn forget_budget(&self, budget_id: &str) {
        let id = budget_id.to_owned();
        let linked = self.cache.invalidate_entries_if(move |_, v| {
            v.as_ref()
                .is_some_and(|e| e.key.extras.budget_id.as_deref() == Some(id.as_str()))
        });
        if linked.is_err() {
            self.cache.invalidate_all();
        }
        if let Some(t) = &self.teams {
            t.forget_linked(budget_id);
        }
        if let Some(u) = &self.end_users {
            u.forget_linked(budget_id);
        }
    }

    /// Forgets a key here and tells other instances to forget it: call after changing it.
    pub async fn changed(&self, token: &str) {
        self.cache.invalidate(token).await;
        if let Err(e) = self.store.publish(token).await {
            tracing::warn!(error = %e, "could not tell other instances that a key changed; they see it within the cache TTL");
        }
    }

    /// Forgets every cached key (tests, and after a lost invalidation feed).
    pub fn forget_all(&self) {
        self.cache.invalidate_all();
        if let Some(t) = &self.teams {
            t.forget_all();
        }
        if let Some(u) = &self.end_users {
            u.forget_all();
        }
        if let Some(u) = &self.users {
            u.forget_all();
        }
    }

    /// Follows the store's invalidations from other instances until the feed ends. Spawn it once,
    /// inside the runtime that serves requests; does nothing for a store no one else shares.
    pub async fn follow_invalidations(self) {
        let Some(mut feed) = self.store.subscribe() else {
            return;
        };
        while let Some(change) = feed.next().await {
            match change {
                Invalidation::Token(token) if self.forget_user(&token).await => {}
                Invalidation::Token(token) => {
                    if let Some(budget) = token.strip_prefix(BUDGET_INVALIDATION_PREFIX) {
                        self.forget_budget(budget);
                        continue;
                    }
                    match (token.strip_prefix(TEAM_INVALIDATION_PREFIX), &self.teams) {
                        (Some(team), Some(teams)) => teams.forget(team).await,
                        _ => match (
                            token.strip_prefix(END_USER_INVALIDATION_PREFIX),
                            &self.end_users,
                        ) {
                            (Some(user), Some(users)) => users.forget(user).await,
                            _ => self.cache.invalidate(&token).await,
                        },
                    }
                }
                Invalidation::All => self.forget_all(),
            }
        }
    }
}

/// The team, checked as the key is: not blocked, allowed `model`, within budget.
fn check_team(view: &TeamView, model: Option<&str>, group: Option<&str>) -> Result<(), Error> {
    let team = &view.item;
    if team.blocked {
        return Err(Error::TeamBlocked(team.team_id.clone()));
    }
    if let Some(model) = model {
        let group = group.unwrap_or(model);
        if !(team.allows_model(model) || team.allows_model(group)) {
            return Err(Error::TeamModelNotAllowed {
                team_id: team.team_id.clone(),
                model: model.to_string(),
                allowed: team.models.clone(),
            });
        }
    }
    if let Some(max) = team.max_budget.filter(|max| view.spend >= *max) {
        return Err(Error::TeamBudgetExceeded {
            team_id: team.team_id.clone(),
            spend: view.spend,
            max_budget: max,
            reset_at: team.budget_reset_at,
        });
    }
    Ok(())
}

/// Keys by token hash, in foldhash (random seed): SipHash cost 330 instructions a lookup.
type KeyCache = Cache<String, Option<Arc<Entry>>, foldhash::fast::RandomState>;

fn build_cache(ttl: Duration, capacity: u64) -> KeyCache {
    Cache::builder()
        .max_capacity(capacity)
        .support_invalidation_closures()
        // moka panics on a time to live over 1,000 years: hold it to the gateway's bound.
        .time_to_live(ttl.min(Duration::from_secs(llmgate_core::seconds::MAX_SECONDS)))
        .build_with_hasher(foldhash::fast::RandomState::default())
}
