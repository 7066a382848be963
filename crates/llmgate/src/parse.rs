//! [`ParseLayer`]: reads the request body once, size-capped, into an
//! [`LlmRequest`](llmgate_core::LlmRequest) in the request's extensions.
//!
//! The endpoint comes from the path (`/v1/chat/completions` or `/chat/completions`, and so on).
//! A body over the limit is a 413 (at once when `Content-Length` says so); malformed JSON is a 400
//! that says where it broke. Inner services get the raw bytes as the body, which nothing needs
//! to parse again.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{header, Request, Response};
use http_body::Body;
use http_body_util::{combinators::Collect, BodyExt, Limited};
use llmgate_core::{ApiError, BoxBody, BoxError, Endpoint, LlmRequest};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

/// Applies [`Parse`].
#[derive(Debug, Clone, Copy)]
pub struct ParseLayer {
    limit: usize,
}

impl ParseLayer {
    /// Caps bodies at `limit` bytes.
    pub fn new(limit: usize) -> Self {
        ParseLayer { limit }
    }
}

impl<S> Layer<S> for ParseLayer {
    type Service = Parse<S>;
    fn layer(&self, inner: S) -> Parse<S> {
        Parse {
            inner,
            limit: self.limit,
        }
    }
}

/// Parses the body; see the module docs.
#[derive(Debug, Clone)]
pub struct Parse<S> {
    inner: S,
    limit: usize,
}

/// The 413 for a request whose `Content-Length` already says it is over `limit`.
pub(crate) fn declared_too_large(headers: &http::HeaderMap, limit: usize) -> Option<ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    declared
        .is_some_and(|n| n > limit as u64)
        .then(|| ApiError::payload_too_large(limit))
}

/// The error for a body that could not be read under `limit`: 413 past it, else 400.
pub(crate) fn body_read_error(e: &BoxError, limit: usize) -> ApiError {
    if e.is::<http_body_util::LengthLimitError>() {
        ApiError::payload_too_large(limit)
    } else {
        ApiError::bad_request(format!("failed to read request body: {e}"))
    }
}

/// The OpenAI endpoint a path names, with or without the `/v1` prefix.
pub fn endpoint_for_path(path: &str) -> Option<Endpoint> {
    match path.strip_prefix("/v1").unwrap_or(path) {
        "/chat/completions" => Some(Endpoint::ChatCompletions),
        "/completions" => Some(Endpoint::Completions),
        "/embeddings" => Some(Endpoint::Embeddings),
        _ => None,
    }
}

impl<S, B> Service<Request<B>> for Parse<S>
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
        let Some(endpoint) = endpoint_for_path(req.uri().path()) else {
            return ResponseFuture::Failed {
                error: Some(ApiError::internal("parse layer mounted on a non-LLM path")),
            };
        };
        if let Some(error) = declared_too_large(req.headers(), self.limit) {
            return ResponseFuture::Failed { error: Some(error) };
        }
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let (parts, body) = req.into_parts();
        ResponseFuture::Reading {
            collect: Limited::new(body, self.limit).collect(),
            state: Some((parts, inner, endpoint, self.limit)),
        }
    }
}

pin_project! {
    /// Response future of [`Parse`]: reading the body, then calling the inner service.
    #[project = Proj]
    #[allow(missing_docs)] // pin-project-lite takes no docs on variant fields
    pub enum ResponseFuture<B, S>
    where
        S: Service<Request<Bytes>>,
        B: Body,
        B::Error: Into<BoxError>,
    {
        Reading {
            #[pin] collect: Collect<Limited<B>>,
            state: Option<(http::request::Parts, S, Endpoint, usize)>,
        },
        Calling { #[pin] fut: S::Future },
        Failed { error: Option<ApiError> },
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
                Proj::Calling { fut } => return fut.poll(cx),
                Proj::Failed { error } => {
                    let e = error.take().unwrap_or_else(|| {
                        ApiError::internal("parse future polled after completion")
                    });
                    return Poll::Ready(Ok(e.to_response()));
                }
                Proj::Reading { collect, state } => {
                    let collected = std::task::ready!(collect.poll(cx));
                    let Some((mut parts, mut inner, endpoint, limit)) = state.take() else {
                        return Poll::Ready(Err(ApiError::internal("parse state lost").boxed()));
                    };
                    let bytes = match collected {
                        Ok(c) => c.to_bytes(),
                        Err(e) => {
                            let error = body_read_error(&e, limit);
                            self.set(ResponseFuture::Failed { error: Some(error) });
                            continue;
                        }
                    };
                    match LlmRequest::parse(endpoint, &bytes) {
                        Ok(parsed) => {
                            parts.extensions.insert(parsed);
                            let fut = inner.call(Request::from_parts(parts, bytes));
                            ResponseFuture::Calling { fut }
                        }
                        Err(error) => ResponseFuture::Failed { error: Some(error) },
                    }
                }
            };
            self.set(next);
        }
    }
}
