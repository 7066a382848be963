//! Anthropic's stream -> OpenAI chunks, event by event.
//!
//! | Anthropic event | OpenAI chunk |
//! |---|---|
//! | `message_start` | `delta: {role: "assistant", content: ""}` (id, model, input usage kept) |
//! | `content_block_start` `text` | `delta.content` if the block starts with text |
//! | `content_block_start` `tool_use` | `delta.tool_calls: [{index, id, type, function: {name, arguments: ""}}]` |
//! | `content_block_delta` `text_delta` | `delta.content` |
//! | `content_block_delta` `input_json_delta` | `delta.tool_calls: [{index, function: {arguments}}]` |
//! | `content_block_delta` `thinking_delta` | `delta.reasoning_content` |
//! | `content_block_delta` `signature_delta` | `delta.thinking_blocks: [{type, thinking: "", signature}]` |
//! | `message_delta` | a chunk with `finish_reason`; usage updated |
//! | `message_stop` | [`Flow::Done`] |
//! | `ping`, `content_block_stop`, unknown events | nothing |
//! | `error` | `Err` (the relay sends an OpenAI error event) |
//!
//! A `tool_use` of [`JSON_TOOL`] (the `response_format` tool) streams as `delta.content`.

use std::collections::HashMap;

use llmgate_core::wire::anthropic::{self, BlockDelta, ContentBlock, StreamEvent};
use llmgate_core::wire::chat::{ChunkChoice, Delta, FunctionCall, ToolCall};
use llmgate_core::wire::{ChatCompletionChunk, Usage};
use serde_json::{json, Map, Value};

use super::answer::{finish_reason, openai_usage};
use super::{error, json_mode, JSON_TOOL};
use crate::dialect::now;
use crate::dialect::{Ctx, Flow, RawEvent, Translator};
use crate::error::{Error, Named};

/// What a content block (by its Anthropic index) turned into.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Text,
    /// An OpenAI tool call, by its index.
    Tool(u32),
    /// The `response_format` tool: its input is the content.
    Json,
    Thinking,
    Other,
}

/// One stream's state.
pub(crate) struct MessagesTranslator {
    named: Named,
    id: String,
    model: String,
    created: u64,
    json_tool: bool,
    blocks: HashMap<u32, Kind>,
    tools: u32,
    usage: Option<anthropic::Usage>,
}

impl MessagesTranslator {
    pub(crate) fn new(ctx: &Ctx<'_>) -> Self {
        MessagesTranslator {
            named: Named::of(ctx.dep),
            id: String::new(),
            model: ctx.dep.model.to_string(),
            created: now(),
            json_tool: json_mode(ctx),
            blocks: HashMap::new(),
            tools: 0,
            usage: None,
        }
    }

    fn chunk(&self, delta: Delta, finish_reason: Option<String>) -> ChatCompletionChunk {
        ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".to_owned(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason,
                logprobs: None,
            }],
            usage: None,
            extra: Map::new(),
        }
    }

    fn content(&self, text: String) -> ChatCompletionChunk {
        self.chunk(
            Delta {
                content: Some(text),
                ..Delta::default()
            },
            None,
        )
    }

    fn extra(&self, key: &str, value: Value) -> ChatCompletionChunk {
        let mut extra = Map::new();
        extra.insert(key.to_owned(), value);
        self.chunk(
            Delta {
                extra,
                ..Delta::default()
            },
            None,
        )
    }

    fn tool_call(
        &self,
        index: u32,
        id: Option<String>,
        name: Option<String>,
        arguments: String,
    ) -> ChatCompletionChunk {
        let call = ToolCall {
            call_type: id.is_some().then(|| "function".to_owned()),
            id,
            index: Some(index),
            function: Some(FunctionCall {
                name,
                arguments: Some(arguments),
            }),
        };
        self.chunk(
            Delta {
                tool_calls: Some(vec![call]),
                ..Delta::default()
            },
            None,
        )
    }

    fn start_block(&mut self, index: u32, block: ContentBlock, out: &mut Vec<ChatCompletionChunk>) {
        let kind = match block {
            ContentBlock::Text { text, .. } => {
                if !text.is_empty() {
                    out.push(self.content(text));
                }
                Kind::Text
            }
            ContentBlock::ToolUse { name, input, .. } if self.json_tool && name == JSON_TOOL => {
                if input.as_object().is_some_and(|o| !o.is_empty()) {
                    out.push(self.content(input.to_string()));
                }
                Kind::Json
            }
            ContentBlock::ToolUse {
                id, name, input, ..
            } => {
                let n = self.tools;
                self.tools += 1;
                let args = match input {
                    Value::Object(o) if o.is_empty() => String::new(),
                    other => other.to_string(),
                };
                out.push(self.tool_call(n, Some(id), Some(name), args));
                Kind::Tool(n)
            }
            ContentBlock::Thinking { thinking, .. } => {
                if !thinking.is_empty() {
                    out.push(self.extra("reasoning_content", Value::String(thinking)));
                }
                Kind::Thinking
            }
            ContentBlock::RedactedThinking { data } => {
                out.push(self.extra(
                    "thinking_blocks",
                    json!([{"type": "redacted_thinking", "data": data}]),
                ));
                Kind::Other
            }
            _ => Kind::Other,
        };
        self.blocks.insert(index, kind);
    }

    fn delta(&mut self, index: u32, delta: BlockDelta, out: &mut Vec<ChatCompletionChunk>) {
        let kind = self.blocks.get(&index).copied().unwrap_or(Kind::Other);
        match (kind, delta) {
            (_, BlockDelta::TextDelta { text }) if !text.is_empty() => {
                out.push(self.content(text));
            }
            (Kind::Tool(n), BlockDelta::InputJsonDelta { partial_json })
                if !partial_json.is_empty() =>
            {
                out.push(self.tool_call(n, None, None, partial_json));
            }
            (Kind::Json, BlockDelta::InputJsonDelta { partial_json })
                if !partial_json.is_empty() =>
            {
                out.push(self.content(partial_json));
            }
            (_, BlockDelta::ThinkingDelta { thinking }) if !thinking.is_empty() => {
                out.push(self.extra("reasoning_content", Value::String(thinking)));
            }
            (_, BlockDelta::SignatureDelta { signature }) => {
                out.push(self.extra(
                    "thinking_blocks",
                    json!([{"type": "thinking", "thinking": "", "signature": signature}]),
                ));
            }
            _ => {}
        }
    }
}

impl Translator for MessagesTranslator {
    fn event(
        &mut self,
        event: RawEvent,
        out: &mut Vec<ChatCompletionChunk>,
    ) -> Result<Flow, Error> {
        let RawEvent::Sse { event: name, data } = event else {
            return Err(self
                .named
                .invalid("expected a server-sent event".to_owned()));
        };
        let event: StreamEvent = serde_json::from_str(&data).map_err(|e| {
            self.named
                .invalid(format!("a `{name}` event that does not parse: {e}"))
        })?;
        match event {
            StreamEvent::MessageStart { message } => {
                self.id = message.id;
                if !message.model.is_empty() {
                    self.model = message.model;
                }
                self.usage = Some(message.usage);
                out.push(self.chunk(
                    Delta {
                        role: Some("assistant".to_owned()),
                        content: Some(String::new()),
                        ..Delta::default()
                    },
                    None,
                ));
            }
            StreamEvent::ContentBlockStart {
                index,
                content_block,
            } => self.start_block(index, content_block, out),
            StreamEvent::ContentBlockDelta { index, delta } => self.delta(index, delta, out),
            StreamEvent::MessageDelta { delta, usage } => {
                if let Some(u) = usage {
                    self.usage.get_or_insert_with(Default::default).update(&u);
                }
                let mut finish = finish_reason(delta.stop_reason.as_deref());
                let json_answer = self.blocks.values().any(|k| matches!(k, Kind::Json));
                if json_answer && self.tools == 0 && finish.as_deref() == Some("tool_calls") {
                    finish = Some("stop".to_owned());
                }
                out.push(self.chunk(Delta::default(), finish));
            }
            StreamEvent::MessageStop => return Ok(Flow::Done),
            StreamEvent::Error { error } => {
                return Err(error::from_event(
                    self.named.provider,
                    self.named.deployment.clone(),
                    error,
                ))
            }
            StreamEvent::ContentBlockStop { .. } | StreamEvent::Ping | StreamEvent::Unknown => {}
        }
        Ok(Flow::Continue)
    }

    fn usage(&self) -> Option<Usage> {
        self.usage.as_ref().map(openai_usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmgate_core::ProviderKind;
    use llmgate_core::{DeploymentSpec, Endpoint, ErrorContract, LlmRequest};

    fn run(req: Value, events: &[Value]) -> (Vec<Value>, Result<Flow, Error>, Option<Usage>) {
        let llm = LlmRequest::parse(Endpoint::ChatCompletions, req.to_string().as_bytes()).unwrap();
        let dep = DeploymentSpec::new("a-0", "g", ProviderKind::Anthropic, "claude-x");
        let mut t = MessagesTranslator::new(&Ctx::new(&llm, &dep));
        let mut out = Vec::new();
        let mut flow = Ok(Flow::Continue);
        for e in events {
            flow = t.event(
                RawEvent::Sse {
                    event: e["type"].as_str().unwrap().to_owned(),
                    data: e.to_string(),
                },
                &mut out,
            );
            if flow.is_err() {
                break;
            }
        }
        let chunks = out
            .iter()
            .map(|c| serde_json::to_value(c).unwrap())
            .collect();
        (chunks, flow, t.usage())
    }

    fn start() -> Value {
        json!({"type": "message_start", "message": {"id": "msg_1", "type": "message",
            "role": "assistant", "content": [], "model": "claude-x", "stop_reason": null,
            "stop_sequence": null, "usage": {"input_tokens": 12, "output_tokens": 1,
            "cache_read_input_tokens": 3, "cache_creation_input_tokens": 0}}})
    }

    fn deltas(chunks: &[Value]) -> Vec<Value> {
        chunks
            .iter()
            .map(|c| c["choices"][0]["delta"].clone())
            .collect()
    }

    #[test]
    fn text_and_tool_call() {
        let plain = json!({"model": "g", "messages": [{"role": "user", "content": "x"}]});
        let (chunks, flow, usage) = run(
            plain,
            &[
                start(),
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
                json!({"type": "ping"}),
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
                json!({"type": "content_block_stop", "index": 0}),
                json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}}),
                json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}}),
                json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"a\":"}}),
                json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "1}"}}),
                json!({"type": "content_block_stop", "index": 1}),
                json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 9}}),
                json!({"type": "message_stop"}),
            ],
        );
        assert_eq!(flow.unwrap(), Flow::Done);
        assert_eq!(
            deltas(&chunks),
            vec![
                json!({"role": "assistant", "content": ""}),
                json!({"content": "Hi"}),
                json!({"tool_calls": [{"id": "toolu_1", "type": "function", "index": 0,
                    "function": {"name": "f", "arguments": ""}}]}),
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\":"}}]}),
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
                json!({}),
            ]
        );
        assert_eq!(chunks[5]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(chunks[0]["id"], "msg_1");
        assert_eq!(chunks[0]["object"], "chat.completion.chunk");
        let u = usage.unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (15, 9, 24)
        );
        assert_eq!(u.prompt_tokens_details.unwrap().cached_tokens, Some(3));
    }

    #[test]
    fn thinking_json_tool_and_errors() {
        let req = json!({"model": "g", "messages": [{"role": "user", "content": "x"}],
            "response_format": {"type": "json_object"}});
        let (chunks, _, _) = run(
            req,
            &[
                start(),
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hm"}}),
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "s1"}}),
                json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "t", "name": "json_tool_call", "input": {}}}),
                json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"k\":1}"}}),
                json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 3}}),
                json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
            ],
        );
        assert_eq!(
            deltas(&chunks)[1..4],
            [
                json!({"reasoning_content": "hm"}),
                json!({"thinking_blocks": [{"type": "thinking", "thinking": "", "signature": "s1"}]}),
                json!({"content": "{\"k\":1}"}),
            ]
        );
        assert_eq!(chunks[4]["choices"][0]["finish_reason"], "stop");

        let plain = json!({"model": "g", "messages": [{"role": "user", "content": "x"}]});
        let (_, flow, _) = run(
            plain.clone(),
            &[
                start(),
                json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
            ],
        );
        let e = flow.unwrap_err().into_api();
        assert_eq!(e.status().as_u16(), 529);
        assert!(e.retryable());
        let llm =
            LlmRequest::parse(Endpoint::ChatCompletions, plain.to_string().as_bytes()).unwrap();
        let dep = DeploymentSpec::new("a-0", "g", ProviderKind::Anthropic, "claude-x");
        let mut t = MessagesTranslator::new(&Ctx::new(&llm, &dep));
        let bad = RawEvent::Sse {
            event: "message_start".into(),
            data: "{not json".into(),
        };
        assert!(matches!(
            t.event(bad, &mut Vec::new()),
            Err(Error::InvalidResponse { .. })
        ));
    }
}
