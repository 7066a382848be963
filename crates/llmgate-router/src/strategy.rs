//! Routing strategies (`router_settings.routing_strategy`) and the cooldown policy.

use std::collections::HashMap;
use std::time::Duration;

use llmgate_core::ErrorClass;

/// How a deployment is picked among the healthy ones of a group.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub enum Strategy {
    /// `simple-shuffle` (default): random, weighted by `weight`, else `rpm`, else `tpm`.
    #[default]
    SimpleShuffle,
    /// `least-busy`: fewest requests in flight (ties at random).
    LeastBusy,
    /// `latency-based-routing`: lowest recent latency (time to first byte for streams);
    /// deployments without a measurement within `ttl` are tried first, and any deployment within
    /// `buffer` (a fraction, e.g. 0.1) of the lowest may be picked, at random.
    LatencyBased {
        /// How long a measurement counts (`routing_strategy_args.ttl`, seconds).
        ttl: Duration,
        /// `routing_strategy_args.lowest_latency_buffer`.
        buffer: f64,
    },
    /// `usage-based-routing` (and `-v2`): lowest tokens used in the last minute, relative to the
    /// deployment's `tpm` when it has one.
    UsageBased,
}

/// When a failing deployment is taken out of rotation (`allowed_fails`, `cooldown_time`,
/// `allowed_fails_policy`, `disable_cooldowns`), following LiteLLM:
///
/// - a 429 cools the deployment down at once, for its `Retry-After` when it sent one, else
///   for `cooldown_time`;
/// - 401, 403 and 404 from the provider (a wrong key or model id) cool it down at once;
/// - timeouts, 5xx and unreachable upstreams cool it down once it has failed more than
///   `allowed_fails` times in the current minute (per class with `allowed_fails_policy`);
/// - other 4xx (the client's own mistakes) never do;
/// - a cooldown runs its full length: a success in the meantime (a request already in flight,
///   or a retry that had nothing else left) does not end it, so one lucky answer under load does
///   not put a rate-limited deployment straight back in rotation.
#[derive(Debug, Clone, PartialEq)]
pub struct CooldownPolicy {
    /// `disable_cooldowns`.
    pub disabled: bool,
    /// `allowed_fails` (LiteLLM's default: 3).
    pub allowed_fails: u32,
    /// `allowed_fails_policy`: per-class overrides (`TimeoutErrorAllowedFails`, ...).
    pub allowed_fails_per_class: HashMap<ErrorClass, u32>,
    /// `cooldown_time` (LiteLLM's default: 5 s); a deployment's own `cooldown_time` wins.
    pub cooldown_time: Duration,
}

impl Default for CooldownPolicy {
    fn default() -> Self {
        CooldownPolicy {
            disabled: false,
            allowed_fails: 3,
            allowed_fails_per_class: HashMap::new(),
            cooldown_time: Duration::from_secs(5),
        }
    }
}

impl CooldownPolicy {
    /// How many failures of `class` are allowed in a minute before a cooldown; `None` when the
    /// class never cools a deployment down, `Some(0)` when one failure does.
    pub(crate) fn allowed(&self, class: ErrorClass) -> Option<u32> {
        let default = match class {
            ErrorClass::RateLimit | ErrorClass::Authentication | ErrorClass::NotFound => 0,
            ErrorClass::Timeout | ErrorClass::InternalServer => self.allowed_fails,
            ErrorClass::BadRequest
            | ErrorClass::ContextWindowExceeded
            | ErrorClass::ContentPolicyViolation => return None,
        };
        Some(
            self.allowed_fails_per_class
                .get(&class)
                .copied()
                .unwrap_or(default),
        )
    }
}
