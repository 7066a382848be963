use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Request, Response, StatusCode};
use llmgate_core::{headers, ApiError, BoxBody, CacheStatus};
use pin_project_lite::pin_project;
use tower::Service;

use crate::body::ResponseBody;
use crate::entry::Kind;
use crate::plan::Plan;
use crate::store::StoreFuture;

pin_project! {
    /// Response future of [`Cache`](crate::Cache): a lookup, then (on a miss) the inner call.
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<Request<B>>,
    {
        // The cache does not apply.
        Pass {
            #[pin]
            fut: S::Future,
        },
        // Waiting for the store; the ready inner service and the request wait with it.
        Lookup {
            lookup: StoreFuture<Option<Bytes>>,
            inner: Option<S>,
            req: Option<Request<B>>,
            plan: Option<Plan>,
        },
        // A miss: the provider is answering.
        Miss {
            #[pin]
            fut: S::Future,
            plan: Option<Plan>,
        },
        // A hit or an early 400.
        Ready {
            response: Option<Response<BoxBody>>,
        },
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    pub(crate) fn pass(fut: S::Future) -> Self {
        ResponseFuture {
            state: State::Pass { fut },
        }
    }

    pub(crate) fn ready(response: Response<BoxBody>) -> Self {
        ResponseFuture {
            state: State::Ready {
                response: Some(response),
            },
        }
    }

    pub(crate) fn lookup(
        lookup: StoreFuture<Option<Bytes>>,
        inner: S,
        req: Request<B>,
        plan: Plan,
    ) -> Self {
        ResponseFuture {
            state: State::Lookup {
                lookup,
                inner: Some(inner),
                req: Some(req),
                plan: Some(plan),
            },
        }
    }

    pub(crate) fn miss(fut: S::Future, plan: Plan) -> Self {
        ResponseFuture {
            state: State::Miss {
                fut,
                plan: Some(plan),
            },
        }
    }
}

impl<S, B> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<BoxBody>>,
{
    type Output = Result<Response<BoxBody>, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut this = self.as_mut().project();
            let next = match this.state.as_mut().project() {
                StateProj::Pass { fut } => return fut.poll(cx),
                StateProj::Ready { response } => {
                    return Poll::Ready(Ok(response.take().unwrap_or_else(polled_after_done)))
                }
                StateProj::Miss { fut, plan } => {
                    let res = ready!(fut.poll(cx))?;
                    return Poll::Ready(Ok(match plan.take() {
                        Some(plan) => miss(plan, res),
                        None => res,
                    }));
                }
                StateProj::Lookup {
                    lookup,
                    inner,
                    req,
                    plan,
                } => {
                    let found = ready!(lookup.as_mut().poll(cx));
                    let (Some(plan), Some(mut inner), Some(req)) =
                        (plan.take(), inner.take(), req.take())
                    else {
                        return Poll::Ready(Ok(polled_after_done()));
                    };
                    match found {
                        Ok(Some(stored)) => {
                            if let Some(res) = plan.hit(stored) {
                                return Poll::Ready(Ok(res));
                            }
                        }
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "cache lookup failed; served as a miss");
                        }
                    }
                    State::Miss {
                        fut: inner.call(req),
                        plan: Some(plan),
                    }
                }
            };
            this.state.set(next);
        }
    }
}

/// Marks a provider's answer as a miss, and records it on its way to the client when it may
/// be stored.
fn miss(plan: Plan, mut res: Response<BoxBody>) -> Response<BoxBody> {
    res.headers_mut()
        .insert(headers::CACHE, HeaderValue::from_static("miss"));
    res.extensions_mut().insert(CacheStatus::Miss);
    let Some(ttl) = plan.ttl else { return res };
    if res.status() != StatusCode::OK || answer_kind(&res) != Some(plan.kind) {
        return res;
    }
    // A Responses API answer passed through from the upstream: its response is stored
    // upstream under its own id, and a hit could not be handed out again as a new one.
    if res
        .extensions()
        .get::<llmgate_core::NativeAnswer>()
        .is_some()
    {
        return res;
    }
    res.map(|b| BoxBody::new(ResponseBody::recording(b, plan, ttl)))
}

fn answer_kind(res: &Response<BoxBody>) -> Option<Kind> {
    let ct = res.headers().get(CONTENT_TYPE)?.to_str().ok()?.trim_start();
    let starts = |p: &str| ct.get(..p.len()).is_some_and(|s| s.eq_ignore_ascii_case(p));
    if starts("text/event-stream") {
        Some(Kind::Sse)
    } else if starts("application/json") {
        Some(Kind::Json)
    } else {
        None
    }
}

fn polled_after_done() -> Response<BoxBody> {
    // A caller bug, answered rather than panicking.
    ApiError::internal("cache future polled after completion").to_response()
}

impl<S, B> fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
