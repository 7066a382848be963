//! One request's attempts: sends each attempt where the [`Plan`] says, until one answers or the
//! plan gives up. Every decision is the plan's; this only clones the request, waits and calls.

use std::sync::Arc;

use http::{Request, Response};
use llmgate_core::events::Event;
use llmgate_core::{ApiError, BoxBody, BoxError, LlmRequest, RouteHint, RouteSlot};
use tower::{Service, ServiceExt};

use crate::plan::{Asked, Failure, Plan, Step};
use crate::FallbackPolicy;

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
    let mut plan = Plan::new(
        &policy,
        Asked::of(parts.extensions.get::<LlmRequest>(), &policy),
    );
    policy.budget.deposit();
    loop {
        let slot = RouteSlot::new();
        let attempt = attempt(&parts, &body, plan.attempt(), &slot);
        let error = match inner.clone().oneshot(attempt).await {
            Ok(mut res) => {
                plan.answered(&mut res);
                return Ok(res);
            }
            Err(e) => ApiError::from_box(e),
        };
        let from = slot.get().map(|r| r.group.clone());
        match plan.next(Failure::new(error, &slot), &*policy.budget) {
            Step::RetryOther => {}
            Step::FallBack(group) => {
                tracing::debug!(to = %group, "falling back");
                if let Some(from) = from {
                    policy.events.emit(|| Event::Fallback {
                        from,
                        to: group.clone(),
                    });
                }
            }
            Step::RetrySame(wait) => {
                tracing::debug!(
                    wait_ms = wait.as_millis() as u64,
                    "retrying the same deployment"
                );
                tokio::time::sleep(wait).await;
            }
            Step::GiveUp(error) => return Err(error.boxed()),
        }
    }
}

/// A copy of the request for one attempt, carrying where it goes and a slot for the router's
/// report.
fn attempt<B: Clone>(
    parts: &http::request::Parts,
    body: &B,
    hint: RouteHint,
    slot: &RouteSlot,
) -> Request<B> {
    let mut ext = parts.extensions.clone();
    ext.insert(hint);
    ext.insert(slot.clone());
    let mut attempt = Request::new(body.clone());
    *attempt.method_mut() = parts.method.clone();
    *attempt.uri_mut() = parts.uri.clone();
    *attempt.version_mut() = parts.version;
    *attempt.headers_mut() = parts.headers.clone();
    *attempt.extensions_mut() = ext;
    attempt
}
