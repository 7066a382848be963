//! The streaming response body: upstream SSE events relayed one by one as they arrive.
//!
//! [`Relay`] decodes the upstream body with [`llmgate_core::sse::decode`] and re-frames each
//! event's data as a `data:` event at once; nothing is buffered beyond the event being decoded.
//! On the way it:
//!
//! - fills the [`UsageSlot`] from the chunk that carries usage (found with a substring check,
//!   so the other chunks are not parsed);
//! - drops the usage-only chunk (empty `choices`) when the client did not ask for usage (the
//!   gateway asked for it, to meter the stream);
//! - ends after `data: [DONE]`, reading what the upstream already sent so the connection can
//!   go back to the pool, but never waiting for more;
//! - turns a broken upstream (body error, or end without `[DONE]`) into one OpenAI-shaped error
//!   event (`502`, "upstream stream ended before completion") and a clean end of the body.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::Stream;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyDataStream;
use hyper::body::Incoming;
use llmgate_core::sse::{self, Event, EventStream};
use llmgate_core::{BoxError, ProviderKind, UsageSlot};
use pin_project_lite::pin_project;

use crate::error::{chain, Error};
use crate::openai_compat::chunk_usage;

pin_project! {
    /// An OpenAI stream relayed from an upstream body.
    pub(crate) struct Relay {
        #[pin]
        events: EventStream<BodyDataStream<Incoming>>,
        state: State,
        slot: UsageSlot,
        strip_usage_chunk: bool,
        provider: ProviderKind,
        deployment: Arc<str>,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Streaming,
    /// `[DONE]` went out: read what is already there, then end.
    Draining,
    Done,
}

impl Relay {
    /// Relays `body`; `strip_usage_chunk` when the client did not ask for usage.
    pub(crate) fn new(
        body: Incoming,
        slot: UsageSlot,
        strip_usage_chunk: bool,
        provider: ProviderKind,
        deployment: Arc<str>,
    ) -> Self {
        Relay {
            events: sse::decode(BodyDataStream::new(body)),
            state: State::Streaming,
            slot,
            strip_usage_chunk,
            provider,
            deployment,
        }
    }
}

impl Body for Relay {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        loop {
            match *this.state {
                State::Done => return Poll::Ready(None),
                State::Draining => match this.events.as_mut().poll_next(cx) {
                    Poll::Ready(Some(_)) => continue,
                    Poll::Ready(None) | Poll::Pending => {
                        *this.state = State::Done;
                        return Poll::Ready(None);
                    }
                },
                State::Streaming => {}
            }
            let failure = match ready!(this.events.as_mut().poll_next(cx)) {
                Some(Ok(event)) => match relay(&event, this.slot, *this.strip_usage_chunk) {
                    Relayed::Skip => continue,
                    Relayed::Done => {
                        *this.state = State::Draining;
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(sse::DONE)))));
                    }
                    Relayed::Data(bytes) => return Poll::Ready(Some(Ok(Frame::data(bytes)))),
                },
                Some(Err(e)) => chain(&e),
                None => "the upstream closed the stream without `[DONE]`".to_owned(),
            };
            *this.state = State::Done;
            tracing::warn!(
                provider = %this.provider,
                deployment = %this.deployment,
                cause = %failure,
                "upstream stream broke after its first event",
            );
            let e = Error::StreamEnded {
                provider: *this.provider,
                deployment: this.deployment.clone(),
            }
            .into_api();
            return Poll::Ready(Some(Ok(Frame::data(sse::error(&e)))));
        }
    }

    fn is_end_stream(&self) -> bool {
        self.state == State::Done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

enum Relayed {
    Skip,
    Done,
    Data(Bytes),
}

fn relay(event: &Event, slot: &UsageSlot, strip_usage_chunk: bool) -> Relayed {
    let data = event.data.as_str();
    if data.is_empty() {
        return Relayed::Skip;
    }
    // OpenAI's events are unnamed ("message"); an `error` event's data is an error body the
    // SDKs raise. Anything else (pings, provider-specific events) is not OpenAI's.
    if !matches!(event.event.as_str(), "" | "message" | "error") {
        return Relayed::Skip;
    }
    if data.trim_end() == "[DONE]" {
        return Relayed::Done;
    }
    if let Some((usage, usage_only)) = chunk_usage(data) {
        slot.set(usage);
        if usage_only && strip_usage_chunk {
            return Relayed::Skip;
        }
    }
    Relayed::Data(frame(data))
}

/// `data: ...\n\n`, one `data:` line per line of `data` (compact JSON has one).
fn frame(data: &str) -> Bytes {
    if !data.contains('\n') {
        return sse::data(data.as_bytes());
    }
    let mut b = BytesMut::with_capacity(data.len() + 16);
    for line in data.split('\n') {
        b.put_slice(b"data: ");
        b.put_slice(line.trim_end_matches('\r').as_bytes());
        b.put_u8(b'\n');
    }
    b.put_u8(b'\n');
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, data: &str) -> Event {
        Event {
            event: name.to_owned(),
            data: data.to_owned(),
            id: String::new(),
            retry: None,
        }
    }

    #[test]
    fn relays_strips_and_stops() {
        let slot = UsageSlot::new();
        let chunk = r#"{"choices":[{"index":0,"delta":{"content":"hi"}}],"usage":null}"#;
        let Relayed::Data(b) = relay(&event("message", chunk), &slot, true) else {
            panic!()
        };
        assert_eq!(&b[..], format!("data: {chunk}\n\n").as_bytes());
        let usage =
            r#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#;
        assert!(matches!(
            relay(&event("message", usage), &slot, true),
            Relayed::Skip
        ));
        assert_eq!(slot.get().unwrap().total_tokens, 3);
        assert!(matches!(
            relay(&event("message", usage), &UsageSlot::new(), false),
            Relayed::Data(_)
        ));
        assert!(matches!(
            relay(&event("message", "[DONE]"), &slot, true),
            Relayed::Done
        ));
        assert!(matches!(
            relay(&event("ping", "{}"), &slot, true),
            Relayed::Skip
        ));
        assert!(matches!(
            relay(&event("message", ""), &slot, true),
            Relayed::Skip
        ));
    }

    #[test]
    fn frames_multiline_data() {
        assert_eq!(
            &frame("{\n\"a\":1\n}")[..],
            b"data: {\ndata: \"a\":1\ndata: }\n\n"
        );
    }
}
