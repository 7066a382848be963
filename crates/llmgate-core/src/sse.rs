//! Server-sent events: the encoder llmgate writes with, and a decoder for upstream streams.
//!
//! Encoding is a few bytes of framing; decoding uses the kept `eventsource-stream` crate, which
//! follows the WHATWG parsing rules (multi-line `data:`, comments, `\r\n`, events split across
//! reads) so we do not maintain a parser of our own.

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::Stream;

pub use eventsource_stream::{Event, EventStream, EventStreamError, Eventsource};

use crate::error::ApiError;

/// The last event of an OpenAI stream.
pub const DONE: &[u8] = b"data: [DONE]\n\n";

/// Frames a JSON payload as one `data:` event. The payload must be one line (compact JSON is).
pub fn data(json: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(json.len() + 8);
    b.put_slice(b"data: ");
    b.put_slice(json);
    b.put_slice(b"\n\n");
    b.freeze()
}

/// Frames a named event (`event: NAME` then `data:`), as Anthropic's stream does.
pub fn named(event: &str, json: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(json.len() + event.len() + 16);
    b.put_slice(b"event: ");
    b.put_slice(event.as_bytes());
    b.put_slice(b"\ndata: ");
    b.put_slice(json);
    b.put_slice(b"\n\n");
    b.freeze()
}

/// The event that ends a stream which failed after its first byte reached the client: OpenAI's
/// error body as a `data:` event (what OpenAI's SDKs raise as an `APIError`).
pub fn error(e: &ApiError) -> Bytes {
    data(&e.to_json())
}

/// Decodes a stream of byte chunks (an upstream body) into events.
pub fn decode<S, B, E>(chunks: S) -> EventStream<S>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
{
    chunks.eventsource()
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{stream, StreamExt};

    #[tokio::test]
    async fn decodes_events_split_across_reads() {
        let parts: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::from_static(b"data: {\"a\"")),
            Ok(Bytes::from_static(
                b":1}\n\n: keep-alive\n\nevent: x\r\ndata: 2\r\n\r\n",
            )),
            Ok(Bytes::from(DONE)),
        ];
        let events: Vec<_> = decode(stream::iter(parts))
            .map(|e| e.map(|e| (e.event, e.data)))
            .collect()
            .await;
        let events: Vec<_> = events.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            events,
            vec![
                ("message".to_owned(), "{\"a\":1}".to_owned()),
                ("x".to_owned(), "2".to_owned()),
                ("message".to_owned(), "[DONE]".to_owned()),
            ]
        );
    }

    #[test]
    fn frames() {
        assert_eq!(&data(b"{}")[..], b"data: {}\n\n");
        assert_eq!(&named("ping", b"{}")[..], b"event: ping\ndata: {}\n\n");
    }
}
