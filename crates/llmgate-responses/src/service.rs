use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use llmgate_core::body::{declared_too_large, read_capped};
use llmgate_core::{BoxBody, BoxError};
use tower::Service;

use crate::future::Scope;
use crate::store::SharedStore;
use crate::{owner, ResponseFuture};

/// Serves OpenAI's Responses API over an OpenAI chat completions stack; see the crate docs.
#[derive(Debug, Clone)]
pub struct Responses<S> {
    inner: S,
    limit: usize,
    store: SharedStore,
}

impl<S> Responses<S> {
    /// Wraps `inner` (a stack answering OpenAI chat completions), capping request bodies at
    /// `limit` bytes and keeping responses in `store`.
    pub fn new(inner: S, limit: usize, store: SharedStore) -> Self {
        Responses {
            inner,
            limit,
            store,
        }
    }
}

impl<S, B> Service<Request<B>> for Responses<S>
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
            return ResponseFuture::done(error.to_response());
        }
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let (mut parts, body) = req.into_parts();
        let scope = Scope {
            store: self.store.clone(),
            owner: owner::of(&parts.headers),
        };
        parts.extensions.insert(scope);
        ResponseFuture::reading(read_capped(body, self.limit), parts, inner)
    }
}
