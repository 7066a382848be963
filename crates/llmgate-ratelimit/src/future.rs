use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use http_body_util::BodyExt;
use llmgate_core::{ApiError, BoxBody, UsageSlot};
use pin_project_lite::pin_project;
use tower::Service;

use crate::body::{Guard, ResponseBody};
use crate::plan::{Plan, Unit};
use crate::shared::{FailurePolicy, Shared};
use crate::store::{Acquire, Kind, Settle, StoreError, Verdict};
use crate::Error;

/// A request waiting for the store's verdict.
pub(crate) struct Pending<S, B> {
    pub(crate) inner: S,
    pub(crate) req: Request<B>,
    pub(crate) plan: Plan,
    pub(crate) shared: Arc<Shared>,
}

/// An admitted request's guard and headers, until its response arrives.
struct Admitted {
    guard: Option<Guard>,
    headers: crate::headers::Headers,
}

pin_project! {
    /// Response future of [`RateLimit`](crate::RateLimit): the store's verdict, then the inner
    /// call, or an early 429.
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, B>,
    }
}

pin_project! {
    #[project = Proj]
    enum State<S, B>
    where
        S: Service<Request<B>>,
    {
        // Waiting for the store.
        Acquire {
            acquire: Acquire,
            pending: Option<Pending<S, B>>,
        },
        // Admitted (or not limited): the inner service's future.
        Inner {
            #[pin]
            fut: S::Future,
            admitted: Option<Admitted>,
        },
        // Answered here: the 429 (or 503) to send.
        Done {
            response: Option<Response<BoxBody>>,
        },
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    /// Not limited: straight to the inner call.
    pub(crate) fn inner(fut: S::Future) -> Self {
        ResponseFuture {
            state: State::Inner {
                fut,
                admitted: None,
            },
        }
    }

    /// Asks the store, then calls or answers.
    pub(crate) fn acquire(acquire: Acquire, pending: Pending<S, B>) -> Self {
        ResponseFuture {
            state: State::Acquire {
                acquire,
                pending: Some(pending),
            },
        }
    }
}

impl<S, B> fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<S, B> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<BoxBody>>,
{
    type Output = Result<Response<BoxBody>, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut state = self.as_mut().project().state;
            match state.as_mut().project() {
                Proj::Acquire { acquire, pending } => {
                    let verdict = ready!(Pin::new(acquire).poll(cx));
                    let Some(p) = pending.take() else {
                        return Poll::Ready(Ok(polled_after_completion()));
                    };
                    state.set(decide(p, verdict));
                }
                Proj::Inner { fut, admitted } => {
                    let res = ready!(fut.poll(cx));
                    let Some(a) = admitted.take() else {
                        return Poll::Ready(res);
                    };
                    return Poll::Ready(res.map(|r| respond(r, a)));
                }
                Proj::Done { response } => {
                    return Poll::Ready(Ok(response
                        .take()
                        .unwrap_or_else(polled_after_completion)));
                }
            }
        }
    }
}

fn polled_after_completion() -> Response<BoxBody> {
    ApiError::internal("rate-limit future polled after completion").to_response()
}

/// The inner call for an admitted request, or the answer for a denied one.
fn decide<S, B>(p: Pending<S, B>, verdict: Result<Verdict, StoreError>) -> State<S, B>
where
    S: Service<Request<B>, Response = Response<BoxBody>>,
{
    let Pending {
        mut inner,
        req,
        plan,
        shared,
    } = p;
    let verdict = match verdict {
        Ok(v) => v,
        Err(e) => return store_failed(inner, req, &shared, e),
    };
    let headers = crate::headers::build(&plan.names, &plan.checks, &verdict.states);
    if let Some(i) = verdict.denied {
        shared.stats.denied.fetch_add(1, Ordering::Relaxed);
        let err = denial(&plan, &verdict, i);
        tracing::debug!(limit = plan.names[i].as_str(), "rate limited");
        let mut res = ApiError::from_contract(&err).to_response();
        crate::headers::set(res.headers_mut(), headers);
        return State::Done {
            response: Some(res),
        };
    }
    let mut settle = Settle {
        lease: verdict.lease,
        at: verdict.at,
        ..Settle::default()
    };
    for (c, n) in plan.checks.iter().zip(&plan.names) {
        match (c.kind, n.unit()) {
            (Kind::Parallel, _) => settle.release.push(c.key.clone()),
            (Kind::Rate { window, .. }, Unit::Tokens) => {
                settle.adjust.push((c.key.clone(), c.limit, window, 0));
            }
            _ => {}
        }
    }
    let guard =
        (!settle.is_empty()).then(|| Guard::new(shared.store.clone(), settle, plan.reserved));
    State::Inner {
        fut: inner.call(req),
        admitted: Some(Admitted { guard, headers }),
    }
}

fn denial(plan: &Plan, verdict: &Verdict, i: usize) -> Error {
    let name = plan.names[i].clone();
    let check = &plan.checks[i];
    let state = verdict.states.get(i).copied().unwrap_or_default();
    match (check.kind, name.unit()) {
        (Kind::Parallel, _) | (_, Unit::Parallel) => Error::Parallel {
            name,
            limit: check.limit,
        },
        (Kind::Rate { cost, .. }, unit) => match state.retry_after {
            Some(retry_after) => Error::Rate {
                name,
                limit: check.limit,
                unit: if unit == Unit::Tokens {
                    "tokens"
                } else {
                    "requests"
                },
                retry_after,
            },
            None => Error::TooLarge {
                name,
                limit: check.limit,
                requested: cost,
            },
        },
    }
}

fn store_failed<S, B>(mut inner: S, req: Request<B>, shared: &Shared, e: StoreError) -> State<S, B>
where
    S: Service<Request<B>, Response = Response<BoxBody>>,
{
    let (counter, verb) = match shared.policy {
        FailurePolicy::Open => (
            &shared.stats.failed_open,
            "admitting requests unlimited (policy: open)",
        ),
        FailurePolicy::Closed => (
            &shared.stats.failed_closed,
            "refusing requests (policy: closed)",
        ),
    };
    let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
    log_throttled(shared, || {
        tracing::warn!(error = %e, failures = n, "rate-limit store unavailable: {verb}");
    });
    match shared.policy {
        FailurePolicy::Open => State::Inner {
            fut: inner.call(req),
            admitted: None,
        },
        FailurePolicy::Closed => State::Done {
            response: Some(ApiError::from_contract(&Error::Unavailable(e.0)).to_response()),
        },
    }
}

/// Runs `log` at most once a second (store outages fail every request).
fn log_throttled(shared: &Shared, log: impl FnOnce()) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as u64;
    let last = shared.stats.last_log_ms.load(Ordering::Relaxed);
    if now.saturating_sub(last) >= 1000
        && shared
            .stats
            .last_log_ms
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        log();
    }
}

/// Adds the headers and hands the guard to the body.
fn respond(res: Response<BoxBody>, a: Admitted) -> Response<BoxBody> {
    let Admitted { guard, headers } = a;
    let (mut parts, body) = res.into_parts();
    crate::headers::set(&mut parts.headers, headers);
    let Some(mut guard) = guard else {
        return Response::from_parts(parts, body);
    };
    guard.answered(
        parts.extensions.get::<UsageSlot>().cloned(),
        parts.status.is_success(),
    );
    Response::from_parts(parts, ResponseBody::new(body, guard).boxed_unsync())
}
