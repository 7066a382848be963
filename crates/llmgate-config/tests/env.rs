//! Environment references: `os.environ/NAME` and `${NAME}`, the three sources and their order,
//! and the provider defaults LiteLLM reads from the environment.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns"
)]

mod common;

use common::{env, load_err, load_ok, TempDir};
use llmgate_config::from_yaml;

const VAR: &str = "LLMGATE_CONFIG_TEST_VAR_91C";

fn one_model(api_key: &str) -> String {
    format!(
        "model_list:\n  - model_name: m\n    litellm_params:\n      model: groq/m\n      api_key: {api_key}\n"
    )
}

/// Loads `yaml` with the variable set in any of the three sources.
fn key_with_sources(config: Option<&str>, process: Option<&str>, dotenv: Option<&str>) -> String {
    let dir = TempDir::new();
    let mut yaml = String::new();
    if let Some(v) = config {
        yaml.push_str(&format!("environment_variables:\n  {VAR}: {v}\n"));
    }
    yaml.push_str(&one_model(&format!("os.environ/{VAR}")));
    if let Some(v) = dotenv {
        dir.write(".env", &format!("{VAR}={v}\n"));
    }
    let process_env = match process {
        Some(v) => env(&[(VAR, v)]),
        None => env(&[]),
    };
    let loaded = from_yaml(&yaml, &dir.0, &process_env).unwrap_or_else(|p| panic!("{p}"));
    let d = loaded.config.deployments();
    d[0].api_key.as_ref().unwrap().expose().to_owned()
}

#[test]
fn lookup_order_is_config_then_process_then_dotenv() {
    let cases = [
        (Some("config"), Some("process"), Some("dotenv"), "config"),
        (Some("config"), None, Some("dotenv"), "config"),
        (Some("config"), Some("process"), None, "config"),
        (None, Some("process"), Some("dotenv"), "process"),
        (None, Some("process"), None, "process"),
        (None, None, Some("dotenv"), "dotenv"),
    ];
    for (config, process, dotenv, want) in cases {
        assert_eq!(
            key_with_sources(config, process, dotenv),
            want,
            "config={config:?} process={process:?} dotenv={dotenv:?}"
        );
    }
}

#[test]
fn dollar_brace_references_resolve_anywhere_in_a_string() {
    let yaml = r#"
environment_variables:
  PORT: 8000
model_list:
  - model_name: m
    litellm_params:
      model: hosted_vllm/qwen
      api_base: "http://${HOST}:${PORT}/v1"
      api_key: "Bearer-${TOKEN}"
      extra_headers:
        X-Tenant: "${TENANT}-prod"
      user: "${TENANT}"
"#;
    let loaded = load_ok(
        yaml,
        &env(&[("HOST", "gpu"), ("TOKEN", "t0k"), ("TENANT", "acme")]),
    );
    let d = &loaded.config.deployments()[0];
    assert_eq!(d.api_base.as_deref(), Some("http://gpu:8000/v1"));
    assert_eq!(d.api_key.as_ref().unwrap().expose(), "Bearer-t0k");
    assert_eq!(d.headers[0].1, "acme-prod");
    assert_eq!(d.default_params["user"], "acme");
}

#[test]
fn unset_variables_are_errors_naming_path_and_variable() {
    let yaml = r#"
model_list:
  - model_name: m
    litellm_params:
      model: groq/m
      api_key: os.environ/MISSING_KEY
      api_base: "https://${MISSING_HOST}/${MISSING_PATH}"
      extra_body:
        nested: ["${MISSING_NESTED}"]
general_settings:
  master_key: os.environ/MISSING_MASTER
"#;
    let set = "(looked in environment_variables, the process environment and .env)";
    assert_eq!(
        load_err(yaml, &env(&[])),
        vec![
            format!("error: model_list[0].litellm_params.api_key: environment variable MISSING_KEY is not set {set}"),
            format!("error: model_list[0].litellm_params.api_base: environment variable MISSING_HOST is not set {set}"),
            format!("error: model_list[0].litellm_params.api_base: environment variable MISSING_PATH is not set {set}"),
            format!("error: model_list[0].litellm_params.extra_body.nested[0]: environment variable MISSING_NESTED is not set {set}"),
            format!("error: general_settings.master_key: environment variable MISSING_MASTER is not set {set}"),
        ]
    );
}

#[test]
fn environment_variables_values_may_reference_the_environment() {
    let yaml = r#"
environment_variables:
  GROQ_API_KEY: os.environ/REAL_GROQ_KEY
  RETRIES: 3
  FLAG: true
model_list:
  - model_name: m
    litellm_params:
      model: groq/m
      max_retries: os.environ/RETRIES
"#;
    let loaded = load_ok(yaml, &env(&[("REAL_GROQ_KEY", "gsk-real")]));
    let vars = &loaded.config.environment_variables;
    assert_eq!(vars["GROQ_API_KEY"], "gsk-real");
    assert_eq!(vars["RETRIES"], "3");
    assert_eq!(vars["FLAG"], "True", "as Python's str(True)");
    let d = &loaded.config.deployments()[0];
    assert_eq!(
        d.api_key.as_ref().unwrap().expose(),
        "gsk-real",
        "provider default key"
    );
    assert_eq!(d.max_retries, Some(3), "a number read from text");
}

#[test]
fn provider_defaults_come_from_the_environment_like_litellm() {
    let yaml = r#"
model_list:
  - model_name: gpt
    litellm_params:
      model: gpt-4o-mini
  - model_name: local
    litellm_params:
      model: ollama_chat/llama3.2
  - model_name: az
    litellm_params:
      model: azure/my-deployment
"#;
    let loaded = load_ok(
        yaml,
        &env(&[
            ("OPENAI_API_KEY", "sk-default"),
            ("OPENAI_API_BASE", "https://proxy.example/v1"),
            ("OLLAMA_API_BASE", "http://ollama:11434"),
            ("AZURE_API_KEY", "az-key"),
            ("AZURE_API_BASE", "https://x.openai.azure.com"),
            ("AZURE_API_VERSION", "2024-10-21"),
        ]),
    );
    let d = loaded.config.deployments();
    assert_eq!(d[0].api_key.as_ref().unwrap().expose(), "sk-default");
    assert_eq!(d[0].api_base.as_deref(), Some("https://proxy.example/v1"));
    assert_eq!(d[1].api_base.as_deref(), Some("http://ollama:11434"));
    assert!(d[1].api_key.is_none());
    assert_eq!(d[2].api_key.as_ref().unwrap().expose(), "az-key");
    assert_eq!(d[2].api_base.as_deref(), Some("https://x.openai.azure.com"));
    assert_eq!(d[2].api_version.as_deref(), Some("2024-10-21"));
    assert!(loaded.notices.is_empty(), "{:?}", loaded.notices);
}

#[test]
fn a_missing_default_key_is_a_warning() {
    let loaded = load_ok(
        "model_list:\n  - model_name: gpt\n    litellm_params:\n      model: openai/gpt-4o\n",
        &env(&[]),
    );
    assert_eq!(
        common::shown(&loaded.notices),
        ["warning: model_list[0].litellm_params.api_key: no api_key, and OPENAI_API_KEY is not set: the provider will refuse requests"]
    );
}

#[test]
fn the_master_key_falls_back_to_litellm_master_key() {
    let loaded = load_ok(
        "model_list: []\n",
        &env(&[("LITELLM_MASTER_KEY", "sk-env")]),
    );
    assert_eq!(loaded.config.master_key().unwrap().expose(), "sk-env");
    let loaded = load_ok(
        "general_settings:\n  master_key: sk-file\n",
        &env(&[("LITELLM_MASTER_KEY", "sk-env")]),
    );
    assert_eq!(loaded.config.master_key().unwrap().expose(), "sk-file");
    assert!(load_ok("", &env(&[])).config.master_key().is_none());
}

#[test]
fn a_broken_dotenv_is_an_error() {
    let dir = TempDir::new();
    dir.write(".env", "GOOD=1\nthis is not an assignment\n");
    let problems = from_yaml("model_list: []\n", &dir.0, &env(&[])).unwrap_err();
    assert_eq!(problems.0[0].path, ".env");
    assert!(
        problems.0[0].message.starts_with("cannot read: "),
        "{problems}"
    );
}
