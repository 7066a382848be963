//! `llmgate check` on numbers no conversion may panic on: seconds and sizes that are negative,
//! not a number, infinite or too large are reported problems (exit 1), never a panic (101).

#![allow(clippy::unwrap_used, clippy::panic, reason = "test helpers")]

use crate::support::{check, write_config};

const MODEL: &str = "model_list:
  - model_name: demo
    litellm_params:
      model: openai/demo
      mock_response: hello
";

/// `(name, config after model_list, what the report must say: the path of the problem)`.
const CASES: &[(&str, &str, &str)] = &[
    ("router-cooldown-1e300", "router_settings:\n  cooldown_time: 1e300\n", "router_settings.cooldown_time"),
    ("router-cooldown-1e18", "router_settings:\n  cooldown_time: 1e18\n", "router_settings.cooldown_time"),
    ("router-cooldown-negative", "router_settings:\n  cooldown_time: -1\n", "router_settings.cooldown_time"),
    // The YAML reader refuses NaN and infinities itself, with the line and column.
    ("router-cooldown-nan", "router_settings:\n  cooldown_time: .nan\n", "line 7, column 18: non-finite float"),
    ("router-cooldown-inf", "router_settings:\n  cooldown_time: .inf\n", "line 7, column 18: non-finite float"),
    ("router-timeout-1e18", "router_settings:\n  timeout: 1e18\n", "router_settings.timeout"),
    ("router-stream-timeout-4e9", "router_settings:\n  stream_timeout: 4e9\n", "router_settings.stream_timeout"),
    (
        "latency-ttl-1e300",
        "router_settings:\n  routing_strategy: latency-based-routing\n  routing_strategy_args: {ttl: 1e300}\n",
        "router_settings.routing_strategy_args.ttl",
    ),
    (
        "latency-ttl-negative",
        "router_settings:\n  routing_strategy: latency-based-routing\n  routing_strategy_args: {ttl: -5}\n",
        "router_settings.routing_strategy_args.ttl",
    ),
    (
        "latency-buffer-nan",
        "router_settings:\n  routing_strategy: latency-based-routing\n  routing_strategy_args: {lowest_latency_buffer: .nan}\n",
        "non-finite float",
    ),
    ("request-timeout-1e300", "litellm_settings:\n  request_timeout: 1e300\n", "litellm_settings.request_timeout"),
    (
        "key-cache-ttl-1e12",
        "general_settings:\n  master_key: sk-master\n  user_api_key_cache_ttl: 1e12\n",
        "general_settings.user_api_key_cache_ttl",
    ),
    ("batch-write-1e18", "general_settings:\n  proxy_batch_write_at: 1e18\n", "general_settings.proxy_batch_write_at"),
    ("health-interval-1e18", "general_settings:\n  health_check_interval: 1e18\n", "general_settings.health_check_interval"),
    ("body-size-1e300", "general_settings:\n  max_request_size_mb: 1e300\n", "general_settings.max_request_size_mb"),
    ("body-size-nan", "general_settings:\n  max_request_size_mb: .nan\n", "non-finite float"),
    ("body-size-negative", "general_settings:\n  max_request_size_mb: -4\n", "general_settings.max_request_size_mb"),
    (
        "cache-ttl-1e18",
        "litellm_settings:\n  cache: true\n  cache_params: {type: local, ttl: 1e18}\n",
        "litellm_settings.cache_params.ttl",
    ),
    (
        "cache-mb-1e300",
        "litellm_settings:\n  cache: true\n  cache_params: {type: local, max_size_in_memory_mb: 1e300}\n",
        "litellm_settings.cache_params.max_size_in_memory_mb",
    ),
];

#[test]
fn check_reports_out_of_range_seconds_and_sizes_without_panicking() {
    let mut failures = Vec::new();
    for (name, extra, path) in CASES {
        let (status, stdout) = check(&write_config(
            &format!("bounds-{name}"),
            &format!("{MODEL}{extra}"),
        ));
        if status.code() != Some(1) || !stdout.contains(path) {
            failures.push(format!(
                "{name}: {status}, expected exit 1 naming {path}:\n{stdout}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_deployment_cooldown_too_large_is_reported() {
    for value in ["1e300", "1e18", "-2"] {
        let yaml = format!("{MODEL}      cooldown_time: {value}\n");
        let (status, stdout) = check(&write_config("bounds-deployment-cooldown", &yaml));
        assert_eq!(status.code(), Some(1), "{value}: {stdout}");
        assert!(
            stdout.contains("model_list[0].litellm_params.cooldown_time:"),
            "{value}: {stdout}"
        );
    }
}

#[test]
fn check_accepts_large_values_within_the_bounds() {
    let yaml = format!(
        "{MODEL}      cooldown_time: 0
router_settings:
  cooldown_time: 3000000000
  timeout: 3000000000
  routing_strategy: latency-based-routing
  routing_strategy_args: {{ttl: 3000000000, lowest_latency_buffer: 0.5}}
general_settings:
  master_key: sk-master
  user_api_key_cache_ttl: 3000000000
  max_request_size_mb: 1048576
"
    );
    let (status, stdout) = check(&write_config("bounds-within", &yaml));
    assert!(status.success(), "{status}: {stdout}");
}

/// `llmgate keys create` goes through the key API's checks: a value out of range fails (exit 1)
/// naming the field, and stores nothing.
#[test]
fn keys_create_refuses_out_of_range_values() {
    let db = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("bounds-keys-{}.db", std::process::id()));
    let config = write_config(
        "bounds-keys",
        &format!(
            "{MODEL}general_settings:\n  master_key: sk-master-bounds\n  database_url: sqlite://{}\n",
            db.display()
        ),
    );
    for (flag, value) in [
        ("--duration", "9223372036854775807s"),
        ("--budget_duration", "9999d"),
        ("--max_budget", "NaN"),
        ("--rpm_limit", "18446744073709551615"),
    ] {
        let output = std::process::Command::new(crate::support::BIN)
            .args(["keys", "--config"])
            .arg(&config)
            .args(["create", flag, value])
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{flag} {value}: {stderr}");
        assert!(
            stderr.contains(flag.trim_start_matches("--")),
            "{flag} {value}: {stderr}"
        );
    }
}
