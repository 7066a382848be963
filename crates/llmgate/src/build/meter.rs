//! The config's metering settings as a [`Meter`].
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

use llmgate_config::{Config, SpendQueueFull};
use llmgate_core::{BoxError, DeploymentSpec};
use llmgate_metering::{Meter, PriceTable, QueueConfig, QueueFull, SpendRecord, SpendSink};

use crate::BuildError;

/// The spill directory when `spend_spill_dir` is not set, beside the config.
pub(crate) const DEFAULT_SPILL_DIR: &str = "llmgate-spill";

/// Builds the meter from the config. Its spend queue and metrics outlive config reloads; each
/// reload gets a [`Meter::reconfigured`] with its [`prices`] and [`names`].
pub(crate) fn meter(
    config: &Config,
    deployments: &[Arc<DeploymentSpec>],
    sink: Option<Arc<dyn SpendSink>>,
) -> Result<Meter, BuildError> {
    let prices = prices(config, deployments)?;
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
        .model_names(names(config, deployments))
        .litellm_metrics(g.litellm_metric_names.unwrap_or(true))
        .store_prompts(g.store_prompts_in_spend_logs.unwrap_or(false))
        .build())
}

/// LiteLLM's bundled prices, `model_cost_map_path` over them, each deployment's `model_info`
/// prices over both.
pub(crate) fn prices(
    config: &Config,
    deployments: &[Arc<DeploymentSpec>],
) -> Result<PriceTable, BuildError> {
    let mut prices = PriceTable::bundled();
    if let Some(path) = &config.litellm_settings.model_cost_map_path {
        let path = config.config_dir.join(path);
        prices = prices.with_overrides(&path).map_err(|e| {
            BuildError::Prices(format!("litellm_settings.model_cost_map_path: {e}"))
        })?;
    }
    Ok(prices.with_deployments(deployments.iter().cloned()))
}

/// The model names clients may send (groups and aliases), each with its group, for the
/// metrics' labels.
pub(crate) fn names(
    config: &Config,
    deployments: &[Arc<DeploymentSpec>],
) -> Vec<(String, Arc<str>)> {
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
    names
}

/// The sink without a store: records are counted, not kept.
struct Discard;

#[async_trait::async_trait]
impl SpendSink for Discard {
    async fn write(&self, _batch: &[SpendRecord]) -> Result<(), BoxError> {
        Ok(())
    }
}
