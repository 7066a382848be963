//! `router_settings`, `litellm_settings` and `general_settings`.
//!
//! Each key is one of:
//! - active: read and used in this release;
//! - not yet active: read, type-checked and reported once as a
//!   [`Severity::NotYetActive`](crate::Severity::NotYetActive) notice;
//! - refused: a security or spending control that, ignored, would leave the gateway more open
//!   than its owner configured it (an IP allow-list, JWT auth, a budget). Setting one is an
//!   error until llmgate implements it;
//! - a LiteLLM key llmgate does not support, or a key nobody knows: a warning.

use std::collections::BTreeMap;

use serde_json::Map;

use crate::node::Node;
use crate::problems::{index_path, key_path};
use crate::schema::{
    AllowedFailsPolicy, Fallback, LitellmSettings, ModelGroupAlias, RetryPolicy, RouterSettings,
    RoutingStrategy,
};
use crate::validate::GroupRef;
use crate::walk::Walk;

/// Reports a key that turns something on as accepted but not active yet (`false`, null and
/// empty values are LiteLLM's defaults and need no notice).
pub(crate) fn not_yet_active(w: &mut Walk<'_>, value: &Node, path: &str, feature: &str) {
    if is_on(value) {
        w.report.not_yet_active(
            path,
            format!("not active yet in this llmgate release ({feature}); accepted, has no effect"),
        );
    }
}

/// Whether a value turns something on (`false`, null, empty lists and maps do not).
fn is_on(value: &Node) -> bool {
    match value {
        Node::Null | Node::Bool(false) => false,
        Node::Str(s) => !s.is_empty() && s != "false" && s != "False",
        Node::Seq(items) => !items.is_empty(),
        Node::Map(items) => !items.is_empty(),
        Node::Bool(true) | Node::Num(_) => true,
    }
}

/// Refuses a security or spending control llmgate does not enforce yet. `what` ends in a verb:
/// "IP allow-lists are".
pub(crate) fn unenforced(w: &mut Walk<'_>, value: &Node, path: &str, what: &str) {
    if is_on(value) {
        w.report.error(
            path,
            format!(
                "{what} not implemented yet in llmgate; starting would leave this setting \
                 unenforced (remove it to run without it)"
            ),
        );
    }
}

pub(crate) fn unsupported(w: &mut Walk<'_>, path: &str) {
    w.report
        .warning(path, "LiteLLM setting not supported by llmgate, ignored");
}

const RETRIES: &str = "retries";
const FALLBACKS: &str = "fallbacks";
const CACHING: &str = "response caching";
const CALLBACKS: &str = "logging callbacks";
pub(crate) const HEALTH: &str = "background health checks";
pub(crate) const DATABASE: &str = "database";

/// `router_settings`.
pub(crate) fn router_settings(w: &mut Walk<'_>, node: &Node, path: &str) -> RouterSettings {
    let mut out = RouterSettings::default();
    for (key, value) in w.entries(node, path) {
        let p = key_path(path, key);
        match key {
            "routing_strategy" => {
                if let Some(name) = w.string(value, &p) {
                    match RoutingStrategy::from_name(&name) {
                        Some(RoutingStrategy::CostBasedRouting) => {
                            out.routing_strategy = RoutingStrategy::CostBasedRouting;
                            w.report.not_yet_active(
                                &p,
                                format!(
                                    "routing strategy \"{name}\" is not active yet in this \
                                     llmgate release; requests use simple-shuffle"
                                ),
                            );
                        }
                        Some(strategy) => out.routing_strategy = strategy,
                        None => {
                            let all: Vec<&str> =
                                RoutingStrategy::ALL.iter().map(|s| s.as_str()).collect();
                            w.report.error(
                                &p,
                                format!(
                                    "unknown routing strategy \"{name}\" (expected one of {})",
                                    all.join(", ")
                                ),
                            );
                        }
                    }
                }
            }
            "routing_strategy_args" => {
                out.routing_strategy_args = routing_strategy_args(w, value, &p);
            }
            "model_group_alias" => out.model_group_alias = aliases(w, value, &p),
            "num_retries" => out.num_retries = w.u32(value, &p),
            "timeout" => out.timeout = w.seconds(value, &p),
            "stream_timeout" => out.stream_timeout = w.seconds(value, &p),
            "stream_idle_timeout" => out.stream_idle_timeout = w.seconds(value, &p),
            "allowed_fails" => {
                out.allowed_fails = w.u32(value, &p);
            }
            "cooldown_time" => {
                out.cooldown_time = w.non_negative_seconds(value, &p);
            }
            "disable_cooldowns" => {
                out.disable_cooldowns = w.bool(value, &p);
            }
            "retry_policy" => {
                out.retry_policy = Some(retry_policy(w, value, &p));
            }
            "allowed_fails_policy" => {
                out.allowed_fails_policy = Some(allowed_fails_policy(w, value, &p));
            }
            "fallbacks" => out.fallbacks = fallbacks(w, value, &p),
            "context_window_fallbacks" => out.context_window_fallbacks = fallbacks(w, value, &p),
            "content_policy_fallbacks" => out.content_policy_fallbacks = fallbacks(w, value, &p),
            "default_fallbacks" => out.default_fallbacks = default_fallbacks(w, value, &p),
            // Redis for rate-limit counters shared by instances (docs/rate-limits.md).
            "redis_host" => out.redis_host = w.string(value, &p),
            "redis_port" => out.redis_port = w.port(value, &p),
            "redis_password" => out.redis_password = w.secret(value, &p),
            "redis_url" => out.redis_url = w.secret(value, &p),
            "enable_pre_call_checks" => {
                out.enable_pre_call_checks = w.bool(value, &p);
                not_yet_active(w, value, &p, "pre-call checks");
            }
            "enable_tag_filtering" => {
                out.enable_tag_filtering = w.bool(value, &p);
                not_yet_active(w, value, &p, "tag-based routing");
            }
            "provider_budget_config" => unenforced(w, value, &p, "provider budgets are"),
            "cache_responses" | "caching_groups" | "cache_kwargs" => {
                not_yet_active(w, value, &p, CACHING)
            }
            "model_group_retry_policy" | "retry_after" => not_yet_active(w, value, &p, RETRIES),
            "max_fallbacks" => not_yet_active(w, value, &p, FALLBACKS),
            "optional_pre_call_checks" => not_yet_active(w, value, &p, "pre-call checks"),
            "polling_interval"
            | "default_max_parallel_requests"
            | "client_ttl"
            | "debug_level"
            | "set_verbose" => not_yet_active(w, value, &p, "this router setting"),
            _ => w.report.unknown_key(&p),
        }
    }
    out
}

/// `litellm_settings`.
pub(crate) fn litellm_settings(w: &mut Walk<'_>, node: &Node, path: &str) -> LitellmSettings {
    let mut out = LitellmSettings::default();
    for (key, value) in w.entries(node, path) {
        let p = key_path(path, key);
        match key {
            "drop_params" => {
                out.drop_params = w.bool(value, &p);
            }
            "num_retries" => out.num_retries = w.u32(value, &p),
            "request_timeout" => out.request_timeout = w.seconds(value, &p),
            "fallbacks" => out.fallbacks = fallbacks(w, value, &p),
            "context_window_fallbacks" => out.context_window_fallbacks = fallbacks(w, value, &p),
            "content_policy_fallbacks" => out.content_policy_fallbacks = fallbacks(w, value, &p),
            "default_fallbacks" => out.default_fallbacks = default_fallbacks(w, value, &p),
            "cache" => out.cache = w.bool(value, &p),
            "cache_params" => out.cache_params = Some(crate::cache::cache_params(w, value, &p)),
            "success_callback" => {
                out.success_callback = w.string_list(value, &p);
                not_yet_active(w, value, &p, CALLBACKS);
            }
            "failure_callback" => {
                out.failure_callback = w.string_list(value, &p);
                not_yet_active(w, value, &p, CALLBACKS);
            }
            "callbacks" => {
                out.callbacks = w.string_list(value, &p);
                not_yet_active(w, value, &p, CALLBACKS);
            }
            "max_budget" => {
                out.max_budget = w.non_negative(value, &p);
                unenforced(w, value, &p, "the proxy-wide max_budget is");
            }
            "budget_duration" => {
                out.budget_duration = w.string(value, &p);
                not_yet_active(w, value, &p, "budgets");
            }
            "set_verbose" => {
                out.set_verbose = w.bool(value, &p);
                not_yet_active(w, value, &p, "set_verbose; use RUST_LOG=debug");
            }
            "json_logs" => {
                out.json_logs = w.bool(value, &p);
                not_yet_active(w, value, &p, "JSON logs");
            }
            "model_cost_map_path" => out.model_cost_map_path = w.non_empty_string(value, &p),
            // llmgate logs no message content, so this is already in effect.
            "turn_off_message_logging" => out.turn_off_message_logging = w.bool(value, &p),
            "max_end_user_budget" | "max_internal_user_budget" => {
                unenforced(w, value, &p, "user budgets are")
            }
            "guardrails" => unenforced(w, value, &p, "guardrails are"),
            "service_callback" | "callback_settings" | "redact_user_api_key_info" => {
                not_yet_active(w, value, &p, CALLBACKS)
            }
            "internal_user_budget_duration" => not_yet_active(w, value, &p, "budgets"),
            "default_key_generate_params"
            | "upperbound_key_generate_params"
            | "key_generation_settings"
            | "default_team_settings"
            | "default_internal_user_params"
            | "modify_params"
            | "force_ipv4"
            | "enable_json_schema_validation"
            | "disable_end_user_cost_tracking"
            | "enable_preview_features"
            | "telemetry" => not_yet_active(w, value, &p, "this LiteLLM setting"),
            "mcp_aliases" | "ssl_verify" => unsupported(w, &p),
            _ => w.report.unknown_key(&p),
        }
    }
    if out.cache_params.is_some() && out.cache != Some(true) {
        w.report.warning(
            &key_path(path, "cache_params"),
            "has no effect without `cache: true` (as in LiteLLM)",
        );
    }
    out
}

/// `routing_strategy_args`, kept as given once the values the router reads are checked:
/// `ttl` (seconds) and `lowest_latency_buffer` (a non-negative fraction).
fn routing_strategy_args(
    w: &mut Walk<'_>,
    node: &Node,
    path: &str,
) -> Map<String, serde_json::Value> {
    if let Node::Map(entries) = node {
        for (k, v) in entries {
            let p = key_path(path, k);
            match k.as_str() {
                "ttl" => {
                    w.seconds(v, &p);
                }
                "lowest_latency_buffer" => {
                    w.non_negative(v, &p);
                }
                _ => {}
            }
        }
    }
    json_map(w, node, path)
}

fn json_map(w: &mut Walk<'_>, node: &Node, path: &str) -> Map<String, serde_json::Value> {
    match node {
        Node::Null => Map::new(),
        Node::Map(_) => match w.json(node, path) {
            serde_json::Value::Object(map) => map,
            _ => Map::new(),
        },
        other => {
            w.report
                .error(path, format!("expected a mapping, found {}", other.kind()));
            Map::new()
        }
    }
}

/// `fallbacks`: a list of one-key maps, `- primary: ["second", "third"]`.
fn fallbacks(w: &mut Walk<'_>, node: &Node, path: &str) -> Vec<Fallback> {
    let mut out = Vec::new();
    for (i, item) in w.items(node, path).iter().enumerate() {
        let ip = index_path(path, i);
        if !matches!(item, Node::Map(entries) if !entries.is_empty()) {
            w.report.error(
                &ip,
                format!(
                    "expected a one-key mapping such as `gpt-4o: [\"gpt-4o-mini\"]`, found {}",
                    item.kind()
                ),
            );
            continue;
        }
        for (source, targets) in w.entries(item, &ip) {
            let sp = key_path(&ip, source);
            w.refs.push(GroupRef::FallbackSource {
                path: sp.clone(),
                name: source.to_owned(),
            });
            let targets = group_list(w, targets, &sp);
            for (target_path, target) in &targets {
                w.refs.push(GroupRef::FallbackTarget {
                    path: target_path.clone(),
                    source: source.to_owned(),
                    name: target.clone(),
                });
            }
            out.push(Fallback {
                model_group: source.to_owned(),
                fallbacks: targets.into_iter().map(|(_, t)| t).collect(),
            });
        }
    }
    out
}

/// A list of model group names (a single name is a list of one), each with its path.
fn group_list(w: &mut Walk<'_>, node: &Node, path: &str) -> Vec<(String, String)> {
    match node {
        Node::Seq(items) => items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| {
                let p = index_path(path, i);
                w.non_empty_string(item, &p).map(|name| (p, name))
            })
            .collect(),
        Node::Null => Vec::new(),
        _ => w
            .non_empty_string(node, path)
            .map(|name| (path.to_owned(), name))
            .into_iter()
            .collect(),
    }
}

/// `default_fallbacks`: a list of model groups.
fn default_fallbacks(w: &mut Walk<'_>, node: &Node, path: &str) -> Vec<String> {
    let targets = group_list(w, node, path);
    for (target_path, target) in &targets {
        w.refs.push(GroupRef::DefaultFallback {
            path: target_path.clone(),
            name: target.clone(),
        });
    }
    targets.into_iter().map(|(_, t)| t).collect()
}

/// `model_group_alias`: `alias: group` or `alias: {model: group, hidden: true}`.
fn aliases(w: &mut Walk<'_>, node: &Node, path: &str) -> BTreeMap<String, ModelGroupAlias> {
    let mut out = BTreeMap::new();
    for (alias, value) in w.entries(node, path) {
        let p = key_path(path, alias);
        let (target_path, model, hidden) = match value {
            Node::Map(_) => {
                let mut model = None;
                let mut hidden = false;
                let mut saw_model = false;
                for (key, v) in w.entries(value, &p) {
                    let kp = key_path(&p, key);
                    match key {
                        "model" => {
                            saw_model = true;
                            model = w.non_empty_string(v, &kp);
                        }
                        "hidden" => hidden = w.bool(v, &kp).unwrap_or(false),
                        _ => w.report.unknown_key(&kp),
                    }
                }
                if !saw_model {
                    w.report
                        .error(&key_path(&p, "model"), "missing required key");
                }
                (key_path(&p, "model"), model, hidden)
            }
            _ => (p.clone(), w.non_empty_string(value, &p), false),
        };
        if let Some(model) = model {
            w.refs.push(GroupRef::AliasTarget {
                path: target_path,
                alias: alias.to_owned(),
                name: model.clone(),
            });
            out.insert(alias.to_owned(), ModelGroupAlias { model, hidden });
        }
    }
    out
}

macro_rules! per_error_class {
    ($name:ident, $ty:ident, [$($field:ident),* $(,)?]) => {
        fn $name(w: &mut Walk<'_>, node: &Node, path: &str) -> $ty {
            let mut out = $ty::default();
            for (key, value) in w.entries(node, path) {
                let p = key_path(path, key);
                match key {
                    $(stringify!($field) => out.$field = w.u32(value, &p),)*
                    _ => w.report.unknown_key(&p),
                }
            }
            out
        }
    };
}

per_error_class!(
    retry_policy,
    RetryPolicy,
    [
        AuthenticationErrorRetries,
        TimeoutErrorRetries,
        RateLimitErrorRetries,
        ContentPolicyViolationErrorRetries,
        InternalServerErrorRetries,
        BadRequestErrorRetries,
    ]
);

per_error_class!(
    allowed_fails_policy,
    AllowedFailsPolicy,
    [
        AuthenticationErrorAllowedFails,
        TimeoutErrorAllowedFails,
        RateLimitErrorAllowedFails,
        ContentPolicyViolationErrorAllowedFails,
        InternalServerErrorAllowedFails,
        BadRequestErrorAllowedFails,
    ]
);
