//! [`Plan`]: what one request does after each failed attempt, decided synchronously from the
//! failure, the request's attempts so far and the retry budget. [`crate::run`] only executes
//! the [`Step`] it returns: it sends the next attempt, sleeps first for
//! [`Step::RetrySame`], or returns the error of [`Step::GiveUp`].
//!
//! Like tower's retry `Policy`, the decision is a plain function of the result, tested without
//! a service or a clock (`plan/tests.rs`: a table of error class x alternatives x budget);
//! unlike it, the plan also chooses *where* the next attempt goes. After a failure, in order:
//!
//! 1. **Not routed** (the router did not run: a wiring error): give up with the error as it is.
//! 2. **Refused** (the caller may not reach the group): the requested model gives up with the
//!    router's 403; a fallback group is skipped, not counted as an attempt, and the next one in
//!    line goes instead, on the budget already withdrawn.
//! 3. **Retry in the group**, for a retryable failure (429, 5xx, timeout) of a deployment, or a
//!    4xx worth another deployment (a wrong key, or a class `retry_policy` names), never for a
//!    downstream error nor a context-window or content-policy one; while the group's retries
//!    last ([`FallbackPolicy`] says how many, counted from the group's first failure):
//!    [`Step::RetryOther`] when the router reports another healthy deployment, else
//!    [`Step::RetrySame`] after a backoff (at least the provider's `Retry-After`), only for a
//!    retryable failure, and only when no fallback group is waiting and the wait is at most
//!    `max_retry_after`. Each withdraws from the budget; without budget, go on to 4.
//! 4. **Fall back** ([`Step::FallBack`]), for any failure but the client's own (a downstream
//!    error, a plain 400): to the next group of the failed group's list (the request's own
//!    `fallbacks` replace the requested group's configured ones; a context-window or
//!    content-policy failure goes to its own list), no group twice. The group starts afresh:
//!    no exclusions, a full count of retries. Withdraws from the budget.
//! 5. Else **give up** ([`Step::GiveUp`]): the only failure as it was, or the last one's status
//!    with every attempt listed.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use http::Response;
use llmgate_core::{
    ApiError, ErrorClass, ErrorContract, LlmRequest, Origin, RouteHint, RouteSlot, Routed,
};

use crate::report::Record;
use crate::{FallbackPolicy, RetryBudget};

#[cfg(test)]
mod tests;

/// The status `mock_testing_fallbacks` fails the original group with (LiteLLM raises an
/// internal server error).
const MOCK_FALLBACK_STATUS: u16 = 500;

/// What to do after a failed attempt.
#[derive(Debug)]
pub(crate) enum Step {
    /// Another healthy deployment of the same group, at once.
    RetryOther,
    /// The same deployment again, after this wait.
    RetrySame(Duration),
    /// This fallback group, at once.
    FallBack(Arc<str>),
    /// Nothing is left: the client gets this error.
    GiveUp(ApiError),
}

/// Where retries and fallbacks draw from: [`RetryBudget`], or a fixed allowance in tests.
pub(crate) trait Budget {
    /// Takes one retry if the budget allows it.
    fn withdraw(&self) -> bool;
}

impl Budget for RetryBudget {
    fn withdraw(&self) -> bool {
        RetryBudget::withdraw(self)
    }
}

/// A failed attempt, as the plan needs to know it.
#[derive(Debug)]
pub(crate) struct Failure {
    /// The error the attempt failed with.
    pub(crate) error: ApiError,
    /// What the router chose (`None`: it did not run).
    pub(crate) routed: Option<Routed>,
    /// The router refused the attempt: the caller may not reach the group.
    pub(crate) denied: bool,
}

impl Failure {
    /// The failure of the attempt that carried `slot`.
    pub(crate) fn new(error: ApiError, slot: &RouteSlot) -> Self {
        Failure {
            error,
            routed: slot.get().cloned(),
            denied: slot.denied(),
        }
    }
}

/// What the request itself asks of retries and fallbacks (its body's gateway parameters).
#[derive(Debug, Default)]
pub(crate) struct Asked {
    /// `num_retries`.
    retries: Option<u32>,
    /// `fallbacks`: replace the configured ones of the requested group.
    fallbacks: Option<Vec<String>>,
    /// `mock_testing_fallbacks`: fail every attempt on the requested group.
    mock_fallbacks: bool,
    /// The requested model is an alias written as a list: the groups after its first.
    alias_chain: Option<Vec<String>>,
}

impl Asked {
    /// Reads the request's parameters, and the alias chain `policy` has for its model.
    pub(crate) fn of(llm: Option<&LlmRequest>, policy: &FallbackPolicy) -> Self {
        let Some(llm) = llm else {
            return Asked::default();
        };
        let gateway = llm.gateway();
        let alias_chain = match policy.alias_fallbacks.is_empty() {
            true => None,
            false => policy.alias_fallbacks.get(llm.model()).cloned(),
        };
        Asked {
            alias_chain,
            retries: gateway.num_retries,
            fallbacks: gateway
                .fallbacks
                .as_ref()
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                }),
            mock_fallbacks: gateway.mock_testing_fallbacks,
        }
    }
}

/// What a failure says, for the decision.
struct Judged {
    class: ErrorClass,
    downstream: bool,
    retryable: bool,
    retry_after: Option<Duration>,
}

impl Judged {
    fn of(error: &ApiError) -> Self {
        Judged {
            class: ErrorClass::of(error),
            downstream: error.origin() == Origin::Downstream,
            retryable: error.retryable(),
            retry_after: error.retry_after(),
        }
    }

    /// Goes to its own fallback list and is never retried in the group.
    fn special(&self) -> bool {
        is_special(self.class)
    }

    /// The client's own mistakes (a bad parameter) fail the same way everywhere. A prompt too
    /// long for the group (from the provider, or from the router's up-front check, which is
    /// the client's side of the line) or a content-policy refusal goes to its own fallbacks.
    fn fallback_worthy(&self) -> bool {
        self.special() || (!self.downstream && self.class != ErrorClass::BadRequest)
    }
}

/// One request's plan; see the module docs.
#[derive(Debug)]
pub(crate) struct Plan<'p> {
    policy: &'p FallbackPolicy,
    asked: Asked,
    /// The jitter of a backoff, in [0, 1): `fastrand::f64`, fixed in tests.
    jitter: fn() -> f64,
    /// The group the next attempt goes to; `None`: the model the request names.
    group: Option<Arc<str>>,
    /// The requested model's group, once the router has named it.
    original: Option<Arc<str>>,
    /// Groups tried or queued once: never again.
    visited: Vec<Arc<str>>,
    /// Fallback groups waiting, in order.
    queue: VecDeque<String>,
    /// Deployments of the current group already tried.
    exclude: Vec<Arc<str>>,
    /// Retries left in the current group, fixed by its first failure.
    retries_left: Option<u32>,
    /// Retries of the same deployment so far in the current group (the backoff's exponent).
    same_deployment_retries: u32,
    record: Record,
}

impl<'p> Plan<'p> {
    /// A request's plan under `policy`.
    pub(crate) fn new(policy: &'p FallbackPolicy, asked: Asked) -> Self {
        Plan {
            policy,
            asked,
            jitter: fastrand::f64,
            group: None,
            original: None,
            visited: Vec::new(),
            queue: VecDeque::new(),
            exclude: Vec::new(),
            retries_left: None,
            same_deployment_retries: 0,
            record: Record::default(),
        }
    }

    /// Counts the next attempt and says where it goes.
    pub(crate) fn attempt(&mut self) -> RouteHint {
        self.record.attempts.attempts += 1;
        let in_original = self.group.is_none() || self.group == self.original;
        RouteHint {
            group: self.group.clone(),
            exclude: self.exclude.clone(),
            fail_with: (self.asked.mock_fallbacks && in_original).then_some(MOCK_FALLBACK_STATUS),
        }
    }

    /// Marks the answer with the attempts it took.
    pub(crate) fn answered<B>(self, res: &mut Response<B>) {
        self.record.answered(res);
    }

    /// What to do after `failure`; see the module docs for the rules.
    pub(crate) fn next(&mut self, failure: Failure, budget: &impl Budget) -> Step {
        let Failure {
            error,
            routed,
            denied,
        } = failure;
        let Some(routed) = routed else {
            // The router did not run (a wiring or config error): nothing to retry.
            return Step::GiveUp(error);
        };
        if denied {
            return self.skip(error);
        }
        let judged = self.failed(error, &routed);
        if let Some(step) = self.retry(&judged, &routed, budget) {
            return step;
        }
        if judged.fallback_worthy() {
            if let Some(step) = self.fall_back(&routed.group, judged.class, budget) {
                return step;
            }
        }
        Step::GiveUp(std::mem::take(&mut self.record).give_up())
    }

    /// A refused attempt. The requested model itself: the client's 403. A fallback group:
    /// skipped, not an attempt, and the next one in line goes instead (on the budget already
    /// withdrawn).
    fn skip(&mut self, error: ApiError) -> Step {
        let Some(asked) = self.group.take() else {
            return Step::GiveUp(error);
        };
        tracing::debug!(group = %asked, "fallback skipped: the caller may not reach it");
        self.record.skipped(asked);
        self.record.attempts.attempts -= 1;
        let Some(next) = self.queue.pop_front() else {
            self.record.attempts.fallbacks -= 1;
            return Step::GiveUp(std::mem::take(&mut self.record).give_up());
        };
        let next: Arc<str> = Arc::from(next);
        self.visited.push(next.clone());
        self.group = Some(next.clone());
        Step::FallBack(next)
    }

    /// Records a routed attempt's failure: the requested group once known, the deployment to
    /// exclude from now on, the failure for the final message.
    fn failed(&mut self, error: ApiError, routed: &Routed) -> Judged {
        if self.original.is_none() {
            self.original = Some(routed.group.clone());
            self.visited.push(routed.group.clone());
        }
        let what = match &routed.deployment {
            Some(d) => format!("{} ({})", d.id, routed.group),
            None => format!("group {}", routed.group),
        };
        tracing::debug!(attempt = self.record.attempts.attempts, %what, status = error.status().as_u16(), "attempt failed");
        if let Some(d) = &routed.deployment {
            self.exclude.push(d.id.clone());
        }
        let judged = Judged::of(&error);
        self.record.failed(what, error);
        judged
    }

    /// Another attempt in the same group, if the failure, the group's retries and the budget
    /// allow one.
    fn retry(&mut self, f: &Judged, routed: &Routed, budget: &impl Budget) -> Option<Step> {
        // A 4xx is worth another deployment of the group (never the same one again) when
        // `retry_policy` names its class, or for a wrong key, as LiteLLM does.
        let another_worthy = routed.alternatives > 0
            && (f.class == ErrorClass::Authentication
                || self.policy.retry_policy.contains_key(&f.class));
        let retry_worthy = !f.downstream && (f.retryable || another_worthy);
        let deployment = routed.deployment.as_ref()?;
        if !retry_worthy || f.special() {
            return None;
        }
        let (policy, asked) = (self.policy, &self.asked);
        let left = *self
            .retries_left
            .get_or_insert_with(|| policy.retries(f.class, asked.retries, deployment.max_retries));
        if left == 0 {
            return None;
        }
        if routed.alternatives > 0 {
            // Another healthy deployment of the group: try it now.
            if !budget.withdraw() {
                return None;
            }
            self.retries_left = Some(left - 1);
            return Some(Step::RetryOther);
        }
        if !f.retryable {
            return None;
        }
        self.extend_queue(&routed.group, f.class);
        let wait = policy.backoff_for(self.same_deployment_retries, f.retry_after, (self.jitter)());
        // With a fallback available, do not sleep on a failing deployment.
        if !self.queue.is_empty() || wait > policy.max_retry_after || !budget.withdraw() {
            return None;
        }
        self.retries_left = Some(left - 1);
        self.same_deployment_retries += 1;
        Some(Step::RetrySame(wait))
    }

    /// The next fallback group for a failure of `class` in `from`, if one is left and the
    /// budget allows it.
    fn fall_back(&mut self, from: &str, class: ErrorClass, budget: &impl Budget) -> Option<Step> {
        self.extend_queue(from, class);
        let next = self.queue.pop_front()?;
        if !budget.withdraw() {
            return None;
        }
        let next: Arc<str> = Arc::from(next);
        self.visited.push(next.clone());
        self.group = Some(next.clone());
        self.exclude.clear();
        self.retries_left = None;
        self.same_deployment_retries = 0;
        self.record.attempts.fallbacks += 1;
        Some(Step::FallBack(next))
    }

    /// Queues the fallback groups a failure of `class` in `from` may go to, in order, skipping
    /// visited and queued ones.
    fn extend_queue(&mut self, from: &str, class: ErrorClass) {
        let policy = self.policy;
        let in_original = Some(from) == self.original.as_deref() && !is_special(class);
        // A list alias's groups come first, then the group's own fallbacks.
        let chain = match &self.asked.alias_chain {
            Some(chain) if in_original => chain.as_slice(),
            _ => &[],
        };
        // A request's own `fallbacks` replace the configured ones of the group it asked for.
        let targets: &[String] = match &self.asked.fallbacks {
            Some(r) if in_original => r,
            _ => policy.targets(from, class),
        };
        for t in chain.iter().chain(targets) {
            if !self.queue.contains(t) && !self.visited.iter().any(|v| **v == **t) {
                self.queue.push_back(t.clone());
            }
        }
    }
}

/// Failures that go to their own fallback lists and are never retried in the group.
fn is_special(class: ErrorClass) -> bool {
    matches!(
        class,
        ErrorClass::ContextWindowExceeded | ErrorClass::ContentPolicyViolation
    )
}
