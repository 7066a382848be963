//! The config's metering settings as a [`Meter`], and `GET /metrics`.
//!
//! - Prices: LiteLLM's bundled map, `litellm_settings.model_cost_map_path` laid over it, each
//!   deployment's `model_info` prices over both.
//! - Spend queue: `general_settings.proxy_batch_write_at` (seconds), `spend_batch_size`,
//!   `spend_queue_size`, `spend_queue_full` (`reject` | `drop`).
//! - Sink: the one given to [`crate::GatewayBuilder::spend_sink`], else the gateway's
//!   database ([`crate::StoreSpendSink`], see `spend/`); without either, records are built and
//!   counted (metrics, cost header) but not kept.
//! - Spill: with a sink, what it has not taken by the end of a stop goes to
//!   `general_settings.spend_spill_dir` ([`DEFAULT_SPILL_DIR`] beside the config), replayed at
//!   the next start.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use llmgate_config::{Config, SpendQueueFull};
use llmgate_core::{body, BoxBody, BoxError, Deployment, DeploymentSpec};
use llmgate_metering::{
    Meter, Metrics, PriceTable, QueueConfig, QueueFull, RateLimiterTotals, Rejection, SpendRecord,
    SpendSink,
};
use llmgate_ratelimit::{LimiterStore, Stats};
use llmgate_router::ModelTable;

use crate::BuildError;

/// The spill directory when `spend_spill_dir` is not set, beside the config.
pub(crate) const DEFAULT_SPILL_DIR: &str = "llmgate-spill";

/// Builds the meter from the config.
pub(crate) fn meter(
    config: &Config,
    deployments: &[Arc<DeploymentSpec>],
    sink: Option<Arc<dyn SpendSink>>,
) -> Result<Meter, BuildError> {
    let mut prices = PriceTable::bundled();
    if let Some(path) = &config.litellm_settings.model_cost_map_path {
        let path = config.config_dir.join(path);
        prices = prices.with_overrides(&path).map_err(|e| {
            BuildError::Prices(format!("litellm_settings.model_cost_map_path: {e}"))
        })?;
    }
    let prices = prices.with_deployments(deployments.iter().cloned());

    let g = &config.general_settings;
    let mut queue = QueueConfig::default();
    if let Some(d) = g.proxy_batch_write_at {
        queue.interval = d;
    }
    if let Some(n) = g.spend_batch_size {
        queue.batch_size = usize::try_from(n).unwrap_or(usize::MAX);
    }
    if let Some(n) = g.spend_queue_size {
        queue.capacity = usize::try_from(n).unwrap_or(usize::MAX);
    }
    if let Some(p) = g.spend_queue_full {
        queue.on_full = match p {
            SpendQueueFull::Reject => QueueFull::Reject,
            SpendQueueFull::Drop => QueueFull::Drop,
        };
    }

    let mut names: Vec<(String, Arc<str>)> = deployments
        .iter()
        .map(|d| (d.model_name.to_string(), d.model_name.clone()))
        .collect();
    names.extend(
        config
            .model_group_aliases()
            .into_iter()
            .map(|(alias, (target, _hidden))| (alias, Arc::from(target))),
    );
    let spill = sink.is_some().then(|| {
        config.config_dir.join(
            g.spend_spill_dir
                .as_deref()
                .unwrap_or(DEFAULT_SPILL_DIR.as_ref()),
        )
    });
    let mut builder = Meter::builder(sink.unwrap_or_else(|| Arc::new(Discard)));
    if let Some(dir) = spill {
        builder = builder.spill_dir(dir);
    }
    Ok(builder
        .prices(prices)
        .queue(queue)
        .model_names(names)
        .build())
}

/// The sink without a store: records are counted, not kept.
struct Discard;

#[async_trait::async_trait]
impl SpendSink for Discard {
    async fn write(&self, _batch: &[SpendRecord]) -> Result<(), BoxError> {
        Ok(())
    }
}

/// Counts the refusals of the layers above metering (auth, rate limits): their answers are
/// responses without a [`Deployment`], where every answer from below has one or is an error.
pub(crate) fn count_rejections(
    metrics: Arc<Metrics>,
) -> impl Fn(Response<BoxBody>) -> Response<BoxBody> + Clone {
    move |res| {
        if res.extensions().get::<Deployment>().is_none() {
            match res.status() {
                StatusCode::TOO_MANY_REQUESTS => metrics.rejected(Rejection::rate_limit),
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    metrics.rejected(Rejection::auth)
                }
                _ => {}
            }
        }
        res
    }
}

/// What `/metrics` reads from the rate limiter when scraped.
#[derive(Clone)]
pub(crate) struct LimiterView {
    pub(crate) stats: Arc<Stats>,
    pub(crate) store: Arc<dyn LimiterStore>,
    /// The keys' budget ledger, with a master key.
    pub(crate) budgets: Option<llmgate_auth::Budgets>,
    /// The router's cooldown channel, with Redis.
    pub(crate) cooldowns: Option<Arc<crate::cooldowns::Link>>,
}

impl LimiterView {
    fn totals(&self) -> RateLimiterTotals {
        let store = self.store.counters();
        RateLimiterTotals {
            fail_open: self.stats.failed_open(),
            check_errors: self.stats.store_errors(),
            settle_errors: store.settlements_failed,
            slots_reclaimed: store.slots_reclaimed,
        }
    }
}

/// `GET /metrics`: the router's deployment states and the limiter's counters as of now, then
/// every metric.
pub(crate) fn render(
    metrics: &Metrics,
    table: &ModelTable,
    limiter: &LimiterView,
) -> Response<BoxBody> {
    for (spec, cooling) in table.cooldowns() {
        metrics.set_deployment_state(&spec.model_name, &spec.id, cooling.is_some());
    }
    metrics.set_rate_limiter(limiter.totals());
    metrics.set_router_shared(
        table.shared_errors(),
        limiter.cooldowns.as_ref().map_or(0, |l| l.failures()),
    );
    if let Some(b) = &limiter.budgets {
        metrics.set_budget_ledger(b.errors(), b.lost_settlements());
    }
    let mut res = Response::new(body::full(Bytes::from(metrics.render())));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(Metrics::CONTENT_TYPE),
    );
    res
}
