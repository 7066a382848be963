//! What the admin UI (`llmgate-admin`'s `ui`) reads of the gateway: the router's deployments
//! ([`DeploymentView`] over the model table) and the config file, masked ([`ConfigView`] over
//! the reload handle, which knows the file).

use std::sync::Arc;

use llmgate_admin::ui::{mask_secrets, ConfigView, DeploymentView};
use llmgate_router::ModelTable;
use serde_json::{json, Value};

use crate::reload::ReloadHandle;

/// The deployments of one config's table, with their live state.
pub(crate) struct TableView(pub(crate) Arc<ModelTable>);

impl DeploymentView for TableView {
    fn deployments(&self) -> Value {
        let states = self.0.all();
        let usage = self.0.usage();
        let rows: Vec<Value> = self
            .0
            .cooldowns()
            .into_iter()
            .zip(states)
            .zip(usage)
            .map(|(((spec, cooling), (_, state)), used)| {
                json!({
                    "model_name": spec.model_name,
                    "id": spec.id,
                    "provider": spec.provider.as_str(),
                    "model": spec.model,
                    "api_base": spec.api_base,
                    "in_flight": state.in_flight(),
                    "cooling_down": cooling.is_some(),
                    "cooldown_reason": cooling.map(|r| r.as_str()),
                    "rpm": spec.rpm,
                    "tpm": spec.tpm,
                    "rpd": spec.rpd,
                    "rpm_used": used.rpm_used,
                    "tpm_used": used.tpm_used,
                    "rpd_used": used.rpd_used,
                    "latency_ms": used.latency_ms,
                    "ttft_ms": used.ttft_ms,
                })
            })
            .collect();
        json!({ "deployments": rows })
    }
}

/// The config file the gateway reloads from, read when asked.
pub(crate) struct ConfigFile(pub(crate) ReloadHandle);

impl ConfigView for ConfigFile {
    /// The file as it is on disk now (what a reload would apply), masked, with the notices
    /// loading it gives (or its problems, if it no longer loads).
    fn config(&self) -> Value {
        let Some(path) = self.0.config_file() else {
            return json!({"path": null, "yaml": "", "notices": ["this gateway was not started from a config file"]});
        };
        let yaml = match std::fs::read_to_string(&path) {
            Ok(text) => mask_secrets(&text),
            Err(e) => format!("# cannot read {}: {e}\n", path.display()),
        };
        let notices: Vec<String> = match llmgate_config::load(&path) {
            Ok(loaded) => loaded.notices.iter().map(ToString::to_string).collect(),
            Err(problems) => problems.0.iter().map(ToString::to_string).collect(),
        };
        json!({"path": path.display().to_string(), "yaml": yaml, "notices": notices})
    }
}
