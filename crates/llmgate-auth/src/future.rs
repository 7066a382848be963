use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Response;
use llmgate_core::BoxBody;
use pin_project_lite::pin_project;

pin_project! {
    /// Response future of [`Auth`](crate::Auth): the inner call, or an early 401.
    #[project = Proj]
    #[allow(missing_docs)] // pin-project-lite takes no docs on variant fields
    pub enum ResponseFuture<F> {
        /// Authenticated: the inner service's future.
        Inner {
            #[pin]
            fut: F,
        },
        /// Rejected: the 401 to send.
        Reject {
            response: Option<Response<BoxBody>>,
        },
    }
}

impl<F, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<BoxBody>, E>>,
{
    type Output = Result<Response<BoxBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            Proj::Inner { fut } => fut.poll(cx),
            Proj::Reject { response } => match response.take() {
                Some(r) => Poll::Ready(Ok(r)),
                // Polled after completion: a caller bug, answered rather than panicking.
                None => Poll::Ready(Ok(llmgate_core::ApiError::internal(
                    "auth future polled after completion",
                )
                .to_response())),
            },
        }
    }
}
