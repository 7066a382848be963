use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderValue, Response};
use llmgate_core::body::{self, Ending, OnEnd};
use llmgate_core::{
    headers, ApiError, Attribution, BoxBody, BoxError, Deployment, ErrorClass, ErrorContract,
    ModelGroup, RequestId, StreamFailure, UpstreamTime, UsageSlot,
};
use pin_project_lite::pin_project;
use tokio::time::Instant;

use crate::shared::Settle;
use crate::state::CooldownReason;
use crate::table::{Member, ModelTable};

/// One attempt on a deployment: counted in flight from its start until its response (for a
/// stream, its body) ends; its outcome feeds latency, usage and cooldowns.
pub(crate) struct Attempt {
    table: Arc<ModelTable>,
    group: Arc<str>,
    member: Member,
    stream: bool,
    started: Instant,
    /// The shared store's time of the take that reserved a token against `tpm`, until settled.
    reserved: Option<u64>,
    /// The request's id, for the cooldown's log line.
    request_id: Option<RequestId>,
    /// Its slot in the hanging registry, when the table has one: freed when the attempt drops.
    _watched: Option<crate::hanging::Ticket>,
}

impl Attempt {
    pub(crate) fn start(
        table: Arc<ModelTable>,
        group: Arc<str>,
        member: Member,
        stream: bool,
        reserved: Option<u64>,
        request_id: Option<RequestId>,
        key_alias: Option<String>,
    ) -> Self {
        member.state.in_flight.fetch_add(1, Relaxed);
        member.state.totals.attempts.fetch_add(1, Relaxed);
        let _watched = table.hanging.as_ref().and_then(|h| {
            h.enter(crate::hanging::Watched {
                group: group.clone(),
                deployment: member.spec.id.clone(),
                key_alias,
                request_id: request_id.clone(),
                stream,
            })
        });
        Attempt {
            _watched,
            table,
            group,
            member,
            stream,
            started: Instant::now(),
            reserved,
            request_id,
        }
    }

    /// Settles the `tpm` reservation with the tokens used (once).
    fn settle(&mut self, tokens: u64) {
        if let (Some(at), Some(shared)) = (self.reserved.take(), &self.table.shared) {
            shared.settle(&self.member.spec, Settle { at, tokens });
        }
    }

    fn succeeded(self, mut res: Response<BoxBody>) -> Response<BoxBody> {
        let now = self.table.clock.now_ms();
        let elapsed = self.started.elapsed();
        let h = res.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&self.group) {
            h.insert(headers::MODEL_GROUP, v);
        }
        if let Ok(v) = HeaderValue::from_str(&self.member.spec.id) {
            h.insert(headers::DEPLOYMENT, v);
        }
        res.extensions_mut().insert(ModelGroup(self.group.clone()));
        res.extensions_mut().insert(UpstreamTime(elapsed));
        let usage = res.extensions().get::<UsageSlot>().cloned();
        let totals = &self.member.state.totals;
        totals.answers.fetch_add(1, Relaxed);
        totals.latency_us.fetch_add(
            u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            Relaxed,
        );
        if self.stream {
            self.member.state.record_ttft(elapsed, now);
            // Slow or not is judged at the stream's end (see `InFlight::finish`).
            // In flight until the stream ends (or the client goes away); a failure after the
            // head (idle, broken, invalid) counts against the deployment when it ends.
            let guard = InFlight {
                attempt: Some(self),
                usage,
                failure: res.extensions().get::<StreamFailure>().cloned(),
            };
            return res.map(|b| BoxBody::new(OnEnd::new(b, guard)));
        }
        self.member.state.record_latency(elapsed, now);
        self.table.tell_answered(&self.group, &self.member, elapsed);
        InFlight {
            attempt: Some(self),
            usage,
            failure: None,
        }
        .finish();
        res
    }

    /// Counts a failure against the deployment when it says something about its health, and
    /// attributes it to the group and deployment. The attempt's in-flight count ends when
    /// `self` drops, here.
    fn failed(self, e: BoxError) -> BoxError {
        let api = ApiError::from_box(e);
        self.count_failure(&api);
        let deployment = Deployment(self.member.spec.clone());
        api.with_attribution(Attribution::attempt(self.group.clone(), Some(deployment)))
            .boxed()
    }

    /// Counts a failure of this attempt against its deployment, cooling it down once past its
    /// allowance.
    fn count_failure(&self, api: &ApiError) {
        // Only the provider's own failures count against it: not the client's mistakes, and
        // not a deadline the client chose.
        if !api.counts_against_deployment() {
            return;
        }
        self.member.state.totals.failures.fetch_add(1, Relaxed);
        let class = ErrorClass::of(api);
        if class == ErrorClass::RateLimit {
            self.table.tell_rate_limited(&self.group, &self.member);
        }
        let policy = self.table.policy();
        if policy.disabled {
            return;
        }
        let Some(allowed) = policy.allowed(class) else {
            return;
        };
        let now = self.table.clock.now_ms();
        let fails = self.member.state.fails.add(self.table.clock.minute(now), 1);
        if fails <= u64::from(allowed) {
            return;
        }
        let base = self
            .member
            .spec
            .cooldown_time
            .unwrap_or(policy.cooldown_time);
        let (for_, reason) = match class {
            ErrorClass::RateLimit => (
                api.retry_after().unwrap_or(base),
                CooldownReason::RateLimited,
            ),
            ErrorClass::Authentication | ErrorClass::NotFound => {
                (base, CooldownReason::Misconfigured)
            }
            _ => (base, CooldownReason::Failing),
        };
        let for_ = for_.min(Duration::from_secs(3600));
        tracing::info!(
            request_id = self.request_id.as_ref().map_or("", |i| &*i.0),
            deployment = %self.member.spec.id,
            status = api.status().as_u16(),
            cooldown_s = for_.as_secs_f64(),
            reason = reason.as_str(),
            "deployment cooling down",
        );
        self.member.state.cool_down(now, for_, reason);
        self.table.tell_cooldown(
            &self.group,
            &self.member,
            reason,
            api.status().as_u16(),
            for_,
        );
        let until = now.saturating_add(u64::try_from(for_.as_millis()).unwrap_or(u64::MAX));
        self.table
            .announce_cooldown(&self.member.spec.id, until, reason);
    }
}

/// The attempt's in-flight count ends when it drops, whichever way it ends: answered,
/// failed, or abandoned by a client that went away (the response future or the stream's body
/// dropped). An abandoned attempt counts as nothing else: no failure, no latency sample.
impl Drop for Attempt {
    fn drop(&mut self) {
        self.member.state.in_flight.fetch_sub(1, Relaxed);
        self.settle(0);
    }
}

/// Ends an attempt's in-flight count and records its tokens (and a stream's failure), once:
/// at once for a complete answer, when the body ends for a stream.
struct InFlight {
    attempt: Option<Attempt>,
    usage: Option<UsageSlot>,
    failure: Option<StreamFailure>,
}

impl InFlight {
    fn finish(&mut self) {
        // Dropping `a` at the end ends its in-flight count.
        let Some(mut a) = self.attempt.take() else {
            return;
        };
        if let Some(u) = self.usage.as_ref().and_then(UsageSlot::get) {
            let now_us = a.table.clock.now_us();
            a.member.state.usage.add_tokens(now_us, u.total_tokens);
            a.settle(u.total_tokens);
        }
        match self.failure.as_ref().and_then(StreamFailure::get) {
            Some(api) => a.count_failure(api),
            None if a.stream => a
                .table
                .tell_answered(&a.group, &a.member, a.started.elapsed()),
            None => {}
        }
    }
}

/// A stream's body holds its attempt in flight until it ends: completed, at an error frame,
/// or dropped (see [`llmgate_core::body::on_end`]); each way ends it the same.
impl body::Guard for InFlight {
    fn on_end(mut self, _: Ending) {
        self.finish();
    }
}

pin_project! {
    /// Response future of [`Router`](crate::Router).
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = Proj]
    enum State<F> {
        // Routed: the inner call.
        Inner { #[pin] fut: F, attempt: Option<Attempt> },
        // Answered here: an early response (unknown model).
        Respond { response: Option<Response<BoxBody>> },
        // Failed here: no deployment, or a forced failure.
        Fail { error: Option<ApiError> },
        // Waiting for the shared store before sending (see `shared.rs`): boxed, as the store's
        // own answer is, and only for deployments whose limits are shared.
        Shared { fut: SharedFuture },
    }
}

type SharedFuture = Pin<Box<dyn Future<Output = Result<Response<BoxBody>, BoxError>> + Send>>;

impl<F> ResponseFuture<F> {
    fn new(state: State<F>) -> Self {
        ResponseFuture { state }
    }

    /// The inner call of `attempt`.
    pub(crate) fn inner(fut: F, attempt: Attempt) -> Self {
        Self::new(State::Inner {
            fut,
            attempt: Some(attempt),
        })
    }

    pub(crate) fn respond(e: ApiError) -> Self {
        Self::new(State::Respond {
            response: Some(e.to_response()),
        })
    }

    pub(crate) fn fail(e: ApiError) -> Self {
        Self::new(State::Fail { error: Some(e) })
    }

    pub(crate) fn shared(
        f: impl Future<Output = Result<Response<BoxBody>, BoxError>> + Send + 'static,
    ) -> Self {
        Self::new(State::Shared { fut: Box::pin(f) })
    }
}

impl<F> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<BoxBody>, BoxError>>,
{
    type Output = Result<Response<BoxBody>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            Proj::Inner { fut, attempt } => {
                let out = std::task::ready!(fut.poll(cx));
                let Some(a) = attempt.take() else {
                    return Poll::Ready(out);
                };
                Poll::Ready(match out {
                    Ok(res) => Ok(a.succeeded(res)),
                    Err(e) => Err(a.failed(e)),
                })
            }
            Proj::Respond { response } => Poll::Ready(Ok(response.take().unwrap_or_else(|| {
                ApiError::internal("router future polled after completion").to_response()
            }))),
            Proj::Fail { error } => Poll::Ready(Err(error
                .take()
                .unwrap_or_else(|| ApiError::internal("router future polled after completion"))
                .boxed())),
            Proj::Shared { fut } => fut.as_mut().poll(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Arc;

    use bytes::Bytes;
    use http::Request;
    use http_body::{Body, Frame};
    use http_body_util::BodyExt;
    use llmgate_core::{BoxBody, BoxError, Endpoint, LlmRequest};
    use tower::{service_fn, ServiceExt};

    use crate::tests::d;
    use crate::{ModelTable, Router};

    /// A stream body of the given frames.
    struct Frames(VecDeque<Result<Frame<Bytes>, BoxError>>);

    impl Body for Frames {
        type Data = Bytes;
        type Error = BoxError;
        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            std::task::Poll::Ready(self.0.pop_front())
        }
    }

    fn stream_req() -> Request<()> {
        let mut r = Request::new(());
        let body = br#"{"model":"g","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
        r.extensions_mut()
            .insert(LlmRequest::parse(Endpoint::ChatCompletions, body).unwrap());
        r
    }

    async fn streamed(with_error: bool) -> (BoxBody, Arc<crate::state::DeploymentState>) {
        let t = Arc::new(ModelTable::new([Arc::new(d("a", "g"))], []));
        let state = t.all().into_iter().next().unwrap().1;
        let svc = Router::new(
            service_fn(move |_: Request<()>| async move {
                let mut frames = VecDeque::from([Ok(Frame::data(Bytes::from_static(b"data: 1")))]);
                if with_error {
                    frames.push_back(Err::<_, BoxError>("upstream reset".into()));
                }
                frames.push_back(Ok(Frame::data(Bytes::from_static(b"late"))));
                Ok::<_, BoxError>(http::Response::new(BoxBody::new(Frames(frames))))
            }),
            t,
        );
        let res = svc.oneshot(stream_req()).await.unwrap();
        (res.into_body(), state)
    }

    #[tokio::test]
    async fn a_streams_error_frame_ends_its_attempt_in_flight_at_once() {
        let (mut body, state) = streamed(true).await;
        assert_eq!(state.in_flight(), 1);
        assert!(body.frame().await.unwrap().is_ok());
        assert_eq!(state.in_flight(), 1, "in flight while the stream runs");
        assert!(body.frame().await.unwrap().is_err());
        // Before the one body wrapper, the count waited for the body to be dropped.
        assert_eq!(state.in_flight(), 0, "an error frame ends the stream");
        drop(body);
        assert_eq!(state.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_stream_is_in_flight_until_its_end_or_its_drop() {
        let (mut body, state) = streamed(false).await;
        assert!(body.frame().await.unwrap().is_ok());
        assert!(body.frame().await.unwrap().is_ok());
        assert_eq!(state.in_flight(), 1);
        assert!(body.frame().await.is_none());
        assert_eq!(state.in_flight(), 0, "completed");

        let (mut body, state) = streamed(false).await;
        assert!(body.frame().await.unwrap().is_ok());
        drop(body);
        assert_eq!(state.in_flight(), 0, "dropped by a client that went away");
    }
}
