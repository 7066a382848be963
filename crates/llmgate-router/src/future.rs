use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderValue, Response};
use llmgate_core::{headers, ApiError, BoxBody, ModelGroup};
use pin_project_lite::pin_project;

pin_project! {
    /// Response future of [`Router`](crate::Router): the inner call, whose response gets the
    /// `x-llmgate-model-group` and `x-llmgate-deployment` headers, or an early 400.
    #[project = Proj]
    #[allow(missing_docs)] // pin-project-lite takes no docs on variant fields
    pub enum ResponseFuture<F> {
        /// Routed: the inner future, and what to say about it.
        Inner { #[pin] fut: F, group: Arc<str>, deployment: Arc<str> },
        /// Not routable: the answer.
        Reject { response: Option<Response<BoxBody>> },
    }
}

impl<F, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<BoxBody>, E>>,
{
    type Output = Result<Response<BoxBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            Proj::Inner {
                fut,
                group,
                deployment,
            } => {
                let mut res = match fut.poll(cx) {
                    Poll::Ready(Ok(res)) => res,
                    other => return other,
                };
                let h = res.headers_mut();
                if let Ok(v) = HeaderValue::from_str(group) {
                    h.insert(headers::MODEL_GROUP, v);
                }
                if let Ok(v) = HeaderValue::from_str(deployment) {
                    h.insert(headers::DEPLOYMENT, v);
                }
                res.extensions_mut().insert(ModelGroup(group.clone()));
                Poll::Ready(Ok(res))
            }
            Proj::Reject { response } => Poll::Ready(Ok(response.take().unwrap_or_else(|| {
                ApiError::internal("router future polled after completion").to_response()
            }))),
        }
    }
}
