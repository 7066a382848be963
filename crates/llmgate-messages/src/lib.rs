//! [`MessagesLayer`]: Anthropic's Messages API (`POST /v1/messages`) in front of the OpenAI
//! stack, for Anthropic-format clients (Claude Code, the Anthropic SDKs).
//!
//! The layer reads the body once (size-capped by the same reader as the OpenAI endpoints,
//! [`llmgate_core::body::read_capped`]), translates the Anthropic request into an OpenAI chat
//! completion request, and calls the inner stack with it as the
//! [`LlmRequest`](llmgate_core::LlmRequest) extension, exactly as if an OpenAI client had sent
//! it: auth, routing, fallbacks and every provider (OpenAI-compatible or native) work
//! unchanged. The answer comes back in Anthropic's shape:
//!
//! - **complete**: a `message` with `text`, `thinking` and `tool_use` blocks, `stop_reason`
//!   and `usage`;
//! - **stream**: the OpenAI chunks turned into Anthropic's events as each arrives, never
//!   buffered: `message_start`, `content_block_start` / `content_block_delta` /
//!   `content_block_stop` for text, thinking and tool calls (`input_json_delta`),
//!   `message_delta` with the stop reason and usage, `message_stop`;
//! - **errors**: `{"type": "error", "error": {"type", "message"}}` with the status the
//!   OpenAI endpoint would have answered with (and its `Retry-After`); an error in the middle
//!   of a stream is an `error` event.
//!
//! Credentials: the master key works as `x-api-key` (what the Anthropic SDKs send) or as
//! `Authorization: Bearer` (Claude Code's `ANTHROPIC_AUTH_TOKEN`). `anthropic-version` and
//! `anthropic-beta` headers are accepted and not forwarded.
//!
//! This crate depends on `llmgate-core` only: it mounts over any stack that answers OpenAI chat
//! completions (the facade `llmgate` mounts it on `/v1/messages` over its own).
//!
//! ```
//! use bytes::Bytes;
//! use llmgate_messages::MessagesLayer;
//! use llmgate_core::{body, BoxError, LlmBody, LlmRequest};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), BoxError> {
//! // An inner "stack" that answers every chat completion with the same text.
//! let svc = ServiceBuilder::new()
//!     .layer(MessagesLayer::new(1 << 20))
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
//! let req = http::Request::post("/v1/messages").body(body::full(
//!     r#"{"model":"m","max_tokens":64,"system":"be nice","messages":[{"role":"user","content":"Hi"}]}"#,
//! ))?;
//! let res = svc.oneshot(req).await?;
//! let v: serde_json::Value = serde_json::from_slice(
//!     &http_body_util::BodyExt::collect(res.into_body()).await?.to_bytes(),
//! )?;
//! assert_eq!(v["type"], "message");
//! assert_eq!(v["content"][0]["text"], "Hello!");
//! assert_eq!(v["stop_reason"], "end_turn");
//! # Ok(())
//! # }
//! ```

mod future;
mod layer;
mod request;
mod response;
mod service;
mod stream;

/// The translations the layer runs, for the fuzz targets (`fuzz/`, through `llmgate::fuzzing`)
/// and their regression test; not a stable API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

pub use future::ResponseFuture;
pub use layer::MessagesLayer;
pub use service::Messages;

/// A response extension: the inner service answered in Anthropic's shape already
/// (`/v1/messages/count_tokens`), so the layer passes its body on as it is. Errors are still
/// translated.
#[derive(Debug, Clone, Copy)]
pub struct Untranslated;

/// An error response in Anthropic's shape (`{"type": "error", "error": {"type", "message"}}`),
/// for `/v1/messages/*` paths answered outside the layer (an endpoint not served).
pub fn error_response(
    status: http::StatusCode,
    kind: &str,
    message: &str,
) -> http::Response<llmgate_core::BoxBody> {
    response::error(status, kind, message)
}
