//! [`RescueLayer`]: the edge where anything that escaped becomes OpenAI-shaped JSON.
//!
//! Errors travel outward as [`ApiError`]s boxed in a [`BoxError`]; this layer renders each one
//! once, with its status and `Retry-After`. A panic in any inner layer is caught here too and
//! answered as a 500, so one bad request never takes a connection's other requests with it.

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::future::{CatchUnwind, FutureExt};
use http::{Request, Response};
use llmgate_core::{log_failure, ApiError, BoxBody, BoxError, RequestId};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

/// Applies [`Rescue`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RescueLayer;

impl<S> Layer<S> for RescueLayer {
    type Service = Rescue<S>;
    fn layer(&self, inner: S) -> Rescue<S> {
        Rescue {
            inner,
            not_ready: None,
        }
    }
}

/// Turns errors and panics into responses; its own error type is [`Infallible`].
#[derive(Debug)]
pub struct Rescue<S> {
    inner: S,
    /// The inner service's readiness error, answered on the next call instead of calling it.
    not_ready: Option<BoxError>,
}

impl<S: Clone> Clone for Rescue<S> {
    fn clone(&self) -> Self {
        Rescue {
            inner: self.inner.clone(),
            not_ready: None,
        }
    }
}

impl<S, B> Service<Request<B>> for Rescue<S>
where
    S: Service<Request<B>, Response = Response<BoxBody>, Error = BoxError>,
{
    type Response = Response<BoxBody>;
    type Error = Infallible;
    type Future = ResponseFuture<S::Future>;

    /// Pending while the inner service is; its readiness error is not this service's (which
    /// never fails) but the next call's answer, rendered like any other error.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        match self.inner.poll_ready(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(ready) => {
                self.not_ready = ready.err();
                Poll::Ready(Ok(()))
            }
        }
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let id = req.extensions().get::<RequestId>().cloned();
        if let Some(e) = self.not_ready.take() {
            return ResponseFuture::new(State::NotReady {
                error: Some(ApiError::from_box(e)),
                id,
            });
        }
        match std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(req))) {
            Ok(fut) => ResponseFuture::new(State::Running {
                fut: AssertUnwindSafe(fut).catch_unwind(),
                id,
            }),
            Err(panic) => ResponseFuture::new(State::Panicked {
                message: Some(panic_message(&*panic)),
                id,
            }),
        }
    }
}

pin_project! {
    /// Response future of [`Rescue`].
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = Proj]
    enum State<F> {
        // The inner call, guarded against panics.
        Running { #[pin] fut: CatchUnwind<AssertUnwindSafe<F>>, id: Option<RequestId> },
        // The inner `call` itself panicked.
        Panicked { message: Option<String>, id: Option<RequestId> },
        // The inner service failed to become ready.
        NotReady { error: Option<ApiError>, id: Option<RequestId> },
    }
}

impl<F> ResponseFuture<F> {
    fn new(state: State<F>) -> Self {
        ResponseFuture { state }
    }
}

impl<F> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<BoxBody>, BoxError>>,
{
    type Output = Result<Response<BoxBody>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let res = match self.project().state.project() {
            Proj::Running { fut, id } => match std::task::ready!(fut.poll(cx)) {
                Ok(Ok(res)) => res,
                Ok(Err(e)) => render(ApiError::from_box(e), id.as_ref()),
                Err(panic) => render_panic(&panic_message(&*panic), id.as_ref()),
            },
            Proj::Panicked { message, id } => {
                render_panic(message.as_deref().unwrap_or("unknown panic"), id.as_ref())
            }
            Proj::NotReady { error, id } => render(
                error
                    .take()
                    .unwrap_or_else(|| ApiError::internal("rescue future polled after completion")),
                id.as_ref(),
            ),
        };
        Poll::Ready(Ok(res))
    }
}

fn render(e: ApiError, id: Option<&RequestId>) -> Response<BoxBody> {
    log_failure(&e, id);
    e.to_response()
}

fn render_panic(message: &str, id: Option<&RequestId>) -> Response<BoxBody> {
    let request_id = id.map_or("", |i| &*i.0);
    tracing::error!(
        request_id,
        panic = message,
        "a layer panicked while serving a request"
    );
    ApiError::internal("internal error: the gateway failed while serving this request")
        .to_response()
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;
    use http_body_util::BodyExt;
    use llmgate_core::Origin;
    use tower::{service_fn, ServiceExt};

    #[tokio::test]
    async fn renders_errors_and_panics() {
        let svc = RescueLayer.layer(service_fn(|req: Request<&'static str>| async move {
            match *req.body() {
                "err" => {
                    Err(ApiError::new(StatusCode::BAD_GATEWAY, Origin::Upstream, "down").boxed())
                }
                "other" => Err::<Response<BoxBody>, BoxError>("plain".into()),
                _ => panic!("boom"),
            }
        }));
        for (body, status) in [("err", 502), ("other", 500), ("panic", 500)] {
            let res = svc.clone().oneshot(Request::new(body)).await.unwrap();
            assert_eq!(res.status(), status, "{body}");
            let b = res.into_body().collect().await.unwrap().to_bytes();
            let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
            assert!(v["error"]["message"].is_string(), "{v}");
        }
    }

    /// An inner service that is not ready yet, then fails to become ready.
    struct Slow {
        polls: usize,
    }

    impl Service<Request<()>> for Slow {
        type Response = Response<BoxBody>;
        type Error = BoxError;
        type Future = std::future::Ready<Result<Response<BoxBody>, BoxError>>;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
            self.polls += 1;
            if self.polls == 1 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Poll::Ready(Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                Origin::Internal,
                "overloaded",
            )
            .boxed()))
        }

        fn call(&mut self, _req: Request<()>) -> Self::Future {
            panic!("called while not ready")
        }
    }

    #[tokio::test]
    async fn passes_pending_through_and_answers_a_readiness_error() {
        let mut svc = RescueLayer.layer(Slow { polls: 0 });
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(svc.poll_ready(&mut cx).is_pending());
        let res = svc
            .ready()
            .await
            .unwrap()
            .call(Request::new(()))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(svc.inner.polls, 2);
    }
}
