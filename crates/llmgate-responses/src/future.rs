use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{header, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{combinators::Collect, BodyExt};
use llmgate_core::body::ReadCapped;
use llmgate_core::{
    ApiError, BoxBody, BoxError, Endpoint, LlmBody, LlmRequest, NativeAnswer, RequestId,
};
use pin_project_lite::pin_project;
use serde_json::{Map, Value};
use tower::Service;

use crate::request::{self, Parsed};
use crate::save::Saver;
use crate::store::{SharedStore, StoreError, StoredResponse};
use crate::{native, object, pinned, response, stream};

type Loaded = Result<Option<StoredResponse>, StoreError>;

/// What the answer is translated with.
struct Ctx {
    base: Map<String, Value>,
    saver: Option<Saver>,
    id: Option<RequestId>,
}

pin_project! {
    /// Response future of [`Responses`](crate::Responses): reading the body, loading the
    /// previous response, calling the inner stack, then translating (and storing) the answer.
    pub struct ResponseFuture<B, S>
    where
        S: Service<Request<Bytes>>,
        B: Body,
        B::Error: Into<BoxError>,
    {
        #[pin]
        state: State<B, S>,
    }
}

pin_project! {
    #[project = Proj]
    enum State<B, S>
    where
        S: Service<Request<Bytes>>,
        B: Body,
        B::Error: Into<BoxError>,
    {
        Reading {
            #[pin]
            read: ReadCapped<B>,
            state: Option<(http::request::Parts, S)>,
        },
        // Loading `previous_response_id` from the store.
        Loading {
            fut: BoxFuture<'static, Loaded>,
            state: Option<(http::request::Parts, S, Parsed)>,
        },
        Calling {
            #[pin]
            fut: S::Future,
            ctx: Option<Ctx>,
        },
        Collecting {
            #[pin]
            collect: Collect<BoxBody>,
            parts: Option<(http::response::Parts, Ctx)>,
        },
        // Storing a complete response before answering with it.
        Saving {
            fut: BoxFuture<'static, ()>,
            response: Option<Response<BoxBody>>,
        },
        Done {
            response: Option<Response<BoxBody>>,
        },
    }
}

/// The store and the calling key's scope, for the future.
#[derive(Clone, Debug)]
pub(crate) struct Scope {
    pub(crate) store: SharedStore,
    pub(crate) owner: String,
}

impl<B, S> ResponseFuture<B, S>
where
    S: Service<Request<Bytes>>,
    B: Body,
    B::Error: Into<BoxError>,
{
    pub(crate) fn done(response: Response<BoxBody>) -> Self {
        ResponseFuture {
            state: done(response),
        }
    }

    pub(crate) fn reading(read: ReadCapped<B>, parts: http::request::Parts, inner: S) -> Self {
        ResponseFuture {
            state: State::Reading {
                read,
                state: Some((parts, inner)),
            },
        }
    }
}

impl<B, S> Future for ResponseFuture<B, S>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
    S: Service<Request<Bytes>, Response = Response<BoxBody>, Error = BoxError>,
{
    type Output = Result<Response<BoxBody>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            let next = match state.as_mut().project() {
                Proj::Done { response } => {
                    let res = response.take().unwrap_or_else(|| {
                        ApiError::internal("responses future polled after completion").to_response()
                    });
                    return Poll::Ready(Ok(res));
                }
                Proj::Reading { read, state } => {
                    let read = ready!(read.poll(cx));
                    let Some((parts, inner)) = state.take() else {
                        return Poll::Ready(Err(lost()));
                    };
                    match read.and_then(|bytes| request::parse(&bytes)) {
                        Err(e) => done(e.to_response()),
                        Ok(parsed) => load_or_call(parts, inner, parsed),
                    }
                }
                Proj::Loading { fut, state } => {
                    let loaded = ready!(fut.as_mut().poll(cx));
                    let Some((parts, inner, parsed)) = state.take() else {
                        return Poll::Ready(Err(lost()));
                    };
                    after_load(parts, inner, parsed, loaded)
                }
                Proj::Calling { fut, ctx } => {
                    let res = ready!(fut.poll(cx));
                    let Some(ctx) = ctx.take() else {
                        return Poll::Ready(Err(lost()));
                    };
                    answered(res, ctx)
                }
                Proj::Collecting { collect, parts } => {
                    let collected = ready!(collect.poll(cx));
                    let Some((parts, ctx)) = parts.take() else {
                        return Poll::Ready(Err(lost()));
                    };
                    collected_answer(parts, ctx, collected.map(|c| c.to_bytes()))
                }
                Proj::Saving { fut, response } => {
                    ready!(fut.as_mut().poll(cx));
                    match response.take() {
                        Some(res) => done(res),
                        None => return Poll::Ready(Err(lost())),
                    }
                }
            };
            state.set(next);
        }
    }
}

/// After the body is parsed: load `previous_response_id`, or call at once.
fn load_or_call<B, S>(parts: http::request::Parts, inner: S, parsed: Parsed) -> State<B, S>
where
    S: Service<Request<Bytes>>,
    B: Body,
    B::Error: Into<BoxError>,
{
    match (parsed.previous().map(str::to_owned), scope(&parts)) {
        // A response stored upstream: its deployment has the conversation.
        (Some(prev), _) if pinned::decode(&prev).is_some() => {
            call(parts, inner, parsed, Vec::new())
        }
        (Some(prev), Some(scope)) => {
            let store = scope.store.clone();
            let owner = scope.owner.clone();
            State::Loading {
                fut: Box::pin(async move { store.load(&owner, &prev).await }),
                state: Some((parts, inner, parsed)),
            }
        }
        _ => call(parts, inner, parsed, Vec::new()),
    }
}

/// After the previous response is looked up: call with its conversation, or answer why not.
fn after_load<B, S>(
    parts: http::request::Parts,
    inner: S,
    parsed: Parsed,
    loaded: Loaded,
) -> State<B, S>
where
    S: Service<Request<Bytes>>,
    B: Body,
    B::Error: Into<BoxError>,
{
    match loaded {
        Ok(Some(previous)) => call(parts, inner, parsed, previous.conversation()),
        Ok(None) => done(not_found(parsed.previous().unwrap_or_default())),
        Err(e) => done(
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                llmgate_core::Origin::Internal,
                e.to_string(),
            )
            .to_response(),
        ),
    }
}

/// The inner stack's answer: a stream translated as it passes, an error passed on (it is
/// OpenAI's shape already), a complete answer collected.
fn answered<B, S>(res: Result<Response<BoxBody>, BoxError>, ctx: Ctx) -> State<B, S>
where
    S: Service<Request<Bytes>>,
    B: Body,
    B::Error: Into<BoxError>,
{
    match res {
        Err(e) => {
            let e = ApiError::from_box(e);
            llmgate_core::log_failure(&e, ctx.id.as_ref());
            done(e.to_response())
        }
        // The upstream's own Responses answer: passed through, not stored here.
        Ok(res)
            if res.status().is_success() && res.extensions().get::<NativeAnswer>().is_some() =>
        {
            if is_event_stream(&res) {
                done(native::stream(res))
            } else {
                let (parts, body) = res.into_parts();
                State::Collecting {
                    collect: body.collect(),
                    parts: Some((parts, ctx)),
                }
            }
        }
        Ok(res) if res.status().is_success() && is_event_stream(&res) => {
            done(stream::translate(res, ctx.base, ctx.saver))
        }
        Ok(res) if !res.status().is_success() => done(res),
        Ok(res) => {
            let (parts, body) = res.into_parts();
            State::Collecting {
                collect: body.collect(),
                parts: Some((parts, ctx)),
            }
        }
    }
}

/// A complete answer as a response object, saved before it is sent when it is stored.
fn collected_answer<B, S>(
    parts: http::response::Parts,
    ctx: Ctx,
    body: Result<Bytes, BoxError>,
) -> State<B, S>
where
    S: Service<Request<Bytes>>,
    B: Body,
    B::Error: Into<BoxError>,
{
    if parts.extensions.get::<NativeAnswer>().is_some() {
        return match body {
            Ok(bytes) => done(native::complete_response(parts, &bytes)),
            Err(e) => done(broke_off(&e).to_response()),
        };
    }
    let object = body
        .map_err(|e| {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                llmgate_core::Origin::Upstream,
                format!("the answer broke off: {e}"),
            )
        })
        .and_then(|bytes| response::complete(ctx.base, &bytes));
    match object {
        Err(e) => done(e.to_response()),
        Ok(v) => {
            let res = response::json_response(parts, &v);
            match ctx.saver.and_then(|s| s.save(&v)) {
                Some(fut) => State::Saving {
                    fut,
                    response: Some(res),
                },
                None => done(res),
            }
        }
    }
}

fn broke_off(e: &BoxError) -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        llmgate_core::Origin::Upstream,
        format!("the answer broke off: {e}"),
    )
}

fn lost() -> BoxError {
    ApiError::internal("responses state lost").boxed()
}

fn scope(parts: &http::request::Parts) -> Option<&Scope> {
    parts.extensions.get::<Scope>()
}

/// Translates `parsed` after `history` and calls `inner` with it.
fn call<B, S>(
    mut parts: http::request::Parts,
    mut inner: S,
    parsed: Parsed,
    history: Vec<Value>,
) -> State<B, S>
where
    S: Service<Request<Bytes>>,
    B: Body,
    B::Error: Into<BoxError>,
{
    let compact = is_compact(parts.uri.path());
    let (chat, gateway) = native::hand_down(&parsed, &history, compact, &mut parts.extensions);
    let scope = parts.extensions.remove::<Scope>();
    let saver = scope.filter(|_| parsed.store() && !compact).map(|s| {
        let mut input = history;
        input.extend(parsed.input.iter().cloned());
        Saver {
            store: s.store,
            owner: s.owner,
            input,
        }
    });
    let base = object::base(&parsed, &object::new_id("resp"), object::now());
    let body = match serde_json::to_vec(&chat) {
        Ok(b) => Bytes::from(b),
        Err(e) => {
            return done(
                ApiError::internal(format!("could not serialise the request: {e}")).to_response(),
            )
        }
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.extensions.insert(LlmRequest::from_parts(
        Endpoint::ChatCompletions,
        LlmBody::Chat(chat),
        gateway,
    ));
    let id = parts.extensions.get::<RequestId>().cloned();
    let fut = inner.call(Request::from_parts(parts, body));
    State::Calling {
        fut,
        ctx: Some(Ctx { base, saver, id }),
    }
}

/// `POST /v1/responses/compact` (or `/responses/compact`): served natively only.
pub(crate) fn is_compact(path: &str) -> bool {
    path.ends_with("/responses/compact")
}

fn not_found(id: &str) -> Response<BoxBody> {
    ApiError::bad_request(format!("Previous response with id '{id}' not found."))
        .with_param("previous_response_id")
        .with_code("previous_response_not_found")
        .to_response()
}

fn done<B, S>(response: Response<BoxBody>) -> State<B, S>
where
    S: Service<Request<Bytes>>,
    B: Body,
    B::Error: Into<BoxError>,
{
    State::Done {
        response: Some(response),
    }
}

fn is_event_stream(res: &Response<BoxBody>) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}
