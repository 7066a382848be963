//! Turns `general_settings` into the auth layer's parts: the virtual keys ([`Keys`], over the
//! key store the builder was given, else memory) with their cache TTL, the
//! `allow_requests_on_db_unavailable` policy and the budget ledger; and the [`AuthLayer`] over
//! them. Without a master key there are no keys: every request passes auth.

use std::sync::Arc;

use llmgate_auth::{AuthLayer, BudgetLedger, Budgets, KeyStore, Keys, MemoryKeyStore};
use llmgate_config::Config;
use llmgate_core::SharedClock;
use llmgate_router::ModelTable;

use crate::live::Live;
use crate::BuildError;

/// The virtual keys, when there is a master key: over `store` (else in memory), judged by
/// `clock`, with budgets reserved in the configured ledger (Redis, else the database's
/// `ledger`, else memory) and priced by the groups' prices in the config running now (`live`).
/// Built once: it outlives config reloads (its cache with it).
pub(crate) fn keys(
    config: &Config,
    store: Option<Arc<dyn KeyStore>>,
    ledger: Option<Arc<dyn BudgetLedger>>,
    clock: SharedClock,
    live: &Arc<Live>,
) -> Result<Option<Keys>, BuildError> {
    if config.master_key().is_none() {
        return Ok(None);
    }
    let ledger = crate::budget::ledger(config, ledger)?;
    let store = store.unwrap_or_else(|| Arc::new(MemoryKeyStore::new()));
    let general = &config.general_settings;
    let mut keys = Keys::new(store)
        .with_clock(clock)
        .allow_requests_on_store_error(general.allow_requests_on_db_unavailable.unwrap_or(false));
    if let Some(ttl) = general.user_api_key_cache_ttl {
        keys = keys.with_cache_ttl(ttl);
    }
    let estimate = crate::budget::estimator(live.clone());
    Ok(Some(keys.with_budget_ledger(ledger, estimate)))
}

/// The auth layer: the master key, the virtual keys, and the model table a key's `models` are
/// judged by (the group a requested name resolves to, aliases included).
pub(crate) fn layer(
    config: &Config,
    table: &Arc<ModelTable>,
    keys: Option<&Keys>,
    proxy: Option<&Budgets>,
) -> AuthLayer {
    let mut auth = AuthLayer::new(config.master_key()).with_model_resolver(table.clone());
    if let Some(keys) = keys {
        auth = auth.with_keys(keys.clone());
    }
    if let Some(proxy) = proxy {
        auth = auth.with_proxy_budget(proxy.clone());
    }
    let headers = &config.general_settings.end_user_headers;
    if !headers.is_empty() {
        // Checked when the config was read.
        let names = headers
            .iter()
            .filter_map(|h| http::HeaderName::from_bytes(h.as_bytes()).ok());
        auth = auth.with_end_user_headers(names);
    }
    auth
}

/// [`keys`], and the gateway's own budget (`litellm_settings.max_budget`) in the same ledger,
/// which the keys then hold their requests to as well.
pub(crate) fn keys_and_budget(
    config: &Config,
    store: Option<Arc<dyn KeyStore>>,
    ledger: Option<Arc<dyn BudgetLedger>>,
    clock: SharedClock,
    live: &Arc<Live>,
) -> Result<(Option<Keys>, Option<Budgets>), BuildError> {
    let keys = keys(config, store, ledger.clone(), clock, live)?;
    let proxy = crate::budget::proxy::budgets(config, keys.as_ref(), ledger, live)?;
    let keys = match (keys, &proxy) {
        (Some(k), Some(p)) => Some(k.with_budgets(p.clone())),
        (k, _) => k,
    };
    Ok((keys, proxy))
}
