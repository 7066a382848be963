//! The config reload metrics: `llmgate_config_reloads_total{result}` and
//! `llmgate_config_last_reload_success_timestamp_seconds` (named as Prometheus names its own).
//! The facade counts each reload ([`crate::Metrics::config_reloaded`]).

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// How a config reload ended.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum ReloadResult {
    /// Applied: new requests see the new config.
    ok,
    /// The new config did not load or validate (or its stack could not be built): nothing
    /// changed.
    invalid,
    /// The new config changes what only a restart can change: nothing changed.
    refused,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    result: ReloadResult,
}

/// The two metrics, registered once.
#[derive(Debug, Default)]
pub(crate) struct ConfigReloads {
    reloads: Family<ReloadLabels, Counter>,
    last_success: Gauge<f64, AtomicU64>,
}

impl ConfigReloads {
    /// Registers both metrics in `registry`, each result at zero so dashboards see them before
    /// the first reload.
    pub(crate) fn register(&self, registry: &mut Registry) {
        for result in [
            ReloadResult::ok,
            ReloadResult::invalid,
            ReloadResult::refused,
        ] {
            let _ = self.reloads.get_or_create(&ReloadLabels { result });
        }
        registry.register(
            "config_reloads",
            "Config reloads (SIGHUP, POST /config/reload, the file watch) by result: ok, invalid (nothing changed), refused (needs a restart; nothing changed)",
            self.reloads.clone(),
        );
        registry.register(
            "config_last_reload_success_timestamp_seconds",
            "When the running config was applied (the start, or the last successful reload), Unix seconds",
            self.last_success.clone(),
        );
    }

    pub(crate) fn count(&self, result: ReloadResult) {
        self.reloads.get_or_create(&ReloadLabels { result }).inc();
    }

    pub(crate) fn applied_at(&self, unix_seconds: f64) {
        self.last_success.set(unix_seconds);
    }
}
