//! Routing for llmgate: [`RouterLayer`] resolves the model a client asked for to a model group
//! (several `model_list` entries with one `model_name`), picks one healthy deployment of that
//! group, and puts [`ModelGroup`](llmgate_core::ModelGroup) and
//! [`Deployment`](llmgate_core::Deployment) in the request's extensions for the provider
//! service. It answers `x-llmgate-model-group` and `x-llmgate-deployment` on the response.
//!
//! **Resolution**: a `model_group_alias` (checked first, as LiteLLM does), then an exact group
//! name, then the catch-all group `"*"` (LiteLLM's wildcard, which `llmgate --model X` uses). A
//! model that resolves to nothing is answered here with a 400 that names it and points at
//! `/v1/models`. The fallback layer may name the group instead ([`RouteHint`](llmgate_core::RouteHint)).
//!
//! **Picking** ([`Strategy`]): `simple-shuffle` (weighted by `weight`, else `rpm`, else `tpm`),
//! `least-busy`, `latency-based-routing`, `usage-based-routing`. Only healthy deployments are
//! candidates: not cooling down, and under their own `rpm`, `tpm` and `rpd` (requests per UTC
//! day, a llmgate extension for free tiers). A deployment at a limit is skipped, never called.
//! `rpm` and `tpm` are the sliding window of [`llmgate_core::window`] (no more than the limit
//! in any 60 s), the rate-limit layer's definition too.
//! Deployments this request already tried are picked again only when no other is healthy;
//! once it has tried every deployment of the group, even one its own failure put in cooldown.
//!
//! **Cooldowns** ([`CooldownPolicy`]): the router watches each attempt's outcome; a 429 takes
//! the deployment out of rotation at once for its `Retry-After` (else `cooldown_time`), a wrong
//! key or model (401/403/404) at once, timeouts and 5xx after `allowed_fails` in a minute. When
//! every deployment of the group is out, the attempt fails with [`Error::NoDeployment`] (429
//! when they are all rate limited, else 503) without calling anything, and says which
//! deployments were skipped and why; the fallback layer then moves to the fallback groups.
//!
//! **Shared limits** ([`SharedUsage`]): with a store every instance shares (Redis), a
//! deployment's `rpm`, `tpm` and `rpd` are taken there too before it is sent, so N instances
//! together send a provider exactly its limits; a store that is away leaves routing on this
//! instance's counters.
//!
//! **Events** ([`ModelTable::with_events`]): cooldowns and recoveries, a group with nothing to
//! pick and its recovery, providers' 429s, slow answers and nearly used daily quotas are told
//! on the events bus (see `tell.rs`), for alerting.
//!
//! All live state is atomics behind `Arc`s ([`DeploymentState`]): no lock on the request path.
//!
//! ```
//! use std::sync::Arc;
//! use http::{Request, Response};
//! use llmgate_core::{body, BoxError, Deployment, DeploymentSpec, Endpoint, LlmRequest, ProviderKind};
//! use llmgate_router::{ModelTable, RouterLayer};
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let table = ModelTable::new(
//!     [Arc::new(DeploymentSpec::new("gpt-a", "gpt", ProviderKind::OpenAi, "gpt-4o"))],
//!     [("fast".to_owned(), "gpt".to_owned(), false)],
//! );
//! let svc = ServiceBuilder::new()
//!     .layer(RouterLayer::new(Arc::new(table)))
//!     .service(service_fn(|req: Request<()>| async move {
//!         let d = req.extensions().get::<Deployment>().unwrap();
//!         Ok::<_, BoxError>(Response::new(body::full(d.model.to_string())))
//!     }));
//!
//! let parsed = LlmRequest::parse(Endpoint::Embeddings, br#"{"model":"fast","input":"x"}"#).unwrap();
//! let mut req = Request::new(());
//! req.extensions_mut().insert(parsed);
//! let res = svc.oneshot(req).await.unwrap();
//! assert_eq!(res.headers()["x-llmgate-model-group"], "gpt");
//! assert_eq!(res.headers()["x-llmgate-deployment"], "gpt-a");
//! # }
//! ```

mod carry;
mod error;
mod future;
mod hanging;
mod layer;
mod pick;
mod service;
mod shared;
#[cfg(test)]
mod shared_tests;
mod state;
mod strategy;
mod table;
mod tell;
#[cfg(test)]
mod tests;
mod usage;
mod view;

pub use error::Error;
pub use future::ResponseFuture;
pub use hanging::{Hanging, DEFAULT_SLOTS};
pub use layer::RouterLayer;
pub use service::Router;
pub use shared::{Settle, SharedError, SharedUsage, TakeFuture, Taken};
pub use state::{CooldownReason, DeploymentState, DeploymentTotals};
pub use strategy::{CooldownPolicy, Strategy};
pub use table::{CooldownEvent, CooldownHook, ModelTable, CATCH_ALL};
pub use tell::DAILY_QUOTA_PERCENT;
pub use view::DeploymentUsage;
