//! `general_settings`: each key is handled by the group it belongs to (keys and database, the
//! HTTP host, limits, spend), else reported as not yet active, unenforced or unknown (see
//! `settings.rs` for what each means).

use crate::node::Node;
use crate::problems::key_path;
use crate::schema::{FailurePolicy, GeneralSettings, SpendQueueFull};
use crate::settings::{not_yet_active, unenforced, unsupported, DATABASE, HEALTH};
use crate::walk::Walk;

/// `general_settings`.
pub(crate) fn general_settings(w: &mut Walk<'_>, node: &Node, path: &str) -> GeneralSettings {
    let mut out = GeneralSettings::default();
    for (key, value) in w.entries(node, path) {
        let p = key_path(path, key);
        let handled = keys(w, &mut out, key, value, &p)
            || http(w, &mut out, key, value, &p)
            || limits(w, &mut out, key, value, &p)
            || spend(w, &mut out, key, value, &p);
        if !handled {
            other(w, key, value, &p);
        }
    }
    out
}

/// The master key, the key database and how keys are looked up.
fn keys(w: &mut Walk<'_>, out: &mut GeneralSettings, key: &str, value: &Node, p: &str) -> bool {
    match key {
        "master_key" => {
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
        "database_url" => {
            out.database_url = w.secret(value, p);
        }
        "database_connection_pool_limit" => {
            out.database_connection_pool_limit = w.u32(value, p);
            if out.database_connection_pool_limit == Some(0) {
                w.report.error(p, "must be at least 1");
            }
        }
        "disable_spend_logs" => {
            out.disable_spend_logs = w.bool(value, p);
        }
        "allow_requests_on_db_unavailable" => {
            out.allow_requests_on_db_unavailable = w.bool(value, p);
        }
        "user_api_key_cache_ttl" => {
            out.user_api_key_cache_ttl = w.seconds(value, p);
        }
        _ => return false,
    }
    true
}

/// The HTTP host's bounds and the health checks.
fn http(w: &mut Walk<'_>, out: &mut GeneralSettings, key: &str, value: &Node, p: &str) -> bool {
    match key {
        "max_request_size_mb" => {
            out.max_request_size_mb = w.mebibytes(value, p);
        }
        "max_response_size_mb" => {
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
        "background_health_checks" => {
            out.background_health_checks = w.bool(value, p);
        }
        "health_check_interval" => {
            out.health_check_interval = w.seconds(value, p);
        }
        "llmgate_request_header_timeout" => {
            out.llmgate_request_header_timeout = w.seconds(value, p);
        }
        "llmgate_request_body_timeout" => {
            out.llmgate_request_body_timeout = w.seconds(value, p);
        }
        "llmgate_max_header_bytes" => {
            out.llmgate_max_header_bytes = within(
                w,
                value,
                p,
                GeneralSettings::MAX_HEADER_BYTES_FLOOR,
                GeneralSettings::MAX_HEADER_BYTES_CEILING,
            );
        }
        "llmgate_max_headers" => {
            out.llmgate_max_headers = within(w, value, p, 1, GeneralSettings::MAX_HEADERS_CEILING);
        }
        "llmgate_max_connections" => out.llmgate_max_connections = positive(w, value, p),
        _ => return false,
    }
    true
}

/// Gateway-wide parallel limits and the rate limiter.
fn limits(w: &mut Walk<'_>, out: &mut GeneralSettings, key: &str, value: &Node, p: &str) -> bool {
    match key {
        "max_parallel_requests" => out.max_parallel_requests = w.u64(value, p),
        "global_max_parallel_requests" => {
            out.global_max_parallel_requests = w.u64(value, p);
        }
        "llmgate_rate_limit_redis_prefix" => {
            out.llmgate_rate_limit_redis_prefix = w.string(value, p);
        }
        "llmgate_rate_limit_failure_policy" => {
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
        _ => return false,
    }
    true
}

/// The spend writer.
fn spend(w: &mut Walk<'_>, out: &mut GeneralSettings, key: &str, value: &Node, p: &str) -> bool {
    match key {
        "proxy_batch_write_at" => {
            out.proxy_batch_write_at = w.seconds(value, p);
            if out.proxy_batch_write_at.is_some_and(|d| d.is_zero()) {
                w.report.error(p, "must be more than 0 seconds");
                out.proxy_batch_write_at = None;
            }
        }
        "spend_batch_size" => out.spend_batch_size = positive(w, value, p),
        "spend_queue_size" => out.spend_queue_size = positive(w, value, p),
        "spend_spill_dir" => {
            out.spend_spill_dir = match w.string(value, p) {
                Some(dir) if dir.trim().is_empty() => {
                    w.report.error(p, "must name a directory");
                    None
                }
                dir => dir.map(std::path::PathBuf::from),
            };
        }
        "spend_queue_full" => {
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
            }
        }
        _ => return false,
    }
    true
}

/// Keys llmgate reads but does not act on yet, refuses, or does not know.
fn other(w: &mut Walk<'_>, key: &str, value: &Node, p: &str) {
    match key {
        "allowed_ips" => unenforced(w, value, p, "IP allow-lists are"),
        "enforce_user_param" | "enforced_params" => {
            unenforced(w, value, p, "enforced request parameters are")
        }
        "allowed_routes" | "admin_only_routes" => unenforced(w, value, p, "route restrictions are"),
        "enable_jwt_auth" | "litellm_jwtauth" => unenforced(w, value, p, "JWT auth is"),
        "custom_auth" => unenforced(w, value, p, "custom auth is"),
        "database_connection_timeout"
        | "disable_error_logs"
        | "store_model_in_db"
        | "maximum_spend_logs_retention_period"
        | "maximum_spend_logs_retention_interval"
        | "disable_adding_master_key_hash_to_db"
        | "use_redis_transaction_buffer" => not_yet_active(w, value, p, DATABASE),
        "health_check_details" => not_yet_active(w, value, p, HEALTH),
        "alerting"
        | "alerting_threshold"
        | "alert_types"
        | "alert_to_webhook_url"
        | "spend_report_frequency" => not_yet_active(w, value, p, "alerting"),
        "public_routes"
        | "litellm_key_header_name"
        | "user_header_name"
        | "key_management_system"
        | "key_management_settings"
        | "disable_master_key_return"
        | "disable_reset_budget"
        | "forward_openai_org_id"
        | "forward_client_headers_to_llm_api"
        | "infer_model_from_keys"
        | "reject_clientside_metadata_tags"
        | "proxy_budget_rescheduler_min_time"
        | "proxy_budget_rescheduler_max_time"
        | "disable_retry_on_max_parallel_request_limit_error"
        | "enable_oauth2_auth"
        | "pass_through_endpoints" => not_yet_active(w, value, p, "this LiteLLM setting"),
        "ui_access_mode" | "ui_username" | "ui_password" | "custom_sso" | "block_robots" => {
            unsupported(w, p)
        }

        _ => w.report.unknown_key(p),
    }
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
