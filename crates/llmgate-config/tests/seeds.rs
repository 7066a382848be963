//! The seeds' configs (`shared/seeds/`), as their authors wrote them, load, and mean what the
//! authors meant. The first seed's page lost its indentation when it was published; its config
//! is given here indented as a YAML file must be, every value as written.
#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::time::Duration;

use common::{env, load_ok, shown};
use llmgate_core::ProviderKind;

const FIRST_SEED: &str = r#"model_list:
  # === OpenRouter (Primary) ===
  - model_name: "openrouter/primary"
    litellm_params:
      model: "openrouter/anthropic/claude-sonnet-4"
      api_key: "${OPENROUTER_KEY_PRIMARY}"

  # === OpenRouter (Fallback 1) ===
  - model_name: "openrouter/fallback1"
    litellm_params:
      model: "openrouter/anthropic/claude-sonnet-4"
      api_key: "${OPENROUTER_KEY_FALLBACK1}"

  # === Ollama (Local, Free) ===
  - model_name: "ollama/llama3.1:8b"
    litellm_params:
      model: "ollama/llama3.1:8b"
      api_base: "http://localhost:11434"

  - model_name: "ollama/gemma4:12b"
    litellm_params:
      model: "ollama/gemma4:12b"
      api_base: "http://localhost:11434"

  # === NVIDIA (Backup) ===
  - model_name: "nvidia/backup"
    litellm_params:
      model: "nvidia/nemotron-3-ultra-550b"
      api_key: "${NVIDIA_API_KEY}"

# Router Settings
router_settings:
  routing_strategy: "simple-shuffle"
  fallbacks:
    - ["openrouter/primary"]: ["openrouter/fallback1"]
    - ["openrouter/fallback1"]: ["ollama/llama3.1:8b"]
    - ["ollama/llama3.1:8b"]: ["ollama/gemma4:12b"]

# General Settings
general_settings:
  master_key: "${LITELLM_MASTER_KEY}"
  database_url: "sqlite:///litellm.db"
"#;

#[test]
fn the_first_seed_loads_with_its_chain_and_its_nvidia_backup() {
    let loaded = load_ok(
        FIRST_SEED,
        &env(&[
            ("OPENROUTER_KEY_PRIMARY", "sk-or-1"),
            ("OPENROUTER_KEY_FALLBACK1", "sk-or-2"),
            ("NVIDIA_API_KEY", "nvapi-1"),
            ("LITELLM_MASTER_KEY", "sk-master"),
        ]),
    );
    let chain: Vec<(String, Vec<String>)> = loaded
        .config
        .router_settings
        .fallbacks
        .iter()
        .map(|f| (f.model_group.clone(), f.fallbacks.clone()))
        .collect();
    let s = |v: &str| v.to_owned();
    assert_eq!(
        chain,
        [
            (s("openrouter/primary"), vec![s("openrouter/fallback1")]),
            (s("openrouter/fallback1"), vec![s("ollama/llama3.1:8b")]),
            (s("ollama/llama3.1:8b"), vec![s("ollama/gemma4:12b")]),
        ]
    );
    let nvidia = loaded
        .config
        .deployments()
        .into_iter()
        .find(|d| &*d.model_name == "nvidia/backup")
        .unwrap();
    assert_eq!(nvidia.provider, ProviderKind::NvidiaNim);
    assert_eq!(&*nvidia.model, "nvidia/nemotron-3-ultra-550b");
    assert_eq!(
        shown(&loaded.notices),
        ["warning: model_list[4].litellm_params.model: read as `nvidia_nim/nvidia/nemotron-3-ultra-550b`: NVIDIA's API (LiteLLM's prefix is `nvidia_nim/`), with the model id as written"]
    );
}

#[test]
fn keys_that_are_not_litellms_say_which_key_does_their_job() {
    let yaml = r#"
model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: gpt-4o-mini
      api_key: "sk-..."
router_settings:
  routing_strategy: "simple-shuffle"
  retry_policy:
    max_retries: 3
    delay: 1.0
  rate_limit:
    rpm: 60
    tpm: 100000
"#;
    let loaded = load_ok(yaml, &env(&[]));
    assert_eq!(
        shown(&loaded.notices),
        [
            "warning: router_settings.retry_policy.max_retries: not a LiteLLM key, ignored: retries per request are `router_settings.num_retries`; `retry_policy` takes one count per error class (`RateLimitErrorRetries`, `TimeoutErrorRetries`, ...)",
            "warning: router_settings.retry_policy.delay: not a LiteLLM key, ignored: the least wait before a retry is `router_settings.retry_after` (seconds)",
            "warning: router_settings.rate_limit: not a LiteLLM key, ignored: a provider's limits are `rpm`/`tpm` in each deployment's `litellm_params`; callers' limits are a virtual key's `rpm_limit`/`tpm_limit` (docs/rate-limits.md)",
        ]
    );
}

#[test]
fn retry_after_is_read_under_either_section() {
    let base =
        "model_list:\n  - model_name: m\n    litellm_params: {model: openai/m, api_key: k}\n";
    let litellm = load_ok(
        &format!(
            "{base}litellm_settings:\n  request_timeout: 30\n  num_retries: 3\n  retry_after: 5\n"
        ),
        &env(&[]),
    );
    assert_eq!(
        litellm.config.litellm_settings.retry_after,
        Some(Duration::from_secs(5))
    );
    assert!(litellm.notices.is_empty(), "{:?}", shown(&litellm.notices));
    let router = load_ok(
        &format!("{base}router_settings:\n  retry_after: 0\n"),
        &env(&[]),
    );
    assert_eq!(
        router.config.router_settings.retry_after,
        Some(Duration::ZERO)
    );
}

#[test]
fn a_list_alias_keeps_its_groups_in_order() {
    let yaml = r#"
model_list:
  - {model_name: gpt-4o, litellm_params: {model: openai/gpt-4o, api_key: k}}
  - {model_name: claude-3-5-sonnet, litellm_params: {model: anthropic/claude-3-5-sonnet, api_key: k}}
  - {model_name: mistral-7b-local, litellm_params: {model: ollama/mistral, api_base: "http://localhost:11434"}}
router_settings:
  model_group_alias:
    "gpt-4-fallback":
      - "gpt-4o"
      - "claude-3-5-sonnet"
      - "mistral-7b-local"
"#;
    let loaded = load_ok(yaml, &env(&[]));
    let aliases = loaded.config.model_group_aliases();
    assert_eq!(aliases["gpt-4-fallback"], ("gpt-4o".to_owned(), false));
    assert_eq!(
        loaded.config.alias_fallbacks()["gpt-4-fallback"],
        ["claude-3-5-sonnet", "mistral-7b-local"]
    );
}

#[test]
fn every_problem_says_its_line_and_column() {
    let yaml = "model_list:\n  - model_name: m\n    litellm_params:\n      model: foo/bar\n      api_bse: http://localhost:1234\nrouter_settings:\n  routing_strategy_argz: {}\n";
    let problems = llmgate_config::from_yaml(yaml, std::path::Path::new("/nonexistent"), &env(&[]))
        .unwrap_err();
    let lines: Vec<String> = problems.to_string().lines().map(str::to_owned).collect();
    assert_eq!(
        lines,
        [
            "error: model_list[0].litellm_params.api_bse: unknown key (did you mean `api_base`?): a misspelled connection key is not sent upstream, so this deployment would not reach the place it names (line 5, column 16)",
            "error: model_list[0].litellm_params.model: unknown provider \"foo\"; if it speaks OpenAI's API, write `model: openai/<model id>` with its `api_base` (see docs/providers.md) (line 4, column 14)",
            "warning: router_settings.routing_strategy_argz: unknown key, ignored (did you mean `routing_strategy_args`?) (line 7, column 3)",
        ]
    );
}

#[test]
fn a_near_miss_of_a_provider_is_named() {
    let yaml =
        "model_list:\n  - model_name: m\n    litellm_params:\n      model: anthropc/claude\n";
    let problems = llmgate_config::from_yaml(yaml, std::path::Path::new("/nonexistent"), &env(&[]))
        .unwrap_err();
    assert!(
        problems.0[0]
            .message
            .starts_with("unknown provider \"anthropc\" (did you mean \"anthropic\"?)"),
        "{problems}"
    );
}
