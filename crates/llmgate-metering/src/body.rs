//! [`ResponseBody`]: a metered answer's body, finishing its request's record when it ends.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use llmgate_core::{BoxBody, BoxError};
use pin_project_lite::pin_project;
use tokio::time::Instant;

use crate::finish::Guard;

pin_project! {
    /// A streamed response's body (or an answer's whose provider reported no usage). Frames
    /// pass through untouched and are counted on the way (the text relayed, how a stream
    /// ended: see `tally.rs`); the first data frame's time is the time to first token. At the
    /// end of the body, or when it is dropped (the client went away), the request is recorded
    /// with the usage the provider reported by then, else with the estimate from what passed.
    pub struct ResponseBody {
        #[pin]
        body: BoxBody,
        guard: Guard,
    }
}

impl ResponseBody {
    pub(crate) fn new(body: BoxBody, guard: Guard) -> Self {
        ResponseBody { body, guard }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        let frame = ready!(this.body.as_mut().poll_frame(cx));
        let answer = &mut this.guard.answer;
        let ended = match &frame {
            Some(Ok(f)) => {
                if let Some(data) = f.data_ref() {
                    answer.first_byte.get_or_insert_with(Instant::now);
                    if let Some(t) = answer.tally.as_mut() {
                        t.feed(data);
                    }
                }
                // A host may stop polling once the body says it is done (a complete answer
                // after its one frame): that is its end too.
                this.body.is_end_stream()
            }
            Some(Err(_)) => {
                answer.body_failed = true;
                true
            }
            None => true,
        };
        if ended {
            if let Some(t) = answer.tally.as_mut() {
                t.end();
            }
            answer.ended = true;
            this.guard.finish();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
