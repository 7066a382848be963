//! ConverseStream's framing: AWS's binary event stream (`application/vnd.amazon.eventstream`).
//!
//! Each message is `total length (u32) | headers length (u32) | prelude CRC32 | headers |
//! payload | message CRC32`, big-endian. Messages are cut out of the body as their bytes
//! arrive and checked by `aws-smithy-eventstream` (both CRCs, header encoding); each becomes a
//! [`RawEvent::Aws`]:
//!
//! - `:message-type: event`: `event_type` is the `:event-type` header (`contentBlockDelta`, ...);
//! - `:message-type: exception`: `event_type` is the `:exception-type` (`throttlingException`, ...);
//! - `:message-type: error`: `event_type` is the `:error-code`, and the payload is
//!   `{"message": <:error-message>}`.
//!
//! A message that does not check out, or a body that ends inside one, is an error item, and
//! the stream ends there.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use aws_smithy_eventstream::frame::read_message_from;
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use http_body_util::BodyDataStream;
use hyper::body::Incoming;
use pin_project_lite::pin_project;

use crate::dialect::relay::{Broken, EventStreamBox};
use crate::dialect::RawEvent;

/// The largest message accepted (AWS's event-stream limit is 16 MiB).
const MAX_MESSAGE_LEN: usize = 16 * 1024 * 1024;

/// Prelude (12 bytes) and message CRC (4 bytes): the smallest message.
const MIN_MESSAGE_LEN: usize = 16;

/// Decodes a ConverseStream body.
pub(crate) fn decode(body: Incoming) -> EventStreamBox {
    Box::pin(Frames::new(BodyDataStream::new(body)).map(|e| e.map_err(Broken::Cause)))
}

pin_project! {
    /// Cuts a byte stream into event-stream messages.
    pub(super) struct Frames<S> {
        #[pin]
        inner: S,
        buf: BytesMut,
        eof: bool,
        failed: bool,
    }
}

impl<S> Frames<S> {
    pub(super) fn new(inner: S) -> Self {
        Frames {
            inner,
            buf: BytesMut::new(),
            eof: false,
            failed: false,
        }
    }
}

/// The next complete message in `buf`, if any.
fn take_message(buf: &mut BytesMut) -> Result<Option<Bytes>, String> {
    let Some(prefix) = buf.get(..4) else {
        return Ok(None);
    };
    let mut len = [0u8; 4];
    len.copy_from_slice(prefix);
    let len = u32::from_be_bytes(len) as usize;
    if !(MIN_MESSAGE_LEN..=MAX_MESSAGE_LEN).contains(&len) {
        return Err(format!(
            "invalid event-stream message length {len} (expected {MIN_MESSAGE_LEN} to {MAX_MESSAGE_LEN})"
        ));
    }
    if buf.len() < len {
        return Ok(None);
    }
    Ok(Some(buf.split_to(len).freeze()))
}

/// One checked message as an event.
pub(super) fn to_event(message: Bytes) -> Result<RawEvent, String> {
    let message =
        read_message_from(message).map_err(|e| format!("invalid event-stream message: {e}"))?;
    let header = |name: &str| {
        message
            .headers()
            .iter()
            .find(|h| h.name().as_str() == name)
            .and_then(|h| h.value().as_string().ok())
            .map(|s| s.as_str().to_owned())
    };
    let message_type = header(":message-type").unwrap_or_else(|| "event".to_owned());
    let event = match message_type.as_str() {
        "exception" => RawEvent::Aws {
            event_type: header(":exception-type").unwrap_or_default(),
            message_type,
            payload: message.payload().clone(),
        },
        "error" => {
            let text = header(":error-message").unwrap_or_default();
            RawEvent::Aws {
                event_type: header(":error-code").unwrap_or_default(),
                message_type,
                payload: Bytes::from(serde_json::json!({ "message": text }).to_string()),
            }
        }
        _ => RawEvent::Aws {
            event_type: header(":event-type").unwrap_or_default(),
            message_type,
            payload: message.payload().clone(),
        },
    };
    Ok(event)
}

impl<S, E> Stream for Frames<S>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: std::fmt::Display,
{
    type Item = Result<RawEvent, String>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        loop {
            if *this.failed {
                return Poll::Ready(None);
            }
            let next = take_message(this.buf).and_then(|m| m.map(to_event).transpose());
            match next {
                Ok(Some(event)) => return Poll::Ready(Some(Ok(event))),
                Ok(None) => {}
                Err(e) => {
                    *this.failed = true;
                    return Poll::Ready(Some(Err(e)));
                }
            }
            if *this.eof {
                *this.failed = true;
                if this.buf.is_empty() {
                    return Poll::Ready(None);
                }
                return Poll::Ready(Some(Err(format!(
                    "the upstream body ended inside an event-stream message ({} bytes left)",
                    this.buf.len()
                ))));
            }
            match ready!(this.inner.as_mut().poll_next(cx)) {
                Some(Ok(data)) => this.buf.extend_from_slice(&data),
                Some(Err(e)) => {
                    *this.failed = true;
                    return Poll::Ready(Some(Err(e.to_string())));
                }
                None => *this.eof = true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{stream, StreamExt};

    /// Framed by the testkit's own encoder, so the decoder is checked against a second
    /// implementation of the format.
    fn frame(headers: &[(&str, &str)], payload: &str) -> Vec<u8> {
        llmgate_testkit::bedrock::frame(headers, payload.as_bytes()).to_vec()
    }

    async fn collect(parts: Vec<Vec<u8>>) -> Vec<Result<RawEvent, String>> {
        let parts: Vec<Result<Bytes, std::io::Error>> =
            parts.into_iter().map(|p| Ok(Bytes::from(p))).collect();
        Frames::new(stream::iter(parts)).collect().await
    }

    #[tokio::test]
    async fn messages_split_across_reads() {
        let a = frame(
            &[(":message-type", "event"), (":event-type", "messageStart")],
            r#"{"role":"assistant"}"#,
        );
        let b = frame(
            &[
                (":message-type", "exception"),
                (":exception-type", "throttlingException"),
            ],
            r#"{"message":"slow down"}"#,
        );
        let c = frame(
            &[
                (":message-type", "error"),
                (":error-code", "InternalFailure"),
                (":error-message", "oops"),
            ],
            "",
        );
        let mut all = a.clone();
        all.extend_from_slice(&b);
        all.extend_from_slice(&c);
        // One byte at a time, then all at once: the same events.
        let bytewise = collect(all.iter().map(|b| vec![*b]).collect()).await;
        let whole = collect(vec![all]).await;
        assert_eq!(bytewise, whole);
        let events: Vec<RawEvent> = whole.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            events,
            [
                RawEvent::Aws {
                    event_type: "messageStart".into(),
                    message_type: "event".into(),
                    payload: Bytes::from_static(br#"{"role":"assistant"}"#),
                },
                RawEvent::Aws {
                    event_type: "throttlingException".into(),
                    message_type: "exception".into(),
                    payload: Bytes::from_static(br#"{"message":"slow down"}"#),
                },
                RawEvent::Aws {
                    event_type: "InternalFailure".into(),
                    message_type: "error".into(),
                    payload: Bytes::from_static(br#"{"message":"oops"}"#),
                },
            ]
        );
    }

    #[tokio::test]
    async fn corrupt_and_truncated_messages_end_the_stream() {
        let good = frame(
            &[(":event-type", "messageStop")],
            r#"{"stopReason":"end_turn"}"#,
        );
        let mut bad = good.clone();
        let n = bad.len();
        bad[n - 6] ^= 0xff; // a payload byte: the message CRC no longer matches
        let out = collect(vec![bad, good.clone()]).await;
        assert_eq!(out.len(), 1);
        assert!(out[0]
            .as_ref()
            .unwrap_err()
            .contains("invalid event-stream message"));

        let out = collect(vec![good[..good.len() - 1].to_vec()]).await;
        assert_eq!(out.len(), 1);
        assert!(out[0].as_ref().unwrap_err().contains("ended inside"));

        let out = collect(vec![vec![0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]]).await;
        assert!(out[0]
            .as_ref()
            .unwrap_err()
            .contains("invalid event-stream message length"));
    }
}
