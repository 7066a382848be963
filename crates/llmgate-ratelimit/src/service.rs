use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use llmgate_core::{BoxBody, EndUser, LlmRequest, Principal, Team, User};
use tower::Service;

use crate::future::{Pending, ResponseFuture};
use crate::plan::{Group, Plan};
use crate::shared::Shared;

/// Rate-limits each request; see the crate docs.
#[derive(Debug, Clone)]
pub struct RateLimit<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> RateLimit<S> {
    pub(crate) fn new(inner: S, shared: Arc<Shared>) -> Self {
        RateLimit { inner, shared }
    }
}

impl<S, B> Service<Request<B>> for RateLimit<S>
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
        let ext = req.extensions();
        let groups = [
            ext.get::<Arc<Team>>().map(|t| Group::team(t)),
            ext.get::<Arc<User>>().map(|u| Group::user(u)),
            ext.get::<Arc<EndUser>>().map(|u| Group::end_user(u)),
        ];
        let plan = Plan::build(
            ext.get::<Principal>(),
            ext.get::<LlmRequest>(),
            &groups,
            self.shared.globals,
        );
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if plan.checks.is_empty() {
            return ResponseFuture::inner(inner.call(req));
        }
        let acquire = self.shared.store.acquire(&plan.checks);
        ResponseFuture::acquire(
            acquire,
            Pending {
                inner,
                req,
                plan,
                shared: self.shared.clone(),
            },
        )
    }
}
