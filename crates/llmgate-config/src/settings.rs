//! `router_settings` and `litellm_settings` (`general_settings` is in `general.rs`), and how
//! every section reports a key it accepts without acting on it.
//!
//! Each key is one of:
//! - active: read and used in this release;
//! - not yet active: read, type-checked and reported once as a
//!   [`Severity::NotYetActive`](crate::Severity::NotYetActive) notice;
//! - refused: a security or spending control that, ignored, would leave the gateway more open
//!   than its owner configured it (an IP allow-list, JWT auth, a budget). Setting one is an
//!   error until llmgate implements it;
//! - a LiteLLM key llmgate does not support, or a key nobody knows: a warning.
//!
//! Each section is a table of key to handler (`table.rs`); a row's handler says which of these
//! its key is (`Read`, `NotYetActive`, `Unenforced`, `Unsupported`), and a key no row lists is
//! unknown.

use std::collections::BTreeMap;

use serde_json::Map;

use crate::node::Node;
use crate::problems::{index_path, key_path};
use crate::schema::{
    AllowedFailsPolicy, Fallback, LitellmSettings, ModelGroupAlias, RetryPolicy, RouterSettings,
    RoutingStrategy,
};
use crate::table::Handle::{NotYetActive, Read, Unenforced, Unsupported};
use crate::table::{unknown, walk_table, Table};
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

const PRE_CALL_CHECKS: &str = "pre-call checks";
const ROUTER_SETTING: &str = "this router setting";

/// The keys of `router_settings`; any other is unknown.
#[rustfmt::skip]
const ROUTER: &Table<RouterSettings> = &[
    ("routing_strategy", Read(routing_strategy)),
    ("routing_strategy_args", Read(|w, out, v, p| {
        out.routing_strategy_args = routing_strategy_args(w, v, p);
    })),
    ("model_group_alias", Read(|w, out, v, p| out.model_group_alias = aliases(w, v, p))),
    ("num_retries", Read(|w, out, v, p| out.num_retries = w.u32(v, p))),
    ("timeout", Read(|w, out, v, p| out.timeout = w.seconds(v, p))),
    ("stream_timeout", Read(|w, out, v, p| out.stream_timeout = w.seconds(v, p))),
    ("stream_idle_timeout", Read(|w, out, v, p| out.stream_idle_timeout = w.seconds(v, p))),
    ("allowed_fails", Read(|w, out, v, p| out.allowed_fails = w.u32(v, p))),
    ("cooldown_time", Read(|w, out, v, p| out.cooldown_time = w.non_negative_seconds(v, p))),
    ("disable_cooldowns", Read(|w, out, v, p| out.disable_cooldowns = w.bool(v, p))),
    ("retry_policy", Read(|w, out, v, p| out.retry_policy = Some(retry_policy(w, v, p)))),
    ("allowed_fails_policy", Read(|w, out, v, p| {
        out.allowed_fails_policy = Some(allowed_fails_policy(w, v, p));
    })),
    ("fallbacks", Read(|w, out, v, p| out.fallbacks = fallbacks(w, v, p))),
    ("context_window_fallbacks", Read(|w, out, v, p| {
        out.context_window_fallbacks = fallbacks(w, v, p);
    })),
    ("content_policy_fallbacks", Read(|w, out, v, p| {
        out.content_policy_fallbacks = fallbacks(w, v, p);
    })),
    ("default_fallbacks", Read(|w, out, v, p| out.default_fallbacks = default_fallbacks(w, v, p))),
    // Redis for rate-limit counters shared by instances (docs/rate-limits.md).
    ("redis_host", Read(|w, out, v, p| out.redis_host = w.string(v, p))),
    ("redis_port", Read(|w, out, v, p| out.redis_port = w.port(v, p))),
    ("redis_password", Read(|w, out, v, p| out.redis_password = w.secret(v, p))),
    ("redis_url", Read(|w, out, v, p| out.redis_url = w.secret(v, p))),
    ("enable_pre_call_checks", Read(|w, out, v, p| {
        out.enable_pre_call_checks = w.bool(v, p);
        not_yet_active(w, v, p, PRE_CALL_CHECKS);
    })),
    ("enable_tag_filtering", Read(|w, out, v, p| {
        out.enable_tag_filtering = w.bool(v, p);
        not_yet_active(w, v, p, "tag-based routing");
    })),
    ("provider_budget_config", Unenforced("provider budgets are")),
    ("cache_responses", NotYetActive(CACHING)),
    ("caching_groups", NotYetActive(CACHING)),
    ("cache_kwargs", NotYetActive(CACHING)),
    ("model_group_retry_policy", NotYetActive(RETRIES)),
    ("retry_after", Read(|w, out, v, p| out.retry_after = w.non_negative_seconds(v, p))),
    ("max_fallbacks", NotYetActive(FALLBACKS)),
    ("optional_pre_call_checks", NotYetActive(PRE_CALL_CHECKS)),
    ("polling_interval", NotYetActive(ROUTER_SETTING)),
    ("default_max_parallel_requests", NotYetActive(ROUTER_SETTING)),
    ("client_ttl", NotYetActive(ROUTER_SETTING)),
    ("debug_level", NotYetActive(ROUTER_SETTING)),
    ("set_verbose", NotYetActive(ROUTER_SETTING)),
];

/// `router_settings`.
pub(crate) fn router_settings(w: &mut Walk<'_>, node: &Node, path: &str) -> RouterSettings {
    let mut out = RouterSettings::default();
    walk_table(w, &mut out, node, path, ROUTER, unknown);
    out
}

/// `routing_strategy`: one of [`RoutingStrategy::ALL`]; cost-based routing is accepted but
/// not active yet.
fn routing_strategy(w: &mut Walk<'_>, out: &mut RouterSettings, value: &Node, path: &str) {
    let Some(name) = w.string(value, path) else {
        return;
    };
    match RoutingStrategy::from_name(&name) {
        Some(RoutingStrategy::CostBasedRouting) => {
            out.routing_strategy = RoutingStrategy::CostBasedRouting;
            w.report.not_yet_active(
                path,
                format!(
                    "routing strategy \"{name}\" is not active yet in this llmgate release; \
                     requests use simple-shuffle"
                ),
            );
        }
        Some(strategy) => out.routing_strategy = strategy,
        None => {
            let all: Vec<&str> = RoutingStrategy::ALL.iter().map(|s| s.as_str()).collect();
            w.report.error(
                path,
                format!(
                    "unknown routing strategy \"{name}\" (expected one of {})",
                    all.join(", ")
                ),
            );
        }
    }
}

const BUDGETS: &str = "budgets";
const LITELLM_SETTING: &str = "this LiteLLM setting";

/// The keys of `litellm_settings`; any other is unknown.
#[rustfmt::skip]
const LITELLM: &Table<LitellmSettings> = &[
    ("drop_params", Read(|w, out, v, p| out.drop_params = w.bool(v, p))),
    ("num_retries", Read(|w, out, v, p| out.num_retries = w.u32(v, p))),
    ("retry_after", Read(|w, out, v, p| out.retry_after = w.non_negative_seconds(v, p))),
    ("request_timeout", Read(|w, out, v, p| out.request_timeout = w.seconds(v, p))),
    ("fallbacks", Read(|w, out, v, p| out.fallbacks = fallbacks(w, v, p))),
    ("context_window_fallbacks", Read(|w, out, v, p| {
        out.context_window_fallbacks = fallbacks(w, v, p);
    })),
    ("content_policy_fallbacks", Read(|w, out, v, p| {
        out.content_policy_fallbacks = fallbacks(w, v, p);
    })),
    ("default_fallbacks", Read(|w, out, v, p| out.default_fallbacks = default_fallbacks(w, v, p))),
    ("cache", Read(|w, out, v, p| out.cache = w.bool(v, p))),
    ("cache_params", Read(|w, out, v, p| {
        out.cache_params = Some(crate::cache::cache_params(w, v, p));
    })),
    ("success_callback", Read(|w, out, v, p| {
        out.success_callback = w.string_list(v, p);
        not_yet_active(w, v, p, CALLBACKS);
    })),
    ("failure_callback", Read(|w, out, v, p| {
        out.failure_callback = w.string_list(v, p);
        not_yet_active(w, v, p, CALLBACKS);
    })),
    ("callbacks", Read(|w, out, v, p| {
        out.callbacks = w.string_list(v, p);
        not_yet_active(w, v, p, CALLBACKS);
    })),
    ("max_budget", Read(|w, out, v, p| {
        out.max_budget = w.non_negative(v, p);
    })),
    ("budget_duration", Read(|w, out, v, p| {
        out.budget_duration = w.string(v, p).filter(|d| {
            let ok = llmgate_core::seconds::parse_duration(d).is_some();
            if !ok {
                w.report.error(p, format!("budget_duration {d:?} is not a duration such as \"30d\" (s, m, h, d, w, mo)"));
            }
            ok
        });
    })),
    ("set_verbose", Read(|w, out, v, p| {
        out.set_verbose = w.bool(v, p);
    })),
    ("json_logs", Read(|w, out, v, p| out.json_logs = w.bool(v, p))),
    ("model_cost_map_path", Read(|w, out, v, p| {
        out.model_cost_map_path = w.non_empty_string(v, p);
    })),
    // llmgate logs no message content, so this is already in effect.
    ("turn_off_message_logging", Read(|w, out, v, p| out.turn_off_message_logging = w.bool(v, p))),
    ("max_end_user_budget", Read(|w, out, v, p| {
        out.max_end_user_budget = w.non_negative(v, p);
    })),
    ("max_internal_user_budget", Unenforced("user budgets are")),
    ("guardrails", Unenforced("guardrails are")),
    ("service_callback", NotYetActive(CALLBACKS)),
    ("callback_settings", NotYetActive(CALLBACKS)),
    ("redact_user_api_key_info", NotYetActive(CALLBACKS)),
    ("internal_user_budget_duration", NotYetActive(BUDGETS)),
    ("default_key_generate_params", NotYetActive(LITELLM_SETTING)),
    ("upperbound_key_generate_params", NotYetActive(LITELLM_SETTING)),
    ("key_generation_settings", NotYetActive(LITELLM_SETTING)),
    // LiteLLM's own form is a list of teams with callback settings; a mapping is the defaults
    // for new teams, as under general_settings (applied by `Config::load`).
    ("default_team_settings", Read(|w, out, v, p| match v {
        crate::node::Node::Map(_) => out.default_team_settings = json_map(w, v, p),
        _ => w.report.warning(p, "a list of teams with their own callback settings is not yet active in llmgate (per-team logging); a mapping of settings (rpm_limit, tpm_limit, max_budget, models, ...) is taken as the defaults of new teams"),
    })),
    ("default_internal_user_params", NotYetActive(LITELLM_SETTING)),
    ("modify_params", NotYetActive(LITELLM_SETTING)),
    ("force_ipv4", NotYetActive(LITELLM_SETTING)),
    ("enable_json_schema_validation", NotYetActive(LITELLM_SETTING)),
    ("disable_end_user_cost_tracking", NotYetActive(LITELLM_SETTING)),
    ("enable_preview_features", NotYetActive(LITELLM_SETTING)),
    ("telemetry", NotYetActive(LITELLM_SETTING)),
    ("mcp_aliases", Unsupported),
    ("ssl_verify", Unsupported),
];

/// `litellm_settings`.
pub(crate) fn litellm_settings(w: &mut Walk<'_>, node: &Node, path: &str) -> LitellmSettings {
    let mut out = LitellmSettings::default();
    walk_table(w, &mut out, node, path, LITELLM, unknown);
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

pub(crate) fn json_map(
    w: &mut Walk<'_>,
    node: &Node,
    path: &str,
) -> Map<String, serde_json::Value> {
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
        for (key, targets) in w.entries(item, &ip) {
            let sp = key_path(&ip, key);
            let targets = group_list(w, targets, &sp);
            // `- ["primary"]: ["second"]`: a list as the key (valid YAML, refused by
            // PyYAML) means each group in it falls back to the targets.
            let sources = crate::node::parse_list_key(key).unwrap_or_else(|| vec![key.to_owned()]);
            for source in sources {
                w.refs.push(GroupRef::FallbackSource {
                    path: sp.clone(),
                    name: source.clone(),
                });
                for (target_path, target) in &targets {
                    w.refs.push(GroupRef::FallbackTarget {
                        path: target_path.clone(),
                        source: source.clone(),
                        name: target.clone(),
                    });
                }
                out.push(Fallback {
                    model_group: source,
                    fallbacks: targets.iter().map(|(_, t)| t.clone()).collect(),
                });
            }
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

/// `model_group_alias`: `alias: group`, `alias: {model: group, hidden: true}`, or
/// `alias: [group, group, ...]` (tried in order).
fn aliases(w: &mut Walk<'_>, node: &Node, path: &str) -> BTreeMap<String, ModelGroupAlias> {
    let mut out = BTreeMap::new();
    for (alias, value) in w.entries(node, path) {
        let p = key_path(path, alias);
        let (targets, hidden) = match value {
            Node::Map(_) => alias_map(w, value, &p),
            Node::Seq(_) => {
                let targets = group_list(w, value, &p);
                if targets.is_empty() {
                    w.report.error(&p, "expected at least one model group");
                }
                (targets, false)
            }
            _ => {
                let target = w.non_empty_string(value, &p).map(|m| (p.clone(), m));
                (target.into_iter().collect(), false)
            }
        };
        for (target_path, name) in &targets {
            w.refs.push(GroupRef::AliasTarget {
                path: target_path.clone(),
                alias: alias.to_owned(),
                name: name.clone(),
            });
        }
        let mut names = targets.into_iter().map(|(_, name)| name);
        if let Some(model) = names.next() {
            let then = names.collect();
            out.insert(
                alias.to_owned(),
                ModelGroupAlias {
                    model,
                    hidden,
                    then,
                },
            );
        }
    }
    out
}

/// `alias: {model: group, hidden: true}`: the target with its path, and `hidden`.
fn alias_map(w: &mut Walk<'_>, value: &Node, p: &str) -> (Vec<(String, String)>, bool) {
    let mut model = None;
    let mut hidden = false;
    let mut saw_model = false;
    for (key, v) in w.entries(value, p) {
        let kp = key_path(p, key);
        match key {
            "model" => {
                saw_model = true;
                model = w.non_empty_string(v, &kp);
            }
            "hidden" => hidden = w.bool(v, &kp).unwrap_or(false),
            _ => w.report.unknown_key(&kp, key, ["model", "hidden"]),
        }
    }
    let model_path = key_path(p, "model");
    if !saw_model {
        w.report.error(&model_path, "missing required key");
    }
    (model.map(|m| (model_path, m)).into_iter().collect(), hidden)
}

macro_rules! per_error_class {
    ($name:ident, $ty:ident, [$($field:ident),* $(,)?]) => {
        fn $name(w: &mut Walk<'_>, node: &Node, path: &str) -> $ty {
            let mut out = $ty::default();
            for (key, value) in w.entries(node, path) {
                let p = key_path(path, key);
                match key {
                    $(stringify!($field) => out.$field = w.u32(value, &p),)*
                    _ => w.report.unknown_key(&p, key, [$(stringify!($field)),*]),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_list_each_key_once() {
        crate::table::assert_each_key_once("router_settings", ROUTER);
        crate::table::assert_each_key_once("litellm_settings", LITELLM);
    }
}
