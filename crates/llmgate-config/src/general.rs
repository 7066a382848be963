//! `general_settings`: one table of key to handler, grouped as keys and database, the HTTP
//! host, limits, spend, then the keys reported as not yet active, unenforced or unsupported
//! (see `settings.rs` for what each means); any other key is unknown.

use crate::node::Node;
use crate::schema::{FailurePolicy, GeneralSettings, SpendQueueFull};
use crate::settings::{DATABASE, HEALTH};
use crate::table::Handle::{NotYetActive, Read, Unenforced, Unsupported};
use crate::table::{unknown, walk_table, Table};
use crate::walk::Walk;

/// `general_settings`.
pub(crate) fn general_settings(w: &mut Walk<'_>, node: &Node, path: &str) -> GeneralSettings {
    let mut out = GeneralSettings::default();
    walk_table(w, &mut out, node, path, GENERAL, unknown);
    out
}

const ALERTING: &str = "alerting";
const LITELLM_SETTING: &str = "this LiteLLM setting";

/// The keys of `general_settings`, by group; any other is unknown.
#[rustfmt::skip]
const GENERAL: &Table<GeneralSettings> = &[
    // The master key, the key database and how keys are looked up.
    ("master_key", Read(master_key)),
    ("database_url", Read(|w, out, v, p| out.database_url = w.secret(v, p))),
    ("database_connection_pool_limit", Read(|w, out, v, p| {
        out.database_connection_pool_limit = w.u32(v, p);
        if out.database_connection_pool_limit == Some(0) {
            w.report.error(p, "must be at least 1");
        }
    })),
    ("disable_spend_logs", Read(|w, out, v, p| out.disable_spend_logs = w.bool(v, p))),
    ("store_prompts_in_spend_logs", Read(|w, out, v, p| {
        out.store_prompts_in_spend_logs = w.bool(v, p);
    })),
    // Logs and metrics.
    ("json_logs", Read(|w, out, v, p| out.json_logs = w.bool(v, p))),
    ("set_verbose", Read(|w, out, v, p| out.set_verbose = w.bool(v, p))),
    ("litellm_metric_names", Read(|w, out, v, p| out.litellm_metric_names = w.bool(v, p))),
    ("default_team_settings", Read(|w, out, v, p| {
        out.default_team_settings = crate::settings::json_map(w, v, p);
    })),
    ("user_header_name", Read(user_header_name)),
    ("user_header_mappings", Read(user_header_mappings)),
    ("allow_requests_on_db_unavailable", Read(|w, out, v, p| {
        out.allow_requests_on_db_unavailable = w.bool(v, p);
    })),
    ("user_api_key_cache_ttl", Read(|w, out, v, p| out.user_api_key_cache_ttl = w.seconds(v, p))),
    // The HTTP host's bounds and the health checks.
    ("max_request_size_mb", Read(|w, out, v, p| out.max_request_size_mb = w.mebibytes(v, p))),
    ("max_response_size_mb", Read(max_response_size_mb)),
    ("background_health_checks", Read(|w, out, v, p| out.background_health_checks = w.bool(v, p))),
    ("health_check_interval", Read(|w, out, v, p| out.health_check_interval = w.seconds(v, p))),
    ("llmgate_request_header_timeout", Read(|w, out, v, p| {
        out.llmgate_request_header_timeout = w.seconds(v, p);
    })),
    ("llmgate_request_body_timeout", Read(|w, out, v, p| {
        out.llmgate_request_body_timeout = w.seconds(v, p);
    })),
    ("llmgate_max_header_bytes", Read(|w, out, v, p| {
        out.llmgate_max_header_bytes = within(
            w,
            v,
            p,
            GeneralSettings::MAX_HEADER_BYTES_FLOOR,
            GeneralSettings::MAX_HEADER_BYTES_CEILING,
        );
    })),
    ("llmgate_max_headers", Read(|w, out, v, p| {
        out.llmgate_max_headers = within(w, v, p, 1, GeneralSettings::MAX_HEADERS_CEILING);
    })),
    ("llmgate_max_connections", Read(|w, out, v, p| {
        out.llmgate_max_connections = positive(w, v, p);
    })),
    // Gateway-wide parallel limits and the rate limiter.
    ("max_parallel_requests", Read(|w, out, v, p| out.max_parallel_requests = w.u64(v, p))),
    ("global_max_parallel_requests", Read(|w, out, v, p| {
        out.global_max_parallel_requests = w.u64(v, p);
    })),
    ("llmgate_rate_limit_redis_prefix", Read(|w, out, v, p| {
        out.llmgate_rate_limit_redis_prefix = w.string(v, p);
    })),
    ("llmgate_rate_limit_failure_policy", Read(rate_limit_failure_policy)),
    // The spend writer.
    ("proxy_batch_write_at", Read(|w, out, v, p| {
        out.proxy_batch_write_at = w.seconds(v, p);
        if out.proxy_batch_write_at.is_some_and(|d| d.is_zero()) {
            w.report.error(p, "must be more than 0 seconds");
            out.proxy_batch_write_at = None;
        }
    })),
    ("spend_batch_size", Read(|w, out, v, p| out.spend_batch_size = positive(w, v, p))),
    ("spend_queue_size", Read(|w, out, v, p| out.spend_queue_size = positive(w, v, p))),
    ("spend_spill_dir", Read(spend_spill_dir)),
    ("spend_queue_full", Read(spend_queue_full)),
    // Alerts (see `alerting.rs`).
    ("alerting", Read(crate::alerting::alerting)),
    ("alerting_threshold", Read(crate::alerting::alerting_threshold)),
    ("alert_types", Read(crate::alerting::alert_types)),
    ("alerting_args", Read(crate::alerting::alerting_args)),
    ("alert_to_webhook_url", Read(crate::alerting::alert_to_webhook_url)),
    // Read but not acted on yet, or refused (see `settings.rs`).
    ("allowed_ips", Unenforced("IP allow-lists are")),
    ("enforce_user_param", Unenforced("enforced request parameters are")),
    ("enforced_params", Unenforced("enforced request parameters are")),
    ("allowed_routes", Unenforced("route restrictions are")),
    ("admin_only_routes", Unenforced("route restrictions are")),
    ("enable_jwt_auth", Unenforced("JWT auth is")),
    ("litellm_jwtauth", Unenforced("JWT auth is")),
    ("custom_auth", Unenforced("custom auth is")),
    ("database_connection_timeout", NotYetActive(DATABASE)),
    ("disable_error_logs", NotYetActive(DATABASE)),
    ("store_model_in_db", NotYetActive(DATABASE)),
    ("maximum_spend_logs_retention_period", NotYetActive(DATABASE)),
    ("maximum_spend_logs_retention_interval", NotYetActive(DATABASE)),
    ("disable_adding_master_key_hash_to_db", NotYetActive(DATABASE)),
    ("use_redis_transaction_buffer", NotYetActive(DATABASE)),
    ("health_check_details", NotYetActive(HEALTH)),
    ("spend_report_frequency", NotYetActive(ALERTING)),
    ("public_routes", NotYetActive(LITELLM_SETTING)),
    ("litellm_key_header_name", NotYetActive(LITELLM_SETTING)),
    ("key_management_system", NotYetActive(LITELLM_SETTING)),
    ("key_management_settings", NotYetActive(LITELLM_SETTING)),
    ("disable_master_key_return", NotYetActive(LITELLM_SETTING)),
    ("disable_reset_budget", NotYetActive(LITELLM_SETTING)),
    ("forward_openai_org_id", NotYetActive(LITELLM_SETTING)),
    ("forward_client_headers_to_llm_api", NotYetActive(LITELLM_SETTING)),
    ("infer_model_from_keys", NotYetActive(LITELLM_SETTING)),
    ("reject_clientside_metadata_tags", NotYetActive(LITELLM_SETTING)),
    ("proxy_budget_rescheduler_min_time", NotYetActive(LITELLM_SETTING)),
    ("proxy_budget_rescheduler_max_time", NotYetActive(LITELLM_SETTING)),
    ("disable_retry_on_max_parallel_request_limit_error", NotYetActive(LITELLM_SETTING)),
    ("enable_oauth2_auth", NotYetActive(LITELLM_SETTING)),
    ("pass_through_endpoints", NotYetActive(LITELLM_SETTING)),
    ("ui_access_mode", Unsupported),
    ("ui_username", Unsupported),
    ("ui_password", Unsupported),
    ("custom_sso", Unsupported),
    ("block_robots", Unsupported),
];

fn master_key(w: &mut Walk<'_>, out: &mut GeneralSettings, value: &Node, p: &str) {
    out.master_key = w.secret(value, p);
    if let Some(k) = &out.master_key {
        if !k.expose().starts_with("sk-") {
            w.report.warning(
                p,
                "does not start with \"sk-\" (LiteLLM requires it; llmgate accepts \
                 it, but clients and tools may expect sk-)",
            );
        }
    }
}

fn max_response_size_mb(w: &mut Walk<'_>, out: &mut GeneralSettings, value: &Node, p: &str) {
    out.max_response_size_mb = w.number(value, p, "a number of MiB");
    if out
        .max_response_size_mb
        .is_some_and(|mb| !(mb > 0.0 && mb <= 1024.0 * 1024.0))
    {
        w.report
            .error(p, "must be more than 0 and at most 1048576 (1 TiB)");
        out.max_response_size_mb = None;
    }
}

fn rate_limit_failure_policy(w: &mut Walk<'_>, out: &mut GeneralSettings, value: &Node, p: &str) {
    out.llmgate_rate_limit_failure_policy = match w.string(value, p).as_deref() {
        None => None,
        Some("open") => Some(FailurePolicy::Open),
        Some("closed") => Some(FailurePolicy::Closed),
        Some(other) => {
            w.report.error(
                p,
                format!("unknown policy \"{other}\" (expected open or closed)"),
            );
            None
        }
    };
}

fn spend_spill_dir(w: &mut Walk<'_>, out: &mut GeneralSettings, value: &Node, p: &str) {
    out.spend_spill_dir = match w.string(value, p) {
        Some(dir) if dir.trim().is_empty() => {
            w.report.error(p, "must name a directory");
            None
        }
        dir => dir.map(std::path::PathBuf::from),
    };
}

fn spend_queue_full(w: &mut Walk<'_>, out: &mut GeneralSettings, value: &Node, p: &str) {
    out.spend_queue_full = match w.string(value, p).as_deref() {
        None => None,
        Some("reject") => Some(SpendQueueFull::Reject),
        Some("drop") => Some(SpendQueueFull::Drop),
        Some(other) => {
            w.report.error(
                p,
                format!("unknown policy \"{other}\" (expected reject or drop)"),
            );
            None
        }
    };
}

/// A whole number from `low` to `high`, both included.
fn within(w: &mut Walk<'_>, node: &Node, path: &str, low: u64, high: u64) -> Option<u64> {
    let n = w.u64(node, path)?;
    if !(low..=high).contains(&n) {
        w.report
            .error(path, format!("must be from {low} to {high}"));
        return None;
    }
    Some(n)
}

/// A count that must be at least 1.
fn positive(w: &mut Walk<'_>, node: &Node, path: &str) -> Option<u64> {
    let n = w.u64(node, path)?;
    if n == 0 {
        w.report.error(path, "must be at least 1");
        return None;
    }
    Some(n)
}

/// `user_header_name` (LiteLLM's older setting): a header naming the end user.
fn user_header_name(w: &mut Walk<'_>, out: &mut GeneralSettings, value: &Node, p: &str) {
    if let Some(name) = w.non_empty_string(value, p).and_then(|n| header(w, &n, p)) {
        out.end_user_headers.push(name);
    }
}

/// `user_header_mappings`: `[{header_name, litellm_user_role}]`. A `customer` mapping names
/// the end user; llmgate has no use for the others yet (a warning says so).
fn user_header_mappings(w: &mut Walk<'_>, out: &mut GeneralSettings, value: &Node, p: &str) {
    let mut mapped = Vec::new();
    for (i, item) in w.items(value, p).iter().enumerate() {
        let at = format!("{p}[{i}]");
        let entries = w.entries(item, &at);
        let field = |k: &str| entries.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
        let (Some(name), Some(role)) = (field("header_name"), field("litellm_user_role")) else {
            w.report.error(
                &at,
                "needs header_name and litellm_user_role (customer, internal_user)",
            );
            continue;
        };
        let name = w.non_empty_string(name, &format!("{at}.header_name"));
        let role = w.non_empty_string(role, &format!("{at}.litellm_user_role"));
        match (name.and_then(|n| header(w, &n, &at)), role.as_deref()) {
            (Some(name), Some("customer" | "end_user")) => mapped.push(name),
            (Some(_), Some(role)) => w.report.warning(
                &at,
                format!("litellm_user_role {role:?} is not acted on: llmgate reads the end user (customer) from headers; internal users are named by their keys"),
            ),
            _ => {}
        }
    }
    // Mappings come before `user_header_name`, as in LiteLLM.
    mapped.append(&mut out.end_user_headers);
    out.end_user_headers = mapped;
}

/// `name` as a header name (lower-cased), or an error at `p`.
fn header(w: &mut Walk<'_>, name: &str, p: &str) -> Option<String> {
    match http::HeaderName::from_bytes(name.trim().as_bytes()) {
        Ok(h) => Some(h.as_str().to_owned()),
        Err(_) => {
            w.report.error(p, format!("{name:?} is not a header name"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_list_each_key_once() {
        crate::table::assert_each_key_once("general_settings", GENERAL);
    }

    #[test]
    fn end_user_headers_come_from_customer_mappings_then_user_header_name() {
        let y = "general_settings:\n  user_header_name: X-App-User\n  user_header_mappings:\n    - header_name: X-OpenWebUI-User-Email\n      litellm_user_role: customer\n    - header_name: x-openwebui-user-id\n      litellm_user_role: internal_user\n";
        let env = std::collections::HashMap::<String, String>::new();
        let loaded = crate::from_yaml(y, std::path::Path::new("."), &env).unwrap();
        assert_eq!(
            loaded.config.general_settings.end_user_headers,
            ["x-openwebui-user-email", "x-app-user"]
        );
        let notices: Vec<String> = loaded.notices.iter().map(ToString::to_string).collect();
        assert!(
            notices
                .iter()
                .any(|n| n.contains("\"internal_user\" is not acted on")),
            "{notices:?}"
        );
        let bad = "general_settings:\n  user_header_name: \"not a header\"\n";
        let problems = crate::from_yaml(bad, std::path::Path::new("."), &env).unwrap_err();
        assert!(
            problems.to_string().contains("is not a header name"),
            "{problems}"
        );
    }
}
