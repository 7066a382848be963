//! Response caching for llmgate: [`CacheLayer`] answers a request it has seen before without
//! calling a provider, from memory ([`LocalStore`]) or Redis (`RedisStore`, feature `redis`).
//!
//! - **Keys** are a hash of the model group and the parsed request (see [`key`] for the exact
//!   derivation): field order, whitespace and gateway-only fields do not matter; every
//!   parameter that changes the answer does. The caller's key is not part of it unless
//!   [`CacheLayer::per_key`] is on; a namespace (config or per request) prefixes it.
//! - **Per request**, LiteLLM's `cache` body field (`no-cache`, `no-store`, `ttl`, `s-maxage`,
//!   `namespace`, `use-cache`) and `Cache-Control: no-cache | no-store | max-age=N` headers.
//! - **Streams** are recorded as they pass (each frame goes on at once; the cache keeps a
//!   reference to the same bytes) and stored only when they end with `data: [DONE]` and no
//!   error event. A client that goes away, a body error or an upstream cut means nothing is
//!   stored. A hit on a streaming request replays the stored events as they were sent.
//!   Streaming and non-streaming requests never share entries (`stream` is part of the key).
//! - **Responses API answers passed through** from an upstream that serves that API itself
//!   (marked [`NativeAnswer`](llmgate_core::NativeAnswer)) are never stored: the upstream
//!   keeps that response under its own id.
//! - **Answers** carry `x-llmgate-cache: hit | miss` and [`CacheStatus`](llmgate_core::CacheStatus)
//!   in their extensions (metering charges nothing for a hit). Requests the cache does not
//!   apply to (other endpoints, `mode: default_off` without `use-cache`, `mock_response`)
//!   carry neither.
//! - **Store failures** never fail a request: they are logged and the request is a miss.
//!
//! The layer sits after auth, rate limits and metering, before fallback (see
//! `docs/architecture.md`); it reads the [`LlmRequest`](llmgate_core::LlmRequest) the parse
//! layer put in the request's extensions and never reads the body.
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use http::{Request, Response};
//! use llmgate_cache::{CacheLayer, LocalStore};
//! use llmgate_core::{body, Endpoint, LlmRequest};
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let calls = Arc::new(AtomicUsize::new(0));
//! let counter = calls.clone();
//! let svc = ServiceBuilder::new()
//!     .layer(CacheLayer::new(Arc::new(LocalStore::new(1_000, 16 << 20))))
//!     .service(service_fn(move |_req: Request<()>| {
//!         counter.fetch_add(1, Ordering::SeqCst);
//!         async {
//!             let mut res = Response::new(body::full(r#"{"object":"chat.completion"}"#));
//!             res.headers_mut().insert("content-type", "application/json".parse().unwrap());
//!             Ok::<_, std::convert::Infallible>(res)
//!         }
//!     }));
//!
//! let ask = || {
//!     let llm = LlmRequest::parse(
//!         Endpoint::ChatCompletions,
//!         br#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#,
//!     ).unwrap();
//!     let mut req = Request::new(());
//!     req.extensions_mut().insert(llm);
//!     req
//! };
//! let first = svc.clone().oneshot(ask()).await.unwrap();
//! assert_eq!(first.headers()["x-llmgate-cache"], "miss");
//! http_body_util::BodyExt::collect(first.into_body()).await.unwrap(); // stored as it ends
//! let second = svc.oneshot(ask()).await.unwrap();
//! assert_eq!(second.headers()["x-llmgate-cache"], "hit");
//! assert_eq!(calls.load(Ordering::SeqCst), 1);
//! # }
//! ```

mod body;
mod control;
mod entry;
mod error;
mod future;
pub mod key;
mod layer;
mod plan;
#[cfg(feature = "redis")]
mod redis;
mod service;
mod store;
#[cfg(test)]
mod tests;

pub use body::ResponseBody;
pub use entry::Kind;
pub use error::Error;
pub use future::ResponseFuture;
pub use layer::{CacheLayer, GroupResolver, Mode, DEFAULT_MAX_ENTRY_BYTES, DEFAULT_TTL};
#[cfg(feature = "redis")]
pub use redis::{RedisStore, RedisStoreConfig};
pub use service::Cache;
pub use store::{CacheStore, LocalStore, StoreFuture};
