//! [`Metering`]: the service of [`crate::MeteringLayer`].

use std::task::{Context, Poll};
use std::time::SystemTime;

use http::{Request, Response, StatusCode};
use llmgate_core::{
    ApiError, BoxBody, BoxError, BudgetHold, LlmRequest, Origin, Principal, RequestId,
};
use tokio::time::Instant;
use tower::Service;

use crate::finish::{Guard, Started};
use crate::future::ResponseFuture;
use crate::meter::Meter;

/// Meters each request through `S`: see the crate docs.
#[derive(Clone, Debug)]
pub struct Metering<S> {
    inner: S,
    meter: Meter,
}

impl<S> Metering<S> {
    /// Meters `inner` with `meter`.
    pub fn new(inner: S, meter: Meter) -> Self {
        Metering { inner, meter }
    }
}

impl<S, B> Service<Request<B>> for Metering<S>
where
    S: Service<Request<B>, Response = Response<BoxBody>, Error = BoxError> + Clone,
{
    type Response = Response<BoxBody>;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let Ok(slot) = self.meter.inner.queue.reserve() else {
            return ResponseFuture::rejected(queue_full());
        };
        let hold = req.extensions_mut().remove::<BudgetHold>();
        let ext = req.extensions();
        let llm = ext.get::<LlmRequest>().cloned();
        let stream = llm.as_ref().is_some_and(LlmRequest::is_stream);
        let guard = Guard::new(Started {
            meter: self.meter.clone(),
            slot,
            at: Instant::now(),
            time: SystemTime::now(),
            request_id: ext.get::<RequestId>().map(|r| r.0.clone()),
            llm,
            principal: ext.get::<Principal>().cloned(),
            end_user: ext.get::<llmgate_core::EndUserId>().map(|u| u.0.clone()),
            hold,
            header_tags: req
                .headers()
                .get("x-litellm-tags")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        });
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::metered(inner.call(req), guard, stream)
    }
}

/// 503 while the spend queue has no room: serving the request would leave it unrecorded.
fn queue_full() -> Response<BoxBody> {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        Origin::Internal,
        "the gateway's spend queue is full (its store is not keeping up); retry shortly",
    )
    .with_code("spend_queue_full")
    .with_retryable(true)
    .with_retry_after(Some(std::time::Duration::from_secs(1)))
    .to_response()
}
