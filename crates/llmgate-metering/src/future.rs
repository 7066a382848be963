//! [`ResponseFuture`] of [`crate::Metering`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::{HeaderValue, Response};
use llmgate_core::{headers, ApiError, BoxBody, BoxError, Cost, TextCount};
use pin_project_lite::pin_project;

use crate::body::ResponseBody;
use crate::finish::{Answer, Guard};
use crate::tally::Tally;

pin_project! {
    /// Response future of [`Metering`](crate::Metering): the inner call, metered; or the 503
    /// of a full spend queue.
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = Proj]
    enum State<F> {
        // Metered: the inner service's future.
        Metered {
            #[pin]
            fut: F,
            guard: Option<Guard>,
            stream: bool,
        },
        // Refused: the response to send.
        Rejected {
            response: Option<Response<BoxBody>>,
        },
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn metered(fut: F, guard: Guard, stream: bool) -> Self {
        ResponseFuture {
            state: State::Metered {
                fut,
                guard: Some(guard),
                stream,
            },
        }
    }

    pub(crate) fn rejected(response: Response<BoxBody>) -> Self {
        ResponseFuture {
            state: State::Rejected {
                response: Some(response),
            },
        }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<BoxBody>, BoxError>>,
{
    type Output = Result<Response<BoxBody>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let (fut, guard, stream) = match self.project().state.project() {
            Proj::Metered { fut, guard, stream } => (fut, guard, *stream),
            Proj::Rejected { response } => {
                return Poll::Ready(Ok(response.take().unwrap_or_else(|| {
                    ApiError::internal("metering future polled after completion").to_response()
                })))
            }
        };
        let result = ready!(fut.poll(cx));
        // Dropped with the future (the client went away) the guard records a 499.
        let Some(mut guard) = guard.take() else {
            return Poll::Ready(result);
        };
        Poll::Ready(match result {
            Ok(mut res) => {
                guard.answer = Answer::of(res.status().as_u16(), res.extensions());
                if res.status().is_success() {
                    // Usage and cost are known when the body ends; an answer that reported no
                    // usage is counted as its body passes.
                    let tally = if stream {
                        guard.answer.stream = true;
                        // The relay's count when it made one, else the events are scanned.
                        Some(match res.extensions().get::<TextCount>() {
                            Some(text) => Tally::stream_counted(text.clone()),
                            None => Tally::stream(),
                        })
                    } else if guard.answer_needs_count() || guard.keeps_answers() {
                        Some(Tally::answer())
                    } else {
                        None
                    };
                    let tally = match tally {
                        Some(t) if guard.keeps_answers() => Some(t.capturing()),
                        other => other,
                    };
                    if tally.is_some() {
                        guard.answer.tally = tally;
                        return Poll::Ready(Ok(
                            res.map(|body| BoxBody::new(ResponseBody::new(body, guard)))
                        ));
                    }
                }
                if let Some(cost) = guard.finish() {
                    res.extensions_mut().insert(Cost(cost));
                    if let Ok(v) = HeaderValue::from_str(&cost.to_string()) {
                        res.headers_mut().insert(headers::RESPONSE_COST, v);
                    }
                }
                Ok(res)
            }
            Err(e) => {
                match e.downcast_ref::<ApiError>() {
                    Some(api) => guard.answer.failed(api),
                    None => guard.answer.failed(&ApiError::internal(e.to_string())),
                }
                guard.finish();
                Err(e)
            }
        })
    }
}
