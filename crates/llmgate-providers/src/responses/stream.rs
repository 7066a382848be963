//! A Responses API stream relayed as it is: each upstream event framed again exactly as it came
//! (`event:` line, `data:` lines), never buffered beyond what the upstream has ready; the usage
//! of the terminal `response.completed` / `response.incomplete` / `response.failed` event
//! reported for metering.
//!
//! A stream that breaks after its head (an upstream cut, an event that is not JSON, the idle
//! timeout, the gateway's cutoff) ends with a `response.failed` event of our own (the last
//! response object the upstream sent, `status: failed`, an `error`), never a cut; the error is
//! reported to the router as [`StreamFailure`].

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::Stream;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyDataStream;
use hyper::body::Incoming;
use llmgate_core::sse::{self, Event, EventStream, EventStreamError};
use llmgate_core::{ApiError, BoxError, Deployment, ErrorContract, StreamFailure, UsageSlot};
use pin_project_lite::pin_project;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{chain, Error};
use crate::redact;
use crate::upstream::StreamSlots;
use crate::watch::StreamWatch;

pin_project! {
    /// A Responses stream relayed from an upstream body.
    #[project = RelayProj]
    pub(crate) struct Relay {
        #[pin]
        events: EventStream<BodyDataStream<Incoming>>,
        done: bool,
        batch: BytesMut,
        usage: UsageSlot,
        failure: StreamFailure,
        dep: Deployment,
        watch: StreamWatch,
        event_limit: usize,
        // The last response object the upstream sent (`response.created`, ...).
        last: Option<Value>,
        // The next sequence number.
        next_seq: u64,
    }
}

impl Relay {
    pub(crate) fn new(
        body: Incoming,
        slots: &StreamSlots,
        watch: StreamWatch,
        event_limit: usize,
        dep: Deployment,
    ) -> Self {
        Relay {
            events: sse::decode_limited(BodyDataStream::new(body), event_limit),
            done: false,
            batch: BytesMut::new(),
            usage: slots.usage.clone(),
            failure: slots.failure.clone(),
            dep,
            watch,
            event_limit,
            last: None,
            next_seq: 0,
        }
    }
}

/// The lifecycle events whose data carries the whole response object.
fn carries_response(kind: &str) -> bool {
    matches!(
        kind,
        "response.created"
            | "response.in_progress"
            | "response.queued"
            | "response.completed"
            | "response.incomplete"
            | "response.failed"
    )
}

fn is_terminal(kind: &str) -> bool {
    matches!(
        kind,
        "response.completed" | "response.incomplete" | "response.failed" | "error"
    )
}

/// What the relay reads of every event without building it.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow, rename = "type", default)]
    kind: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    sequence_number: Option<u64>,
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
            if *this.done {
                return Poll::Ready(take(this.batch));
            }
            if this.watch.is_cut() {
                fail(&mut this, Error::ShuttingDown);
                continue;
            }
            let polled = match this.events.as_mut().poll_next(cx) {
                Poll::Pending => match this.watch.poll_stop(cx, this.dep.provider, &this.dep.id) {
                    Poll::Pending if this.batch.is_empty() => return Poll::Pending,
                    Poll::Pending => return Poll::Ready(take(this.batch)),
                    Poll::Ready(e) => {
                        fail(&mut this, e);
                        continue;
                    }
                },
                Poll::Ready(polled) => {
                    this.watch.event();
                    polled
                }
            };
            match polled {
                Some(Ok(event)) => {
                    if let Err(e) = on_event(&mut this, &event) {
                        fail(&mut this, e);
                    }
                    if this.batch.len() >= BATCH_LIMIT {
                        return Poll::Ready(take(this.batch));
                    }
                }
                Some(Err(EventStreamError::TooLarge(_))) => {
                    let e = Error::ResponseTooLarge {
                        provider: this.dep.provider,
                        deployment: this.dep.id.clone(),
                        limit: u64::try_from(*this.event_limit).unwrap_or(u64::MAX),
                    };
                    fail(&mut this, e);
                }
                Some(Err(e)) => {
                    tracing::debug!(error = %chain(&e), "the upstream /responses stream broke");
                    let e = ended(this.dep);
                    fail(&mut this, e);
                }
                None => {
                    let e = ended(this.dep);
                    fail(&mut this, e);
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.batch.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// A frame is sent once this many bytes of events are waiting, even if more are ready.
const BATCH_LIMIT: usize = 16 * 1024;

fn ended(dep: &Deployment) -> Error {
    Error::StreamEnded {
        provider: dep.provider,
        deployment: dep.id.clone(),
    }
}

/// Relays one event into the batch, noting its sequence number, the response object it
/// carries and, at the end, its usage.
fn on_event(this: &mut RelayProj<'_>, event: &Event) -> Result<(), Error> {
    let data = event.data.as_str();
    if data.is_empty() {
        return Ok(());
    }
    if data.trim_end() == "[DONE]" {
        frame(&event.event, data, this.batch);
        *this.done = true;
        return Ok(());
    }
    let invalid = |detail: &str| Error::InvalidStream {
        provider: this.dep.provider,
        deployment: this.dep.id.clone(),
        detail: detail.to_owned(),
    };
    if !data.trim_start().starts_with('{') {
        return Err(invalid("its data is not a JSON object"));
    }
    let head: Head<'_> =
        serde_json::from_str(data).map_err(|_| invalid("its data is not valid JSON"))?;
    if let Some(n) = head.sequence_number {
        *this.next_seq = n + 1;
    }
    let kind = head.kind.as_deref().unwrap_or(event.event.as_str());
    if kind == "error" || kind == "response.failed" {
        frame(&event.event, &redact::redact(data, this.dep), this.batch);
    } else {
        frame(&event.event, data, this.batch);
    }
    if carries_response(kind) {
        let v: Value =
            serde_json::from_str(data).map_err(|_| invalid("its data is not valid JSON"))?;
        if let Some(response) = v.get("response") {
            if let Some(u) = response.get("usage").and_then(super::usage) {
                this.usage.set(u);
            }
            *this.last = Some(response.clone());
        }
    }
    if is_terminal(kind) {
        if kind == "error" || kind == "response.failed" {
            let message = redact::redact(data, this.dep).into_owned();
            this.failure.set(
                Error::InvalidStream {
                    provider: this.dep.provider,
                    deployment: this.dep.id.clone(),
                    detail: format!("the upstream ended its stream with an error: {message}"),
                }
                .into_api(),
            );
        }
        *this.done = true;
    }
    Ok(())
}

/// Ends the stream with our own `response.failed` after the events already waiting.
fn fail(this: &mut RelayProj<'_>, e: Error) {
    *this.done = true;
    let e = redact::error(e, this.dep);
    tracing::warn!(
        provider = %this.dep.provider,
        deployment = %this.dep.id,
        code = e.code().as_deref().unwrap_or_default(),
        error = %e,
        "upstream /responses stream ended with an error after its first event",
    );
    let api: ApiError = e.into_api();
    let mut response = this
        .last
        .take()
        .unwrap_or_else(|| json!({"object": "response", "output": []}));
    if let Value::Object(r) = &mut response {
        r.insert("status".to_owned(), json!("failed"));
        r.insert(
            "error".to_owned(),
            json!({"code": "server_error", "message": api.message()}),
        );
    }
    let event = json!({
        "type": "response.failed",
        "sequence_number": *this.next_seq,
        "response": response,
    });
    frame("response.failed", &event.to_string(), this.batch);
    this.failure.set(api);
}

/// Appends the event as it came: `event: NAME` (when named), one `data:` line per line.
fn frame(name: &str, data: &str, out: &mut BytesMut) {
    out.reserve(data.len() + name.len() + 16);
    if !name.is_empty() && name != "message" {
        out.put_slice(b"event: ");
        out.put_slice(name.as_bytes());
        out.put_u8(b'\n');
    }
    for line in data.split('\n') {
        out.put_slice(b"data: ");
        out.put_slice(line.trim_end_matches('\r').as_bytes());
        out.put_u8(b'\n');
    }
    out.put_u8(b'\n');
}

/// The waiting events as one frame, if any.
fn take(batch: &mut BytesMut) -> Option<Result<Frame<Bytes>, BoxError>> {
    (!batch.is_empty()).then(|| Ok(Frame::data(batch.split().freeze())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_as_it_came() {
        let mut out = BytesMut::new();
        frame("response.created", "{\"a\":1}", &mut out);
        frame("", "{}", &mut out);
        assert_eq!(
            &out[..],
            b"event: response.created\ndata: {\"a\":1}\n\ndata: {}\n\n"
        );
        assert!(is_terminal("response.incomplete") && !is_terminal("response.output_text.delta"));
        assert!(
            carries_response("response.created") && !carries_response("response.output_item.added")
        );
    }
}
