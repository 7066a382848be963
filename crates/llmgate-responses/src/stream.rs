//! The stream body: the inner chat stream decoded event by event, translated by
//! [`Converter`], never buffered; the response saved before its terminal event is sent.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::Stream;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use http::Response;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyDataStream;
use llmgate_core::sse::{self, EventStream};
use llmgate_core::{BoxBody, BoxError};
use serde_json::{Map, Value};

use crate::events::Converter;
use crate::save::Saver;

/// The chat stream of `res` as the Responses API's, for the response `base` describes.
pub(crate) fn translate(
    res: Response<BoxBody>,
    base: Map<String, Value>,
    saver: Option<Saver>,
) -> Response<BoxBody> {
    let (mut parts, body) = res.into_parts();
    parts.headers.remove(CONTENT_LENGTH);
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    parts
        .headers
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    let body = ResponsesStream {
        events: sse::decode(BodyDataStream::new(body)),
        convert: Converter::new(base),
        pending: VecDeque::new(),
        held: VecDeque::new(),
        saver,
        saving: None,
        done: false,
    };
    Response::from_parts(parts, BoxBody::new(body))
}

/// The translated body.
struct ResponsesStream {
    events: EventStream<BodyDataStream<BoxBody>>,
    convert: Converter,
    pending: VecDeque<Bytes>,
    /// The terminal event, held while the response is saved.
    held: VecDeque<Bytes>,
    saver: Option<Saver>,
    saving: Option<BoxFuture<'static, ()>>,
    done: bool,
}

impl ResponsesStream {
    /// After the converter wrote its terminal event: hold it while the response is saved.
    fn finished(&mut self) {
        self.done = true;
        let (Some(saver), Some(last)) = (self.saver.take(), self.convert.last.as_ref()) else {
            return;
        };
        if let Some(fut) = saver.save(last) {
            self.saving = Some(fut);
            // The terminal event is the last one queued.
            if let Some(last) = self.pending.pop_back() {
                self.held.push_back(last);
            }
        }
    }
}

impl Body for ResponsesStream {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if let Some(bytes) = this.pending.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(bytes))));
            }
            if let Some(fut) = this.saving.as_mut() {
                ready!(fut.as_mut().poll(cx));
                this.saving = None;
                this.pending.append(&mut this.held);
                continue;
            }
            if this.done {
                return Poll::Ready(None);
            }
            let out = &mut this.pending;
            match ready!(Pin::new(&mut this.events).poll_next(cx)) {
                Some(Ok(event)) => {
                    if this.convert.data(&event.data, out) {
                        this.finished();
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "the stream behind /v1/responses broke");
                    this.convert.fail(
                        "server_error",
                        "the upstream stream ended before completion".to_owned(),
                        out,
                    );
                    this.finished();
                }
                None => {
                    if !this.convert.finished {
                        this.convert.fail(
                            "server_error",
                            "the upstream stream ended before completion".to_owned(),
                            out,
                        );
                    }
                    this.finished();
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.pending.is_empty() && self.saving.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
