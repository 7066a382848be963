//! Turns `router_settings` and `litellm_settings` into the router's and the fallback layer's
//! settings (the layer crates never see config types).

use std::collections::HashMap;
use std::time::Duration;

use llmgate_config::{Config, Fallback, RoutingStrategy};
use llmgate_core::ErrorClass;
use llmgate_fallback::FallbackPolicy;
use std::sync::Arc;

use llmgate_core::DeploymentSpec;
use llmgate_router::{CooldownHook, CooldownPolicy, ModelTable, SharedUsage, Strategy};

use crate::cooldowns::SharedCooldowns;
use crate::gateway::BuildError;

/// LiteLLM's default `routing_strategy_args.ttl` for latency-based routing.
const DEFAULT_LATENCY_TTL: Duration = Duration::from_secs(3600);

/// The model table for `config`'s deployments and aliases, with its strategy and cooldown
/// policy; its deployments' rpm/tpm/rpd counted in `usage` (the rate limiter's Redis store)
/// and its cooldowns told to `hook` (shared through Redis), when configured. On a reload,
/// `old`'s state is carried over for the deployments that did not change
/// ([`ModelTable::carry_state_from`]). Every table tells `events` (see `alerting.rs`), and
/// watches its attempts in `hanging` when `llm_requests_hanging` alerts are sent.
pub(crate) fn model_table(
    config: &Config,
    deployments: &[Arc<DeploymentSpec>],
    usage: Option<Arc<dyn SharedUsage>>,
    hook: Option<CooldownHook>,
    old: Option<&ModelTable>,
    events: &llmgate_core::events::Events,
    hanging: Option<Arc<llmgate_router::Hanging>>,
) -> Arc<ModelTable> {
    let aliases = config
        .model_group_aliases()
        .into_iter()
        .map(|(alias, (target, hidden))| (alias, target, hidden));
    let mut table = ModelTable::new(deployments.iter().cloned(), aliases)
        .with_strategy(strategy(config))
        .with_cooldown_policy(cooldown_policy(config))
        .with_events(events.clone(), crate::alerting::slow_after(config));
    if let Some(h) = hanging {
        table = table.with_hanging(h);
    }
    if let Some(usage) = usage {
        table = table.with_shared_usage(usage);
    }
    if let Some(hook) = hook {
        table = table.with_cooldown_hook(hook);
    }
    if let Some(old) = old {
        table.carry_state_from(old);
    }
    Arc::new(table)
}

/// With Redis (`router_settings.redis_*`): the hook each table tells its cooldowns to, and the
/// task that shares them with every instance on it.
pub(crate) fn shared_cooldowns(
    config: &Config,
) -> Result<Option<(CooldownHook, SharedCooldowns)>, BuildError> {
    let Some(url) = crate::build::ratelimit::redis_url(config) else {
        return Ok(None);
    };
    let prefix = config
        .general_settings
        .llmgate_rate_limit_redis_prefix
        .as_deref();
    crate::cooldowns::shared(&url, prefix)
        .map(Some)
        .map_err(|e| BuildError::RateLimit(format!("router_settings.redis_*: {e}")))
}

/// `routing_strategy` with its `routing_strategy_args`. `cost-based-routing` is not implemented
/// (config reports it) and uses simple-shuffle.
pub(crate) fn strategy(config: &Config) -> Strategy {
    let rs = &config.router_settings;
    match rs.routing_strategy {
        RoutingStrategy::LeastBusy => Strategy::LeastBusy,
        RoutingStrategy::LatencyBasedRouting => {
            let args = &rs.routing_strategy_args;
            let ttl = args
                .get("ttl")
                .and_then(|v| v.as_f64())
                .filter(|t| *t > 0.0)
                .and_then(llmgate_core::seconds::seconds)
                .unwrap_or(DEFAULT_LATENCY_TTL);
            let buffer = args
                .get("lowest_latency_buffer")
                .and_then(|v| v.as_f64())
                .filter(|b| b.is_finite() && *b >= 0.0)
                .unwrap_or(0.0);
            Strategy::LatencyBased { ttl, buffer }
        }
        RoutingStrategy::UsageBasedRouting | RoutingStrategy::UsageBasedRoutingV2 => {
            Strategy::UsageBased
        }
        RoutingStrategy::SimpleShuffle | RoutingStrategy::CostBasedRouting => {
            Strategy::SimpleShuffle
        }
    }
}

/// `allowed_fails`, `allowed_fails_policy`, `cooldown_time`, `disable_cooldowns`.
pub(crate) fn cooldown_policy(config: &Config) -> CooldownPolicy {
    let rs = &config.router_settings;
    let mut p = CooldownPolicy {
        disabled: rs.disable_cooldowns.unwrap_or(false),
        ..CooldownPolicy::default()
    };
    if let Some(n) = rs.allowed_fails {
        p.allowed_fails = n;
    }
    if let Some(t) = rs.cooldown_time {
        p.cooldown_time = t;
    }
    if let Some(a) = &rs.allowed_fails_policy {
        let per = [
            (
                ErrorClass::Authentication,
                a.AuthenticationErrorAllowedFails,
            ),
            (ErrorClass::Timeout, a.TimeoutErrorAllowedFails),
            (ErrorClass::RateLimit, a.RateLimitErrorAllowedFails),
            (
                ErrorClass::ContentPolicyViolation,
                a.ContentPolicyViolationErrorAllowedFails,
            ),
            (
                ErrorClass::InternalServer,
                a.InternalServerErrorAllowedFails,
            ),
            (ErrorClass::BadRequest, a.BadRequestErrorAllowedFails),
        ];
        p.allowed_fails_per_class = per
            .into_iter()
            .filter_map(|(c, n)| n.map(|n| (c, n)))
            .collect();
    }
    p
}

fn table(router: &[Fallback], litellm: &[Fallback]) -> HashMap<String, Vec<String>> {
    // router_settings wins over litellm_settings for the same group.
    litellm
        .iter()
        .chain(router)
        .map(|f| (f.model_group.clone(), f.fallbacks.clone()))
        .collect()
}

/// `num_retries`, `retry_policy` and the four kinds of fallbacks, from `router_settings` and
/// `litellm_settings` (router_settings wins).
pub(crate) fn fallback_policy(config: &Config) -> FallbackPolicy {
    let rs = &config.router_settings;
    let ls = &config.litellm_settings;
    let mut p = FallbackPolicy::default();
    if let Some(n) = rs.num_retries.or(ls.num_retries) {
        p = p.num_retries(n);
    }
    if let Some(wait) = rs.retry_after.or(ls.retry_after) {
        p = p.min_retry_wait(wait);
    }
    p = p.alias_fallbacks(config.alias_fallbacks());
    if let Some(r) = &rs.retry_policy {
        let per = [
            (ErrorClass::Authentication, r.AuthenticationErrorRetries),
            (ErrorClass::Timeout, r.TimeoutErrorRetries),
            (ErrorClass::RateLimit, r.RateLimitErrorRetries),
            (
                ErrorClass::ContentPolicyViolation,
                r.ContentPolicyViolationErrorRetries,
            ),
            (ErrorClass::InternalServer, r.InternalServerErrorRetries),
            (ErrorClass::BadRequest, r.BadRequestErrorRetries),
        ];
        p = p.retry_policy(per.into_iter().filter_map(|(c, n)| n.map(|n| (c, n))));
    }
    let default_fallbacks = if rs.default_fallbacks.is_empty() {
        ls.default_fallbacks.clone()
    } else {
        rs.default_fallbacks.clone()
    };
    p.fallbacks(table(&rs.fallbacks, &ls.fallbacks))
        .context_window_fallbacks(table(
            &rs.context_window_fallbacks,
            &ls.context_window_fallbacks,
        ))
        .content_policy_fallbacks(table(
            &rs.content_policy_fallbacks,
            &ls.content_policy_fallbacks,
        ))
        .default_fallbacks(default_fallbacks)
}
