//! One request's attempts: retries within a group, then the fallback groups, in order, once
//! each.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Arc;

use http::{HeaderValue, Request, Response};
use llmgate_core::{
    headers, ApiError, Attempts, Attribution, BoxBody, BoxError, ErrorClass, ErrorContract,
    FailedAttempt, FailedAttempts, FailureClass, LlmRequest, Origin, RouteHint, RouteSlot,
};
use tower::{Service, ServiceExt};

use crate::FallbackPolicy;

/// The status `mock_testing_fallbacks` fails the original group with (LiteLLM raises an
/// internal server error).
const MOCK_FALLBACK_STATUS: u16 = 500;

/// What one failed attempt was, for the final error message.
struct Failed {
    what: String,
    error: ApiError,
}

/// Runs `req` through `inner` until an attempt succeeds or nothing is left to try.
pub(crate) async fn run<S, B>(
    inner: S,
    policy: Arc<FallbackPolicy>,
    req: Request<B>,
) -> Result<Response<BoxBody>, BoxError>
where
    S: Service<Request<B>, Response = Response<BoxBody>, Error = BoxError> + Clone,
    B: Clone,
{
    let (parts, body) = req.into_parts();
    let llm = parts.extensions.get::<LlmRequest>().cloned();
    let gateway = llm.as_ref().map(|l| l.gateway());
    let request_retries = gateway.and_then(|g| g.num_retries);
    let mock_fallbacks = gateway.is_some_and(|g| g.mock_testing_fallbacks);
    let request_fallbacks: Option<Vec<String>> = gateway
        .and_then(|g| g.fallbacks.as_ref())
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        });

    policy.budget.deposit();
    let mut group: Option<Arc<str>> = None;
    let mut original: Option<Arc<str>> = None;
    let mut visited: Vec<Arc<str>> = Vec::new();
    let mut queue: VecDeque<String> = VecDeque::new();
    let mut exclude: Vec<Arc<str>> = Vec::new();
    let mut retries_left: Option<u32> = None;
    let mut same_deployment_retries = 0u32;
    let mut failures: Vec<Failed> = Vec::new();
    let mut attempts = Attempts::default();
    // Fallback groups the caller may not reach: refused by the router, never called.
    let mut skipped: Vec<Arc<str>> = Vec::new();

    loop {
        attempts.attempts += 1;
        let slot = RouteSlot::new();
        let in_original = group.is_none() || group == original;
        let mut ext = parts.extensions.clone();
        ext.insert(RouteHint {
            group: group.clone(),
            exclude: exclude.clone(),
            fail_with: (mock_fallbacks && in_original).then_some(MOCK_FALLBACK_STATUS),
        });
        ext.insert(slot.clone());
        let mut attempt = Request::new(body.clone());
        *attempt.method_mut() = parts.method.clone();
        *attempt.uri_mut() = parts.uri.clone();
        *attempt.version_mut() = parts.version;
        *attempt.headers_mut() = parts.headers.clone();
        *attempt.extensions_mut() = ext;

        let error = match inner.clone().oneshot(attempt).await {
            Ok(mut res) => {
                let h = res.headers_mut();
                h.insert(headers::ATTEMPTS, HeaderValue::from(attempts.attempts));
                h.insert(headers::FALLBACKS, HeaderValue::from(attempts.fallbacks));
                if !skipped.is_empty() {
                    h.insert(headers::FALLBACKS_SKIPPED, skipped_header(&skipped));
                }
                res.extensions_mut().insert(attempts);
                if !failures.is_empty() {
                    res.extensions_mut()
                        .insert(FailedAttempts(failed_attempts(&failures)));
                }
                return Ok(res);
            }
            Err(e) => ApiError::from_box(e),
        };
        let Some(routed) = slot.get().cloned() else {
            // The router did not run (a wiring or config error): nothing to retry.
            return Err(error.boxed());
        };
        if slot.denied() {
            // The requested model itself: the client's 403. A fallback group: skipped, not an
            // attempt, and the next one in line goes instead (on the budget already withdrawn).
            let Some(asked) = group.take() else {
                return Err(error.boxed());
            };
            tracing::debug!(group = %asked, "fallback skipped: the caller may not reach it");
            skipped.push(asked);
            attempts.attempts -= 1;
            attempts.fallbacks -= 1;
            let Some(next) = queue.pop_front() else {
                return Err(give_up(failures, &skipped, attempts).boxed());
            };
            let next: Arc<str> = Arc::from(next);
            visited.push(next.clone());
            group = Some(next);
            attempts.fallbacks += 1;
            continue;
        }
        if original.is_none() {
            original = Some(routed.group.clone());
            visited.push(routed.group.clone());
        }
        let current = routed.group.clone();
        let class = ErrorClass::of(&error);
        let what = match &routed.deployment {
            Some(d) => format!("{} ({})", d.id, current),
            None => format!("group {current}"),
        };
        tracing::debug!(attempt = attempts.attempts, %what, status = error.status().as_u16(), "attempt failed");
        let deployment_retries = routed.deployment.as_ref().and_then(|d| d.max_retries);
        if let Some(d) = &routed.deployment {
            exclude.push(d.id.clone());
        }
        let retry_after = error.retry_after();
        failures.push(Failed { what, error });

        // The fallback groups this failure may go to, in order, skipping visited ones.
        let extend_queue = |queue: &mut VecDeque<String>, from: &str, class: ErrorClass| {
            // A request's own `fallbacks` replace the configured ones of the group it asked for.
            let targets: Vec<String> = match &request_fallbacks {
                Some(r) if Some(from) == original.as_deref() && !is_special(class) => r.clone(),
                _ => policy.targets(from, class).to_vec(),
            };
            for t in targets {
                if !queue.contains(&t) && !visited.iter().any(|v| **v == *t) {
                    queue.push_back(t);
                }
            }
        };

        let last = failures.last().map(|f| &f.error);
        let downstream = last.is_some_and(|e| e.origin() == Origin::Downstream);
        let special = is_special(class);
        // The client's own mistakes (a bad parameter) fail the same way everywhere. A prompt too
        // long for the group (from the provider, or from the router's up-front check, which is
        // the client's side of the line) or a content-policy refusal goes to its own fallbacks.
        let fallback_worthy = special || (!downstream && !matches!(class, ErrorClass::BadRequest));
        let retryable = last.is_some_and(|e| e.retryable());
        // A 4xx is worth another deployment of the group (never the same one again) when
        // `retry_policy` names its class, or for a wrong key, as LiteLLM does.
        let another_worthy = routed.alternatives > 0
            && (class == ErrorClass::Authentication || policy.retry_policy.contains_key(&class));
        let retry_worthy =
            !downstream && (retryable || another_worthy) && routed.deployment.is_some();

        if retry_worthy && !special {
            let left = retries_left
                .get_or_insert_with(|| policy.retries(class, request_retries, deployment_retries));
            if *left > 0 {
                if routed.alternatives > 0 {
                    // Another healthy deployment of the group: try it now.
                    if policy.budget.withdraw() {
                        *left -= 1;
                        continue;
                    }
                } else if retryable {
                    extend_queue(&mut queue, &current, class);
                    let wait = policy.backoff(same_deployment_retries, retry_after);
                    // With a fallback available, do not sleep on a failing deployment.
                    if queue.is_empty()
                        && wait <= policy.max_retry_after
                        && policy.budget.withdraw()
                    {
                        *left -= 1;
                        same_deployment_retries += 1;
                        tracing::debug!(
                            wait_ms = wait.as_millis() as u64,
                            "retrying the same deployment"
                        );
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                }
            }
        }
        if fallback_worthy {
            extend_queue(&mut queue, &current, class);
            if let Some(next) = queue.pop_front() {
                if policy.budget.withdraw() {
                    let next: Arc<str> = Arc::from(next);
                    visited.push(next.clone());
                    tracing::debug!(from = %current, to = %next, "falling back");
                    group = Some(next);
                    exclude.clear();
                    retries_left = None;
                    same_deployment_retries = 0;
                    attempts.fallbacks += 1;
                    continue;
                }
            }
        }
        return Err(give_up(failures, &skipped, attempts).boxed());
    }
}

/// `x-llmgate-fallbacks-skipped`: the names as written, comma-separated; a character a header
/// cannot carry (names may come from the request body) becomes `?`.
fn skipped_header(skipped: &[Arc<str>]) -> HeaderValue {
    let joined = skipped.iter().map(|s| &**s).collect::<Vec<_>>().join(", ");
    HeaderValue::from_str(&joined).unwrap_or_else(|_| {
        let clean: String = joined
            .chars()
            .map(|c| {
                if c == ' ' || c.is_ascii_graphic() {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        HeaderValue::from_str(&clean).unwrap_or(HeaderValue::from_static("?"))
    })
}

/// Failures that go to their own fallback lists and are never retried in the group.
fn is_special(class: ErrorClass) -> bool {
    matches!(
        class,
        ErrorClass::ContextWindowExceeded | ErrorClass::ContentPolicyViolation
    )
}

/// The error the client gets when nothing is left: the only failure as it was, or the last
/// one's status with every attempt listed; either way naming the fallbacks skipped because the
/// caller may not reach them.
fn give_up(failures: Vec<Failed>, skipped: &[Arc<str>], attempts: Attempts) -> ApiError {
    let attribution = attribution(&failures, attempts);
    let mut e = last_failure(failures);
    if let Some(a) = attribution {
        e = e.with_attribution(a);
    }
    if skipped.is_empty() {
        return e;
    }
    let names = skipped.iter().map(|s| &**s).collect::<Vec<_>>().join(", ");
    let msg = format!(
        "{}; fallbacks skipped because this key may not call them: {names}",
        e.message()
    );
    e.with_message(msg)
}

/// The failed attempts that reached a deployment, each against its own.
fn failed_attempts(failures: &[Failed]) -> Vec<FailedAttempt> {
    failures
        .iter()
        .filter_map(|f| {
            let a = f.error.attribution()?;
            let d = a.deployment.as_ref()?;
            Some(FailedAttempt {
                group: a.group.clone(),
                deployment: d.id.clone(),
                class: FailureClass::of(&f.error),
                counts: f.error.counts_against_deployment(),
            })
        })
        .collect()
}

/// The request's attribution when it fails: the last attempt's group and deployment (as the
/// router attributed it), the request's attempt counts, and the failed attempts before it.
fn attribution(failures: &[Failed], attempts: Attempts) -> Option<Attribution> {
    let (last, earlier) = failures.split_last()?;
    let mut a = last.error.attribution()?.clone();
    a.attempts = attempts;
    a.earlier = failed_attempts(earlier);
    Some(a)
}

fn last_failure(mut failures: Vec<Failed>) -> ApiError {
    if failures.len() == 1 {
        return failures.remove(0).error;
    }
    let mut msg = format!("all {} attempts failed:", failures.len());
    for (i, f) in failures.iter().enumerate() {
        let _ = write!(
            msg,
            "{} {} -> {} {}",
            if i == 0 { "" } else { ";" },
            f.what,
            f.error.status().as_u16(),
            f.error.message()
        );
    }
    let Some(last) = failures.pop() else {
        return ApiError::internal("no attempt was made");
    };
    let e = last.error;
    let mut out = ApiError::new(e.status(), e.origin(), msg)
        .with_type(e.error_type())
        .with_retryable(e.retryable())
        .with_retry_after(e.retry_after());
    if let Some(code) = e.code() {
        out = out.with_code(code);
    }
    out
}
