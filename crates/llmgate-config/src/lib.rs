//! LiteLLM's `config.yaml`, read as it is, so a LiteLLM user switches by changing one command.
//!
//! ```text
//! litellm --config config.yaml        ->   llmgate --config config.yaml
//! litellm --model ollama/llama3.2     ->   llmgate --model ollama/llama3.2
//! ```
//!
//! [`load`] reads the file, the `.env` beside it and the process environment; [`from_yaml`]
//! does the same from a string with an explicit environment (tests); [`sidecar`] builds the
//! config `--model` serves. Each returns a [`Loaded`] config with its notices, or every
//! [`Problem`] found, each located by its path:
//!
//! ```text
//! error: model_list[2].litellm_params.model: unknown provider "foo"
//! error: model_list[3].litellm_params.api_base: api_base is required for azure
//! warning: router_settings.routing_strategy_argz: unknown key, ignored
//! not yet active: router_settings.num_retries: not active yet in this llmgate release (retries); accepted, has no effect
//! ```
//!
//! # How a file is read
//!
//! - The YAML is parsed into a value tree first, then walked, so a mistake in one entry never
//!   hides the others. Scalars follow PyYAML where configs rely on it (`yes`/`no`/`on`/`off`
//!   are booleans, `<<: *anchor` merges, a repeated key keeps its last value, with a warning).
//! - `os.environ/NAME` (a whole string) and `${NAME}` (anywhere in a string) are replaced by the
//!   variable from, in order: the config's `environment_variables`, the process environment,
//!   the `.env` beside the config. The process environment is never modified. An unset
//!   variable is an error naming the path and the variable.
//! - `litellm_params.model` is `<provider>/<model id>` (no prefix: OpenAI). A deployment with
//!   no `api_key` takes the provider's key variable (`OPENAI_API_KEY`, ...), one with no
//!   `api_base` the provider's base variable, else its default URL. Vertex AI (`vertex_ai/`,
//!   `gemini_vertex/`) takes `vertex_project`, `vertex_location` and `vertex_credentials`.
//! - Keys later releases implement (caching, budgets, rate limits, callbacks, ...) are
//!   read, checked and reported once each as [`Severity::NotYetActive`]. Security and spending
//!   controls that llmgate does not enforce yet (`allowed_ips`, JWT auth, user budgets,
//!   per-deployment `max_parallel_requests`, ...) are errors: ignoring them would leave the gateway more open
//!   than configured. Unknown keys are warnings.
//! - `include: [other.yaml]` merges other files, as LiteLLM does.
//!
//! # Model groups
//!
//! Entries sharing a `model_name` form a model group. The group `"*"` is LiteLLM's catch-all:
//! the router sends it any requested model that no other group or alias matches, and
//! `/v1/models` does not list it.
//!
//! # Example
//!
//! ```
//! use std::collections::HashMap;
//! use std::path::Path;
//!
//! let yaml = r#"
//! model_list:
//!   - model_name: gpt-4o
//!     litellm_params:
//!       model: openai/gpt-4o
//!       api_key: os.environ/OPENAI_KEY
//! general_settings:
//!   master_key: sk-1234
//! "#;
//! let env: HashMap<String, String> = [("OPENAI_KEY".to_owned(), "sk-abc".to_owned())].into();
//! let loaded = llmgate_config::from_yaml(yaml, Path::new("."), &env).unwrap();
//! let deployments = loaded.config.deployments();
//! assert_eq!(deployments[0].api_key.as_ref().unwrap().expose(), "sk-abc");
//! assert_eq!(deployments[0].api_base.as_deref(), Some("https://api.openai.com/v1"));
//! assert!(loaded.notices.is_empty());
//! ```

mod alerting;
mod cache;
mod deployments;
mod env;
mod general;
mod load;
mod model_list;
mod node;
mod params;
mod positions;
mod problems;
mod schema;
mod settings;
mod table;
mod validate;
mod vertex;
mod walk;
mod watsonx;

use std::path::Path;

pub use alerting::{AlertingConfig, ALERTING_ARGS, ALERT_TYPES};
pub use env::{EnvLookup, ProcessEnv};
pub use params::MOCK_ERRORS;
pub use problems::{Position, Problem, Problems, Severity};
pub use schema::{
    AllowedFailsPolicy, CacheParams, Config, FailurePolicy, Fallback, GeneralSettings,
    LitellmParams, LitellmSettings, ModelEntry, ModelGroupAlias, RetryPolicy, RouterSettings,
    RoutingStrategy, SpendQueueFull,
};

/// A config that loaded, with what is worth telling the operator at start-up.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The config.
    pub config: Config,
    /// Warnings and not-yet-active notices (never errors): warnings first, then notices, each
    /// in document order. Print them at start-up.
    pub notices: Vec<Problem>,
}

/// Reads the config file at `path`, the `.env` file beside it, and the process environment.
///
/// On failure, [`Problems`] holds every problem found (errors first, then warnings and
/// notices), so `llmgate check` can print them all at once.
pub fn load(path: &Path) -> Result<Loaded, Problems> {
    let yaml = std::fs::read_to_string(path).map_err(|e| {
        Problems(vec![Problem::error(
            path.display().to_string(),
            format!("cannot read the config file: {e}"),
        )])
    })?;
    let base_dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    from_yaml(&yaml, base_dir, &ProcessEnv)
}

/// Loads a config from YAML text. `base_dir` is where `.env` and `include` files are read
/// from; `env` stands in for the process environment (a `HashMap<String, String>` in tests).
pub fn from_yaml(yaml: &str, base_dir: &Path, env: &dyn EnvLookup) -> Result<Loaded, Problems> {
    let root = node::parse(yaml).map_err(|p| Problems(vec![p]))?;
    let dotenv = env::read_dotenv(base_dir);
    let positions = positions::Positions::of(yaml);
    match load::load_tree(root, base_dir, env, dotenv) {
        Ok(mut loaded) => {
            positions.locate(&mut loaded.notices);
            Ok(loaded)
        }
        Err(mut problems) => {
            positions.locate(&mut problems.0);
            Err(problems)
        }
    }
}

/// The config `litellm --model X --api_base Y` would serve: one deployment whose `model_name`
/// is `model`, plus a catch-all entry, `model_name: "*"`, with the same parameters, so a
/// request for any model name reaches it (the router treats the `"*"` group as the catch-all;
/// `/v1/models` hides it).
///
/// `api_key` may be an `os.environ/NAME` reference; without one the provider's key variable is
/// used. Problems name the flags (`--model`, `--api_base`, `--api_key`) instead of paths.
pub fn sidecar(
    model: &str,
    api_base: Option<&str>,
    api_key: Option<&str>,
    env: &dyn EnvLookup,
) -> Result<Loaded, Problems> {
    load::sidecar(model, api_base, api_key, env)
}
