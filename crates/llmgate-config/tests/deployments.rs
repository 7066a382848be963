//! What `Config::deployments()` hands to the router and providers, and the sidecar config.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns"
)]

mod common;

use std::time::Duration;

use common::{env, load_ok, shown};
use llmgate_config::{sidecar, GeneralSettings, MOCK_ERRORS};
use llmgate_core::{DeploymentSpec, MockResponse, ProviderKind};
use serde_json::json;

fn one(params: &str) -> DeploymentSpec {
    let yaml = format!("model_list:\n  - model_name: m\n    litellm_params:\n{params}");
    let loaded = load_ok(&yaml, &env(&[("OPENAI_API_KEY", "sk-x")]));
    loaded.config.deployments().remove(0)
}

#[test]
fn mock_response_variants() {
    let cases: Vec<(&str, MockResponse)> = vec![
        ("\"Hello!\"", MockResponse::Text("Hello!".into())),
        (
            "'multi word answer'",
            MockResponse::Text("multi word answer".into()),
        ),
        (
            "\"${GREETING} there\"",
            MockResponse::Text("hi there".into()),
        ),
        (
            "litellm.RateLimitError",
            MockResponse::Error {
                status: 429,
                message: "litellm.RateLimitError: mock_response from the config".into(),
            },
        ),
        (
            "litellm.InternalServerError",
            MockResponse::Error {
                status: 500,
                message: "litellm.InternalServerError: mock_response from the config".into(),
            },
        ),
        (
            "litellm.ServiceUnavailableError",
            MockResponse::Error {
                status: 503,
                message: "litellm.ServiceUnavailableError: mock_response from the config".into(),
            },
        ),
        (
            "litellm.Timeout",
            MockResponse::Error {
                status: 408,
                message: "litellm.Timeout: mock_response from the config".into(),
            },
        ),
        (
            "litellm.BadRequestError",
            MockResponse::Error {
                status: 400,
                message: "litellm.BadRequestError: mock_response from the config".into(),
            },
        ),
        (
            "litellm.AuthenticationError",
            MockResponse::Error {
                status: 401,
                message: "litellm.AuthenticationError: mock_response from the config".into(),
            },
        ),
        (
            "litellm.ContextWindowExceededError",
            MockResponse::Error {
                status: 400,
                message: "litellm.ContextWindowExceededError: mock_response from the config".into(),
            },
        ),
        (
            "litellm.ContentPolicyViolationError",
            MockResponse::Error {
                status: 400,
                message: "litellm.ContentPolicyViolationError: mock_response from the config"
                    .into(),
            },
        ),
        (
            "litellm.NotFoundError",
            MockResponse::Error {
                status: 404,
                message: "litellm.NotFoundError: mock_response from the config".into(),
            },
        ),
        (
            "litellm.APIConnectionError",
            MockResponse::Error {
                status: 500,
                message: "litellm.APIConnectionError: mock_response from the config".into(),
            },
        ),
    ];
    assert_eq!(
        cases.len(),
        MOCK_ERRORS.len() + 3,
        "every exception name is covered"
    );
    for (value, want) in cases {
        let yaml = format!(
            "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/m\n      mock_response: {value}\n"
        );
        let loaded = load_ok(&yaml, &env(&[("GREETING", "hi")]));
        assert!(loaded.notices.is_empty(), "{value}: {:?}", loaded.notices);
        assert_eq!(
            loaded.config.deployments()[0].mock_response,
            Some(want),
            "{value}"
        );
    }

    // An exception name llmgate does not know is answered as text, with a warning.
    let yaml = "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/m\n      mock_response: litellm.UnprocessableEntityError\n";
    let loaded = load_ok(yaml, &env(&[]));
    assert_eq!(
        loaded.config.deployments()[0].mock_response,
        Some(MockResponse::Text(
            "litellm.UnprocessableEntityError".into()
        ))
    );
    assert_eq!(loaded.notices.len(), 1);
    assert!(loaded.notices[0]
        .message
        .starts_with("\"litellm.UnprocessableEntityError\" looks like a LiteLLM exception"));
}

#[test]
fn other_params_become_defaults_and_internal_ones_do_not() {
    let d = one("      model: openai/gpt-4o
      temperature: 0.1
      max_tokens: 256
      drop_params: true
      seed: null
      extra_body: {reasoning: {effort: low}}
      response_format: {type: json_object}
      tags: [a]
      region_name: eu
      cooldown_time: 5
      max_parallel_requests: 3
      input_cost_per_token: 0.000002
      output_cost_per_token: 0.000008
      use_in_pass_through: false
      merge_reasoning_content_in_choices: false
      aws_region_name: us-east-1
      vertex_project: p
      organization: org-123
");
    assert_eq!(
        serde_json::Value::Object(d.default_params.clone()),
        json!({
            "temperature": 0.1,
            "max_tokens": 256,
            // extra_body's fields are merged into the body, as LiteLLM does; drop_params is
            // the gateway's, never sent upstream.
            "reasoning": {"effort": "low"},
            "response_format": {"type": "json_object"},
        })
    );
    assert_eq!(d.model_info.input_cost_per_token, Some(0.000002));
    assert_eq!(d.model_info.output_cost_per_token, Some(0.000008));
    assert_eq!(
        d.headers,
        vec![(
            "openai-organization".parse().unwrap(),
            "org-123".parse().unwrap()
        )]
    );
}

#[test]
fn headers_merge_with_extra_headers_winning() {
    let d = one("      model: openai/m
      headers:
        X-A: from-headers
        X-B: b
      extra_headers:
        x-a: from-extra
        X-Num: 42
        X-Flag: true
      organization: org-1
");
    let shown: Vec<(String, String)> = d
        .headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        shown,
        [
            ("x-b", "b"),
            ("x-a", "from-extra"),
            ("x-num", "42"),
            ("x-flag", "true"),
            ("openai-organization", "org-1"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
}

#[test]
fn ids_model_info_and_timeouts() {
    let yaml = r#"
model_list:
  - model_name: a
    litellm_params: {model: openai/a, timeout: 7}
    model_info:
      id: 1234
      mode: chat
      max_input_tokens: 128000
      max_output_tokens: 4096
      input_cost_per_token: 0.0000025
      supports_vision: true
  - model_name: a
    litellm_params: {model: "openai/a"}
  - model_name: b
    litellm_params: {model: openai/b, stream_timeout: 2}
router_settings:
  stream_timeout: 9
litellm_settings:
  request_timeout: 45
"#;
    let loaded = load_ok(yaml, &env(&[("OPENAI_API_KEY", "k")]));
    let d = loaded.config.deployments();
    let ids: Vec<&str> = d.iter().map(|d| d.id.as_ref()).collect();
    assert_eq!(ids, ["1234", "a-1", "b-2"]);
    assert_eq!(d[0].model_info.mode.as_deref(), Some("chat"));
    assert_eq!(d[0].model_info.max_input_tokens, Some(128_000));
    assert_eq!(d[0].model_info.max_tokens, Some(4096), "max_output_tokens");
    assert_eq!(d[0].model_info.input_cost_per_token, Some(0.0000025));
    let timeouts: Vec<_> = d.iter().map(|d| (d.timeout, d.stream_timeout)).collect();
    let s = Duration::from_secs;
    assert_eq!(
        timeouts,
        [
            (Some(s(7)), Some(s(9))),
            (Some(s(45)), Some(s(9))),
            (Some(s(45)), Some(s(2)))
        ]
    );
    assert_eq!(
        shown(&loaded.notices),
        ["not yet active: model_list[0].model_info.supports_vision: not active yet in this llmgate release (model metadata beyond mode, base model, limits and cost); accepted, has no effect"]
    );
    // Same config, same ids: they survive restarts.
    let again = load_ok(yaml, &env(&[("OPENAI_API_KEY", "k")]));
    let again: Vec<String> = again
        .config
        .deployments()
        .iter()
        .map(|d| d.id.to_string())
        .collect();
    assert_eq!(again, ["1234", "a-1", "b-2"]);
}

#[test]
fn request_body_limit() {
    let mut g = GeneralSettings::default();
    assert_eq!(g.max_request_body_bytes(), 16 * 1024 * 1024);
    g.max_request_size_mb = Some(0.5);
    assert_eq!(g.max_request_body_bytes(), 512 * 1024);
    let loaded = load_ok("general_settings:\n  max_request_size_mb: 100\n", &env(&[]));
    assert_eq!(
        loaded.config.general_settings.max_request_body_bytes(),
        100 << 20
    );
}

#[test]
fn http_limits() {
    let g = GeneralSettings::default();
    assert_eq!(g.request_header_timeout(), Duration::from_secs(30));
    assert_eq!(g.request_body_timeout(), Duration::from_secs(60));
    assert_eq!(g.max_header_bytes(), 64 * 1024);
    assert_eq!(g.max_headers(), 100);
    assert_eq!(g.max_connections(), 10_000);
    let loaded = load_ok(
        "general_settings:\n  llmgate_request_header_timeout: 2.5\n  \
         llmgate_request_body_timeout: 90\n  llmgate_max_header_bytes: 8192\n  \
         llmgate_max_headers: 256\n  llmgate_max_connections: 50000\n",
        &env(&[]),
    );
    let g = &loaded.config.general_settings;
    assert_eq!(g.request_header_timeout(), Duration::from_millis(2500));
    assert_eq!(g.request_body_timeout(), Duration::from_secs(90));
    assert_eq!(g.max_header_bytes(), 8192);
    assert_eq!(g.max_headers(), 256);
    assert_eq!(g.max_connections(), 50_000);
}

#[test]
fn sidecar_serves_the_model_and_a_catch_all() {
    let loaded = sidecar(
        "ollama/llama3.2",
        Some("http://localhost:11434"),
        None,
        &env(&[]),
    )
    .unwrap();
    assert!(loaded.notices.is_empty(), "{:?}", loaded.notices);
    let d = loaded.config.deployments();
    let summary: Vec<_> = d
        .iter()
        .map(|d| {
            (
                d.model_name.as_ref(),
                d.provider,
                d.model.as_ref(),
                d.api_base.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "ollama/llama3.2",
                ProviderKind::Ollama,
                "llama3.2",
                Some("http://localhost:11434")
            ),
            (
                "*",
                ProviderKind::Ollama,
                "llama3.2",
                Some("http://localhost:11434")
            ),
        ]
    );
    assert_ne!(d[0].id, d[1].id);
    assert!(loaded.config.master_key().is_none());

    // The key may be a reference; without one the provider's variable is used.
    let loaded = sidecar(
        "groq/llama-3.1-8b-instant",
        None,
        Some("os.environ/MY_GROQ"),
        &env(&[("MY_GROQ", "gsk-1")]),
    )
    .unwrap();
    assert_eq!(
        loaded.config.deployments()[1]
            .api_key
            .as_ref()
            .unwrap()
            .expose(),
        "gsk-1"
    );
    let loaded = sidecar(
        "gpt-4o-mini",
        None,
        None,
        &env(&[("OPENAI_API_KEY", "sk-env")]),
    )
    .unwrap();
    let d = loaded.config.deployments();
    assert_eq!(d[0].api_key.as_ref().unwrap().expose(), "sk-env");
    assert_eq!(d[0].api_base.as_deref(), Some("https://api.openai.com/v1"));
}

#[test]
fn sidecar_problems_name_the_flags() {
    let problems = sidecar("vertex_ai/gemini-pro", None, None, &env(&[])).unwrap_err();
    assert_eq!(
        problems.to_string(),
        "error: --model: vertex_ai needs a Google Cloud project: set vertex_project (or \
         VERTEXAI_PROJECT), or credentials with a project_id, or an api_key (Vertex express mode)"
    );
    let problems =
        sidecar("hosted_vllm/qwen", None, Some("os.environ/NOPE"), &env(&[])).unwrap_err();
    assert_eq!(
        problems.to_string(),
        "error: --api_key: environment variable NOPE is not set (looked in environment_variables, the process environment and .env)\n\
         error: --api_base: api_base is required for hosted_vllm"
    );
    let problems = sidecar("", None, None, &env(&[])).unwrap_err();
    assert_eq!(problems.to_string(), "error: --model: must not be empty");
}
