//! The gateway's own budget, LiteLLM's `litellm_settings.max_budget` and `budget_duration`
//! (see `docs/cost-tracking.md`, "The gateway's budget"): every request is held to it, whoever
//! makes it, in the same ledger and the same reservation as a key's budgets (so it holds
//! across instances on one Redis or PostgreSQL), and its period's spend is read back from the
//! spend log at a start and every few seconds, so it survives restarts.

use std::sync::Arc;
#[cfg(feature = "sql")]
use std::time::Duration;

use llmgate_auth::{BudgetLedger, Budgets, Keys, ProxyBudget};
use llmgate_config::Config;

use crate::gateway::BuildError;
use crate::live::Live;
#[cfg(feature = "sql")]
use crate::store::Database;

/// How often the period's spend is read from the spend log.
#[cfg(feature = "sql")]
const REFRESH_EVERY: Duration = Duration::from_secs(5);

/// The budgets every request is held to when `config` sets `max_budget`: `keys`' own (one
/// ledger for both), else a ledger of their own.
pub(crate) fn budgets(
    config: &Config,
    keys: Option<&Keys>,
    database: Option<Arc<dyn BudgetLedger>>,
    live: &Arc<Live>,
) -> Result<Option<Budgets>, BuildError> {
    let settings = &config.litellm_settings;
    let Some(max) = settings.max_budget else {
        return Ok(None);
    };
    let duration = settings
        .budget_duration
        .as_deref()
        .and_then(llmgate_core::seconds::parse_duration);
    let base = match keys.and_then(Keys::budget_ledger) {
        Some(b) => b.clone(),
        None => Budgets::new(
            super::ledger(config, database)?,
            super::estimator(live.clone()),
        ),
    };
    Ok(Some(
        base.with_proxy_budget(ProxyBudget::new(max, duration)),
    ))
}

/// Reads the spend of `budget`'s current period from the spend log.
#[cfg(feature = "sql")]
pub(crate) async fn load(
    budget: &ProxyBudget,
    db: &Database,
    now: i64,
) -> Result<(), llmgate_auth::StoreError> {
    let (start, end) = budget.period(now);
    let range = llmgate_store::SpendRange {
        from_ms: Some(start.saturating_mul(1000)),
        until_ms: end.map(|e| e.saturating_mul(1000)),
    };
    let spend = db
        .run(move |s| async move { s.spend_total(range).await })
        .await?;
    budget.set_known(spend);
    Ok(())
}

/// Reads the period's spend every [`REFRESH_EVERY`], so spend written by other instances and
/// a new period are seen.
#[cfg(feature = "sql")]
pub(crate) async fn refresh(budget: ProxyBudget, db: Database, clock: llmgate_core::SharedClock) {
    let mut tick = tokio::time::interval(REFRESH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = load(&budget, &db, clock.now()).await {
            tracing::debug!(error = %e, "cannot read the gateway budget's spend; trying again");
        }
    }
}

/// Follows the period's spend in the spend log, when there is a budget and a database.
#[cfg(feature = "sql")]
pub(crate) fn start(
    budgets: Option<&Budgets>,
    db: Option<&Database>,
    tasks: &crate::background::Background,
) {
    let (Some(budget), Some(db)) = (budgets.and_then(Budgets::proxy_budget), db) else {
        return;
    };
    tasks.add(refresh(
        budget.clone(),
        db.clone(),
        std::sync::Arc::new(llmgate_core::SystemClock),
    ));
}

/// [`load`] before the first request, when there is a budget and a database.
#[cfg(feature = "sql")]
pub(crate) async fn load_at_open(lasting: &crate::parts::Lasting) {
    let budget = lasting
        .proxy_budget
        .as_ref()
        .and_then(Budgets::proxy_budget);
    let (Some(budget), Some(db)) = (budget, lasting.database.as_ref()) else {
        return;
    };
    let now = llmgate_core::Clock::now(&llmgate_core::SystemClock);
    if let Err(e) = load(budget, db, now).await {
        tracing::warn!(error = %e, "cannot read the gateway budget's spend; counting this period from what the ledger holds");
    }
}
