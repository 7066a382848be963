//! Config reload without a restart: [`Gateway::reload`], [`Gateway::reload_file`] and
//! [`Gateway::reload_config_file`] (what SIGHUP, `POST /config/reload` and the binary's file
//! watch call). See `docs/deployment.md`, "Config reload".
//!
//! A reload is all or nothing:
//!
//! 1. The new file is loaded and validated whole, as at start (every problem, with its place).
//! 2. It is compared with the running config: a setting only a restart can change
//!    (`restart.rs`) refuses the reload, naming each such key.
//! 3. The new stack is built over the same lasting parts (`parts.rs`): keys and their cache,
//!    database, limiter store and counters, Redis connections, spend queue, cache store,
//!    upstream connection pool. The router's state is carried over for every deployment that
//!    did not change.
//! 4. Only then is it swapped in, atomically: requests (and streams) in flight finish on the
//!    stack they started on; every request after the swap gets the new one.
//!
//! Any failure before the swap changes nothing: the running config stays, the problems are
//! logged, counted (`llmgate_config_reloads_total{result="invalid"|"refused"}`) and returned.

mod restart;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, PoisonError, Weak};

use llmgate_config::Config;
use llmgate_metering::ReloadResult;
use llmgate_router::ModelTable;

use crate::current::{Built, Shared};
use crate::parts::Parts;
use crate::Gateway;

/// What a reload changed, by model group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReloadOutcome {
    /// Groups the new config has and the old one did not.
    pub models_added: Vec<String>,
    /// Groups the old config had and the new one does not.
    pub models_removed: Vec<String>,
    /// Groups in both whose deployments changed (added, removed, or changed in a way that
    /// resets their router state).
    pub models_changed: Vec<String>,
    /// Deployments whose router state (cooldowns, counters, latencies) was kept.
    pub deployments_kept: usize,
}

impl ReloadOutcome {
    /// As JSON, for `POST /config/reload`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "status": "reloaded",
            "models_added": self.models_added,
            "models_removed": self.models_removed,
            "models_changed": self.models_changed,
            "deployments_kept": self.deployments_kept,
        })
    }
}

/// Why a reload changed nothing. The running config stays.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    /// The new config did not load, validate, or build: every problem.
    #[error("the new config is invalid; the running config stays:\n{}", .0.join("\n"))]
    Invalid(Vec<String>),
    /// The new config changes settings only a restart can change: one problem per key.
    #[error("the new config changes what needs a restart; the running config stays:\n{}", .0.join("\n"))]
    NeedsRestart(Vec<String>),
    /// There is no config file to reload (a gateway built from a config in memory, or the
    /// binary's `--model`).
    #[error("there is no config file to reload: this gateway was not started from one")]
    NoFile,
}

impl ReloadError {
    /// Every problem, one sentence each.
    pub fn problems(&self) -> Vec<String> {
        match self {
            ReloadError::Invalid(p) | ReloadError::NeedsRestart(p) => p.clone(),
            ReloadError::NoFile => vec![self.to_string()],
        }
    }

    fn result(&self) -> ReloadResult {
        match self {
            ReloadError::NeedsRestart(_) => ReloadResult::refused,
            ReloadError::Invalid(_) | ReloadError::NoFile => ReloadResult::invalid,
        }
    }
}

impl Gateway {
    /// Replaces the running config with `config` (see the module docs): all or nothing, one
    /// reload at a time. Must not be called on a runtime's only thread while requests need it:
    /// it builds the new stack synchronously (a few milliseconds, the price table's parse for
    /// new deployments included).
    pub fn reload(&self, config: Config) -> Result<ReloadOutcome, ReloadError> {
        let _one_at_a_time = self
            .shared
            .reloading
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let result = apply(&self.shared, config);
        self.note(&result);
        result
    }

    /// Loads and validates the config file at `path` exactly as the start does (the `.env`
    /// beside it and the process environment; every problem, with its place), then
    /// [`Gateway::reload`]s it.
    pub fn reload_file(&self, path: &Path) -> Result<ReloadOutcome, ReloadError> {
        match crate::load_config(path) {
            Ok(loaded) => {
                for notice in &loaded.notices {
                    tracing::warn!(severity = %notice.severity, "config: {notice}");
                }
                self.reload(loaded.config)
            }
            Err(problems) => {
                let err = ReloadError::Invalid(
                    problems
                        .0
                        .iter()
                        .map(|p| format!("{}: {p}", p.severity))
                        .collect(),
                );
                let result = Err(err);
                self.note(&result);
                result
            }
        }
    }

    /// Sets the config file [`Gateway::reload_config_file`] (and `POST /config/reload`) reads:
    /// the one the gateway was started from.
    pub fn set_config_file(&self, path: impl Into<PathBuf>) {
        *self
            .shared
            .config_file
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(path.into());
    }

    /// The config file set by [`Gateway::set_config_file`], if any.
    pub fn config_file(&self) -> Option<PathBuf> {
        self.shared
            .config_file
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// [`Gateway::reload_file`] of the [config file](Gateway::set_config_file).
    pub fn reload_config_file(&self) -> Result<ReloadOutcome, ReloadError> {
        match self.config_file() {
            Some(path) => self.reload_file(&path),
            None => {
                let result = Err(ReloadError::NoFile);
                self.note(&result);
                result
            }
        }
    }

    /// Counts and logs a reload's result.
    fn note(&self, result: &Result<ReloadOutcome, ReloadError>) {
        let metrics = self.shared.lasting.meter.metrics();
        match result {
            Ok(o) => {
                metrics.config_reloaded(ReloadResult::ok);
                tracing::info!(
                    models_added = ?o.models_added,
                    models_removed = ?o.models_removed,
                    models_changed = ?o.models_changed,
                    deployments_kept = o.deployments_kept,
                    "config reloaded: new requests use the new config"
                );
            }
            Err(e) => {
                metrics.config_reloaded(e.result());
                let problems = e.problems();
                tracing::warn!(
                    problems = problems.len(),
                    "config reload {}: the running config stays",
                    match e.result() {
                        ReloadResult::refused => "refused (needs a restart)",
                        _ => "failed (invalid config)",
                    }
                );
                for problem in problems {
                    tracing::warn!("config reload: {problem}");
                }
            }
        }
    }
}

/// Checks, builds and swaps (see the module docs). Any error returns before the swap.
fn apply(shared: &Shared, config: Config) -> Result<ReloadOutcome, ReloadError> {
    let old = shared.current.load_full();
    let refused = restart::needs_restart(&old.config, &config);
    if !refused.is_empty() {
        return Err(ReloadError::NeedsRestart(refused));
    }
    let invalid = |e: crate::BuildError| ReloadError::Invalid(vec![e.to_string()]);
    let deployments = crate::gateway::deployments(&config).map_err(invalid)?;
    let lasting = &shared.lasting;
    let prices = crate::build::meter::prices(&config, &deployments).map_err(invalid)?;
    let meter = lasting.meter.reconfigured(
        prices,
        crate::build::meter::names(&config, &deployments),
        config
            .general_settings
            .store_prompts_in_spend_logs
            .unwrap_or(false),
    );
    let table = lasting.table(&config, &deployments, &old.table);
    let parts = Parts::assemble(&config, &deployments, lasting, table, meter);
    let built = crate::current::build(config, parts, shared.max_body);
    let outcome = outcome(&old, &built);
    let metrics = lasting.meter.metrics().clone();
    let now: Vec<_> = built
        .table
        .all()
        .into_iter()
        .map(|(spec, _)| spec)
        .collect();
    shared.install(Arc::new(built));
    for (gone, _) in old.table.all() {
        let kept = now
            .iter()
            .any(|s| s.id == gone.id && s.model_name == gone.model_name);
        if !kept {
            metrics.forget_deployment_state(&gone.model_name, &gone.id);
        }
    }
    Ok(outcome)
}

/// What changed from `old` to `new`, by group.
fn outcome(old: &Built, new: &Built) -> ReloadOutcome {
    let groups = |t: &ModelTable| {
        let mut by: BTreeMap<String, Vec<_>> = BTreeMap::new();
        for (spec, state) in t.all() {
            by.entry(spec.model_name.to_string())
                .or_default()
                .push((spec, state));
        }
        by
    };
    let (before, after) = (groups(&old.table), groups(&new.table));
    let names = |m: &BTreeMap<String, _>| m.keys().cloned().collect::<BTreeSet<_>>();
    let (was, is) = (names(&before), names(&after));
    let mut outcome = ReloadOutcome {
        models_added: is.difference(&was).cloned().collect(),
        models_removed: was.difference(&is).cloned().collect(),
        ..ReloadOutcome::default()
    };
    for name in is.intersection(&was) {
        let (b, a) = (&before[name], &after[name]);
        let kept = a
            .iter()
            .filter(|(_, state)| b.iter().any(|(_, old)| Arc::ptr_eq(old, state)))
            .count();
        outcome.deployments_kept += kept;
        if kept != a.len() || kept != b.len() {
            outcome.models_changed.push(name.clone());
        }
    }
    outcome
}

/// `POST /config/reload`'s way to the gateway: set once the gateway is built, weak so the
/// stack (which holds it through the admin router) does not keep the gateway alive.
#[derive(Clone, Default)]
pub(crate) struct ReloadHandle(Arc<OnceLock<Weak<Shared>>>);

impl ReloadHandle {
    /// Points the handle at the gateway.
    pub(crate) fn point_at(&self, shared: &Arc<Shared>) {
        let _ = self.0.set(Arc::downgrade(shared));
    }

    #[cfg_attr(
        not(feature = "admin"),
        allow(dead_code, reason = "called by the admin API")
    )]
    fn gateway(&self) -> Option<Gateway> {
        let shared = self.0.get()?.upgrade()?;
        Some(Gateway::from_shared(shared))
    }

    /// The config file the gateway reloads from, if it has one (for the UI's Config page).
    #[cfg(feature = "admin")]
    pub(crate) fn config_file(&self) -> Option<PathBuf> {
        self.gateway()?.config_file()
    }
}

#[cfg(feature = "admin")]
impl llmgate_admin::Reloader for ReloadHandle {
    /// Runs the reload on tokio's blocking pool: building the new stack is synchronous work
    /// that should not hold up the requests sharing this worker.
    fn reload(&self) -> llmgate_admin::ReloadFuture<'_> {
        let gateway = self.gateway();
        Box::pin(async move {
            let result = match gateway {
                Some(gateway) => tokio::task::spawn_blocking(move || gateway.reload_config_file())
                    .await
                    .unwrap_or_else(|e| {
                        Err(ReloadError::Invalid(vec![format!(
                            "the reload did not finish: {e}"
                        )]))
                    }),
                None => Err(ReloadError::NoFile),
            };
            refusal(result)
        })
    }
}

/// The admin API's view of a reload's result.
#[cfg(feature = "admin")]
fn refusal(
    result: Result<ReloadOutcome, ReloadError>,
) -> Result<serde_json::Value, llmgate_admin::ReloadRefusal> {
    const NEEDS_RESTART: &str = "the new config changes settings that need a restart; nothing was applied and the running config stays";
    const INVALID: &str =
        "the new config is invalid; nothing was applied and the running config stays";
    result.map(|o| o.to_json()).map_err(|e| {
        let (message, code) = match &e {
            ReloadError::NoFile => (e.to_string(), "no_config_file"),
            ReloadError::NeedsRestart(_) => (NEEDS_RESTART.to_owned(), "config_needs_restart"),
            ReloadError::Invalid(_) => (INVALID.to_owned(), "config_invalid"),
        };
        llmgate_admin::ReloadRefusal {
            message,
            code,
            problems: e.problems(),
        }
    })
}
