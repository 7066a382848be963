//! Authentication for llmgate: [`AuthLayer`] turns the caller's credential into a
//! [`Principal`](llmgate_core::Principal) in the request's extensions, or answers 401 itself.
//!
//! Credentials are read, in order, from `Authorization: Bearer <key>` (OpenAI SDKs),
//! `x-api-key` (Anthropic SDKs) and `api-key` (Azure OpenAI SDKs). The master key is compared in
//! constant time. With no master key configured, every caller is
//! [`Principal::Anonymous`](llmgate_core::Principal::Anonymous).
//!
//! ```
//! use http::{Request, Response};
//! use llmgate_auth::AuthLayer;
//! use llmgate_core::{body, BoxBody, Principal, Secret};
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let svc = ServiceBuilder::new()
//!     .layer(AuthLayer::new(Some(Secret::new("sk-master"))))
//!     .service(service_fn(|req: Request<()>| async move {
//!         let who = req.extensions().get::<Principal>().cloned();
//!         Ok::<_, std::convert::Infallible>(Response::new(body::full(format!("{who:?}"))))
//!     }));
//!
//! let denied = svc.clone().oneshot(Request::new(())).await.unwrap();
//! assert_eq!(denied.status(), 401);
//!
//! let req = Request::builder().header("authorization", "Bearer sk-master").body(()).unwrap();
//! let ok: Response<BoxBody> = svc.oneshot(req).await.unwrap();
//! assert_eq!(ok.status(), 200);
//! # }
//! ```

mod error;
mod future;
mod layer;
mod service;

pub use error::Error;
pub use future::ResponseFuture;
pub use layer::AuthLayer;
pub use service::{credential, Auth};
