use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use llmgate_core::BoxBody;
use tower::Service;

use crate::future::ResponseFuture;
use crate::plan::{Decision, Settings};

/// Answers repeated requests from a [`CacheStore`](crate::CacheStore); see the crate docs.
/// Built by [`CacheLayer`](crate::CacheLayer) (or `Cache::new`, next to it in `layer.rs`).
#[derive(Debug, Clone)]
pub struct Cache<S> {
    pub(crate) inner: S,
    pub(crate) config: Arc<Settings>,
}

impl<S, B> Service<Request<B>> for Cache<S>
where
    S: Service<Request<B>, Response = Response<BoxBody>> + Clone,
{
    type Response = Response<BoxBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        match self.config.decide(&req) {
            Decision::Bypass => ResponseFuture::pass(inner.call(req)),
            Decision::Reject(res) => ResponseFuture::ready(res),
            Decision::Use(plan) if plan.read => {
                let lookup = plan.store.get(&plan.key);
                ResponseFuture::lookup(lookup, inner, req, plan)
            }
            Decision::Use(plan) => ResponseFuture::miss(inner.call(req), plan),
        }
    }
}
