//! Rate limiting for llmgate: [`RateLimitLayer`] admits a request or answers it with a 429 in
//! OpenAI's shape itself, in `call`, never by holding requests in `poll_ready`.
//!
//! **Limits** (read from the [`Principal`](llmgate_core::Principal) the auth layer put in the
//! request, and from [`LlmRequest`](llmgate_core::LlmRequest) for the model and tokens):
//! a virtual key's `rpm_limit`, `tpm_limit` and `max_parallel_requests`; its `model_rpm_limit`
//! and `model_tpm_limit` for the model the client asked for; a default parallel limit per
//! caller ([`RateLimitLayer::max_parallel_requests`]) and one for the whole gateway
//! ([`RateLimitLayer::global_max_parallel_requests`]). A request with no limit passes straight
//! through, without touching the store.
//!
//! **Algorithm**: rates are a sliding window ([`llmgate_core::window`], where the formula is):
//! never more than the limit in any span of the window, a burst of the full limit from idle,
//! then nothing until that burst leaves the window. Parallel limits are counters, given back
//! when the response body ends, is dropped (the client went away) or the call fails.
//!
//! **Tokens**: a tpm limit reserves the request's estimate before the call ([`tokens`]: the
//! model's real tokenizer where known, plus `max_tokens`), and settles it with the provider's
//! usage ([`UsageSlot`](llmgate_core::UsageSlot)) when the response ends: a burst of long
//! prompts cannot pass the limit by more than the estimate's error.
//!
//! **Answers**: 429 `rate_limit_error` / `rate_limit_exceeded`, whose message names the limit
//! (`the key's tpm_limit (1000 tokens per minute) is used up; retry in 12.5s`), with
//! `Retry-After`; and on every response of a rate-limited caller `x-ratelimit-limit-requests`,
//! `x-ratelimit-remaining-requests`, `x-ratelimit-reset-requests` and the `-tokens` three, for
//! the tightest limit that applies.
//!
//! **Stores** ([`LimiterStore`]): [`MemoryStore`] (one process, sharded, lock-free cells) and,
//! with the `redis` feature, `RedisStore` (exact across instances: one Lua script, one round
//! trip per check, keys that expire). While a store fails, [`FailurePolicy`] decides.
//!
//! ```
//! use std::sync::Arc;
//! use http::{Request, Response};
//! use llmgate_core::{body, BoxBody, Principal, VirtualKey};
//! use llmgate_ratelimit::RateLimitLayer;
//! use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let mut svc = ServiceBuilder::new()
//!     .layer(RateLimitLayer::in_memory())
//!     .service(service_fn(|_req: Request<()>| async {
//!         Ok::<_, std::convert::Infallible>(Response::new(body::full("ok")))
//!     }));
//!
//! let key = Arc::new(VirtualKey { token: "k1".into(), rpm_limit: Some(1), ..VirtualKey::default() });
//! let request = || {
//!     let mut req = Request::new(());
//!     req.extensions_mut().insert(Principal::Key(key.clone()));
//!     req
//! };
//! let ok: Response<BoxBody> = svc.ready().await.unwrap().call(request()).await.unwrap();
//! assert_eq!(ok.headers()["x-ratelimit-remaining-requests"], "0");
//! let limited = svc.ready().await.unwrap().call(request()).await.unwrap();
//! assert_eq!(limited.status(), 429);
//! assert!(limited.headers().contains_key("retry-after"));
//! # }
//! ```

mod body;
mod error;
mod future;
pub mod headers;
mod layer;
mod memory;
mod plan;
#[cfg(feature = "redis")]
mod redis;
mod service;
mod shared;
mod store;
pub mod tokens;

#[cfg(test)]
mod suite;
#[cfg(test)]
mod tests;

pub use body::ResponseBody;
pub use error::Error;
pub use future::ResponseFuture;
pub use layer::RateLimitLayer;
pub use memory::MemoryStore;
pub use plan::LimitName;
#[cfg(feature = "redis")]
pub use redis::{RedisConfig, RedisStore};
pub use service::RateLimit;
pub use shared::{FailurePolicy, Stats};
pub use store::{
    Acquire, Check, CheckState, Kind, LimiterStore, Ping, Settle, StoreCounters, StoreError,
    Verdict,
};
