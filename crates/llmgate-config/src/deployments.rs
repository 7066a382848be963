//! What the rest of llmgate takes from a loaded [`Config`]: deployments, the master key and the
//! aliases.

use std::collections::BTreeMap;
use std::sync::Arc;

use llmgate_core::{DeploymentSpec, Secret};

use crate::schema::{Config, ModelEntry};

impl Config {
    /// One [`DeploymentSpec`] per `model_list` entry, in order, fully resolved: environment
    /// references substituted, `api_key`/`api_base` defaults applied, and `timeout` /
    /// `stream_timeout` falling back to `router_settings.timeout` / `stream_timeout`, then
    /// (for `timeout`) to `litellm_settings.request_timeout`, as LiteLLM does.
    ///
    /// A `model_name` of `"*"` is the catch-all group: the router sends it any requested model
    /// that no other group or alias matches, and `/v1/models` does not list it.
    pub fn deployments(&self) -> Vec<DeploymentSpec> {
        self.model_list.iter().map(|e| self.spec(e)).collect()
    }

    fn spec(&self, entry: &ModelEntry) -> DeploymentSpec {
        let p = &entry.litellm_params;
        let router = &self.router_settings;
        let mut spec = DeploymentSpec::new(
            entry.id.as_str(),
            entry.model_name.as_str(),
            p.provider,
            p.upstream_model.as_str(),
        );
        spec.api_base = p.api_base.as_deref().map(Arc::from);
        spec.api_key = p.api_key.clone();
        spec.api_version = p.api_version.as_deref().map(Arc::from);
        spec.headers = p.headers.clone();
        spec.timeout = p
            .timeout
            .or(router.timeout)
            .or(self.litellm_settings.request_timeout);
        spec.stream_timeout = p.stream_timeout.or(router.stream_timeout);
        spec.stream_idle_timeout = p.stream_idle_timeout.or(router.stream_idle_timeout);
        spec.max_retries = p.max_retries;
        spec.cooldown_time = p.cooldown_time;
        spec.rpm = p.rpm;
        spec.tpm = p.tpm;
        spec.rpd = p.rpd;
        spec.weight = p.weight;
        spec.mock_response = p.mock_response.clone();
        spec.default_params = p.default_params.clone();
        spec.model_info = entry.model_info.clone();
        spec.drop_params = p
            .drop_params
            .or(self.litellm_settings.drop_params)
            .unwrap_or(false);
        spec.aws = p.aws.clone();
        spec.vertex = p.vertex.clone();
        spec.watsonx = p.watsonx.clone();
        spec
    }

    /// `general_settings.master_key` (or `LITELLM_MASTER_KEY` from the environment when the
    /// config sets none). `None` means the gateway runs without authentication.
    pub fn master_key(&self) -> Option<Secret> {
        self.general_settings.master_key.clone()
    }

    /// `default_team_settings` as a mapping: `general_settings`' when it has any, else
    /// `litellm_settings`'. Empty when neither gives one.
    pub fn default_team_settings(&self) -> &serde_json::Map<String, serde_json::Value> {
        let general = &self.general_settings.default_team_settings;
        if general.is_empty() {
            &self.litellm_settings.default_team_settings
        } else {
            general
        }
    }

    /// `router_settings.model_group_alias`: alias -> (target model group, hidden from
    /// `/v1/models`). Every target names a model group in `model_list` (checked at load).
    pub fn model_group_aliases(&self) -> BTreeMap<String, (String, bool)> {
        self.router_settings
            .model_group_alias
            .iter()
            .map(|(alias, target)| (alias.clone(), (target.model.clone(), target.hidden)))
            .collect()
    }

    /// The aliases written as lists: alias -> the groups after its first, in order (what a
    /// request for the alias falls back to before the first group's own fallbacks).
    pub fn alias_fallbacks(&self) -> BTreeMap<String, Vec<String>> {
        self.router_settings
            .model_group_alias
            .iter()
            .filter(|(_, target)| !target.then.is_empty())
            .map(|(alias, target)| (alias.clone(), target.then.clone()))
            .collect()
    }
}
