//! [`TranslatedRelay`]: a native provider's stream, translated event by event into OpenAI's
//! SSE chunks as it arrives.
//!
//! Each upstream event goes through the dialect's [`Translator`]; the chunks it yields are
//! framed as `data:` events at once. When the translator says the stream is done, the relay
//! fills the [`UsageSlot`], sends a usage-only chunk (`choices: []`) if the client asked for
//! `stream_options.include_usage`, then `data: [DONE]`. A broken upstream (body error, an end
//! the translator does not accept, an error event, an event past the size limit) becomes one
//! OpenAI error event and a clean end of the body; so does the [`StreamWatch`] firing (no event
//! for the idle timeout, or the gateway's cutoff at a stop).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyDataStream;
use hyper::body::Incoming;
use llmgate_core::sse;
use llmgate_core::wire::ChatCompletionChunk;
use llmgate_core::{BoxError, Deployment, ProviderKind, StreamFailure, UsageSlot};

use super::{ndjson::Lines, Dialect, Flow, Framing, RawEvent, Translator};
use crate::error::Error;
use crate::redact;
use crate::watch::StreamWatch;

/// A frame is sent once this many bytes of events are waiting, even if more are ready.
const BATCH_LIMIT: usize = 16 * 1024;

/// A decoded upstream event stream.
pub(crate) type EventStreamBox = Pin<Box<dyn Stream<Item = Result<RawEvent, Broken>> + Send>>;

/// Why a decoded stream stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Broken {
    /// The body or its framing broke: the cause.
    Cause(String),
    /// One event grew past the size limit.
    TooLarge,
}

/// Decodes `body` by `framing`, each event at most `event_limit` bytes (AWS's event stream by
/// the dialect's [`Dialect::decode_aws`]).
pub(crate) fn decode(
    dialect: &'static dyn Dialect,
    framing: Framing,
    body: Incoming,
    event_limit: usize,
) -> Option<EventStreamBox> {
    match framing {
        Framing::Sse => Some(Box::pin(
            sse::decode_limited(BodyDataStream::new(body), event_limit).map(|e| {
                e.map(|e| RawEvent::Sse {
                    event: e.event,
                    data: e.data,
                })
                .map_err(|e| match e {
                    sse::EventStreamError::TooLarge(_) => Broken::TooLarge,
                    other => Broken::Cause(other.to_string()),
                })
            }),
        )),
        Framing::Ndjson => Some(Box::pin(Lines::new(BodyDataStream::new(body), event_limit))),
        Framing::AwsEventStream => dialect.decode_aws(body),
    }
}

/// The streaming body of a native provider's answer.
pub(crate) struct TranslatedRelay {
    events: EventStreamBox,
    translator: Box<dyn Translator>,
    chunks: Vec<ChatCompletionChunk>,
    /// Framed events not yet handed to the host: sent together as one frame as soon as the
    /// upstream has nothing more ready.
    pending: BytesMut,
    slot: UsageSlot,
    include_usage: bool,
    /// id, model and created of the last chunk, for the usage chunk.
    last: Option<(String, String, u64)>,
    done: bool,
    provider: ProviderKind,
    deployment: Arc<str>,
    /// The deployment, to redact its secrets from an error event.
    dep: Deployment,
    watch: StreamWatch,
    event_limit: usize,
    /// Where the error that ends the stream is reported, for the router.
    failure: StreamFailure,
}

impl TranslatedRelay {
    #[expect(
        clippy::too_many_arguments,
        reason = "a private constructor with one caller; each argument is a distinct part"
    )]
    pub(crate) fn new(
        events: EventStreamBox,
        translator: Box<dyn Translator>,
        slot: UsageSlot,
        include_usage: bool,
        watch: StreamWatch,
        event_limit: usize,
        dep: Deployment,
        failure: StreamFailure,
    ) -> Self {
        TranslatedRelay {
            events,
            translator,
            chunks: Vec::new(),
            pending: BytesMut::new(),
            slot,
            include_usage,
            last: None,
            done: false,
            provider: dep.provider,
            deployment: dep.id.clone(),
            dep,
            watch,
            event_limit,
            failure,
        }
    }

    fn push_chunks(&mut self) {
        for chunk in self.chunks.drain(..) {
            match serde_json::to_vec(&chunk) {
                Ok(json) => {
                    self.pending.reserve(json.len() + 8);
                    self.pending.put_slice(b"data: ");
                    self.pending.put_slice(&json);
                    self.pending.put_slice(b"\n\n");
                }
                Err(e) => tracing::error!(error = %e, "cannot serialise a stream chunk"),
            }
            self.last = Some((chunk.id, chunk.model, chunk.created));
        }
    }

    fn finish(&mut self) {
        self.push_chunks();
        if let Some(usage) = self.translator.usage() {
            self.slot.set(usage.clone());
            if self.include_usage {
                let (id, model, created) = self.last.clone().unwrap_or_default();
                self.chunks.push(ChatCompletionChunk {
                    id,
                    object: "chat.completion.chunk".to_owned(),
                    created,
                    model,
                    choices: Vec::new(),
                    usage: Some(usage),
                    extra: serde_json::Map::new(),
                });
                self.push_chunks();
            }
        }
        self.pending.put_slice(sse::DONE);
        self.done = true;
    }

    fn fail(&mut self, error: Error, cause: &str) {
        self.push_chunks();
        let error = redact::error(error, &self.dep);
        let cause = redact::redact(cause, &self.dep);
        tracing::warn!(
            provider = %self.provider,
            deployment = %self.deployment,
            code = llmgate_core::ErrorContract::code(&error).as_deref().unwrap_or_default(),
            %cause,
            "upstream stream ended with an error after its first event",
        );
        let api = error.into_api();
        self.pending.put_slice(&sse::error(&api));
        self.failure.set(api);
        self.done = true;
    }

    /// The waiting events as one frame, if any.
    fn take(&mut self) -> Option<Result<Frame<Bytes>, BoxError>> {
        (!self.pending.is_empty()).then(|| Ok(Frame::data(self.pending.split().freeze())))
    }

    fn broken(&self) -> Error {
        Error::StreamEnded {
            provider: self.provider,
            deployment: self.deployment.clone(),
        }
    }
}

impl Body for TranslatedRelay {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(this.take());
            }
            if this.watch.is_cut() {
                this.fail(Error::ShuttingDown, "the gateway is shutting down");
                continue;
            }
            let polled = match this.events.as_mut().poll_next(cx) {
                Poll::Pending => match this.watch.poll_stop(cx, this.provider, &this.deployment) {
                    Poll::Pending if this.pending.is_empty() => return Poll::Pending,
                    Poll::Pending => return Poll::Ready(this.take()),
                    Poll::Ready(e) => {
                        let cause = e.to_string();
                        this.fail(e, &cause);
                        continue;
                    }
                },
                Poll::Ready(polled) => {
                    this.watch.event();
                    polled
                }
            };
            match polled {
                Some(Ok(event)) => match this.translator.event(event, &mut this.chunks) {
                    Ok(Flow::Continue) => this.push_chunks(),
                    Ok(Flow::Done) => this.finish(),
                    Err(e) => {
                        let cause = e.to_string();
                        this.fail(e, &cause);
                    }
                },
                Some(Err(Broken::TooLarge)) => {
                    let e = Error::ResponseTooLarge {
                        provider: this.provider,
                        deployment: this.deployment.clone(),
                        limit: u64::try_from(this.event_limit).unwrap_or(u64::MAX),
                    };
                    this.fail(e, "one stream event is larger than the limit");
                }
                Some(Err(Broken::Cause(cause))) => {
                    let e = this.broken();
                    this.fail(e, &cause);
                }
                None => {
                    if this.translator.at_eof(&mut this.chunks) {
                        this.finish();
                    } else {
                        let e = this.broken();
                        this.fail(e, "the upstream closed the stream before its end event");
                    }
                }
            }
            if this.pending.len() >= BATCH_LIMIT {
                return Poll::Ready(this.take());
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.pending.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
