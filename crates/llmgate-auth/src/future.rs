use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Response;
use llmgate_core::BoxBody;
use pin_project_lite::pin_project;

/// A virtual-key lookup followed by the inner call.
pub(crate) type LookupFuture<E> =
    Pin<Box<dyn Future<Output = Result<Response<BoxBody>, E>> + Send>>;

pin_project! {
    /// Response future of [`Auth`](crate::Auth): the inner call, an early rejection, or a
    /// virtual-key lookup and then the inner call.
    pub struct ResponseFuture<F, E> {
        #[pin]
        state: State<F, E>,
    }
}

pin_project! {
    #[project = Proj]
    enum State<F, E> {
        // Authenticated (master key, open gateway): the inner service's future.
        Inner { #[pin] fut: F },
        // A virtual key: looked up (usually in the cache), then the inner call.
        Lookup { fut: LookupFuture<E> },
        // Rejected: the answer to send.
        Reject { response: Option<Response<BoxBody>> },
    }
}

impl<F, E> ResponseFuture<F, E> {
    pub(crate) fn inner(fut: F) -> Self {
        ResponseFuture {
            state: State::Inner { fut },
        }
    }

    pub(crate) fn lookup(fut: LookupFuture<E>) -> Self {
        ResponseFuture {
            state: State::Lookup { fut },
        }
    }

    pub(crate) fn reject(response: Response<BoxBody>) -> Self {
        ResponseFuture {
            state: State::Reject {
                response: Some(response),
            },
        }
    }
}

impl<F, E> Future for ResponseFuture<F, E>
where
    F: Future<Output = Result<Response<BoxBody>, E>>,
{
    type Output = Result<Response<BoxBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            Proj::Inner { fut } => fut.poll(cx),
            Proj::Lookup { fut } => fut.as_mut().poll(cx),
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
