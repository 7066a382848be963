//! Retries and fallbacks for llmgate: [`FallbackLayer`] sits above the router and sends a
//! failed request again — to another healthy deployment of the same model group first, then to
//! the configured fallback groups, in order — until one answers or nothing is left.
//!
//! The rules, in LiteLLM's vocabulary ([`FallbackPolicy`] has the settings):
//!
//! - **What is retried**: retryable failures (429, 5xx, timeouts, unreachable upstreams), up to
//!   `num_retries` per group (`retry_policy` per error class, the deployment's `max_retries`,
//!   or the request's `num_retries` override it). A retry goes to another healthy deployment
//!   of the group at once; only when none is left does it wait (exponential backoff with full
//!   jitter, at least the provider's `Retry-After`) and try the same one again — and not even
//!   then when a fallback group exists: a 429 goes to the fallback at once. A 4xx is retried
//!   only on another deployment of the group, never the same one: a 401/403 (another
//!   deployment may hold a valid key, as LiteLLM assumes), or any class `retry_policy` names.
//! - **Where it falls back**: after the group's retries, or at once when the router says the
//!   whole group is cooling down, to `fallbacks[group]` (else `default_fallbacks`), or the
//!   request's own `fallbacks`. A context-length error goes to `context_window_fallbacks`, a
//!   content-policy refusal to `content_policy_fallbacks`, never retried in the group. Each
//!   fallback group gets its own retries and cooldowns, and its own fallbacks are followed
//!   after the list it came from; no group is visited twice, so chains cannot loop.
//! - **What is not**: the client's own mistakes (400 for a bad parameter, a downstream error)
//!   fail at once, the same everywhere.
//! - **Budget**: every request deposits into a [`RetryBudget`] (tower's rule, lock-free) and
//!   every retry or fallback withdraws, so an outage adds at most ~20 % (and at least 10/s) extra load instead of
//!   multiplying it.
//! - **Streams**: a stream fails over only before its first byte (its response head); after
//!   that the provider ends it with an error event.
//! - **Testing on purpose**: `mock_testing_fallbacks: true` in the body fails every attempt on
//!   the requested group, so the fallbacks answer; a master-key caller can fail named
//!   deployments with [`MOCK_ERROR_HEADER`] (`x-llmgate-mock-error: primary-0=429`). Neither
//!   counts against the deployments' health.
//!
//! The answer carries `x-llmgate-attempts` and `x-llmgate-fallbacks`. When everything failed,
//! the client gets the last failure's status with every attempt listed in the message.
//!
//! Inside, the decision after each failure is a pure, synchronous plan (`plan.rs`: retry
//! another deployment, retry the same one after a wait, fall back to a group, or give up),
//! tested as a table of error class x alternatives x budget without a service or a clock; the
//! layer's async part (`run.rs`) only sends the attempts and sleeps where the plan says.
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use http::{Request, Response, StatusCode};
//! use llmgate_core::{body, ApiError, BoxError, Deployment, DeploymentSpec, Origin, ProviderKind,
//!     RouteHint, RouteSlot, Routed};
//! use llmgate_fallback::{FallbackLayer, FallbackPolicy};
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! // A stand-in for the router: "primary" always answers 429, "backup" answers.
//! let router = service_fn(|req: Request<()>| async move {
//!     let group = req.extensions().get::<RouteHint>().and_then(|h| h.group.clone())
//!         .unwrap_or_else(|| "primary".into());
//!     let spec = DeploymentSpec::new(format!("{group}-0"), &*group, ProviderKind::OpenAi, "m");
//!     req.extensions().get::<RouteSlot>().unwrap().set(Routed {
//!         group: group.clone(), deployment: Some(Deployment(Arc::new(spec))), alternatives: 0,
//!     });
//!     if &*group == "primary" {
//!         return Err::<Response<_>, BoxError>(
//!             ApiError::new(StatusCode::TOO_MANY_REQUESTS, Origin::Upstream, "rate limited").boxed());
//!     }
//!     Ok(Response::new(body::full("from backup")))
//! });
//! let policy = FallbackPolicy::default().fallbacks([("primary".into(), vec!["backup".into()])]);
//! let svc = ServiceBuilder::new().layer(FallbackLayer::new(policy)).service(router);
//!
//! let res = svc.oneshot(Request::new(())).await.unwrap();
//! assert_eq!(res.headers()["x-llmgate-attempts"], "2");
//! assert_eq!(res.headers()["x-llmgate-fallbacks"], "1");
//! # }
//! ```

mod budget;
mod layer;
mod plan;
mod policy;
mod report;
mod run;
mod service;
#[cfg(test)]
mod tests;

pub use budget::RetryBudget;
pub use layer::FallbackLayer;
pub use policy::FallbackPolicy;
pub use service::{Fallback, ResponseFuture, MOCK_ERROR_HEADER};
