//! Whole configs, as LiteLLM users have them, load; the example configs load.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns"
)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{env, load_ok, shown, TempDir};
use llmgate_config::{from_yaml, load, Fallback, RoutingStrategy, Severity};
use llmgate_core::{MockResponse, ProviderKind};

const FULL: &str = r#"
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_key: os.environ/OPENAI_API_KEY
      rpm: 500
      tpm: 100000
      timeout: 30
      stream_timeout: 10.5
  - model_name: gpt-4o
    litellm_params:
      model: azure/gpt-4o-eu
      api_base: https://my-eu.openai.azure.com/
      api_key: os.environ/AZURE_API_KEY
      api_version: "2024-08-01-preview"
      weight: 2
    model_info:
      id: azure-eu
      base_model: azure/gpt-4o
  - model_name: claude
    litellm_params:
      model: openrouter/anthropic/claude-3.5-sonnet
      api_key: os.environ/OPENROUTER_API_KEY
      max_tokens: 1024
      temperature: 0.3
      extra_body:
        provider:
          order: ["Anthropic"]
  - model_name: llama
    litellm_params:
      model: groq/llama-3.3-70b-versatile
      api_key: "${GROQ_API_KEY}"
  - model_name: local
    litellm_params:
      model: ollama/llama3.2
      api_base: http://localhost:11434
  - model_name: vllm
    litellm_params:
      model: hosted_vllm/Qwen/Qwen2.5-7B-Instruct
      api_base: http://gpu-box:8000/v1
  - model_name: text-embedding-3-small
    litellm_params:
      model: text-embedding-3-small
    model_info:
      mode: embedding

router_settings:
  routing_strategy: simple-shuffle
  model_group_alias:
    gpt-4: gpt-4o
    sonnet: { model: claude, hidden: true }
  timeout: 60
  fallbacks:
    - gpt-4o: ["claude", "llama"]
  default_fallbacks: ["local"]

litellm_settings:
  request_timeout: 600

general_settings:
  master_key: os.environ/LITELLM_MASTER_KEY
  max_request_size_mb: 4
"#;

fn full_env() -> std::collections::HashMap<String, String> {
    env(&[
        ("OPENAI_API_KEY", "sk-openai"),
        ("AZURE_API_KEY", "azure-key"),
        ("OPENROUTER_API_KEY", "sk-or"),
        ("GROQ_API_KEY", "gsk"),
        ("LITELLM_MASTER_KEY", "sk-master"),
    ])
}

#[test]
fn a_full_litellm_config_loads() {
    let loaded = load_ok(FULL, &full_env());
    let config = &loaded.config;
    assert_eq!(shown(&loaded.notices), Vec::<String>::new());

    let d = config.deployments();
    let summary: Vec<_> = d
        .iter()
        .map(|d| {
            (
                d.id.as_ref(),
                d.model_name.as_ref(),
                d.provider,
                d.model.as_ref(),
                d.api_base.as_deref(),
                d.api_key.as_ref().map(|k| k.expose().to_owned()),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "gpt-4o-0",
                "gpt-4o",
                ProviderKind::OpenAi,
                "gpt-4o",
                Some("https://api.openai.com/v1"),
                Some("sk-openai".to_owned())
            ),
            (
                "azure-eu",
                "gpt-4o",
                ProviderKind::Azure,
                "gpt-4o-eu",
                Some("https://my-eu.openai.azure.com/"),
                Some("azure-key".to_owned())
            ),
            (
                "claude-2",
                "claude",
                ProviderKind::OpenRouter,
                "anthropic/claude-3.5-sonnet",
                Some("https://openrouter.ai/api/v1"),
                Some("sk-or".to_owned())
            ),
            (
                "llama-3",
                "llama",
                ProviderKind::Groq,
                "llama-3.3-70b-versatile",
                Some("https://api.groq.com/openai/v1"),
                Some("gsk".to_owned())
            ),
            (
                "local-4",
                "local",
                ProviderKind::Ollama,
                "llama3.2",
                Some("http://localhost:11434"),
                None
            ),
            (
                "vllm-5",
                "vllm",
                ProviderKind::HostedVllm,
                "Qwen/Qwen2.5-7B-Instruct",
                Some("http://gpu-box:8000/v1"),
                None
            ),
            (
                "text-embedding-3-small-6",
                "text-embedding-3-small",
                ProviderKind::OpenAi,
                "text-embedding-3-small",
                Some("https://api.openai.com/v1"),
                Some("sk-openai".to_owned())
            ),
        ]
    );

    // Per-deployment settings, and the router/litellm defaults for the rest.
    assert_eq!(d[0].rpm, Some(500));
    assert_eq!(d[0].tpm, Some(100_000));
    assert_eq!(d[0].timeout, Some(Duration::from_secs(30)));
    assert_eq!(d[0].stream_timeout, Some(Duration::from_millis(10_500)));
    assert_eq!(
        d[1].timeout,
        Some(Duration::from_secs(60)),
        "router_settings.timeout"
    );
    assert_eq!(d[1].weight, Some(2.0));
    assert_eq!(d[1].api_version.as_deref(), Some("2024-08-01-preview"));
    assert_eq!(d[1].model_info.base_model.as_deref(), Some("azure/gpt-4o"));
    assert_eq!(
        serde_json::Value::Object(d[2].default_params.clone()),
        serde_json::json!({
            "max_tokens": 1024,
            "temperature": 0.3,
            "provider": {"order": ["Anthropic"]}
        })
    );
    assert_eq!(d[6].model_info.mode.as_deref(), Some("embedding"));

    // Router settings.
    let router = &config.router_settings;
    assert_eq!(router.routing_strategy, RoutingStrategy::SimpleShuffle);
    assert_eq!(
        router.fallbacks,
        vec![Fallback {
            model_group: "gpt-4o".into(),
            fallbacks: vec!["claude".into(), "llama".into()]
        }]
    );
    assert_eq!(router.default_fallbacks, vec!["local".to_owned()]);
    let aliases = config.model_group_aliases();
    assert_eq!(aliases["gpt-4"], ("gpt-4o".to_owned(), false));
    assert_eq!(aliases["sonnet"], ("claude".to_owned(), true));

    // General settings.
    assert_eq!(config.master_key().unwrap().expose(), "sk-master");
    assert_eq!(
        config.general_settings.max_request_body_bytes(),
        4 * 1024 * 1024
    );
    assert_eq!(
        config.litellm_settings.request_timeout,
        Some(Duration::from_secs(600))
    );
}

#[test]
fn secrets_do_not_show_in_debug_output() {
    let loaded = load_ok(
        "environment_variables:\n  HIDDEN: sk-very-secret\nmodel_list:\n  - model_name: a\n    litellm_params:\n      model: openai/a\n      api_key: ${HIDDEN}\ngeneral_settings:\n  master_key: ${HIDDEN}\n",
        &env(&[]),
    );
    let debug = format!("{:?} {:?}", loaded.config, loaded.config.deployments());
    assert!(!debug.contains("sk-very-secret"), "{debug}");
    assert!(debug.contains("HIDDEN"));
}

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

#[test]
fn the_quickstart_example_loads_as_documented() {
    let path = examples_dir().join("quickstart.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with(
        "# llmgate quickstart: one model that answers without any provider (LiteLLM's mock_response).\n"
    ));
    // `load` reads the real environment; the quickstart needs nothing from it.
    let loaded = load(&path).unwrap();
    let d = loaded.config.deployments();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].model_name.as_ref(), "demo");
    assert_eq!(
        d[0].mock_response,
        Some(MockResponse::Text(
            "Hello from llmgate! This answer is a mock_response, so no provider was called.".into()
        ))
    );
    assert_eq!(loaded.config.master_key().unwrap().expose(), "sk-demo");
    assert!(
        loaded.notices.iter().all(|n| n.severity != Severity::Error),
        "{:?}",
        loaded.notices
    );
}

#[test]
fn the_full_example_loads_with_its_variables_set() {
    let dir = examples_dir().join("configs");
    let text = std::fs::read_to_string(dir.join("full.yaml")).unwrap();
    let vars = env(&[
        ("OPENROUTER_API_KEY", "sk-or-1"),
        ("OPENROUTER_API_KEY_2", "sk-or-2"),
        ("GROQ_API_KEY", "gsk-1"),
        ("LLMGATE_MASTER_KEY", "sk-gate"),
    ]);
    let loaded = from_yaml(&text, &dir, &vars).unwrap_or_else(|p| panic!("{p}"));
    let config = &loaded.config;
    let d = config.deployments();
    let groups: Vec<&str> = d.iter().map(|d| d.model_name.as_ref()).collect();
    assert_eq!(
        groups,
        [
            "claude-sonnet",
            "claude-sonnet",
            "llama-free",
            "llama-fast",
            "llama-local",
            "embed"
        ]
    );
    assert_eq!(d[1].api_key.as_ref().unwrap().expose(), "sk-or-2");
    assert_eq!(d[4].api_base.as_deref(), Some("http://localhost:11434"));
    assert_eq!(d[2].rpd, Some(200));
    let title = d[0].headers.iter().find(|(n, _)| n == "x-title").unwrap();
    assert_eq!(title.1, "my-app");
    assert_eq!(config.master_key().unwrap().expose(), "sk-gate");
    assert!(loaded
        .notices
        .iter()
        .all(|n| n.severity == Severity::NotYetActive));

    // Without the variables it names each missing one.
    let problems = from_yaml(&text, &dir, &env(&[])).unwrap_err();
    let missing: Vec<String> = problems.errors().map(|p| p.path.clone()).collect();
    assert_eq!(
        missing,
        [
            "model_list[0].litellm_params.api_key",
            "model_list[1].litellm_params.api_key",
            "model_list[2].litellm_params.api_key",
            "model_list[3].litellm_params.api_key",
            "model_list[5].litellm_params.api_key",
            "general_settings.master_key",
        ]
    );
}

#[test]
fn load_reads_the_file_and_the_dotenv_beside_it() {
    let dir = TempDir::new();
    let path = dir.write(
        "config.yaml",
        "model_list:\n  - model_name: a\n    litellm_params:\n      model: groq/llama\n      api_key: os.environ/LLMGATE_CONFIG_TEST_DOTENV_KEY_5B1\n",
    );
    dir.write(
        ".env",
        "# keys\nLLMGATE_CONFIG_TEST_DOTENV_KEY_5B1=gsk-from-dotenv\n",
    );
    let loaded = load(&path).unwrap();
    let d = loaded.config.deployments();
    assert_eq!(d[0].api_key.as_ref().unwrap().expose(), "gsk-from-dotenv");
    assert_eq!(loaded.config.config_dir, dir.0);
    // Reading .env does not set the variable in the process.
    assert!(std::env::var("LLMGATE_CONFIG_TEST_DOTENV_KEY_5B1").is_err());
}

/// `environment_variables` resolve the file's references (whole-string `os.environ/` and
/// `${}`) but are never written into the process environment.
#[test]
fn environment_variables_resolve_references_but_stay_out_of_the_process() {
    let dir = TempDir::new();
    let path = dir.write(
        "config.yaml",
        "environment_variables:\n  LLMGATE_CONFIG_TEST_ENV_KEY_7C2: gsk-from-config\n  LLMGATE_CONFIG_TEST_ENV_HOST_7C2: llm.internal:8080\nmodel_list:\n  - model_name: a\n    litellm_params:\n      model: openai/llama\n      api_key: os.environ/LLMGATE_CONFIG_TEST_ENV_KEY_7C2\n      api_base: http://${LLMGATE_CONFIG_TEST_ENV_HOST_7C2}/v1\n",
    );
    let loaded = load(&path).unwrap();
    let d = loaded.config.deployments();
    assert_eq!(d[0].api_key.as_ref().unwrap().expose(), "gsk-from-config");
    assert_eq!(
        d[0].api_base.as_deref(),
        Some("http://llm.internal:8080/v1")
    );
    for name in [
        "LLMGATE_CONFIG_TEST_ENV_KEY_7C2",
        "LLMGATE_CONFIG_TEST_ENV_HOST_7C2",
    ] {
        assert!(
            std::env::var_os(name).is_none(),
            "{name} was set in the process"
        );
    }
}

#[test]
fn load_names_a_missing_file() {
    let problems = load(Path::new("/nonexistent/llmgate/config.yaml")).unwrap_err();
    assert_eq!(problems.0.len(), 1);
    assert_eq!(problems.0[0].path, "/nonexistent/llmgate/config.yaml");
    assert!(problems.0[0]
        .message
        .starts_with("cannot read the config file: "));
}

#[test]
fn include_merges_other_files_like_litellm() {
    let dir = TempDir::new();
    dir.write(
        "models.yaml",
        "model_list:\n  - model_name: b\n    litellm_params:\n      model: openai/b\n      api_key: k\nrouter_settings:\n  timeout: 5\n",
    );
    let path = dir.write(
        "config.yaml",
        "include:\n  - models.yaml\nmodel_list:\n  - model_name: a\n    litellm_params:\n      model: openai/a\n      api_key: k\n",
    );
    let loaded = load(&path).unwrap();
    let names: Vec<String> = loaded
        .config
        .deployments()
        .iter()
        .map(|d| d.model_name.to_string())
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(
        loaded.config.router_settings.timeout,
        Some(Duration::from_secs(5))
    );

    let missing = dir.write("bad.yaml", "include: [nope.yaml]\n");
    let problems = load(&missing).unwrap_err();
    assert_eq!(problems.0[0].path, "include[0]");
    assert!(
        problems.0[0].message.starts_with("cannot read "),
        "{problems}"
    );
}

#[test]
fn an_empty_or_missing_model_list_loads_with_a_warning() {
    for yaml in [
        "",
        "model_list: []\n",
        "general_settings:\n  master_key: sk-1\n",
    ] {
        let loaded = load_ok(yaml, &env(&[]));
        assert!(loaded.config.deployments().is_empty());
        assert_eq!(
            shown(&loaded.notices),
            ["warning: model_list: no models configured: every model request will be answered with 400 (model_not_found)"],
            "{yaml:?}"
        );
    }
}

#[test]
fn yaml_anchors_and_merge_keys_work() {
    let yaml = r#"
x-common: &common
  api_key: os.environ/K
  timeout: 12
model_list:
  - model_name: a
    litellm_params:
      <<: *common
      model: openai/a
  - model_name: b
    litellm_params:
      <<: *common
      model: openai/b
      timeout: 3
"#;
    let loaded = load_ok(yaml, &env(&[("K", "sk-k")]));
    let d = loaded.config.deployments();
    assert_eq!(d[0].timeout, Some(Duration::from_secs(12)));
    assert_eq!(d[1].timeout, Some(Duration::from_secs(3)));
    assert_eq!(d[1].api_key.as_ref().unwrap().expose(), "sk-k");
    assert_eq!(
        shown(&loaded.notices),
        ["warning: x-common: unknown key, ignored"]
    );
}

#[test]
fn spend_spill_dir_is_known_and_must_name_a_directory() {
    let loaded = load_ok(
        "general_settings:\n  master_key: sk-1\n  spend_spill_dir: /var/lib/llmgate/spill\n",
        &env(&[]),
    );
    assert_eq!(
        loaded.config.general_settings.spend_spill_dir,
        Some(PathBuf::from("/var/lib/llmgate/spill"))
    );
    assert!(
        shown(&loaded.notices)
            .iter()
            .all(|n| !n.contains("spend_spill_dir")),
        "{:?}",
        shown(&loaded.notices)
    );
    let problems = common::load_err("general_settings:\n  spend_spill_dir: \"\"\n", &env(&[]));
    assert!(
        problems
            .iter()
            .any(|p| p.contains("spend_spill_dir") && p.contains("directory")),
        "{problems:?}"
    );
}
