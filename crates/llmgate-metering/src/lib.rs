//! Cost metering for llmgate: [`MeteringLayer`] knows what every request cost, records it, and
//! keeps the gateway's Prometheus metrics.
//!
//! Per request, when its response ends (for a stream, when the body ends or is dropped), the
//! layer reads what the layers below put in the response's extensions — the
//! [`UsageSlot`](llmgate_core::UsageSlot) the provider filled, the
//! [`Deployment`](llmgate_core::Deployment) that answered, the
//! [`ModelGroup`](llmgate_core::ModelGroup), [`Attempts`](llmgate_core::Attempts) and
//! [`CacheStatus`](llmgate_core::CacheStatus) — and the caller's
//! [`Principal`](llmgate_core::Principal) from the request, then:
//!
//! - prices the tokens ([`Tokens::cost`]) from the [`PriceTable`] (LiteLLM's bundled price map,
//!   an override file, the deployment's own `model_info` prices); a model without a price
//!   gets an unknown cost and one warning, never a silent zero; a cache hit costs 0;
//! - without a usage report (a stream the client dropped, a server that omits `usage`), charges
//!   an estimate: the prompt counted from the request, the completion from the text the body
//!   relayed, marked [`SpendRecord::usage_estimated`]; and records how the request ended
//!   ([`Outcome`]);
//! - answers a complete response with `x-llmgate-response-cost` (a stream's cost is known only
//!   after its last byte, so streams carry no such header);
//! - builds a [`SpendRecord`] and queues it ([`SpendQueue`]): bounded, written in batches by a
//!   writer thread into a [`SpendSink`] ([`MemorySink`] here; the SQL store in
//!   `llmgate-store`), flushed by [`Meter::shutdown`];
//! - updates the [`Metrics`] (`GET /metrics`), llmgate's names and LiteLLM's;
//! - writes the request's log line (target `llmgate::request`, INFO), built only when that
//!   target is enabled.
//!
//! On the request path it takes no lock: one place reserved in a lock-free bounded channel,
//! a few atomics, and the metric families' shared read locks.
//!
//! ```
//! use std::sync::Arc;
//! use http::{Request, Response};
//! use llmgate_core::{body, BoxError, Deployment, DeploymentSpec, Endpoint, LlmRequest,
//!     ProviderKind, Usage, UsageSlot};
//! use llmgate_metering::{MemorySink, Meter};
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let sink = MemorySink::new();
//! let meter = Meter::builder(Arc::new(sink.clone())).build();
//! // A stand-in for the provider: gpt-4o answered with 1000 input and 100 output tokens.
//! let svc = ServiceBuilder::new()
//!     .layer(meter.layer())
//!     .service(service_fn(|_req: Request<()>| async move {
//!         let mut res = Response::new(body::full("{}"));
//!         let spec = DeploymentSpec::new("gpt-4o-0", "gpt-4o", ProviderKind::OpenAi, "gpt-4o");
//!         res.extensions_mut().insert(Deployment(Arc::new(spec)));
//!         let usage = UsageSlot::new();
//!         usage.set(Usage { prompt_tokens: 1000, completion_tokens: 100, ..Usage::default() });
//!         res.extensions_mut().insert(usage);
//!         Ok::<_, BoxError>(res)
//!     }));
//!
//! let mut req = Request::new(());
//! req.extensions_mut().insert(
//!     LlmRequest::parse(Endpoint::ChatCompletions, br#"{"model":"gpt-4o","messages":[]}"#).unwrap(),
//! );
//! let res = svc.oneshot(req).await.unwrap();
//! let cost: f64 = res.headers()["x-llmgate-response-cost"].to_str().unwrap().parse().unwrap();
//! assert!(cost > 0.0);
//!
//! meter.flush().await;
//! let records = sink.records();
//! assert_eq!(records.len(), 1);
//! assert_eq!(records[0].tokens.prompt, 1000);
//! assert!(meter.metrics().render().contains("llmgate_requests_total"));
//! meter.shutdown().await;
//! # }
//! ```

mod body;
mod config_reloads;
mod cost;
mod finish;
mod future;
mod layer;
mod litellm;
mod log;
mod meter;
mod metrics;
mod observe;
mod prices;
mod queue;
mod record;
mod service;
mod sink;
mod spill;
mod status;
mod tally;

pub use body::ResponseBody;
pub use config_reloads::ReloadResult;
pub use cost::Tokens;
pub use future::ResponseFuture;
pub use layer::MeteringLayer;
pub use log::TARGET as REQUEST_LOG_TARGET;
pub use meter::{Meter, MeterBuilder};
pub use metrics::{Metrics, RateLimiterTotals, Rejection, StatusClass};
pub use prices::{ModelPrice, PriceFileError, PriceTable};
pub use queue::{QueueConfig, QueueFull, SpendQueue};
pub use record::{Outcome, SpendRecord};
pub use service::Metering;
pub use sink::{MemorySink, SpendSink};
pub use status::{WriteFailure, WriterStatus};
