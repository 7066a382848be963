//! OpenAI chunks -> Anthropic's stream events, as each chunk arrives.
//!
//! | OpenAI | Anthropic |
//! |---|---|
//! | the first chunk | `message_start` (id, model; usage 0 until the end) |
//! | `delta.reasoning_content` | `thinking` block: `content_block_start`, `thinking_delta` |
//! | `delta.thinking_blocks[].signature` | `signature_delta` |
//! | `delta.content` | `text` block: `content_block_start`, `text_delta` |
//! | `delta.tool_calls` with an id or name | `tool_use` block: `content_block_start` (id, name, `input: {}`) |
//! | `delta.tool_calls[].function.arguments` | `input_json_delta` |
//! | a new kind of block, or `finish_reason` | `content_block_stop` of the open block |
//! | the usage chunk | kept for `message_delta` |
//! | `[DONE]` | `message_delta` (`stop_reason`, usage), `message_stop` |
//! | an error event, or a stream that breaks | an `error` event, then the end |
//!
//! `message_delta` waits for `[DONE]` because OpenAI sends usage after the finish reason.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use http::{Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyDataStream;
use llmgate_core::sse::{self, EventStream};
use llmgate_core::wire::anthropic::{
    self, BlockDelta, ContentBlock, ErrorObject, MessageDelta, StreamEvent,
};
use llmgate_core::wire::{ChatCompletionChunk, Usage};
use llmgate_core::{BoxBody, BoxError, RequestId};
use serde_json::{Map, Value};

use super::response::{anthropic_type, stop_reason, usage};

/// The OpenAI stream of `res`, as Anthropic's; a break is logged with the request's `id`.
pub(crate) fn translate(res: Response<BoxBody>, id: Option<RequestId>) -> Response<BoxBody> {
    let (mut parts, body) = res.into_parts();
    parts.headers.remove(CONTENT_LENGTH);
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    parts
        .headers
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    let body = AnthropicStream {
        events: sse::decode(BodyDataStream::new(body)),
        convert: Converter::default(),
        pending: VecDeque::new(),
        done: false,
        id,
    };
    Response::from_parts(parts, BoxBody::new(body))
}

/// The translated body.
struct AnthropicStream {
    events: EventStream<BodyDataStream<BoxBody>>,
    convert: Converter,
    pending: VecDeque<Bytes>,
    done: bool,
    /// The request's id, for the log line of a break.
    id: Option<RequestId>,
}

impl Body for AnthropicStream {
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
            if this.done {
                return Poll::Ready(None);
            }
            let out = &mut this.pending;
            match ready!(Pin::new(&mut this.events).poll_next(cx)) {
                Some(Ok(event)) => {
                    this.done = this.convert.data(&event.data, out);
                }
                Some(Err(e)) => {
                    let request_id = this.id.as_ref().map_or("", |i| &*i.0);
                    tracing::warn!(request_id, error = %e, "the stream behind /v1/messages broke");
                    this.convert.fail(
                        "api_error",
                        "the upstream stream ended before completion".to_owned(),
                        out,
                    );
                    this.done = true;
                }
                None => {
                    if !this.convert.finished {
                        this.convert.fail(
                            "api_error",
                            "the upstream stream ended before completion".to_owned(),
                            out,
                        );
                    }
                    this.done = true;
                }
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

/// What the open content block is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    Thinking,
    /// A tool call, by its OpenAI index.
    Tool(u32),
}

/// The translation's state.
#[derive(Debug, Default)]
struct Converter {
    started: bool,
    finished: bool,
    /// The open block and its index.
    open: Option<(Open, u32)>,
    next_index: u32,
    /// OpenAI tool-call index -> Anthropic block index and the call's id.
    tools: HashMap<u32, (u32, String)>,
    stop_reason: Option<&'static str>,
    usage: Option<Usage>,
}

fn emit(out: &mut VecDeque<Bytes>, event: &StreamEvent) {
    match serde_json::to_vec(event) {
        Ok(json) => out.push_back(sse::named(event.name(), &json)),
        Err(e) => tracing::error!(error = %e, "cannot serialise a /v1/messages event"),
    }
}

impl Converter {
    /// One `data:` payload; `true` when the stream is over.
    fn data(&mut self, data: &str, out: &mut VecDeque<Bytes>) -> bool {
        if data.trim() == "[DONE]" {
            self.finish(out);
            return true;
        }
        let v: Value = match serde_json::from_str(data) {
            Ok(v) => v,
            Err(e) => {
                self.fail(
                    "api_error",
                    format!("a stream event that does not parse: {e}"),
                    out,
                );
                return true;
            }
        };
        if let Some(e) = v.get("error").filter(|e| e.is_object()) {
            let text = |k: &str| e.get(k).and_then(Value::as_str);
            let code = text("code");
            let status = code
                .and_then(anthropic::status_for_error_type)
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let kind = anthropic_type(status, code).to_owned();
            self.fail(
                &kind,
                text("message").unwrap_or("stream error").to_owned(),
                out,
            );
            return true;
        }
        match serde_json::from_value::<ChatCompletionChunk>(v) {
            Ok(chunk) => self.chunk(chunk, out),
            Err(e) => {
                self.fail(
                    "api_error",
                    format!("a stream chunk that does not parse: {e}"),
                    out,
                );
                return true;
            }
        }
        false
    }

    fn chunk(&mut self, chunk: ChatCompletionChunk, out: &mut VecDeque<Bytes>) {
        if !self.started {
            self.started = true;
            emit(
                out,
                &StreamEvent::MessageStart {
                    message: anthropic::Message {
                        id: chunk.id.clone(),
                        message_type: "message".to_owned(),
                        role: "assistant".to_owned(),
                        model: chunk.model.clone(),
                        content: Vec::new(),
                        stop_reason: None,
                        stop_sequence: None,
                        usage: usage(&Usage::default()),
                    },
                },
            );
        }
        if let Some(u) = chunk.usage {
            self.usage = Some(u);
        }
        let Some(choice) = chunk.choices.into_iter().next() else {
            return;
        };
        let delta = choice.delta;
        if let Some(t) = delta.extra.get("reasoning_content").and_then(Value::as_str) {
            if !t.is_empty() {
                self.ensure(Open::Thinking, out);
                self.delta(
                    BlockDelta::ThinkingDelta {
                        thinking: t.to_owned(),
                    },
                    out,
                );
            }
        }
        if let Some(Value::Array(blocks)) = delta.extra.get("thinking_blocks") {
            for b in blocks {
                self.thinking_block(b, out);
            }
        }
        if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
            self.ensure(Open::Text, out);
            self.delta(BlockDelta::TextDelta { text }, out);
        }
        for call in delta.tool_calls.into_iter().flatten() {
            let i = call.index.unwrap_or(0);
            let (name, args) = call
                .function
                .map(|f| (f.name, f.arguments))
                .unwrap_or((None, None));
            let index = match (self.tools.get(&i), &call.id) {
                // More of a call already open (some servers repeat its id in every fragment).
                (Some((index, id)), new) if new.as_ref().is_none_or(|n| n == id) => *index,
                // A new call (servers that number every call 0 give each a new id).
                _ => self.start_tool(i, call.id, name, out),
            };
            if let Some(partial_json) = args.filter(|a| !a.is_empty()) {
                emit(
                    out,
                    &StreamEvent::ContentBlockDelta {
                        index,
                        delta: BlockDelta::InputJsonDelta { partial_json },
                    },
                );
            }
        }
        if let Some(finish) = choice.finish_reason.as_deref() {
            self.close(out);
            self.stop_reason = Some(stop_reason(Some(finish)));
        }
    }

    fn start_tool(
        &mut self,
        i: u32,
        id: Option<String>,
        name: Option<String>,
        out: &mut VecDeque<Bytes>,
    ) -> u32 {
        self.close(out);
        let index = self.next_index;
        self.next_index += 1;
        let id = id.unwrap_or_default();
        self.tools.insert(i, (index, id.clone()));
        self.open = Some((Open::Tool(i), index));
        emit(
            out,
            &StreamEvent::ContentBlockStart {
                index,
                content_block: ContentBlock::ToolUse {
                    id,
                    name: name.unwrap_or_default(),
                    input: Value::Object(Map::new()),
                    cache_control: None,
                },
            },
        );
        index
    }

    fn thinking_block(&mut self, b: &Value, out: &mut VecDeque<Bytes>) {
        match b.get("type").and_then(Value::as_str) {
            Some("thinking") => {
                if let Some(signature) = b
                    .get("signature")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                {
                    self.ensure(Open::Thinking, out);
                    self.delta(
                        BlockDelta::SignatureDelta {
                            signature: signature.to_owned(),
                        },
                        out,
                    );
                }
            }
            Some("redacted_thinking") => {
                let data = b.get("data").and_then(Value::as_str).unwrap_or_default();
                self.close(out);
                let index = self.next_index;
                self.next_index += 1;
                emit(
                    out,
                    &StreamEvent::ContentBlockStart {
                        index,
                        content_block: ContentBlock::RedactedThinking {
                            data: data.to_owned(),
                        },
                    },
                );
                emit(out, &StreamEvent::ContentBlockStop { index });
            }
            _ => {}
        }
    }

    /// Opens a block of this kind unless one is open.
    fn ensure(&mut self, kind: Open, out: &mut VecDeque<Bytes>) {
        if matches!(self.open, Some((k, _)) if k == kind) {
            return;
        }
        self.close(out);
        let index = self.next_index;
        self.next_index += 1;
        let content_block = match kind {
            Open::Thinking => ContentBlock::Thinking {
                thinking: String::new(),
                signature: Some(String::new()),
            },
            _ => ContentBlock::Text {
                text: String::new(),
                cache_control: None,
                citations: None,
            },
        };
        emit(
            out,
            &StreamEvent::ContentBlockStart {
                index,
                content_block,
            },
        );
        self.open = Some((kind, index));
    }

    fn delta(&mut self, delta: BlockDelta, out: &mut VecDeque<Bytes>) {
        if let Some((_, index)) = self.open {
            emit(out, &StreamEvent::ContentBlockDelta { index, delta });
        }
    }

    fn close(&mut self, out: &mut VecDeque<Bytes>) {
        if let Some((_, index)) = self.open.take() {
            emit(out, &StreamEvent::ContentBlockStop { index });
        }
    }

    fn finish(&mut self, out: &mut VecDeque<Bytes>) {
        if !self.started {
            // An empty stream: still a well-formed message.
            self.chunk(
                ChatCompletionChunk {
                    id: String::new(),
                    object: "chat.completion.chunk".to_owned(),
                    created: 0,
                    model: String::new(),
                    choices: Vec::new(),
                    usage: None,
                    extra: Map::new(),
                },
                out,
            );
        }
        self.close(out);
        let usage = self.usage.as_ref().map(usage);
        emit(
            out,
            &StreamEvent::MessageDelta {
                delta: MessageDelta {
                    stop_reason: Some(self.stop_reason.unwrap_or("end_turn").to_owned()),
                    stop_sequence: None,
                },
                usage: Some(usage.unwrap_or_else(|| anthropic::Usage {
                    output_tokens: Some(0),
                    ..anthropic::Usage::default()
                })),
            },
        );
        emit(out, &StreamEvent::MessageStop);
        self.finished = true;
    }

    fn fail(&mut self, kind: &str, message: String, out: &mut VecDeque<Bytes>) {
        emit(
            out,
            &StreamEvent::Error {
                error: ErrorObject {
                    error_type: kind.to_owned(),
                    message,
                },
            },
        );
        self.finished = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Feeds chunks and returns the events as (name, data).
    fn run(chunks: &[Value]) -> Vec<(String, Value)> {
        let mut c = Converter::default();
        let mut out = VecDeque::new();
        for ch in chunks {
            let data = match ch {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if c.data(&data, &mut out) {
                break;
            }
        }
        out.iter()
            .map(|b| {
                let text = std::str::from_utf8(b).unwrap();
                let (head, data) = text.trim_end().split_once('\n').unwrap();
                let name = head.strip_prefix("event: ").unwrap().to_owned();
                let data: Value =
                    serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
                assert_eq!(data["type"], name.as_str());
                (name, data)
            })
            .collect()
    }

    fn chunk(delta: Value, finish: Option<&str>) -> Value {
        json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    }

    #[test]
    fn text_thinking_and_tool_calls() {
        let events = run(&[
            chunk(json!({"role": "assistant", "content": ""}), None),
            chunk(json!({"reasoning_content": "hmm"}), None),
            chunk(
                json!({"thinking_blocks": [{"type": "thinking", "thinking": "", "signature": "sig"}]}),
                None,
            ),
            chunk(json!({"content": "Hi"}), None),
            chunk(json!({"content": " there"}), None),
            chunk(
                json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                "function": {"name": "f", "arguments": ""}}]}),
                None,
            ),
            chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\":"}}]}),
                None,
            ),
            chunk(
                json!({"tool_calls": [{"index": 0, "id": "call_1", "function": {"arguments": "1}"}}]}),
                None,
            ),
            chunk(
                json!({"tool_calls": [{"index": 1, "id": "call_2", "type": "function",
                "function": {"name": "g", "arguments": "{}"}}]}),
                None,
            ),
            chunk(json!({}), Some("tool_calls")),
            json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
                "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14,
                "prompt_tokens_details": {"cached_tokens": 6}}}),
            json!("[DONE]"),
        ]);
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(events[0].1["message"]["id"], "chatcmpl-1");
        assert_eq!(events[0].1["message"]["content"], json!([]));
        assert_eq!(
            events[1].1["content_block"],
            json!({"type": "thinking", "thinking": "", "signature": ""})
        );
        assert_eq!(
            events[3].1["delta"],
            json!({"type": "signature_delta", "signature": "sig"})
        );
        assert_eq!(
            events[5].1,
            json!({"type": "content_block_start", "index": 1,
            "content_block": {"type": "text", "text": ""}})
        );
        assert_eq!(
            events[7].1["delta"],
            json!({"type": "text_delta", "text": " there"})
        );
        assert_eq!(
            events[9].1["content_block"],
            json!({"type": "tool_use", "id": "call_1", "name": "f", "input": {}})
        );
        assert_eq!(
            events[11].1,
            json!({"type": "content_block_delta", "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": "1}"}})
        );
        assert_eq!(events[13].1["index"], 3);
        assert_eq!(
            events[16].1,
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null},
                "usage": {"input_tokens": 4, "output_tokens": 4, "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 6}})
        );
    }

    #[test]
    fn errors_and_broken_streams() {
        let events = run(&[
            chunk(json!({"role": "assistant", "content": "par"}), None),
            json!({"error": {"message": "anthropic (deployment c): Overloaded", "type": "api_error",
                "param": null, "code": "overloaded_error"}}),
        ]);
        let last = &events.last().unwrap().1;
        assert_eq!(
            last,
            &json!({"type": "error", "error": {"type": "overloaded_error",
            "message": "anthropic (deployment c): Overloaded"}})
        );
        let events =
            run(&[json!({"error": {"message": "boom", "code": "upstream_stream_broken"}})]);
        assert_eq!(events[0].1["error"]["type"], "api_error");
        // An empty stream is still a whole message.
        let events = run(&[json!("[DONE]")]);
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["message_start", "message_delta", "message_stop"]);
        assert_eq!(events[1].1["delta"]["stop_reason"], "end_turn");
    }
}
