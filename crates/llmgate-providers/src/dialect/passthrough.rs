//! [`Streaming::PassThrough`](super::Streaming::PassThrough): an upstream that speaks OpenAI's
//! SSE, its events relayed one by one as they arrive.
//!
//! The answer must be `text/event-stream` ([`check_content_type`]). [`Relay`] then decodes the upstream body with [`llmgate_core::sse::decode`] and re-frames each
//! event's data as a `data:` event at once; nothing is buffered beyond the event being decoded.
//! On the way it:
//!
//! - fills the [`UsageSlot`] from the chunk that carries usage (found with a substring check,
//!   so the other chunks are not parsed);
//! - drops the usage-only chunk (empty `choices`) when the client did not ask for usage (the
//!   gateway asked for it, to meter the stream);
//! - ends after `data: [DONE]`, reading what the upstream already sent so the connection can
//!   go back to the pool, but never waiting for more;
//! - checks each event's data is a JSON object (or `[DONE]`) before it goes out: anything else
//!   (the OpenAI SDKs would raise `JSONDecodeError`) ends the stream with an
//!   `upstream_invalid_stream` error event. The check is one pass of a scanner that accepts
//!   what serde_json accepts ([`llmgate_core::text::json_object_text`]) and also counts the
//!   model's text in the event into a [`TextCount`] on the response, so metering does not scan
//!   the events again;
//! - turns a broken upstream (body error, or end without `[DONE]`) into one OpenAI-shaped error
//!   event (`502`, "upstream stream ended before completion") and a clean end of the body;
//! - ends with an error event when the [`StreamWatch`] says so: no event for the idle timeout
//!   (`stream_idle_timeout`), or the gateway's cutoff at a stop (`gateway_shutting_down`).

use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::Stream;
use http::header::CONTENT_TYPE;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyDataStream;
use hyper::body::Incoming;
use llmgate_core::sse::{self, Event, EventStream, EventStreamError};
use llmgate_core::{
    BoxError, Deployment, DeploymentSpec, ProviderKind, StreamFailure, TextCount, UsageSlot,
};
use pin_project_lite::pin_project;

use llmgate_core::wire::Usage;
use memchr::memmem::Finder;
use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::error::{chain, Error};
use crate::redact;
use crate::watch::StreamWatch;

/// Refuses a 2xx answer to a stream request that is not an event stream.
pub(crate) fn check_content_type(headers: &HeaderMap, dep: &DeploymentSpec) -> Result<(), Error> {
    let is_sse = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start()
                .get(..17)
                .is_some_and(|p| p.eq_ignore_ascii_case("text/event-stream"))
        });
    if is_sse {
        return Ok(());
    }
    let ct = headers
        .get(CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    Err(Error::invalid(
        dep,
        format!("a streaming request was answered with content-type `{ct}`, not an event stream"),
    ))
}

pin_project! {
    /// An OpenAI stream relayed from an upstream body.
    #[project = RelayProj]
    pub(crate) struct Relay {
        #[pin]
        events: EventStream<BodyDataStream<Incoming>>,
        state: State,
        batch: BytesMut,
        slot: UsageSlot,
        // The text of the events relayed, for metering.
        text: TextCount,
        strip_usage_chunk: bool,
        provider: ProviderKind,
        deployment: Arc<str>,
        // The deployment, to redact its secrets from error events.
        dep: Deployment,
        watch: StreamWatch,
        event_limit: usize,
        // Where the error that ends the stream is reported, for the router.
        failure: StreamFailure,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Streaming,
    /// `[DONE]` went out: read what is already there, then end.
    Draining,
    Done,
}

/// Where a [`Relay`] reports what it saw: the usage, the text it counted, the error that
/// ended the stream.
pub(crate) struct Reports {
    pub(crate) usage: UsageSlot,
    pub(crate) text: TextCount,
    pub(crate) failure: StreamFailure,
}

impl Relay {
    /// Relays `body`; `strip_usage_chunk` when the client did not ask for usage; each event at
    /// most `event_limit` bytes.
    pub(crate) fn new(
        body: Incoming,
        reports: Reports,
        strip_usage_chunk: bool,
        watch: StreamWatch,
        event_limit: usize,
        dep: Deployment,
    ) -> Self {
        let Reports {
            usage: slot,
            text,
            failure,
        } = reports;
        Relay {
            events: sse::decode_limited(BodyDataStream::new(body), event_limit),
            state: State::Streaming,
            batch: BytesMut::new(),
            slot,
            text,
            strip_usage_chunk,
            provider: dep.provider,
            deployment: dep.id.clone(),
            dep,
            watch,
            event_limit,
            failure,
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
        // Events already decoded go out together in one frame (one write to the client); the
        // frame is sent as soon as the upstream has nothing more ready, so no event waits.
        loop {
            match *this.state {
                State::Done => return Poll::Ready(take(this.batch)),
                State::Draining => match this.events.as_mut().poll_next(cx) {
                    Poll::Ready(Some(_)) => continue,
                    Poll::Ready(None) | Poll::Pending => {
                        *this.state = State::Done;
                        return Poll::Ready(take(this.batch));
                    }
                },
                State::Streaming => {}
            }
            if this.watch.is_cut() {
                fail(
                    &mut this,
                    Error::ShuttingDown,
                    "the gateway is shutting down",
                );
                return Poll::Ready(take(this.batch));
            }
            let polled = match this.events.as_mut().poll_next(cx) {
                Poll::Pending => match this.watch.poll_stop(cx, *this.provider, this.deployment) {
                    Poll::Pending if this.batch.is_empty() => return Poll::Pending,
                    Poll::Pending => return Poll::Ready(take(this.batch)),
                    Poll::Ready(e) => {
                        let cause = e.to_string();
                        fail(&mut this, e, &cause);
                        return Poll::Ready(take(this.batch));
                    }
                },
                Poll::Ready(polled) => {
                    this.watch.event();
                    polled
                }
            };
            let (e, cause) = match polled {
                Some(Ok(event)) => match on_event(&mut this, &event) {
                    Some(frame) => return Poll::Ready(frame),
                    None => continue,
                },
                Some(Err(EventStreamError::TooLarge(_))) => (
                    Error::ResponseTooLarge {
                        provider: *this.provider,
                        deployment: this.deployment.clone(),
                        limit: u64::try_from(*this.event_limit).unwrap_or(u64::MAX),
                    },
                    "one stream event is larger than the limit".to_owned(),
                ),
                Some(Err(e)) => (broken(&this), chain(&e)),
                None => (
                    broken(&this),
                    "the upstream closed the stream without `[DONE]`".to_owned(),
                ),
            };
            fail(&mut this, e, &cause);
            return Poll::Ready(take(this.batch));
        }
    }

    fn is_end_stream(&self) -> bool {
        self.state == State::Done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// A frame is sent once this many bytes of events are waiting, even if more are ready.
const BATCH_LIMIT: usize = 16 * 1024;

/// The error for an upstream that broke off.
/// Relays one upstream event into the batch: `Some(frame)` when the frame must go out now
/// (the batch is full, or the event was invalid and the stream ends), `None` to read on.
fn on_event(
    this: &mut RelayProj<'_>,
    event: &Event,
) -> Option<Option<Result<Frame<Bytes>, BoxError>>> {
    match relay(
        event,
        this.slot,
        this.text,
        *this.strip_usage_chunk,
        this.dep,
        this.batch,
    ) {
        Relayed::Continue => {}
        Relayed::Done => {
            this.batch.put_slice(sse::DONE);
            *this.state = State::Draining;
        }
        Relayed::Invalid(detail) => {
            let e = Error::InvalidStream {
                provider: *this.provider,
                deployment: this.deployment.clone(),
                detail: detail.to_owned(),
            };
            fail(this, e, detail);
            return Some(take(this.batch));
        }
    }
    (this.batch.len() >= BATCH_LIMIT).then(|| take(this.batch))
}

fn broken(this: &RelayProj<'_>) -> Error {
    Error::StreamEnded {
        provider: *this.provider,
        deployment: this.deployment.clone(),
    }
}

/// Ends the stream with `e` as one error event after the events already waiting.
fn fail(this: &mut RelayProj<'_>, e: Error, cause: &str) {
    *this.state = State::Done;
    let e = redact::error(e, this.dep);
    let cause = redact::redact(cause, this.dep);
    tracing::warn!(
        provider = %this.provider,
        deployment = %this.deployment,
        code = llmgate_core::ErrorContract::code(&e).as_deref().unwrap_or_default(),
        %cause,
        "upstream stream ended with an error after its first event",
    );
    let api = e.into_api();
    this.batch.put_slice(&sse::error(&api));
    this.failure.set(api);
}

/// The waiting events as one frame, if any.
fn take(batch: &mut BytesMut) -> Option<Result<Frame<Bytes>, BoxError>> {
    (!batch.is_empty()).then(|| Ok(Frame::data(batch.split().freeze())))
}

pub(crate) enum Relayed {
    /// Framed into the batch, or skipped.
    Continue,
    /// `[DONE]`.
    Done,
    /// Not a JSON object: why.
    Invalid(&'static str),
}

pub(crate) fn relay(
    event: &Event,
    slot: &UsageSlot,
    text: &TextCount,
    strip_usage_chunk: bool,
    dep: &DeploymentSpec,
    out: &mut BytesMut,
) -> Relayed {
    let data = event.data.as_str();
    if data.is_empty() {
        return Relayed::Continue;
    }
    // OpenAI's events are unnamed ("message"); an `error` event's data is an error body the
    // SDKs raise. Anything else (pings, provider-specific events) is not OpenAI's.
    if !matches!(event.event.as_str(), "" | "message" | "error") {
        return Relayed::Continue;
    }
    if data.trim_end() == "[DONE]" {
        return Relayed::Done;
    }
    let text_bytes = match llmgate_core::text::json_object_text(data) {
        Ok(n) => n,
        Err(why) => return Relayed::Invalid(why.as_str()),
    };
    if let Some((usage, usage_only)) = chunk_usage(data) {
        slot.set(usage);
        if usage_only && strip_usage_chunk {
            return Relayed::Continue;
        }
    }
    if event.event == "error" || ERROR_KEY.find(data.as_bytes()).is_some() {
        // The upstream's own error, passed on: without the deployment's secrets.
        frame(&redact::redact(data, dep), out);
    } else {
        frame(data, out);
    }
    text.add(text_bytes);
    Relayed::Continue
}

/// The searchers for the two keys looked for in every event, built once: `str::contains`
/// builds its searcher on each call, which cost more than the search (about 1,300
/// instructions an event).
static ERROR_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("\"error\""));
static USAGE_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("\"usage\""));

/// Appends `data: ...\n\n`, one `data:` line per line of `data` (compact JSON has one).
fn frame(data: &str, out: &mut BytesMut) {
    out.reserve(data.len() + 8);
    if memchr::memchr2(b'\n', b'\r', data.as_bytes()).is_none() {
        // One line, as compact JSON is: copied whole, not split.
        out.put_slice(b"data: ");
        out.put_slice(data.as_bytes());
        out.put_slice(b"\n\n");
        return;
    }
    for line in data.split('\n') {
        out.put_slice(b"data: ");
        out.put_slice(line.trim_end_matches('\r').as_bytes());
        out.put_u8(b'\n');
    }
    out.put_u8(b'\n');
}

/// A stream event's usage, if it carries one, and whether it is the usage-only chunk (empty
/// `choices`) that the client did not ask for. Chunks without a `"usage": {` are not parsed.
pub(crate) fn chunk_usage(data: &str) -> Option<(Usage, bool)> {
    if !has_usage_object(data) {
        return None;
    }
    #[derive(Deserialize)]
    struct Chunk {
        #[serde(default)]
        choices: Option<Vec<IgnoredAny>>,
        #[serde(default)]
        usage: Option<Usage>,
        /// Groq reports usage here.
        #[serde(default)]
        x_groq: Option<XGroq>,
    }
    #[derive(Deserialize)]
    struct XGroq {
        #[serde(default)]
        usage: Option<Usage>,
    }
    let chunk: Chunk = serde_json::from_str(data).ok()?;
    let usage_only = chunk.choices.as_ref().is_some_and(Vec::is_empty) && chunk.usage.is_some();
    let usage = chunk.usage.or_else(|| chunk.x_groq.and_then(|x| x.usage))?;
    Some((usage, usage_only))
}

/// Whether `"usage"` appears as a key followed by an object (OpenAI sends `"usage":null` in
/// every chunk of a stream that asked for usage; those are skipped without parsing).
fn has_usage_object(data: &str) -> bool {
    const KEY_LEN: usize = "\"usage\"".len();
    let bytes = data.as_bytes();
    let mut from = 0;
    while let Some(i) = bytes.get(from..).and_then(|rest| USAGE_KEY.find(rest)) {
        let mut j = from + i + KEY_LEN;
        from = j;
        while bytes.get(j).is_some_and(u8::is_ascii_whitespace) {
            j += 1;
        }
        if bytes.get(j) != Some(&b':') {
            continue;
        }
        j += 1;
        while bytes.get(j).is_some_and(u8::is_ascii_whitespace) {
            j += 1;
        }
        if bytes.get(j) == Some(&b'{') {
            return true;
        }
    }
    false
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

    fn dep() -> DeploymentSpec {
        DeploymentSpec::new("d", "g", ProviderKind::OpenAi, "m")
    }

    /// Relays one event; returns what was framed and the outcome.
    fn one(name: &str, data: &str, slot: &UsageSlot, strip: bool) -> (String, bool) {
        let mut out = BytesMut::new();
        let done = matches!(
            relay(
                &event(name, data),
                slot,
                &TextCount::new(),
                strip,
                &dep(),
                &mut out
            ),
            Relayed::Done
        );
        (String::from_utf8(out.to_vec()).unwrap(), done)
    }

    #[test]
    fn relays_strips_and_stops() {
        let slot = UsageSlot::new();
        let chunk = r#"{"choices":[{"index":0,"delta":{"content":"hi"}}],"usage":null}"#;
        assert_eq!(
            one("message", chunk, &slot, true),
            (format!("data: {chunk}\n\n"), false)
        );
        let usage =
            r#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#;
        assert_eq!(one("message", usage, &slot, true), (String::new(), false));
        assert_eq!(slot.get().unwrap().total_tokens, 3);
        assert!(!one("message", usage, &UsageSlot::new(), false).0.is_empty());
        assert_eq!(one("message", "[DONE]", &slot, true), (String::new(), true));
        assert_eq!(one("ping", "{}", &slot, true), (String::new(), false));
        assert_eq!(one("message", "", &slot, true), (String::new(), false));
        for bad in ["{\"a\": nope", "42", "[{}]", "\"x\"", "{} {}", "null"] {
            let mut out = BytesMut::new();
            assert!(
                matches!(
                    relay(
                        &event("message", bad),
                        &slot,
                        &TextCount::new(),
                        true,
                        &dep(),
                        &mut out
                    ),
                    Relayed::Invalid(_)
                ),
                "{bad}"
            );
            assert!(out.is_empty());
        }
    }

    #[test]
    fn counts_the_text_it_relays() {
        let slot = UsageSlot::new();
        let text = TextCount::new();
        let mut out = BytesMut::new();
        for data in [
            r#"{"choices":[{"index":0,"delta":{"content":"Hello"}}],"usage":null}"#,
            r#"{"choices":[{"index":0,"delta":{"reasoning_content":"hm","content":" you"}}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#,
        ] {
            relay(&event("", data), &slot, &text, true, &dep(), &mut out);
        }
        assert_eq!(text.get(), 11);
    }

    #[test]
    fn frames_multiline_data() {
        let mut out = BytesMut::new();
        frame("{\n\"a\":1\n}", &mut out);
        assert_eq!(&out[..], b"data: {\ndata: \"a\":1\ndata: }\n\n");
        // One line, and a line end kept out of a line (a CR the decoder never leaves).
        frame("{\"a\":1}", &mut out);
        frame("{}\r", &mut out);
        assert_eq!(
            &out[..],
            b"data: {\ndata: \"a\":1\ndata: }\n\ndata: {\"a\":1}\n\ndata: {}\n\n"
        );
    }

    #[test]
    fn finds_usage_chunks_cheaply() {
        assert!(
            chunk_usage(r#"{"choices":[{"delta":{"content":"\"usage\": {"}}],"usage":null}"#)
                .is_none()
        );
        let (u, only) = chunk_usage(
            r#"{"choices":[],"usage" : {"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#,
        )
        .unwrap();
        assert_eq!((u.total_tokens, only), (3, true));
        let (u, only) = chunk_usage(
            r#"{"choices":[{"delta":{}}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#,
        )
        .unwrap();
        assert_eq!((u.total_tokens, only), (2, false));
        let (u, only) = chunk_usage(
            r#"{"choices":[{"delta":{}}],"x_groq":{"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}}"#,
        )
        .unwrap();
        assert_eq!((u.total_tokens, only), (2, false));
    }
}
