//! [`RequestIdLayer`]: gives every request an id, a tracing span, and the
//! `x-llmgate-request-id` response header.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderValue, Request, Response};
use llmgate_core::{headers, RequestId};
use pin_project_lite::pin_project;
use tower::{Layer, Service};
use tracing::{field, Instrument};

/// Applies [`RequestIds`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestIdLayer;

impl<S> Layer<S> for RequestIdLayer {
    type Service = RequestIds<S>;
    fn layer(&self, inner: S) -> RequestIds<S> {
        RequestIds { inner }
    }
}

/// Inserts a [`RequestId`] (a UUIDv7: time-ordered, so logs sort by it) and opens the request's
/// span (at DEBUG level), with `model`, `deployment` and `key_alias` filled in by inner layers as
/// they learn them.
#[derive(Debug, Clone)]
pub struct RequestIds<S> {
    inner: S,
}

impl<S, B, ResB> Service<Request<B>> for RequestIds<S>
where
    S: Service<Request<B>, Response = Response<ResB>>,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = ResponseFuture<tracing::instrument::Instrumented<S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let id = new_id(&mut buf);
        let header = HeaderValue::from_str(id).ok();
        // DEBUG: at the default INFO level the span costs nothing (fmt subscribers format an
        // enabled span's fields on every request). Errors are logged with the request id by the
        // rescue layer whatever the level.
        let span = tracing::debug_span!(
            "request",
            request_id = id,
            method = %req.method(),
            path = req.uri().path(),
            model = field::Empty,
            deployment = field::Empty,
            key_alias = field::Empty,
        );
        req.extensions_mut().insert(RequestId(Arc::from(id)));
        let fut = span.in_scope(|| self.inner.call(req));
        ResponseFuture {
            fut: fut.instrument(span),
            header,
        }
    }
}

pin_project! {
    /// Response future of [`RequestIds`].
    pub struct ResponseFuture<F> {
        #[pin]
        fut: F,
        header: Option<HeaderValue>,
    }
}

impl<F, ResB, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResB>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut res = match this.fut.poll(cx) {
            Poll::Ready(Ok(res)) => res,
            other => return other,
        };
        if let Some(v) = this.header.take() {
            res.headers_mut().insert(headers::REQUEST_ID, v);
        }
        Poll::Ready(Ok(res))
    }
}

/// A fresh request id (a UUIDv7), written into `buf` (from `uuid::Uuid::encode_buffer()`).
/// Hosts that answer before the stack runs (a body over the limit) use it too, so every
/// response carries an `x-llmgate-request-id`.
pub fn new_id(buf: &mut [u8; uuid::fmt::Hyphenated::LENGTH]) -> &str {
    uuid::Uuid::now_v7().hyphenated().encode_lower(buf)
}

/// The `x-llmgate-request-id` header for a response made outside the stack.
pub fn header_value() -> Option<HeaderValue> {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    HeaderValue::from_str(new_id(&mut buf)).ok()
}
