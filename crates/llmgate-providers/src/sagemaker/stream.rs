//! `invocations-response-stream`'s answer: AWS's event stream (decoded as Bedrock's is) whose
//! `PayloadPart` events carry the container's own bytes, here TGI's server-sent events. A
//! payload may hold part of an event or several: the bytes are joined and cut at blank lines
//! ([`Payloads`]), and each event's `data:` is one JSON object.
//!
//! - `sagemaker/` ([`TgiStream`]): `{"token": {"text", "special"}, "generated_text",
//!   "details"}` per generated token; each token's text (special tokens such as `</s>` left
//!   out) becomes a chunk; the event with `generated_text` ends the stream with the
//!   `finish_reason` (`length` when `details.finish_reason` says so, else `stop`). Usage: the
//!   prompt estimated, the completion the tokens counted.
//! - `sagemaker_chat/` ([`ChatStream`]): OpenAI's `chat.completion.chunk`s, relayed as they
//!   are, ending at `data: [DONE]`; usage from the chunk carrying it, else estimated as in
//!   [`crate::text_stream`].
//!
//! A `ModelStreamError` or `InternalStreamFailure` exception, or a `data: {"error": ...}`
//! event, ends the stream with that error (502).

use bytes::Bytes;
use llmgate_core::wire::{ChatCompletionChunk, ChatCompletionRequest};
use llmgate_core::{LlmBody, Usage};
use serde_json::{json, Value};

use crate::dialect::{Ctx, Flow, RawEvent, Translator};
use crate::error::{Error, Named};
use crate::text_stream::TextChunks;

/// Server-sent events carried in pieces: the `data:` of each complete event.
#[derive(Default)]
pub(super) struct Payloads {
    buf: Vec<u8>,
}

impl Payloads {
    /// Adds `bytes`, pushing the data of each event they complete.
    pub(super) fn push(&mut self, bytes: &[u8], out: &mut Vec<String>) {
        self.buf.extend_from_slice(bytes);
        while let Some((end, skip)) = boundary(&self.buf) {
            let event: Vec<u8> = self.buf.drain(..end + skip).take(end).collect();
            let text = String::from_utf8_lossy(&event);
            let data: Vec<&str> = text
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            if !data.is_empty() {
                out.push(data.join("\n"));
            }
        }
    }
}

/// Where the first event in `buf` ends, and the length of the blank line after it.
fn boundary(buf: &[u8]) -> Option<(usize, usize)> {
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    let crlf = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 < b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// The data strings of a decoded event-stream message, or the error it carries.
fn payload_data(
    named: &Named,
    payloads: &mut Payloads,
    event: RawEvent,
) -> Result<Vec<String>, Error> {
    let RawEvent::Aws {
        event_type,
        message_type,
        payload,
    } = event
    else {
        return Err(named.invalid("not an event-stream message"));
    };
    if message_type != "event" {
        return Err(crate::bedrock::error::from_stream(
            named.provider,
            named.deployment.clone(),
            &event_type,
            &payload,
        ));
    }
    let mut out = Vec::new();
    if event_type == "PayloadPart" {
        payloads.push(&payload, &mut out);
    }
    Ok(out)
}

/// One event's JSON, or the model's error it carries.
fn parse(named: &Named, data: &str) -> Result<Value, Error> {
    let v: Value = serde_json::from_str(data)
        .map_err(|e| named.invalid(format!("a stream event is not JSON: {e}")))?;
    match v.get("error") {
        Some(e) if !e.is_null() => {
            let message = e
                .as_str()
                .or_else(|| e.get("message").and_then(Value::as_str))
                .unwrap_or("the model failed");
            Err(crate::bedrock::error::from_stream(
                named.provider,
                named.deployment.clone(),
                "ModelStreamError",
                &Bytes::from(json!({ "message": message }).to_string()),
            ))
        }
        _ => Ok(v),
    }
}

/// The chat request's prompt as sent (TGI) or its messages' text (chat), for estimates.
fn prompt_text(ctx: &Ctx<'_>, tgi: bool) -> String {
    match ctx.llm.body() {
        LlmBody::Chat(r) if tgi => super::tgi::prompt_of(ctx, r),
        LlmBody::Chat(r) => messages_text(r),
        _ => String::new(),
    }
}

fn messages_text(r: &ChatCompletionRequest) -> String {
    r.messages
        .iter()
        .filter_map(|m| m.content.as_ref().map(|c| c.text()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `sagemaker/`'s TGI token stream.
pub(super) struct TgiStream {
    named: Named,
    payloads: Payloads,
    chunks: TextChunks,
    tokens: u64,
    usage: Option<Usage>,
}

impl TgiStream {
    pub(super) fn new(ctx: &Ctx<'_>) -> Self {
        TgiStream {
            named: Named::of(ctx.dep),
            payloads: Payloads::default(),
            chunks: TextChunks::new(&ctx.dep.model, &prompt_text(ctx, true)),
            tokens: 0,
            usage: None,
        }
    }

    fn data(&mut self, data: &str, out: &mut Vec<ChatCompletionChunk>) -> Result<Flow, Error> {
        let v = parse(&self.named, data)?;
        if let Some(token) = v.get("token") {
            self.tokens += 1;
            let text = token["text"].as_str().unwrap_or_default();
            if token["special"] != json!(true) && !text.is_empty() {
                out.push(self.chunks.text(text));
            }
        }
        if v["generated_text"].is_string() {
            let details = &v["details"];
            let reason = match details["finish_reason"].as_str() {
                Some("length") => "length",
                _ => "stop",
            };
            out.push(self.chunks.finish(reason));
            let counted = details["generated_tokens"].as_u64().unwrap_or(self.tokens);
            self.usage = Some(self.chunks.usage(Some(counted)));
            return Ok(Flow::Done);
        }
        Ok(Flow::Continue)
    }
}

impl Translator for TgiStream {
    fn event(
        &mut self,
        event: RawEvent,
        out: &mut Vec<ChatCompletionChunk>,
    ) -> Result<Flow, Error> {
        for data in payload_data(&self.named, &mut self.payloads, event)? {
            if self.data(&data, out)? == Flow::Done {
                return Ok(Flow::Done);
            }
        }
        Ok(Flow::Continue)
    }

    fn usage(&self) -> Option<Usage> {
        self.usage.clone()
    }
}

/// `sagemaker_chat/`'s OpenAI chunk stream.
pub(super) struct ChatStream {
    named: Named,
    payloads: Payloads,
    estimate: TextChunks,
    reported: Option<Usage>,
    finished: bool,
}

impl ChatStream {
    pub(super) fn new(ctx: &Ctx<'_>) -> Self {
        ChatStream {
            named: Named::of(ctx.dep),
            payloads: Payloads::default(),
            estimate: TextChunks::new(&ctx.dep.model, &prompt_text(ctx, false)),
            reported: None,
            finished: false,
        }
    }

    fn data(&mut self, data: &str, out: &mut Vec<ChatCompletionChunk>) -> Result<Flow, Error> {
        if data.trim() == "[DONE]" {
            return Ok(Flow::Done);
        }
        let v = parse(&self.named, data)?;
        let mut chunk: ChatCompletionChunk = serde_json::from_value(v).map_err(|e| {
            self.named
                .invalid(format!("not a chat.completion.chunk: {e}"))
        })?;
        if let Some(u) = chunk.usage.take() {
            self.reported = Some(u);
        }
        for c in &chunk.choices {
            if let Some(text) = &c.delta.content {
                // Counted only for the estimate; the chunk is relayed as it is.
                let _ = self.estimate.text(text);
            }
            self.finished |= c.finish_reason.is_some();
        }
        if !chunk.choices.is_empty() {
            out.push(chunk);
        }
        Ok(Flow::Continue)
    }
}

impl Translator for ChatStream {
    fn event(
        &mut self,
        event: RawEvent,
        out: &mut Vec<ChatCompletionChunk>,
    ) -> Result<Flow, Error> {
        for data in payload_data(&self.named, &mut self.payloads, event)? {
            if self.data(&data, out)? == Flow::Done {
                return Ok(Flow::Done);
            }
        }
        Ok(Flow::Continue)
    }

    fn usage(&self) -> Option<Usage> {
        Some(
            self.reported
                .clone()
                .unwrap_or_else(|| self.estimate.usage(None)),
        )
    }

    /// A stream that ends after a chunk with a `finish_reason` but without `[DONE]` is
    /// complete (older TGI versions send no `[DONE]`).
    fn at_eof(&mut self, _out: &mut Vec<ChatCompletionChunk>) -> bool {
        self.finished
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_cut_at_blank_lines_across_parts() {
        let mut p = Payloads::default();
        let mut out = Vec::new();
        p.push(b"data:{\"a\":", &mut out);
        assert!(out.is_empty());
        p.push(
            b"1}\n\ndata: {\"b\":2}\r\n\r\nevent: x\ndata: [DONE]",
            &mut out,
        );
        assert_eq!(out, ["{\"a\":1}", "{\"b\":2}"]);
        p.push(b"\n\n", &mut out);
        assert_eq!(out.last().map(String::as_str), Some("[DONE]"));
    }
}
