use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use llmgate_core::body::{declared_too_large, read_capped};
use llmgate_core::{BoxBody, BoxError};
use tower::Service;

use crate::{response, ResponseFuture};

/// Serves Anthropic's Messages API over an OpenAI chat completions stack; see the crate docs.
#[derive(Debug, Clone)]
pub struct Messages<S> {
    inner: S,
    limit: usize,
}

impl<S> Messages<S> {
    /// Wraps `inner` (a stack answering OpenAI chat completions), capping request bodies at
    /// `limit` bytes.
    pub fn new(inner: S, limit: usize) -> Self {
        Messages { inner, limit }
    }
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
        if let Some(error) = declared_too_large(req.headers(), self.limit) {
            return ResponseFuture::done(response::from_api_error(&error));
        }
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let (parts, body) = req.into_parts();
        ResponseFuture::reading(read_capped(body, self.limit), parts, inner)
    }
}
