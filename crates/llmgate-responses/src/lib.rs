//! [`ResponsesLayer`]: OpenAI's Responses API (`POST /v1/responses`) in front of the OpenAI
//! chat completions stack, for every provider behind it.
//!
//! The layer reads the body once (size-capped by the same reader as the OpenAI endpoints,
//! [`llmgate_core::body::read_capped`]), translates the Responses request into an OpenAI chat
//! completion request (`input` items, `instructions`, text, image and file parts, function
//! tools and `function_call` / `function_call_output` items, reasoning, `text.format`,
//! `max_output_tokens`; the table is in `request.rs`) and calls the inner stack with it as the
//! [`LlmRequest`](llmgate_core::LlmRequest) extension, exactly as if an OpenAI client had sent
//! it: auth, limits, routing, fallbacks, the cache, metering and every provider work
//! unchanged. The answer comes back as the Responses API's:
//!
//! - **complete**: a `response` object with every field of the specification (nullable ones
//!   as `null`), `reasoning`, `message` and `function_call` output items, `status`
//!   `completed` or `incomplete`, and `usage`;
//! - **stream**: the chat chunks turned into the Responses events as each arrives
//!   (`response.created`, `response.output_item.added`, `response.output_text.delta`,
//!   `response.function_call_arguments.delta` / `.done`, ...), each with its
//!   `sequence_number`, ending in `response.completed`, `response.incomplete` or
//!   `response.failed` (an error after the first event is a `response.failed`, never a cut),
//!   without `[DONE]`;
//! - **errors**: OpenAI's `{"error": {...}}`, as the stack answered them.
//!
//! Responses are stored (unless `store: false`) in a [`ResponseStore`] under the calling
//! key's scope ([`owner`]), before the answer's last byte is sent; `previous_response_id`
//! prepends the stored conversation (its input items and output), and [`StoredResponses`]
//! serves `GET` and `DELETE /v1/responses/{id}` and `GET /v1/responses/{id}/input_items`.
//!
//! **Native pass-through.** Beside the chat request, the layer hands the call down as the
//! client made it ([`llmgate_core::NativeResponses`]); a deployment that serves the Responses
//! API itself sends that upstream and marks its answer [`llmgate_core::NativeAnswer`], which
//! the layer passes back byte for byte (stream events as they come) with the response id made
//! a pinned one: `resp_` + base64url of the deployment's id and the upstream's. A follow-up
//! (`previous_response_id`) with such an id is pinned to that deployment
//! ([`llmgate_core::PinnedDeployment`], read by the router) and sent with the upstream's id;
//! [`StoredResponses`] reads and deletes such responses through its [`Forward`] service.
//! Native answers are not stored here (the upstream keeps them); a request only a native
//! deployment can serve (built-in tools, a pinned follow-up, a compaction: `POST
//! /v1/responses/compact`, handed down as [`llmgate_core::ResponsesCall::Compact`]) bypasses
//! the cache.
//!
//! This crate depends on `llmgate-core` only: it mounts over any stack that answers OpenAI
//! chat completions (the facade `llmgate` mounts it on `/v1/responses` over its own).
//!
//! ```
//! use bytes::Bytes;
//! use llmgate_responses::ResponsesLayer;
//! use llmgate_core::{body, BoxError, LlmBody, LlmRequest};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), BoxError> {
//! // An inner "stack" that answers every chat completion with the same text.
//! let svc = ServiceBuilder::new()
//!     .layer(ResponsesLayer::new(1 << 20))
//!     .service_fn(|req: http::Request<Bytes>| async move {
//!         let llm = req.extensions().get::<LlmRequest>().ok_or("no LlmRequest")?;
//!         let LlmBody::Chat(chat) = llm.body() else { return Err("not a chat".into()) };
//!         assert_eq!(chat.messages[0].role, "system");
//!         let answer = serde_json::json!({"id": "chatcmpl-1", "object": "chat.completion",
//!             "created": 1, "model": "m", "choices": [{"index": 0, "finish_reason": "stop",
//!             "message": {"role": "assistant", "content": "Hello!"}}],
//!             "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}});
//!         Ok::<_, BoxError>(http::Response::new(body::full(answer.to_string())))
//!     });
//! let req = http::Request::post("/v1/responses").body(body::full(
//!     r#"{"model":"m","instructions":"be nice","input":"Hi"}"#,
//! ))?;
//! let res = svc.oneshot(req).await?;
//! let v: serde_json::Value = serde_json::from_slice(
//!     &http_body_util::BodyExt::collect(res.into_body()).await?.to_bytes(),
//! )?;
//! assert_eq!(v["object"], "response");
//! assert_eq!(v["status"], "completed");
//! assert_eq!(v["output"][0]["content"][0]["text"], "Hello!");
//! assert_eq!(v["usage"]["output_tokens"], 2);
//! # Ok(())
//! # }
//! ```

mod events;
mod future;
/// The translations the layer runs, for the fuzz targets (`fuzz/`, through `llmgate::fuzzing`)
/// and their regression test; not a stable API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod input_items;
mod layer;
mod native;
mod object;
pub mod owner;
mod pinned;
mod request;
mod response;
mod save;
mod service;
mod store;
mod stored;
mod stream;

pub use future::ResponseFuture;
pub use layer::ResponsesLayer;
pub use service::Responses;
pub use store::{
    MemoryStore, ResponseStore, SharedStore, StoreError, StoredResponse, MEMORY_CAPACITY,
};
pub use stored::{response_id, Forward, StoredResponses};
