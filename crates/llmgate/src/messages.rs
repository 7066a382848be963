//! [`MessagesLayer`]: Anthropic's Messages API (`POST /v1/messages`) in front of the OpenAI
//! stack, for Anthropic-format clients (Claude Code, the Anthropic SDKs).
//!
//! The layer reads the body once (size-capped, like [`crate::parse`]), translates the
//! Anthropic request into an OpenAI chat completion request, and calls the inner stack with it
//! as the [`LlmRequest`](llmgate_core::LlmRequest) extension, exactly as if an OpenAI client had
//! sent it: auth, routing, fallbacks and every provider (OpenAI-compatible or native) work
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
//! ```
//! use bytes::Bytes;
//! use llmgate::messages::MessagesLayer;
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

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{combinators::Collect, BodyExt};
use llmgate_core::body::{read_capped, ReadCapped};
use llmgate_core::{ApiError, BoxBody, BoxError, RequestId};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

pub(crate) mod request;
pub(crate) mod response;
pub(crate) mod stream;

/// Applies [`Messages`].
#[derive(Debug, Clone, Copy)]
pub struct MessagesLayer {
    limit: usize,
}

impl MessagesLayer {
    /// Caps request bodies at `limit` bytes (a larger one is a 413 `request_too_large`).
    pub fn new(limit: usize) -> Self {
        MessagesLayer { limit }
    }
}

impl<S> Layer<S> for MessagesLayer {
    type Service = Messages<S>;
    fn layer(&self, inner: S) -> Messages<S> {
        Messages {
            inner,
            limit: self.limit,
        }
    }
}

/// Serves Anthropic's Messages API over an OpenAI chat completions stack; see the module
/// docs.
#[derive(Debug, Clone)]
pub struct Messages<S> {
    inner: S,
    limit: usize,
}

impl<S, B> Service<Request<B>> for Messages<S>
where
    S: Service<Request<Bytes>, Response = Response<BoxBody>, Error = BoxError> + Clone,
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Response = Response<BoxBody>;
    type Error = BoxError;
    type Future = ResponseFuture<B, S>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if let Some(error) = llmgate_core::body::declared_too_large(req.headers(), self.limit) {
            return ResponseFuture::Done {
                response: Some(response::from_api_error(&error)),
            };
        }
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let (parts, body) = req.into_parts();
        ResponseFuture::Reading {
            read: read_capped(body, self.limit),
            state: Some((parts, inner)),
        }
    }
}

pin_project! {
    /// Response future of [`Messages`]: reading the body, calling the inner stack, then
    /// reading a complete answer (or an error) to translate it.
    #[project = Proj]
    #[allow(missing_docs)] // pin-project-lite takes no docs on variant fields
    pub enum ResponseFuture<B, S>
    where
        S: Service<Request<Bytes>>,
        B: Body,
        B::Error: Into<BoxError>,
    {
        Reading {
            #[pin] read: ReadCapped<B>,
            state: Option<(http::request::Parts, S)>,
        },
        Calling { #[pin] fut: S::Future, id: Option<RequestId> },
        Collecting {
            #[pin] collect: Collect<BoxBody>,
            parts: Option<http::response::Parts>,
        },
        Done { response: Option<Response<BoxBody>> },
    }
}

impl<B, S> Future for ResponseFuture<B, S>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
    S: Service<Request<Bytes>, Response = Response<BoxBody>, Error = BoxError>,
{
    type Output = Result<Response<BoxBody>, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let next = match self.as_mut().project() {
                Proj::Done { response } => {
                    let res = response.take().unwrap_or_else(|| {
                        response::from_api_error(&ApiError::internal(
                            "messages future polled after completion",
                        ))
                    });
                    return Poll::Ready(Ok(res));
                }
                Proj::Reading { read, state } => {
                    let read = std::task::ready!(read.poll(cx));
                    let Some((mut parts, mut inner)) = state.take() else {
                        return Poll::Ready(Err(ApiError::internal("messages state lost").boxed()));
                    };
                    match read.and_then(|bytes| request::to_llm(&bytes).map(|llm| (bytes, llm))) {
                        Ok((bytes, llm)) => {
                            parts.extensions.insert(llm);
                            let id = parts.extensions.get::<RequestId>().cloned();
                            let fut = inner.call(Request::from_parts(parts, bytes));
                            ResponseFuture::Calling { fut, id }
                        }
                        Err(error) => done(response::from_api_error(&error)),
                    }
                }
                Proj::Calling { fut, id } => match std::task::ready!(fut.poll(cx)) {
                    Err(e) => {
                        // Rendered here, not by the rescue layer: logged here too.
                        let e = ApiError::from_box(e);
                        llmgate_core::log_failure(&e, id.as_ref());
                        done(response::from_api_error(&e))
                    }
                    Ok(res) if res.status().is_success() && is_event_stream(&res) => {
                        done(stream::translate(res))
                    }
                    Ok(res) => {
                        let (parts, body) = res.into_parts();
                        ResponseFuture::Collecting {
                            collect: body.collect(),
                            parts: Some(parts),
                        }
                    }
                },
                Proj::Collecting { collect, parts } => {
                    let collected = std::task::ready!(collect.poll(cx));
                    let Some(parts) = parts.take() else {
                        return Poll::Ready(Err(ApiError::internal("messages state lost").boxed()));
                    };
                    let res = match collected {
                        Ok(c) if parts.status.is_success() => {
                            response::complete(parts, &c.to_bytes())
                        }
                        Ok(c) => response::from_openai_error(parts, &c.to_bytes()),
                        Err(e) => response::error(
                            StatusCode::BAD_GATEWAY,
                            "api_error",
                            &format!("the answer broke off: {e}"),
                        ),
                    };
                    done(res)
                }
            };
            self.set(next);
        }
    }
}

fn done<B, S>(response: Response<BoxBody>) -> ResponseFuture<B, S>
where
    S: Service<Request<Bytes>>,
    B: Body,
    B::Error: Into<BoxError>,
{
    ResponseFuture::Done {
        response: Some(response),
    }
}

fn is_event_stream(res: &Response<BoxBody>) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}
