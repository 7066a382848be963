//! [`FallbackPolicy`]: how many retries, which fallback groups, how long to wait.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::RetryBudget;
use llmgate_core::ErrorClass;

/// What the fallback layer does after a failed attempt. Built by the facade from
/// `router_settings` / `litellm_settings`; each setter names the LiteLLM key it comes from.
///
/// ```
/// use llmgate_fallback::FallbackPolicy;
///
/// let policy = FallbackPolicy::default()
///     .num_retries(1)
///     .fallbacks([("gpt-4o".to_owned(), vec!["claude".to_owned(), "local".to_owned()])]);
/// # let _ = policy;
/// ```
#[derive(Debug, Clone)]
pub struct FallbackPolicy {
    pub(crate) num_retries: u32,
    pub(crate) retry_policy: HashMap<ErrorClass, u32>,
    pub(crate) fallbacks: HashMap<String, Vec<String>>,
    pub(crate) default_fallbacks: Vec<String>,
    pub(crate) context_window_fallbacks: HashMap<String, Vec<String>>,
    pub(crate) content_policy_fallbacks: HashMap<String, Vec<String>>,
    pub(crate) alias_fallbacks: HashMap<String, Vec<String>>,
    pub(crate) min_retry_wait: Duration,
    pub(crate) backoff_base: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) max_retry_after: Duration,
    pub(crate) budget: Arc<RetryBudget>,
    /// Where each move to a fallback group is told.
    pub(crate) events: llmgate_core::events::Events,
}

impl Default for FallbackPolicy {
    /// Two retries per group, no fallbacks, a backoff from 0.5 s up to 8 s, a `Retry-After` up
    /// to a minute waited for, and tower's retry budget.
    fn default() -> Self {
        FallbackPolicy {
            num_retries: 2,
            retry_policy: HashMap::new(),
            fallbacks: HashMap::new(),
            default_fallbacks: Vec::new(),
            context_window_fallbacks: HashMap::new(),
            content_policy_fallbacks: HashMap::new(),
            alias_fallbacks: HashMap::new(),
            min_retry_wait: Duration::ZERO,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
            // Tower's defaults: retries may add 20 % to the request rate, at least 10 a second,
            // measured over 10 s.
            budget: Arc::new(RetryBudget::new(Duration::from_secs(10), 10, 0.2)),
            events: llmgate_core::events::Events::none(),
        }
    }
}

impl FallbackPolicy {
    /// `num_retries` (router_settings, else litellm_settings): retries within a group after a
    /// retryable failure. LiteLLM's default is 2.
    #[must_use]
    pub fn num_retries(mut self, n: u32) -> Self {
        self.num_retries = n;
        self
    }

    /// `retry_policy`: retries per error class (`RateLimitErrorRetries`, ...), overriding
    /// `num_retries` for that class. A 4xx class named here is also retried on another
    /// deployment of the group (never the same one).
    #[must_use]
    pub fn retry_policy(mut self, per_class: impl IntoIterator<Item = (ErrorClass, u32)>) -> Self {
        self.retry_policy = per_class.into_iter().collect();
        self
    }

    /// `fallbacks`: group -> groups to try, in order, when the group fails.
    #[must_use]
    pub fn fallbacks(mut self, table: impl IntoIterator<Item = (String, Vec<String>)>) -> Self {
        self.fallbacks = table.into_iter().collect();
        self
    }

    /// `default_fallbacks`: for groups without their own `fallbacks`.
    #[must_use]
    pub fn default_fallbacks(mut self, groups: Vec<String>) -> Self {
        self.default_fallbacks = groups;
        self
    }

    /// `context_window_fallbacks`: for prompts too long for the group.
    #[must_use]
    pub fn context_window_fallbacks(
        mut self,
        table: impl IntoIterator<Item = (String, Vec<String>)>,
    ) -> Self {
        self.context_window_fallbacks = table.into_iter().collect();
        self
    }

    /// `content_policy_fallbacks`: for content-policy refusals.
    #[must_use]
    pub fn content_policy_fallbacks(
        mut self,
        table: impl IntoIterator<Item = (String, Vec<String>)>,
    ) -> Self {
        self.content_policy_fallbacks = table.into_iter().collect();
        self
    }

    /// Groups a request for an alias tries, in order, after the group the alias names fails
    /// and before that group's own fallbacks (`model_group_alias` written as a list).
    #[must_use]
    pub fn alias_fallbacks(
        mut self,
        table: impl IntoIterator<Item = (String, Vec<String>)>,
    ) -> Self {
        self.alias_fallbacks = table.into_iter().collect();
        self
    }

    /// The least wait before retrying the same deployment (LiteLLM's `retry_after`); a retry
    /// on another healthy deployment still goes at once.
    #[must_use]
    pub fn min_retry_wait(mut self, wait: Duration) -> Self {
        self.min_retry_wait = wait;
        self
    }

    /// The first backoff before retrying the same deployment (it doubles each time, with full
    /// jitter), and the longest.
    #[must_use]
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_max = max;
        self
    }

    /// A `Retry-After` longer than this is not waited for: the attempt falls back or fails.
    #[must_use]
    pub fn max_retry_after(mut self, max: Duration) -> Self {
        self.max_retry_after = max;
        self
    }

    /// Bounds the extra load retries and fallbacks add: each request deposits, each retry or
    /// fallback withdraws ([`RetryBudget`], lock-free). Share one between layers to bound them
    /// together.
    #[must_use]
    pub fn budget(mut self, budget: Arc<RetryBudget>) -> Self {
        self.budget = budget;
        self
    }

    /// Tells `events` of each move to a fallback group
    /// ([`llmgate_core::events::Event::Fallback`]), for alerting's fallback-rate reports.
    #[must_use]
    pub fn events(mut self, events: llmgate_core::events::Events) -> Self {
        self.events = events;
        self
    }

    /// Retries allowed in a group after a failure of `class`: the request's `num_retries`, else
    /// `retry_policy` for the class, else the failed deployment's `max_retries`, else
    /// `num_retries`.
    pub(crate) fn retries(
        &self,
        class: ErrorClass,
        request: Option<u32>,
        deployment: Option<u32>,
    ) -> u32 {
        request
            .or_else(|| self.retry_policy.get(&class).copied())
            .or(deployment)
            .unwrap_or(self.num_retries)
    }

    /// The groups `group` falls back to for a failure of `class`.
    pub(crate) fn targets(&self, group: &str, class: ErrorClass) -> &[String] {
        let table = match class {
            ErrorClass::ContextWindowExceeded => &self.context_window_fallbacks,
            ErrorClass::ContentPolicyViolation => &self.content_policy_fallbacks,
            _ => &self.fallbacks,
        };
        match table.get(group) {
            Some(t) => t,
            None if !matches!(
                class,
                ErrorClass::ContextWindowExceeded | ErrorClass::ContentPolicyViolation
            ) =>
            {
                &self.default_fallbacks
            }
            None => &[],
        }
    }

    /// The wait before retrying the same deployment for the `n`th time (from 0): exponential
    /// with full jitter (`jitter` in [0, 1)), at least the provider's `Retry-After`.
    pub(crate) fn backoff_for(
        &self,
        n: u32,
        retry_after: Option<Duration>,
        jitter: f64,
    ) -> Duration {
        let cap = self
            .backoff_base
            .saturating_mul(1u32 << n.min(16))
            .min(self.backoff_max);
        let jittered = cap.mul_f64(jitter).max(self.min_retry_wait);
        retry_after.map_or(jittered, |r| r.max(jittered))
    }
}
