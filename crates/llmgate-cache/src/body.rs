//! The response body of a miss: passes every frame on at once and keeps a copy (a reference
//! to the same bytes) to store when the body ends cleanly.

use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use llmgate_core::sse;
use pin_project_lite::pin_project;

use crate::entry::{Entry, Kind};
use crate::plan::Plan;

pin_project! {
    /// A body recorded for the cache as it passes; see the module docs.
    pub struct ResponseBody<B> {
        #[pin]
        inner: B,
        rec: Option<Box<Recorder>>,
    }
}

struct Recorder {
    plan: Plan,
    ttl: Duration,
    frames: Vec<Bytes>,
    len: usize,
}

impl<B> ResponseBody<B> {
    pub(crate) fn recording(inner: B, plan: Plan, ttl: Duration) -> Self {
        ResponseBody {
            inner,
            rec: Some(Box::new(Recorder {
                plan,
                ttl,
                frames: Vec::new(),
                len: 0,
            })),
        }
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let mut this = self.project();
        let polled = ready!(this.inner.as_mut().poll_frame(cx));
        if this.rec.is_some() {
            match &polled {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        let over = this.rec.as_mut().is_some_and(|r| {
                            r.len += data.len();
                            r.frames.push(data.clone());
                            r.len > r.plan.max_entry_bytes
                        });
                        if over {
                            *this.rec = None;
                        }
                    }
                    // Hosts may stop polling once the body says it has ended.
                    if this.inner.is_end_stream() {
                        finish(this.rec.take());
                    }
                }
                // A body error: the answer is incomplete.
                Some(Err(_)) => *this.rec = None,
                None => finish(this.rec.take()),
            }
        }
        Poll::Ready(polled)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The marker of an error event: OpenAI's error body as an event's data.
const ERROR_EVENT: &[u8] = b"data: {\"error\"";

/// Stores the recorded answer if it ended cleanly. An event stream is complete only when it
/// ends with `data: [DONE]` and carried no error event (the provider relay ends a broken
/// upstream stream with an error event and no `[DONE]`).
fn finish(rec: Option<Box<Recorder>>) {
    let Some(rec) = rec else { return };
    let stored = Entry::encode(rec.plan.kind, &rec.frames, rec.len);
    if rec.plan.kind == Kind::Sse {
        let body = &stored[stored.len() - rec.len..];
        if !body.ends_with(sse::DONE) || memchr::memmem::find(body, ERROR_EVENT).is_some() {
            tracing::debug!(key = %rec.plan.key, "stream did not end cleanly; not cached");
            return;
        }
    }
    let mut put = rec.plan.store.put(&rec.plan.key, stored, rec.ttl);
    // Backends that do the work when called (the local store) are done at the first poll;
    // others finish in the background, so the end of the body never waits for the store.
    let key = rec.plan.key;
    match put
        .as_mut()
        .poll(&mut Context::from_waker(std::task::Waker::noop()))
    {
        Poll::Ready(Ok(())) => {}
        Poll::Ready(Err(e)) => {
            tracing::warn!(key = %key, error = %e, "could not store a cached answer");
        }
        Poll::Pending => {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    if let Err(e) = put.await {
                        tracing::warn!(key = %key, error = %e, "could not store a cached answer");
                    }
                });
            }
        }
    }
}
