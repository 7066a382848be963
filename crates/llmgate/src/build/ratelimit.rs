//! Turns the rate-limit settings into a [`RateLimitLayer`]: counters in Redis when
//! `router_settings` names one (`redis_url`, or `redis_host`/`redis_port`/`redis_password`),
//! else in memory; `general_settings.max_parallel_requests`, `global_max_parallel_requests`
//! `llmgate_rate_limit_failure_policy` and `llmgate_rate_limit_redis_prefix`. Per-key limits come with each request's key.

use std::sync::Arc;

use llmgate_config::{Config, FailurePolicy};
use llmgate_ratelimit::{FailurePolicy as Policy, RateLimitLayer, RedisConfig, RedisStore};

use crate::gateway::BuildError;

/// The layer for `config`. A Redis URL that does not parse is an error now; a Redis that is
/// down is the failure policy's business, at request time. Its store and counters outlive
/// config reloads ([`configure`] gives each reload's settings).
pub(crate) fn layer(config: &Config) -> Result<RateLimitLayer, BuildError> {
    let gs = &config.general_settings;
    let base = match redis_url(config) {
        Some(url) => {
            let mut redis = RedisConfig::new(url);
            if let Some(prefix) = &gs.llmgate_rate_limit_redis_prefix {
                redis.prefix.clone_from(prefix);
            }
            let store = RedisStore::new(redis)
                .map_err(|e| BuildError::RateLimit(format!("router_settings.redis_*: {e}")))?;
            RateLimitLayer::new(Arc::new(store))
        }
        None => RateLimitLayer::in_memory(),
    };
    Ok(configure(base, config))
}

/// `base` (its store and counters) with `config`'s global limits and failure policy.
pub(crate) fn configure(base: RateLimitLayer, config: &Config) -> RateLimitLayer {
    let gs = &config.general_settings;
    base.max_parallel_requests(gs.max_parallel_requests)
        .global_max_parallel_requests(gs.global_max_parallel_requests)
        .on_store_failure(match gs.llmgate_rate_limit_failure_policy {
            Some(FailurePolicy::Closed) => Policy::Closed,
            Some(FailurePolicy::Open) | None => Policy::Open,
        })
}

/// `redis_url`, else one built from `redis_host` (port 6379 unless `redis_port`) and
/// `redis_password`.
pub(crate) fn redis_url(config: &Config) -> Option<String> {
    let rs = &config.router_settings;
    if let Some(url) = &rs.redis_url {
        return Some(url.expose().to_owned());
    }
    let host = rs.redis_host.as_deref()?;
    let port = rs.redis_port.unwrap_or(6379);
    let auth = rs
        .redis_password
        .as_ref()
        .map(|p| format!(":{}@", percent_encode(p.expose())))
        .unwrap_or_default();
    Some(format!("redis://{auth}{host}:{port}"))
}

/// Percent-encodes everything but unreserved characters (RFC 3986), for a password in a URL.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_encoded_into_the_url() {
        assert_eq!(percent_encode("a b@c/d"), "a%20b%40c%2Fd");
    }
}
