//! Problems: every one reported at once, each with its path and severity.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns"
)]

mod common;

use common::{all_problems, check, env, load_err, load_ok};

const MANY: &str = r#"
model_list:
  - model_name: ok
    litellm_params:
      model: openai/gpt-4o
      api_key: sk-1
  - litellm_params:
      model: openai/x
      api_key: k
  - model_name: bad-provider
    litellm_params:
      model: foo/bar
  - model_name: azure-no-base
    litellm_params:
      model: azure/gpt
      api_key: k
  - model_name: claude
    litellm_params:
      model: vertex_ai/gemini-pro
  - model_name: bad-types
    litellm_params:
      model: groq/llama
      api_key: k
      timeout: ten
      rpm: -5
      weight: heavy
      extra_headers:
        "Bad Header": x
  - model_name: dup
    litellm_params:
      model: openai/gpt-4o-mini
      api_key: k
    model_info:
      id: ok-0
  - model_name: [not, a, string]
    litellm_params: "openai/gpt-4o"
router_settings:
  routing_strategy: fastest
  fallbacks:
    - ok: ["ok", "missing-group"]
  model_group_alias:
    alias: nowhere
general_settings:
  master_key: 1234
  allowed_ips: ["10.0.0.1"]
litellm_settings:
  max_budget: 100
  budget_duration: 30 days
bogus_section: 1
"#;

const UNKNOWN_PROVIDER: &str = "; if it speaks OpenAI's API, write `model: openai/<model id>` with its `api_base` (see docs/providers.md)";

const UNENFORCED: &str = "not implemented yet in llmgate; starting would leave this setting unenforced (remove it to run without it)";

#[test]
fn every_problem_is_reported_at_once() {
    let want = vec![
        "error: model_list[1].model_name: missing required key".to_owned(),
        format!("error: model_list[2].litellm_params.model: unknown provider \"foo\"{UNKNOWN_PROVIDER}"),
        "error: model_list[3].litellm_params.api_base: api_base is required for azure".to_owned(),
        "error: model_list[4].litellm_params.vertex_project: vertex_ai needs a Google Cloud project: set vertex_project (or VERTEXAI_PROJECT), or credentials with a project_id, or an api_key (Vertex express mode)".to_owned(),
        "error: model_list[5].litellm_params.timeout: expected a number of seconds, found a string".to_owned(),
        "error: model_list[5].litellm_params.rpm: expected a whole number that is zero or more".to_owned(),
        "error: model_list[5].litellm_params.weight: expected a number, found a string".to_owned(),
        "error: model_list[5].litellm_params.extra_headers[\"Bad Header\"]: not a valid HTTP header name".to_owned(),
        "error: model_list[6].model_info.id: duplicate deployment id \"ok-0\" (also used by model_list[0])".to_owned(),
        "error: model_list[7].model_name: expected a string, found a list".to_owned(),
        "error: model_list[7].litellm_params: expected a mapping, found a string".to_owned(),
        "error: router_settings.routing_strategy: unknown routing strategy \"fastest\" (expected one of simple-shuffle, least-busy, latency-based-routing, usage-based-routing, usage-based-routing-v2, cost-based-routing)".to_owned(),
        format!("error: general_settings.allowed_ips: IP allow-lists are {UNENFORCED}"),
        "error: litellm_settings.budget_duration: budget_duration \"30 days\" is not a duration such as \"30d\" (s, m, h, d, w, mo)".to_owned(),
        "error: router_settings.fallbacks[0].ok[0]: the fallbacks of \"ok\" must not contain \"ok\" itself".to_owned(),
        "warning: general_settings.master_key: does not start with \"sk-\" (LiteLLM requires it; llmgate accepts it, but clients and tools may expect sk-)".to_owned(),
        "warning: bogus_section: unknown key, ignored".to_owned(),
        "warning: router_settings.fallbacks[0].ok[1]: unknown model group \"missing-group\": skipped".to_owned(),
        "warning: router_settings.model_group_alias.alias: unknown model group \"nowhere\": skipped".to_owned(),
    ];
    assert_eq!(load_err(MANY, &env(&[])), want);
}

/// One deployment with the given `litellm_params` lines (indented by six spaces).
fn with_params(params: &str) -> String {
    format!("model_list:\n  - model_name: m\n    litellm_params:\n{params}")
}

#[test]
fn providers() {
    check(&[
        (
            "unknown provider",
            with_params("      model: foo/bar\n"),
            &["error: model_list[0].litellm_params.model: unknown provider \"foo\"; if it speaks OpenAI's API, write `model: openai/<model id>` with its `api_base` (see docs/providers.md)"],
        ),
        (
            "anthropic without a key",
            with_params("      model: anthropic/claude-3-5-haiku\n"),
            &["warning: model_list[0].litellm_params.api_key: no api_key, and ANTHROPIC_API_KEY is not set: the provider will refuse requests"],
        ),
        (
            "gemini without a key",
            with_params("      model: gemini/gemini-2.0-flash\n"),
            &["warning: model_list[0].litellm_params.api_key: no api_key, and GEMINI_API_KEY is not set: the provider will refuse requests"],
        ),
        (
            "vertex without a project",
            with_params("      model: vertex_ai/gemini-pro\n"),
            &["error: model_list[0].litellm_params.vertex_project: vertex_ai needs a Google Cloud project: set vertex_project (or VERTEXAI_PROJECT), or credentials with a project_id, or an api_key (Vertex express mode)"],
        ),
        (
            "vertex without credentials uses the metadata server",
            with_params("      model: gemini_vertex/gemini-2.5-flash\n      vertex_project: p\n"),
            &[],
        ),
        (
            "vertex with a missing credentials file",
            with_params("      model: vertex_ai/claude-sonnet-4\n      vertex_ai_project: p\n      vertex_credentials: /nonexistent/key.json\n"),
            &["warning: model_list[0].litellm_params.vertex_credentials: the credentials file /nonexistent/key.json does not exist (yet): requests will fail until it does"],
        ),
        (
            "vertex with inline credentials, an unknown vertex key",
            with_params("      model: vertex_ai/gemini-2.5-pro\n      vertex_credentials: {type: service_account, project_id: from-key}\n      vertex_safety_settings: [{category: x}]\n"),
            &["not yet active: model_list[0].litellm_params.vertex_safety_settings: not active yet in this llmgate release (this provider's credentials); accepted, has no effect"],
        ),
        (
            "vertex keys on another provider",
            with_params("      model: openai/gpt-4o\n      vertex_location: us-east5\n"),
            &["warning: model_list[0].litellm_params.vertex_location: only vertex_ai deployments use vertex_* credentials: ignored"],
        ),
        (
            "watsonx without a project or a key",
            with_params("      model: watsonx/ibm/granite-3-8b-instruct\n      api_base: https://us-south.ml.cloud.ibm.com\n"),
            &["error: model_list[0].litellm_params.project_id: watsonx needs a project: set project_id (or WATSONX_PROJECT_ID), or space_id (or WATSONX_DEPLOYMENT_SPACE_ID)"],
        ),
        (
            "watsonx without a key",
            with_params("      model: watsonx/ibm/granite-3-8b-instruct\n      api_base: https://us-south.ml.cloud.ibm.com\n      space_id: s\n"),
            &["warning: model_list[0].litellm_params.api_key: no api_key (WATSONX_APIKEY) and no token (WATSONX_TOKEN): watsonx will refuse requests"],
        ),
        (
            "watsonx without a base",
            with_params("      model: watsonx/ibm/granite-3-8b-instruct\n      project_id: p\n      token: t\n"),
            &["error: model_list[0].litellm_params.api_base: api_base is required for watsonx"],
        ),
        (
            "vertex express mode",
            with_params("      model: vertex_ai/gemini-2.5-flash\n      api_key: AIza-test\n"),
            &[],
        ),
        (
            "bedrock without a region or credentials",
            with_params("      model: bedrock/anthropic.claude-v2\n"),
            &[
                "error: model_list[0].litellm_params.aws_region_name: bedrock needs a region: set aws_region_name (or AWS_REGION), or api_base",
                "warning: model_list[0].litellm_params.aws_access_key_id: no AWS credentials (aws_access_key_id/aws_secret_access_key or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) and no api_key (a Bedrock API key): requests will be sent unsigned and refused",
            ],
        ),
        (
            "azure without api_base",
            with_params("      model: azure/gpt-4o\n      api_key: k\n"),
            &["error: model_list[0].litellm_params.api_base: api_base is required for azure"],
        ),
        (
            "hosted_vllm without api_base",
            with_params("      model: hosted_vllm/qwen\n"),
            &["error: model_list[0].litellm_params.api_base: api_base is required for hosted_vllm"],
        ),
        (
            "azure mock needs no api_base",
            with_params("      model: azure/gpt-4o\n      mock_response: hi\n"),
            &[],
        ),
        (
            "custom_llm_provider",
            with_params("      model: my-model\n      custom_llm_provider: nope\n"),
            &["error: model_list[0].litellm_params.model: custom_llm_provider: unknown provider \"nope\""],
        ),
        (
            "empty model id",
            with_params("      model: groq/\n"),
            &["error: model_list[0].litellm_params.model: no model id after the provider prefix \"groq/\""],
        ),
        (
            "missing model",
            with_params("      api_key: k\n"),
            &["error: model_list[0].litellm_params.model: missing required key"],
        ),
        (
            "missing litellm_params",
            "model_list:\n  - model_name: m\n".to_owned(),
            &["error: model_list[0].litellm_params: missing required key"],
        ),
    ]);
}

#[test]
fn value_types() {
    let p = "model_list[0].litellm_params";
    let cases: Vec<(&str, String, Vec<String>)> = vec![
        ("timeout string", "timeout: ten", vec![format!("error: {p}.timeout: expected a number of seconds, found a string")]),
        ("timeout list", "timeout: [1]", vec![format!("error: {p}.timeout: expected a number of seconds, found a list")]),
        ("timeout bool", "timeout: true", vec![format!("error: {p}.timeout: expected a number of seconds, found a boolean")]),
        ("timeout zero", "timeout: 0", vec![format!("error: {p}.timeout: expected a positive number of seconds")]),
        ("timeout negative", "stream_timeout: -2.5", vec![format!("error: {p}.stream_timeout: expected a positive number of seconds")]),
        ("rpm float", "rpm: 1.5", vec![format!("error: {p}.rpm: expected a whole number that is zero or more")]),
        ("tpm map", "tpm: {a: 1}", vec![format!("error: {p}.tpm: expected a whole number, found a mapping")]),
        ("weight negative", "weight: -1", vec![format!("error: {p}.weight: must not be negative")]),
        ("api_key bool", "api_key: yes", vec![format!("error: {p}.api_key: expected a string, found a boolean (YAML reads a bare yes/no/on/off/y/n as a boolean; quote it)")]),
        ("header value", "headers:\n        X-Key: \"a\\nb\"", vec![format!("error: {p}.headers.X-Key: not a valid HTTP header value (control characters or non-ASCII text)")]),
        ("headers list", "extra_headers: [a]", vec![format!("error: {p}.extra_headers: expected a mapping, found a list")]),
        ("mock map", "mock_response: {content: hi}", vec![format!("error: {p}.mock_response: expected a string (text, or a LiteLLM exception name such as litellm.RateLimitError), found a mapping")]),
    ]
    .into_iter()
    .map(|(name, line, want)| (name, with_params(&format!("      model: openai/m\n      {line}\n")), want))
    .collect();
    for (name, yaml, want) in cases {
        let got = all_problems(&yaml, &env(&[("OPENAI_API_KEY", "sk-x")]));
        assert_eq!(got, want, "case {name}:\n{yaml}");
    }
}

#[test]
fn duplicate_ids() {
    check(&[
        (
            "explicit ids",
            "model_list:\n  - model_name: a\n    litellm_params: {model: openai/a}\n    model_info: {id: x}\n  - model_name: b\n    litellm_params: {model: openai/b}\n    model_info: {id: x}\n".to_owned(),
            &["error: model_list[1].model_info.id: duplicate deployment id \"x\" (also used by model_list[0])"],
        ),
        (
            "explicit id equal to a derived one",
            "model_list:\n  - model_name: a\n    litellm_params: {model: openai/a}\n    model_info: {id: b-1}\n  - model_name: b\n    litellm_params: {model: openai/b}\n".to_owned(),
            &["error: model_list[1].model_info.id: duplicate deployment id \"b-1\" (also used by model_list[0])"],
        ),
        (
            "same group twice gets two ids",
            "model_list:\n  - model_name: a\n    litellm_params: {model: openai/a}\n  - model_name: a\n    litellm_params: {model: openai/a}\n".to_owned(),
            &[],
        ),
    ]);
}

#[test]
fn unknown_and_repeated_keys_are_warnings() {
    let yaml = r#"
model_list:
  - model_name: m
    litelm_params: {}
    litellm_params:
      model: openai/m
      model: openai/m2
    model_info:
      idd: x
router_settings:
  routing_strategy_argz: {}
litellm_settings:
  drop_param: true
general_settings:
  master_kee: sk-1
mcp_servers: {}
"#;
    assert_eq!(
        all_problems(yaml, &env(&[("OPENAI_API_KEY", "sk-x")])),
        [
            "warning: model_list[0].litelm_params: unknown key, ignored (did you mean `litellm_params`?)",
            "warning: model_list[0].litellm_params.model: key given more than once; the last value is used",
            "warning: model_list[0].model_info.idd: unknown key, ignored (did you mean `id`?)",
            "warning: router_settings.routing_strategy_argz: unknown key, ignored (did you mean `routing_strategy_args`?)",
            "warning: litellm_settings.drop_param: unknown key, ignored (did you mean `drop_params`?)",
            "warning: general_settings.master_kee: unknown key, ignored (did you mean `master_key`?)",
            "warning: mcp_servers: LiteLLM section not supported by llmgate, ignored",
        ]
    );
}

#[test]
fn security_settings_that_would_go_unenforced_are_errors() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "general_settings",
            "allowed_ips: [\"10.0.0.0/8\"]",
            "IP allow-lists are",
        ),
        (
            "general_settings",
            "enforce_user_param: true",
            "enforced request parameters are",
        ),
        (
            "general_settings",
            "enforced_params: [user]",
            "enforced request parameters are",
        ),
        (
            "general_settings",
            "allowed_routes: [\"/chat/completions\"]",
            "route restrictions are",
        ),
        (
            "general_settings",
            "admin_only_routes: [\"/key/generate\"]",
            "route restrictions are",
        ),
        ("general_settings", "enable_jwt_auth: true", "JWT auth is"),
        (
            "general_settings",
            "litellm_jwtauth: {admin_jwt_scope: admin}",
            "JWT auth is",
        ),
        (
            "general_settings",
            "custom_auth: custom_auth.user_api_key_auth",
            "custom auth is",
        ),
        (
            "litellm_settings",
            "max_internal_user_budget: 1",
            "user budgets are",
        ),
        (
            "router_settings",
            "provider_budget_config: {openai: {budget_limit: 1}}",
            "provider budgets are",
        ),
    ];
    for (section, line, what) in cases {
        let key = line.split(':').next().unwrap();
        let yaml = format!("{section}:\n  {line}\n");
        assert_eq!(
            load_err(&yaml, &env(&[])),
            [
                format!("error: {section}.{key}: {what} {UNENFORCED}"),
                "warning: model_list: no models configured: every model request will be answered with 400 (model_not_found)".to_owned(),
            ],
            "{yaml}"
        );
    }
    // Turned off, they are harmless and load.
    let off = "general_settings:\n  enforce_user_param: false\n  allowed_ips: []\n  enable_jwt_auth: no\n  max_parallel_requests: null\n";
    assert_eq!(
        all_problems(off, &env(&[])),
        ["warning: model_list: no models configured: every model request will be answered with 400 (model_not_found)"]
    );
    // Keys that cannot authenticate the deployment are refused too.
    assert_eq!(
        load_err(&with_params("      model: azure/x\n      api_base: https://a\n      litellm_credential_name: azure-cred\n"), &env(&[])),
        [format!("error: model_list[0].litellm_params.litellm_credential_name: credential_list credentials are {UNENFORCED}")]
    );
    assert_eq!(
        load_err("model_list:\n  - model_name: m\n    litellm_params: {model: openai/m, api_key: k}\n    model_info: {team_id: t1}\n", &env(&[])),
        [format!("error: model_list[0].model_info.team_id: team-only models are {UNENFORCED}")]
    );
}

#[test]
fn not_yet_active_settings_are_notices() {
    let yaml = r#"
model_list:
  - model_name: m
    litellm_params:
      model: openai/m
      api_key: k
      max_retries: 2
      tags: ["free"]
      input_cost_per_token: 0.000001
router_settings:
  routing_strategy: latency-based-routing
  num_retries: 3
  cooldown_time: 60
  allowed_fails: 2
  disable_cooldowns: true
  retry_policy:
    RateLimitErrorRetries: 4
  redis_host: localhost
  redis_port: 6379
  enable_pre_call_checks: false
litellm_settings:
  drop_params: true
  cache: true
  cache_params:
    type: redis
    ttl: 600
  success_callback: ["langfuse"]
  set_verbose: false
general_settings:
  master_key: sk-1234
  database_url: postgresql://u:p@db/litellm
  background_health_checks: true
  health_check_interval: 300
"#;
    let nya = |path: &str, feature: &str| {
        format!("not yet active: {path}: not active yet in this llmgate release ({feature}); accepted, has no effect")
    };
    assert_eq!(
        all_problems(yaml, &env(&[])),
        vec![
            nya("model_list[0].litellm_params.tags", "tag-based routing"),
            nya("litellm_settings.success_callback", "logging callbacks"),
        ]
    );
}

#[test]
fn yaml_syntax_errors_give_line_and_column() {
    let cases = [
        (
            "model_list:\n  - model_name: a\n   litellm_params: x\n",
            "invalid YAML at line 3, column 4: ",
        ),
        ("model_list: [1, 2\n", "invalid YAML at line 1, column 13: "),
        (
            "general_settings:\n  master_key: 'sk-1\n",
            "invalid YAML at line 3, column 1: ",
        ),
    ];
    for (yaml, prefix) in cases {
        let got = load_err(yaml, &env(&[]));
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].starts_with(&format!("error: {prefix}")),
            "{yaml:?}: {got:?}"
        );
    }
}

#[test]
fn the_top_must_be_a_mapping() {
    assert_eq!(
        load_err("- model_name: a\n", &env(&[])),
        [
            "error: expected a mapping (model_list, router_settings, ...) at the top of the file, found a list",
            "warning: model_list: no models configured: every model request will be answered with 400 (model_not_found)",
        ]
    );
}

#[test]
fn request_size_limit() {
    check(&[
        ("zero", "general_settings:\n  max_request_size_mb: 0\nmodel_list: []\n".to_owned(), &[
            "error: general_settings.max_request_size_mb: must be more than 0",
            "warning: model_list: no models configured: every model request will be answered with 400 (model_not_found)",
        ]),
        ("text", "general_settings:\n  max_request_size_mb: big\nmodel_list: []\n".to_owned(), &[
            "error: general_settings.max_request_size_mb: expected a number of MiB, found a string",
            "warning: model_list: no models configured: every model request will be answered with 400 (model_not_found)",
        ]),
    ]);
}

#[test]
fn http_limits_are_checked() {
    let yaml = "model_list: []\ngeneral_settings:\n  llmgate_request_header_timeout: 1e300\n  llmgate_request_body_timeout: 0\n  llmgate_max_header_bytes: 2000000\n  llmgate_max_headers: 0\n  llmgate_max_connections: 0\n";
    assert_eq!(
        load_err(yaml, &env(&[])),
        [
            "error: general_settings.llmgate_request_header_timeout: too many seconds: at most 3155760000 (100 years)",
            "error: general_settings.llmgate_request_body_timeout: expected a positive number of seconds",
            "error: general_settings.llmgate_max_header_bytes: must be from 1024 to 1048575",
            "error: general_settings.llmgate_max_headers: must be from 1 to 256",
            "error: general_settings.llmgate_max_connections: must be at least 1",
            "warning: model_list: no models configured: every model request will be answered with 400 (model_not_found)",
        ]
    );
}

#[test]
fn rate_limit_settings_are_active() {
    let yaml = "model_list: []\nrouter_settings:\n  redis_host: 127.0.0.1\n  redis_port: 6379\n  redis_password: pw\ngeneral_settings:\n  max_parallel_requests: 10\n  global_max_parallel_requests: 100\n  llmgate_rate_limit_failure_policy: closed\n  llmgate_rate_limit_redis_prefix: \"team-a:\"\n";
    assert_eq!(
        all_problems(yaml, &env(&[])),
        ["warning: model_list: no models configured: every model request will be answered with 400 (model_not_found)"]
    );
    let bad = "model_list: []\ngeneral_settings:\n  llmgate_rate_limit_failure_policy: maybe\n";
    assert_eq!(
        load_err(bad, &env(&[])),
        [
            "error: general_settings.llmgate_rate_limit_failure_policy: unknown policy \"maybe\" (expected open or closed)",
            "warning: model_list: no models configured: every model request will be answered with 400 (model_not_found)",
        ]
    );
}

#[test]
fn cache_params_are_checked_and_redis_reads_the_environment() {
    let m = "model_list:\n  - model_name: m\n    litellm_params: {model: openai/m, api_key: k}\n";
    let yaml = format!(
        "{m}litellm_settings:\n  cache: true\n  cache_params:\n    type: s3\n    mode: sometimes\n    supported_call_types: [completion, nonsense]\n    s3_bucket_name: b\n"
    );
    assert_eq!(
        all_problems(&yaml, &env(&[])),
        [
            "error: litellm_settings.cache_params.type: cache type \"s3\" is not supported by llmgate: use \"local\" (in memory) or \"redis\"",
            "error: litellm_settings.cache_params.mode: unknown mode \"sometimes\": expected default_on or default_off",
            "error: litellm_settings.cache_params.supported_call_types: unknown call type \"nonsense\": expected some of completion, acompletion, text_completion, atext_completion, embedding, aembedding, transcription, atranscription, rerank, arerank, speech, aspeech, responses, aresponses",
            "not yet active: litellm_settings.cache_params.s3_bucket_name: not active yet in this llmgate release (this cache setting); accepted, has no effect",
        ]
    );

    // `cache: true` alone is LiteLLM's Redis cache, found through REDIS_* variables.
    let yaml = format!("{m}litellm_settings:\n  cache: true\n  cache_params: {{ttl: 60}}\n");
    let loaded = load_ok(
        &yaml,
        &env(&[
            ("REDIS_HOST", "redis.internal"),
            ("REDIS_PORT", "6380"),
            ("REDIS_PASSWORD", "pw"),
        ]),
    );
    let p = loaded.config.litellm_settings.cache_params.unwrap();
    assert_eq!(
        (p.cache_type, p.host.as_deref(), p.port),
        (None, Some("redis.internal"), Some(6380))
    );
    assert_eq!(p.password.unwrap().expose(), "pw");
    assert_eq!(p.ttl, Some(std::time::Duration::from_secs(60)));

    // A local cache ignores them; params without `cache: true` do nothing, said once.
    let yaml =
        format!("{m}litellm_settings:\n  cache_params: {{type: local, max_size_in_memory: 10}}\n");
    assert_eq!(
        all_problems(&yaml, &env(&[("REDIS_HOST", "x")])),
        ["warning: litellm_settings.cache_params: has no effect without `cache: true` (as in LiteLLM)"]
    );
    let loaded = load_ok(
        &format!("{m}litellm_settings:\n  cache: true\n  cache_params: {{type: local}}\n"),
        &env(&[("REDIS_HOST", "x")]),
    );
    assert_eq!(
        loaded.config.litellm_settings.cache_params.unwrap().host,
        None
    );
}
