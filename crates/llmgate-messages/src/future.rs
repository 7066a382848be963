use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{combinators::Collect, BodyExt};
use llmgate_core::body::ReadCapped;
use llmgate_core::{ApiError, BoxBody, BoxError, RequestId};
use pin_project_lite::pin_project;
use tower::Service;

use crate::{request, response, stream};

pin_project! {
    /// Response future of [`Messages`](crate::Messages): reading the body, calling the inner
    /// stack, then reading a complete answer (or an error) to translate it.
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
        // Reading the Anthropic request; the ready inner service waits with its head.
        Reading {
            #[pin]
            read: ReadCapped<B>,
            state: Option<(http::request::Parts, S)>,
        },
        // The inner stack is answering the translated request.
        Calling {
            #[pin]
            fut: S::Future,
            id: Option<RequestId>,
        },
        // Reading a complete answer (or an error's body) to translate it.
        Collecting {
            #[pin]
            collect: Collect<BoxBody>,
            parts: Option<http::response::Parts>,
        },
        // An answer in Anthropic's shape (or an early error).
        Done {
            response: Option<Response<BoxBody>>,
        },
    }
}

impl<B, S> ResponseFuture<B, S>
where
    S: Service<Request<Bytes>>,
    B: Body,
    B::Error: Into<BoxError>,
{
    /// Answers with `response` at once.
    pub(crate) fn done(response: Response<BoxBody>) -> Self {
        ResponseFuture {
            state: done(response),
        }
    }

    /// Reads the body with `read`, then calls `inner` with the request `parts`.
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
                        response::from_api_error(&ApiError::internal(
                            "messages future polled after completion",
                        ))
                    });
                    return Poll::Ready(Ok(res));
                }
                Proj::Reading { read, state } => {
                    let read = ready!(read.poll(cx));
                    let Some((mut parts, mut inner)) = state.take() else {
                        return Poll::Ready(Err(ApiError::internal("messages state lost").boxed()));
                    };
                    match read.and_then(|bytes| request::to_llm(&bytes).map(|llm| (bytes, llm))) {
                        Ok((bytes, llm)) => {
                            parts.extensions.insert(llm);
                            let id = parts.extensions.get::<RequestId>().cloned();
                            let fut = inner.call(Request::from_parts(parts, bytes));
                            State::Calling { fut, id }
                        }
                        Err(error) => done(response::from_api_error(&error)),
                    }
                }
                Proj::Calling { fut, id } => match ready!(fut.poll(cx)) {
                    Err(e) => {
                        // Rendered here, not by the rescue layer: logged here too.
                        let e = ApiError::from_box(e);
                        llmgate_core::log_failure(&e, id.as_ref());
                        done(response::from_api_error(&e))
                    }
                    Ok(res) if res.status().is_success() && is_event_stream(&res) => {
                        done(stream::translate(res, id.take()))
                    }
                    Ok(res) => {
                        let (parts, body) = res.into_parts();
                        State::Collecting {
                            collect: body.collect(),
                            parts: Some(parts),
                        }
                    }
                },
                Proj::Collecting { collect, parts } => {
                    let collected = ready!(collect.poll(cx));
                    let Some(parts) = parts.take() else {
                        return Poll::Ready(Err(ApiError::internal("messages state lost").boxed()));
                    };
                    let res = match collected {
                        Ok(c) if parts.extensions.get::<crate::Untranslated>().is_some() => {
                            Response::from_parts(parts, llmgate_core::body::full(c.to_bytes()))
                        }
                        Ok(c) if parts.status.is_success() => {
                            response::complete(parts, &c.to_bytes())
                        }
                        Ok(c) => response::from_openai_error(parts, &c.to_bytes()),
                        Err(e) => response::error(
                            StatusCode::BAD_GATEWAY,
                            "api_error",
                            &format!("the answer broke off: {e}"),
                        ),
                    };
                    done(res)
                }
            };
            state.set(next);
        }
    }
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
