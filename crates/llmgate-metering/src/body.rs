//! [`ResponseBody`]: a stream's body, finishing its request's record when it ends.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use llmgate_core::{BoxBody, BoxError};
use pin_project_lite::pin_project;
use tokio::time::Instant;

use crate::finish::Guard;

pin_project! {
    /// A streamed response's body. Frames pass through untouched; the first data frame's time
    /// is the time to first token; at the end of the body, or when it is dropped (the client
    /// went away), the request is recorded with the usage the provider reported by then.
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
        let this = self.project();
        let frame = ready!(this.body.poll_frame(cx));
        match &frame {
            Some(Ok(f)) if f.is_data() => {
                this.guard
                    .answer
                    .first_byte
                    .get_or_insert_with(Instant::now);
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => {
                this.guard.finish();
            }
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
