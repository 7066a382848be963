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
use http::{Request, Response};
use http_body::Body;
use llmgate_core::body::{declared_too_large, read_capped, ReadCapped};
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
            return ResponseFuture::failed(ApiError::internal(
                "parse layer mounted on a non-LLM path",
            ));
        };
        if let Some(error) = declared_too_large(req.headers(), self.limit) {
            return ResponseFuture::failed(error);
        }
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let (parts, body) = req.into_parts();
        ResponseFuture::new(State::Reading {
            read: read_capped(body, self.limit),
            state: Some((parts, inner, endpoint)),
        })
    }
}

pin_project! {
    /// Response future of [`Parse`]: reading the body, then calling the inner service.
    pub struct ResponseFuture<B, S>
    where
        S: Service<Request<Bytes>>,
        B: Body,
        B::Error: Into<BoxError>,
    {
        #[pin]
        state: State<B, S>,
    }
}

pin_project! {
    #[project = Proj]
    enum State<B, S>
    where
        S: Service<Request<Bytes>>,
        B: Body,
        B::Error: Into<BoxError>,
    {
        Reading {
            #[pin] read: ReadCapped<B>,
            state: Option<(http::request::Parts, S, Endpoint)>,
        },
        Calling { #[pin] fut: S::Future },
        Failed { error: Option<ApiError> },
    }
}

impl<B, S> ResponseFuture<B, S>
where
    S: Service<Request<Bytes>>,
    B: Body,
    B::Error: Into<BoxError>,
{
    fn new(state: State<B, S>) -> Self {
        ResponseFuture { state }
    }

    fn failed(error: ApiError) -> Self {
        Self::new(State::Failed { error: Some(error) })
    }
}

impl<B, S> Future for ResponseFuture<B, S>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
    S: Service<Request<Bytes>, Response = Response<BoxBody>, Error = BoxError>,
{
    type Output = Result<Response<BoxBody>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            let next = match state.as_mut().project() {
                Proj::Calling { fut } => return fut.poll(cx),
                Proj::Failed { error } => {
                    let e = error.take().unwrap_or_else(|| {
                        ApiError::internal("parse future polled after completion")
                    });
                    return Poll::Ready(Ok(e.to_response()));
                }
                Proj::Reading { read, state } => {
                    let read = std::task::ready!(read.poll(cx));
                    let Some((mut parts, mut inner, endpoint)) = state.take() else {
                        return Poll::Ready(Err(ApiError::internal("parse state lost").boxed()));
                    };
                    let read = read.map(|bytes| crate::azure_path::with_model(&parts, bytes));
                    match read.and_then(|bytes| {
                        LlmRequest::parse(endpoint, &bytes).map(|parsed| (bytes, parsed))
                    }) {
                        Ok((bytes, parsed)) => {
                            parts.extensions.insert(parsed);
                            let fut = inner.call(Request::from_parts(parts, bytes));
                            State::Calling { fut }
                        }
                        Err(error) => State::Failed { error: Some(error) },
                    }
                }
            };
            state.set(next);
        }
    }
}
