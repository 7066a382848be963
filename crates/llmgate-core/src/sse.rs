//! Server-sent events: the encoder llmgate writes with, and the decoder for upstream streams.
//!
//! The decoder follows the WHATWG `text/event-stream` parsing rules: lines end in LF, CRLF or a
//! lone CR (also when a CRLF is split across reads), a leading BOM is skipped, `:` lines are
//! comments, `data:` lines of one event are joined with `\n`, `event:` names it (`message`
//! when unnamed), `id:` and `retry:` are kept, and an event missing its blank line at the end of
//! the stream is not dispatched. One event (its unfinished line plus the data gathered so far)
//! may hold at most a limit of bytes ([`DEFAULT_EVENT_LIMIT`], or [`decode_limited`]'s): an
//! upstream sending one endless line ends the stream with [`EventStreamError::TooLarge`]
//! instead of growing memory without bound. It works on bytes, scanning for line ends with `memchr`; the
//! `eventsource-stream` crate used before parsed each line character by character with `nom`
//! and cost ~6,000 instructions an event in a callgrind profile, more than the rest of the
//! gateway's work on a streamed request.

use std::fmt;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures_util::Stream;
use pin_project_lite::pin_project;

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

/// One decoded event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    /// `event:` (`message` when the event has none).
    pub event: String,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
    /// The last `id:` seen in the stream.
    pub id: String,
    /// `retry:`, when this event set one.
    pub retry: Option<Duration>,
}

/// The most bytes one event may hold with [`decode`]: 64 MiB (llmgate's default
/// `max_response_size_mb`).
pub const DEFAULT_EVENT_LIMIT: usize = 64 * 1024 * 1024;

/// Why decoding stopped.
#[derive(Debug)]
#[non_exhaustive]
pub enum EventStreamError<E> {
    /// The byte stream failed.
    Transport(E),
    /// A line was not UTF-8.
    Utf8,
    /// One event grew past the limit, in bytes.
    TooLarge(usize),
}

impl<E: fmt::Display> fmt::Display for EventStreamError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventStreamError::Transport(e) => write!(f, "the event stream broke: {e}"),
            EventStreamError::Utf8 => f.write_str("the event stream is not valid UTF-8"),
            EventStreamError::TooLarge(limit) => {
                write!(f, "one stream event is larger than {limit} bytes")
            }
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for EventStreamError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EventStreamError::Transport(e) => Some(e),
            EventStreamError::Utf8 | EventStreamError::TooLarge(_) => None,
        }
    }
}

pin_project! {
    /// The events of a byte stream; see the module docs.
    pub struct EventStream<S> {
        #[pin]
        inner: S,
        buf: BytesMut,
        // Event being built.
        event: String,
        data: String,
        has_data: bool,
        id: String,
        retry: Option<Duration>,
        // The previous read ended in CR: a LF starting the next one belongs to it.
        after_cr: bool,
        started: bool,
        done: bool,
        limit: usize,
    }
}

/// The byte order mark a stream may begin with.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Decodes a stream of byte chunks (an upstream body) into events, each at most
/// [`DEFAULT_EVENT_LIMIT`] bytes.
pub fn decode<S, B, E>(chunks: S) -> EventStream<S>
where
    S: Stream<Item = Result<B, E>>,
    B: Buf,
{
    decode_limited(chunks, DEFAULT_EVENT_LIMIT)
}

/// Decodes like [`decode`], each event at most `limit` bytes (its data plus the line being
/// read); a larger one ends the stream with [`EventStreamError::TooLarge`].
pub fn decode_limited<S, B, E>(chunks: S, limit: usize) -> EventStream<S>
where
    S: Stream<Item = Result<B, E>>,
    B: Buf,
{
    EventStream {
        limit,
        inner: chunks,
        buf: BytesMut::new(),
        event: String::new(),
        data: String::new(),
        has_data: false,
        id: String::new(),
        retry: None,
        after_cr: false,
        started: false,
        done: false,
    }
}

impl<S, B, E> Stream for EventStream<S>
where
    S: Stream<Item = Result<B, E>>,
    B: Buf,
{
    type Item = Result<Event, EventStreamError<E>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        loop {
            // Every complete line in the buffer, until one completes an event. The lines are
            // read in place and the buffer advanced once past all of them.
            let mut at = 0;
            let mut found = None;
            while let Some(n) = memchr::memchr2(b'\n', b'\r', &this.buf[at..]) {
                let end = at + n;
                let is_cr = this.buf[end] == b'\r';
                let line = &this.buf[at..end];
                at = end + 1;
                if is_cr {
                    if this.buf.get(at) == Some(&b'\n') {
                        at += 1;
                    } else if at == this.buf.len() {
                        *this.after_cr = true;
                    }
                }
                let Ok(line) = std::str::from_utf8(line) else {
                    // The stream ends at its error: what is buffered after it is dropped, so
                    // the events seen never depend on how the bytes were cut into reads
                    // (fuzz/artifacts/sse_decode).
                    *this.done = true;
                    this.buf.clear();
                    this.data.clear();
                    return Poll::Ready(Some(Err(EventStreamError::Utf8)));
                };
                found = field(
                    line,
                    this.event,
                    this.data,
                    this.has_data,
                    this.id,
                    this.retry,
                );
                if found.is_some() {
                    break;
                }
            }
            this.buf.advance(at);
            if let Some(event) = found {
                return Poll::Ready(Some(Ok(event)));
            }
            if *this.done {
                // An event without its closing blank line is not dispatched.
                return Poll::Ready(None);
            }
            if this.buf.len().saturating_add(this.data.len()) > *this.limit {
                *this.done = true;
                this.buf.clear();
                this.data.clear();
                return Poll::Ready(Some(Err(EventStreamError::TooLarge(*this.limit))));
            }
            match ready!(this.inner.as_mut().poll_next(cx)) {
                Some(Ok(mut chunk)) => {
                    while chunk.has_remaining() {
                        let mut bytes = chunk.chunk();
                        if *this.after_cr && !bytes.is_empty() {
                            *this.after_cr = false;
                            if bytes[0] == b'\n' {
                                bytes = &bytes[1..];
                            }
                        }
                        this.buf.extend_from_slice(bytes);
                        let n = chunk.chunk().len();
                        chunk.advance(n);
                    }
                    // A leading BOM is skipped, also when it is split across reads: decided
                    // once three bytes are in, or fewer that cannot begin one (a BOM prefix
                    // holds no line end, so no line is read before). Found by the sse_decode
                    // fuzz target (fuzz/artifacts/sse_decode/crash-e941f94a...).
                    if !*this.started {
                        let n = this.buf.len().min(BOM.len());
                        if n == BOM.len() || this.buf[..n] != BOM[..n] {
                            *this.started = true;
                            if this.buf.starts_with(BOM) {
                                this.buf.advance(BOM.len());
                            }
                        }
                    }
                }
                Some(Err(e)) => {
                    *this.done = true;
                    return Poll::Ready(Some(Err(EventStreamError::Transport(e))));
                }
                None => *this.done = true,
            }
        }
    }
}

/// Applies one line; returns the event it completes, if any.
fn field(
    line: &str,
    event: &mut String,
    data: &mut String,
    has_data: &mut bool,
    id: &mut String,
    retry: &mut Option<Duration>,
) -> Option<Event> {
    // Most lines of an LLM stream are `data:` lines: read first, without splitting the line.
    if let Some(value) = line.strip_prefix("data:") {
        if *has_data {
            data.push('\n');
        }
        data.push_str(value.strip_prefix(' ').unwrap_or(value));
        *has_data = true;
        return None;
    }
    if line.is_empty() {
        let name = std::mem::take(event);
        if !*has_data {
            *retry = None;
            return None;
        }
        *has_data = false;
        return Some(Event {
            event: if name.is_empty() {
                "message".to_owned()
            } else {
                name
            },
            data: std::mem::take(data),
            id: id.clone(),
            retry: retry.take(),
        });
    }
    if line.starts_with(':') {
        return None;
    }
    let (name, value) = match line.split_once(':') {
        Some((n, v)) => (n, v.strip_prefix(' ').unwrap_or(v)),
        None => (line, ""),
    };
    match name {
        // `data` alone (no colon): an empty data line.
        "data" => {
            if *has_data {
                data.push('\n');
            }
            *has_data = true;
        }
        "event" => value.clone_into(event),
        "id" if !value.contains('\0') => value.clone_into(id),
        "retry" => {
            if let Ok(ms) = value.parse::<u64>() {
                *retry = Some(Duration::from_millis(ms));
            }
        }
        _ => {}
    }
    None
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

    async fn all(parts: &[&[u8]]) -> Vec<(String, String)> {
        let parts: Vec<Result<Bytes, std::io::Error>> = parts
            .iter()
            .map(|p| Ok(Bytes::copy_from_slice(p)))
            .collect();
        decode(stream::iter(parts))
            .map(|e| e.map(|e| (e.event, e.data)).unwrap())
            .collect()
            .await
    }

    #[tokio::test]
    async fn line_ends_of_every_kind_even_split_across_reads() {
        let want = vec![
            ("message".to_owned(), "a".to_owned()),
            ("message".to_owned(), "b".to_owned()),
            ("message".to_owned(), "c".to_owned()),
        ];
        assert_eq!(all(&[b"data: a\r\n\r\ndata: b\r\rdata: c\n\n"]).await, want);
        // CRLF split between two reads counts once.
        assert_eq!(
            all(&[
                b"data: a\r",
                b"\n\r",
                b"\ndata: b\r",
                b"\r",
                b"data: c\n",
                b"\n"
            ])
            .await,
            want
        );
    }

    #[tokio::test]
    async fn bom_comments_multiline_data_and_fields() {
        let got: Vec<Event> = decode(stream::iter(vec![Ok::<_, std::io::Error>(
            Bytes::from_static(
                b"\xEF\xBB\xBF: comment\nid: 7\nretry: 1500\nevent: delta\ndata: one\ndata:two\ndata\n\nevent: ignored\n\n",
            ),
        )]))
        .map(Result::unwrap)
        .collect()
        .await;
        assert_eq!(
            got,
            vec![Event {
                event: "delta".into(),
                data: "one\ntwo\n".into(),
                id: "7".into(),
                retry: Some(Duration::from_millis(1500)),
            }]
        );
    }

    /// A BOM cut into reads is skipped like a whole one; a stream that only looks like one at
    /// first is read as it is (found by the sse_decode fuzz target).
    #[tokio::test]
    async fn a_bom_split_across_reads_is_skipped() {
        let want = vec![("delta".to_string(), "x".to_string())];
        assert_eq!(
            all(&[b"\xEF", b"\xBB", b"\xBFevent: delta\ndata: x\n\n"]).await,
            want
        );
        assert_eq!(
            all(&[b"\xEF\xBB", b"\xBF", b"event: delta\ndata: x\n\n"]).await,
            want
        );
        assert_eq!(all(&[b"\xEF\xBB\xBFevent: delta\ndata: x\n\n"]).await, want);
        assert_eq!(all(&[b"", b"event: delta\n", b"data: x\n\n"]).await, want);
        // Not a BOM: its first line's field name carries the bytes and is ignored.
        let lone: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::from_static(b"\xEF")),
            Ok(Bytes::from_static(b"\xBBevent: delta\ndata: x\n\n")),
        ];
        let got: Vec<_> = decode(stream::iter(lone)).collect().await;
        assert!(got.first().is_some_and(Result::is_err), "{got:?}");
    }

    #[tokio::test]
    async fn an_event_without_its_blank_line_at_the_end_is_dropped() {
        assert_eq!(
            all(&[b"data: done\n\ndata: cut"]).await,
            vec![("message".into(), "done".into())]
        );
    }

    #[tokio::test]
    async fn invalid_utf8_and_transport_errors_end_the_stream() {
        let bad = vec![Ok::<_, std::io::Error>(Bytes::from_static(
            b"data: \xFF\n\ndata: after\n\n",
        ))];
        let got: Vec<_> = decode(stream::iter(bad)).collect().await;
        // Nothing after the error, whether it came in the same read or a later one.
        assert!(
            matches!(got.as_slice(), [Err(EventStreamError::Utf8)]),
            "{got:?}"
        );
        let broken = vec![
            Ok(Bytes::from_static(b"data: a\n\n")),
            Err(std::io::Error::other("reset")),
        ];
        let got: Vec<_> = decode(stream::iter(broken)).collect().await;
        assert!(matches!(
            got.as_slice(),
            [Ok(_), Err(EventStreamError::Transport(_))]
        ));
    }

    #[tokio::test]
    async fn an_endless_line_or_event_ends_the_stream_at_the_limit() {
        // One line that never ends: the decoder stops once it holds more than the limit.
        let endless =
            stream::iter((0..100).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 100]))));
        let got: Vec<_> = decode_limited(endless, 1000).collect().await;
        assert!(
            matches!(got.as_slice(), [Err(EventStreamError::TooLarge(1000))]),
            "{got:?}"
        );
        // Many short data lines of one event count together.
        let lines = stream::iter(
            (0..100).map(|_| Ok::<_, std::io::Error>(Bytes::from_static(b"data: 0123456789\n"))),
        );
        let got: Vec<_> = decode_limited(lines, 500).collect().await;
        assert!(matches!(
            got.as_slice(),
            [Err(EventStreamError::TooLarge(500))]
        ));
        // Events under the limit pass, however many.
        let small = stream::iter(
            (0..100).map(|_| Ok::<_, std::io::Error>(Bytes::from_static(b"data: 0123456789\n\n"))),
        );
        let got: Vec<_> = decode_limited(small, 64).collect().await;
        assert_eq!(got.len(), 100);
        assert!(got.iter().all(Result::is_ok));
    }

    #[test]
    fn frames() {
        assert_eq!(&data(b"{}")[..], b"data: {}\n\n");
        assert_eq!(&named("ping", b"{}")[..], b"event: ping\ndata: {}\n\n");
    }
}
