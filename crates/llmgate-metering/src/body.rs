//! [`ResponseBody`]: a metered answer's body, finishing its request's record when it ends.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use llmgate_core::body::{self, Ending, OnEnd};
use llmgate_core::{BoxBody, BoxError};
use pin_project_lite::pin_project;
use tokio::time::Instant;

use crate::finish::Guard;

pin_project! {
    /// A streamed response's body (or an answer's whose provider reported no usage). Frames
    /// pass through untouched and are counted on the way (the text relayed, how a stream
    /// ended: see `tally.rs`); the first data frame's time is the time to first token. At the
    /// end of the body (core's [`OnEnd`]: its last frame, or an error frame), or when it is
    /// dropped (the client went away), the request is recorded with the usage the provider
    /// reported by then, else with the estimate from what passed.
    pub struct ResponseBody {
        #[pin]
        body: OnEnd<BoxBody, Guard>,
    }
}

impl ResponseBody {
    pub(crate) fn new(body: BoxBody, guard: Guard) -> Self {
        ResponseBody {
            body: OnEnd::new(body, guard),
        }
    }
}

impl body::Guard for Guard {
    fn on_data(&mut self, data: &Bytes) {
        self.answer.first_byte.get_or_insert_with(Instant::now);
        if let Some(t) = self.answer.tally.as_mut() {
            t.feed(data);
        }
    }

    fn on_end(mut self, ending: Ending) {
        let answer = &mut self.answer;
        match ending {
            Ending::Completed => answer.ended = true,
            Ending::Errored => {
                answer.ended = true;
                answer.body_failed = true;
            }
            // Recorded as the body stood: a stream cut short.
            Ending::Dropped => {}
        }
        if answer.ended {
            if let Some(t) = answer.tally.as_mut() {
                t.end();
            }
        }
        self.finish();
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.project().body.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
