//! Which [`BudgetLedger`] holds the keys' budgets, and how a request's cost is estimated for
//! it (see `docs/keys.md`, "Budgets across instances"):
//!
//! - Redis when `router_settings` names one (the rate limiter's Redis): every instance that
//!   names it shares budgets, at one round trip per budgeted request.
//! - Else PostgreSQL when `database_url` is one: every instance on it shares budgets (a short
//!   transaction per budgeted request).
//! - Else memory: one instance (the SQLite default).
//!
//! The estimate is the one the rate limiter reserves (`llmgate_ratelimit::tokens::reserve`:
//! the prompt counted, plus `max_completion_tokens` or `max_tokens` times `n`), priced at the
//! highest input and output prices among the model group's deployments.

pub(crate) mod proxy;
mod redis;

use std::collections::HashMap;
use std::sync::Arc;

#[cfg(feature = "sql")]
use llmgate_auth::{Admission, Budget, StoreError};
use llmgate_auth::{BudgetLedger, CostEstimate, MemoryLedger};
use llmgate_config::Config;
use llmgate_core::{tokens, DeploymentSpec, LlmRequest};
use llmgate_metering::PriceTable;
#[cfg(feature = "sql")]
use tokio::runtime::Handle;

use crate::gateway::BuildError;
use crate::live::{GroupPrices, Live};

/// Prefix of the ledger's Redis keys.
const REDIS_PREFIX: &str = "llmgate:budget:";

/// The ledger for `config`: see the module docs. `database` is the database's own ledger, when
/// it has one ([`database_ledger`]).
pub(crate) fn ledger(
    config: &Config,
    database: Option<Arc<dyn BudgetLedger>>,
) -> Result<Arc<dyn BudgetLedger>, BuildError> {
    if let Some(url) = crate::build::ratelimit::redis_url(config) {
        let prefix = config
            .general_settings
            .llmgate_rate_limit_redis_prefix
            .as_ref()
            .map_or_else(|| REDIS_PREFIX.to_owned(), |p| format!("{p}budget:"));
        return redis::RedisLedger::new(&url, prefix)
            .map(|l| l as Arc<dyn BudgetLedger>)
            .map_err(|e| BuildError::RateLimit(format!("router_settings.redis_*: {e}")));
    }
    Ok(database.unwrap_or_else(|| Arc::new(MemoryLedger::new())))
}

/// PostgreSQL's ledger when `db` is PostgreSQL (SQLite has none: one instance keeps budgets in
/// memory), its calls run on the database's runtime.
#[cfg(feature = "sql")]
pub(crate) fn database_ledger(db: &crate::store::Database) -> Option<Arc<dyn BudgetLedger>> {
    let pg = db.store().budget_ledger()?;
    Some(Arc::new(OnRuntime {
        inner: Arc::new(pg),
        handle: db.handle().clone(),
    }))
}

/// Each group's highest input and output price per token, from the price table (installed in
/// [`Live`] with the stack it was built for).
pub(crate) fn group_prices(
    prices: &PriceTable,
    deployments: &[Arc<DeploymentSpec>],
) -> GroupPrices {
    let mut by_group: GroupPrices = HashMap::new();
    for d in deployments {
        if let Some(p) = prices.price(d) {
            let e = by_group.entry(d.model_name.clone()).or_default();
            e.0 = e.0.max(p.input_cost_per_token.unwrap_or(0.0));
            e.1 = e.1.max(p.output_cost_per_token.unwrap_or(0.0));
        }
    }
    by_group
}

/// Prices a request by its group's dearest deployment in the config running now (0 while
/// prices are unknown).
pub(crate) fn estimator(live: Arc<Live>) -> CostEstimate {
    Arc::new(move |req: &LlmRequest| {
        let Some((input, output)) = live.group_price(req.model()) else {
            return 0.0;
        };
        let prompt = tokens::prompt_tokens(req, req.model());
        let allowance = llmgate_ratelimit::tokens::reserve(req).saturating_sub(prompt);
        prompt as f64 * input + allowance as f64 * output
    })
}

/// A ledger whose calls run on the database's runtime (as the key store's do).
#[cfg(feature = "sql")]
#[derive(Debug)]
struct OnRuntime {
    inner: Arc<dyn BudgetLedger>,
    handle: Handle,
}

#[cfg(feature = "sql")]
fn failed(e: tokio::task::JoinError) -> StoreError {
    StoreError::Unavailable(format!("budget ledger task failed: {e}"))
}

#[cfg(feature = "sql")]
#[async_trait::async_trait]
impl BudgetLedger for OnRuntime {
    async fn reserve(&self, budgets: &[Budget], estimate: f64) -> Result<Admission, StoreError> {
        let (inner, budgets) = (self.inner.clone(), budgets.to_vec());
        self.handle
            .spawn(async move { inner.reserve(&budgets, estimate).await })
            .await
            .map_err(failed)?
    }

    async fn settle(&self, budgets: &[Budget], estimate: f64, cost: f64) -> Result<(), StoreError> {
        let (inner, budgets) = (self.inner.clone(), budgets.to_vec());
        self.handle
            .spawn(async move { inner.settle(&budgets, estimate, cost).await })
            .await
            .map_err(failed)?
    }

    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
}
