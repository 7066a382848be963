//! Routing for llmgate: [`RouterLayer`] resolves the model a client asked for to a model group
//! (several `model_list` entries with one `model_name`), picks one deployment of that group, and
//! puts [`ModelGroup`](llmgate_core::ModelGroup) and [`Deployment`](llmgate_core::Deployment)
//! in the request's extensions for the provider service.
//!
//! Resolution order: a `model_group_alias` (checked first, as LiteLLM does), then an exact group name, then the catch-all group
//! `"*"` (LiteLLM's wildcard, which `llmgate --model X` uses). A model that resolves to nothing
//! is answered here with a 400 that names it and points at `/v1/models`.
//!
//! Picking within a group is LiteLLM's default `simple-shuffle`: random, weighted by `weight`,
//! else by `rpm`, else by `tpm`, else uniform.
//!
//! ```
//! use std::sync::Arc;
//! use http::{Request, Response};
//! use llmgate_core::{body, Deployment, Endpoint, LlmRequest, ProviderKind, DeploymentSpec};
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
//!         Ok::<_, std::convert::Infallible>(Response::new(body::full(d.model.to_string())))
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

mod future;
mod layer;
mod service;
mod table;

pub use future::ResponseFuture;
pub use layer::RouterLayer;
pub use service::Router;
pub use table::{ModelTable, CATCH_ALL};
