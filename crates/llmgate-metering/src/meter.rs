//! [`Meter`]: the runtime state every metered request shares (prices, the spend queue and
//! the metrics), and its builder.

use std::collections::HashMap;
use std::sync::Arc;

use crate::metrics::Metrics;
use crate::prices::PriceTable;
use crate::queue::{QueueConfig, SpendQueue};
use crate::sink::SpendSink;

/// What every metered request shares: the price table, the spend queue and the metrics.
/// Cheap to clone. Building it spawns nothing: the spend writer starts with the first record.
#[derive(Clone, Debug)]
pub struct Meter {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) prices: PriceTable,
    pub(crate) queue: SpendQueue,
    pub(crate) metrics: Arc<Metrics>,
    /// Model names clients may send (groups and aliases) -> the group's label. The names are
    /// interned too: LiteLLM's `requested_model` label is the name itself.
    pub(crate) groups: HashMap<Arc<str>, Arc<str>>,
    /// The label of a model name the config does not know.
    pub(crate) other: Arc<str>,
    /// The deployment label when none answered.
    pub(crate) none: Arc<str>,
    /// [`Meter::start`] ran.
    pub(crate) started: std::sync::atomic::AtomicBool,
    /// Keep prompts and answers in the spend records (`store_prompts_in_spend_logs`).
    pub(crate) store_prompts: bool,
}

/// Builds a [`Meter`].
#[derive(Debug)]
#[must_use]
pub struct MeterBuilder {
    sink: Arc<dyn SpendSink>,
    prices: Option<PriceTable>,
    queue: QueueConfig,
    spill: Option<std::path::PathBuf>,
    groups: HashMap<Arc<str>, Arc<str>>,
    litellm_metrics: bool,
    store_prompts: bool,
}

impl std::fmt::Debug for dyn SpendSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SpendSink")
    }
}

impl Meter {
    /// A meter writing its records into `sink`, with LiteLLM's bundled prices and the default
    /// queue settings.
    pub fn builder(sink: Arc<dyn SpendSink>) -> MeterBuilder {
        MeterBuilder {
            sink,
            prices: None,
            queue: QueueConfig::default(),
            spill: None,
            groups: HashMap::new(),
            litellm_metrics: true,
            store_prompts: false,
        }
    }

    /// The metrics registry (for `GET /metrics`, and for counting what other layers refuse).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// The spend queue.
    pub fn queue(&self) -> &SpendQueue {
        &self.inner.queue
    }

    /// The price table.
    pub fn prices(&self) -> &PriceTable {
        &self.inner.prices
    }

    /// Starts the spend writer and, on another thread, parses the price table, so the first
    /// request does neither. Idempotent; without it both happen on first use.
    pub fn start(&self) {
        if self
            .inner
            .started
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        self.inner.queue.start();
        let meter = self.clone();
        let spawned = std::thread::Builder::new()
            .name("llmgate-prices".into())
            .spawn(move || meter.inner.prices.warm());
        if let Err(e) = spawned {
            tracing::debug!(error = %e, "prices will be parsed on first use");
        }
    }

    /// A meter with other prices, model names and `store_prompts` over this one's spend queue
    /// and metrics (a config reload): records of both go to the same queue and writer, counted
    /// in the same registry (whose set of names, LiteLLM's or not, stays as it started). Not
    /// started: [`Meter::start`] it (the queue's writer is not started twice).
    pub fn reconfigured(
        &self,
        prices: PriceTable,
        names: impl IntoIterator<Item = (String, Arc<str>)>,
        store_prompts: bool,
    ) -> Meter {
        Meter {
            inner: Arc::new(Inner {
                prices,
                queue: self.inner.queue.clone(),
                metrics: self.inner.metrics.clone(),
                groups: names
                    .into_iter()
                    .map(|(name, group)| (Arc::from(name), group))
                    .collect(),
                other: self.inner.other.clone(),
                none: self.inner.none.clone(),
                started: std::sync::atomic::AtomicBool::new(false),
                store_prompts,
            }),
        }
    }

    /// Writes every record queued so far; returns once they are written.
    pub async fn flush(&self) {
        self.inner.queue.flush().await;
    }

    /// Writes every queued record and stops the writer (see [`SpendQueue::shutdown`]).
    pub async fn shutdown(&self) {
        self.inner.queue.shutdown().await;
    }

    /// [`Meter::shutdown`], retrying a failing sink only until `deadline` (see
    /// [`SpendQueue::shutdown_by`]).
    pub async fn shutdown_by(&self, deadline: std::time::Instant) {
        self.inner.queue.shutdown_by(deadline).await;
    }
}

impl MeterBuilder {
    /// The price table (default: LiteLLM's bundled one).
    pub fn prices(mut self, prices: PriceTable) -> Self {
        self.prices = Some(prices);
        self
    }

    /// The spend queue's settings.
    pub fn queue(mut self, config: QueueConfig) -> Self {
        self.queue = config;
        self
    }

    /// Where the spend records the sink has not taken by the end of a shutdown go, to be
    /// replayed by the next start (see [`SpendQueue::with_spill`]); without it they are
    /// dropped and counted.
    pub fn spill_dir(mut self, dir: std::path::PathBuf) -> Self {
        self.spill = Some(dir);
        self
    }

    /// Model names clients may send, each with the group it routes to: metrics label a
    /// failed request (which no group answered) with its group, and any other name `other`,
    /// so clients cannot grow the label set. A served request is labelled with the group that
    /// served it.
    pub fn model_names(mut self, names: impl IntoIterator<Item = (String, Arc<str>)>) -> Self {
        self.groups.extend(
            names
                .into_iter()
                .map(|(name, group)| (Arc::from(name), group)),
        );
        self
    }

    /// Serve LiteLLM's metric names beside llmgate's (default: on); see `docs/metrics.md`.
    pub fn litellm_metrics(mut self, on: bool) -> Self {
        self.litellm_metrics = on;
        self
    }

    /// Keep each request's messages and answer in its spend record (LiteLLM's
    /// `store_prompts_in_spend_logs`; default: off). Bounded and with credentials masked.
    pub fn store_prompts(mut self, on: bool) -> Self {
        self.store_prompts = on;
        self
    }

    /// The meter.
    pub fn build(self) -> Meter {
        let metrics = Arc::new(Metrics::with_litellm_names(self.litellm_metrics));
        let queue =
            SpendQueue::with_counters(self.sink, self.queue, self.spill, metrics.queue.clone());
        Meter {
            inner: Arc::new(Inner {
                prices: self.prices.unwrap_or_else(PriceTable::bundled),
                queue,
                metrics,
                groups: self.groups,
                other: Arc::from("other"),
                none: Arc::from("none"),
                started: std::sync::atomic::AtomicBool::new(false),
                store_prompts: self.store_prompts,
            }),
        }
    }
}
