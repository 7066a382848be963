//! ConverseStream events as OpenAI chat chunks, one event at a time.
//!
//! | event | chunks |
//! |---|---|
//! | `messageStart` | `delta: {role: "assistant", content: ""}` |
//! | `contentBlockStart` with `start.toolUse` | `delta.tool_calls: [{index, id, type, function: {name, arguments: ""}}]` |
//! | `contentBlockDelta` with `delta.text` | `delta.content` |
//! | `contentBlockDelta` with `delta.toolUse.input` | `delta.tool_calls: [{index, function: {arguments}}]` |
//! | `contentBlockDelta` with `delta.reasoningContent` | `delta.reasoning_content` (text), `delta.thinking_blocks` (signature) |
//! | `contentBlockStop` | none |
//! | `messageStop` | `finish_reason` from `stopReason` |
//! | `metadata` | none; its `usage` is kept, and the stream is done ([`Flow::Done`]) |
//! | an exception | the stream fails with the exception's error |
//!
//! Tool-call `index`es count the tool calls (0, 1, ...), not Converse's content blocks. The
//! first chunk always carries `role`. A body that ends after `messageStop` but before
//! `metadata` is a clean end without usage.

use llmgate_core::wire::chat::{ChunkChoice, Delta, FunctionCall, ToolCall};
use llmgate_core::wire::{ChatCompletionChunk, Usage};
use llmgate_core::DeploymentSpec;
use serde_json::{json, Map, Value};

use super::answer::{finish_reason, TokenUsage};
use super::{error, model_id, new_id};
use crate::dialect::now;
use crate::dialect::{Flow, RawEvent, Translator};
use crate::error::{Error, Named};

/// The translator of one ConverseStream.
pub(super) struct ConverseStream {
    id: String,
    model: String,
    created: u64,
    named: Named,
    /// The role chunk went out.
    started: bool,
    /// Converse content-block index -> OpenAI tool-call index.
    tool_blocks: Vec<(u64, u32)>,
    stopped: bool,
    usage: Option<Usage>,
}

impl ConverseStream {
    pub(super) fn new(dep: &DeploymentSpec) -> Self {
        ConverseStream {
            id: new_id("chatcmpl"),
            model: model_id(dep).to_owned(),
            created: now(),
            named: Named::of(dep),
            started: false,
            tool_blocks: Vec::new(),
            stopped: false,
            usage: None,
        }
    }

    fn chunk(&mut self, mut delta: Delta, finish: Option<&str>) -> ChatCompletionChunk {
        if !self.started {
            self.started = true;
            delta.role = Some("assistant".to_owned());
        }
        ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".to_owned(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish.map(str::to_owned),
                logprobs: None,
            }],
            usage: None,
            extra: Map::new(),
        }
    }

    /// The OpenAI index of the tool call in content block `block`, allocating one for a new
    /// block; the second value says whether it is new.
    fn tool_index(&mut self, block: u64) -> (u32, bool) {
        if let Some((_, i)) = self.tool_blocks.iter().find(|(b, _)| *b == block) {
            return (*i, false);
        }
        let i = u32::try_from(self.tool_blocks.len()).unwrap_or(u32::MAX);
        self.tool_blocks.push((block, i));
        (i, true)
    }

    fn tool_delta(call: ToolCall) -> Delta {
        Delta {
            tool_calls: Some(vec![call]),
            ..Delta::default()
        }
    }

    fn block_start(&mut self, v: &Value, out: &mut Vec<ChatCompletionChunk>) {
        let Some(tool) = v.pointer("/start/toolUse") else {
            return;
        };
        let block = v
            .get("contentBlockIndex")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let (index, _) = self.tool_index(block);
        let call = ToolCall {
            id: tool
                .get("toolUseId")
                .and_then(Value::as_str)
                .map(str::to_owned),
            call_type: Some("function".to_owned()),
            index: Some(index),
            function: Some(FunctionCall {
                name: tool.get("name").and_then(Value::as_str).map(str::to_owned),
                arguments: Some(String::new()),
            }),
        };
        let chunk = self.chunk(Self::tool_delta(call), None);
        out.push(chunk);
    }

    fn block_delta(&mut self, v: &Value, out: &mut Vec<ChatCompletionChunk>) {
        let Some(delta) = v.get("delta") else {
            return;
        };
        if let Some(text) = delta.get("text").and_then(Value::as_str) {
            let d = Delta {
                content: Some(text.to_owned()),
                ..Delta::default()
            };
            let chunk = self.chunk(d, None);
            out.push(chunk);
        } else if let Some(input) = delta.pointer("/toolUse/input").and_then(Value::as_str) {
            let block = v
                .get("contentBlockIndex")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let (index, new) = self.tool_index(block);
            let call = ToolCall {
                id: None,
                call_type: new.then(|| "function".to_owned()),
                index: Some(index),
                function: Some(FunctionCall {
                    name: None,
                    arguments: Some(input.to_owned()),
                }),
            };
            let chunk = self.chunk(Self::tool_delta(call), None);
            out.push(chunk);
        } else if let Some(r) = delta.get("reasoningContent") {
            let mut d = Delta::default();
            if let Some(text) = r.get("text").and_then(Value::as_str) {
                d.extra.insert("reasoning_content".into(), json!(text));
            } else if let Some(sig) = r.get("signature").and_then(Value::as_str) {
                d.extra.insert(
                    "thinking_blocks".into(),
                    json!([{"type": "thinking", "thinking": "", "signature": sig}]),
                );
            } else if let Some(data) = r.get("redactedContent") {
                d.extra.insert(
                    "thinking_blocks".into(),
                    json!([{"type": "redacted_thinking", "data": data}]),
                );
            } else {
                return;
            }
            let chunk = self.chunk(d, None);
            out.push(chunk);
        }
    }
}

impl Translator for ConverseStream {
    fn event(
        &mut self,
        event: RawEvent,
        out: &mut Vec<ChatCompletionChunk>,
    ) -> Result<Flow, Error> {
        let RawEvent::Aws {
            event_type,
            message_type,
            payload,
        } = event
        else {
            return Err(self.named.invalid("not an event-stream message".to_owned()));
        };
        if message_type == "exception" || message_type == "error" {
            return Err(error::from_stream(
                self.named.provider,
                self.named.deployment.clone(),
                &event_type,
                &payload,
            ));
        }
        let v: Value = serde_json::from_slice(&payload).map_err(|e| {
            self.named.invalid(format!(
                "the `{event_type}` event's payload is not JSON: {e}"
            ))
        })?;
        match event_type.as_str() {
            "messageStart" => {
                let d = Delta {
                    content: Some(String::new()),
                    ..Delta::default()
                };
                let chunk = self.chunk(d, None);
                out.push(chunk);
            }
            "contentBlockStart" => self.block_start(&v, out),
            "contentBlockDelta" => self.block_delta(&v, out),
            "messageStop" => {
                let reason = v
                    .get("stopReason")
                    .and_then(Value::as_str)
                    .unwrap_or("end_turn");
                let chunk = self.chunk(Delta::default(), Some(finish_reason(reason)));
                out.push(chunk);
                self.stopped = true;
            }
            "metadata" => {
                self.usage = v
                    .get("usage")
                    .and_then(|u| serde_json::from_value::<TokenUsage>(u.clone()).ok())
                    .map(TokenUsage::to_usage);
                return Ok(Flow::Done);
            }
            // contentBlockStop, and events added later.
            _ => {}
        }
        Ok(Flow::Continue)
    }

    fn usage(&self) -> Option<Usage> {
        self.usage.clone()
    }

    fn at_eof(&mut self, _out: &mut Vec<ChatCompletionChunk>) -> bool {
        self.stopped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use llmgate_core::ProviderKind;

    fn ev(t: &str, payload: Value) -> RawEvent {
        RawEvent::Aws {
            event_type: t.into(),
            message_type: "event".into(),
            payload: Bytes::from(payload.to_string()),
        }
    }

    fn run(events: Vec<RawEvent>) -> (Vec<Value>, Vec<Flow>, ConverseStream) {
        let dep = DeploymentSpec::new("b-0", "m", ProviderKind::Bedrock, "amazon.nova-lite-v1:0");
        let mut t = ConverseStream::new(&dep);
        let mut chunks = Vec::new();
        let mut flows = Vec::new();
        for e in events {
            let mut out = Vec::new();
            flows.push(t.event(e, &mut out).unwrap());
            chunks.extend(out.into_iter().map(|c| serde_json::to_value(c).unwrap()));
        }
        (chunks, flows, t)
    }

    #[test]
    fn text_then_tool_call() {
        let (chunks, flows, t) = run(vec![
            ev("messageStart", json!({"role": "assistant"})),
            ev(
                "contentBlockDelta",
                json!({"contentBlockIndex": 0, "delta": {"text": "Let me"}}),
            ),
            ev("contentBlockStop", json!({"contentBlockIndex": 0})),
            ev(
                "contentBlockStart",
                json!({"contentBlockIndex": 1,
                       "start": {"toolUse": {"toolUseId": "tooluse_1", "name": "w"}}}),
            ),
            ev(
                "contentBlockDelta",
                json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"c\":"}}}),
            ),
            ev(
                "contentBlockDelta",
                json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "\"P\"}"}}}),
            ),
            ev("contentBlockStop", json!({"contentBlockIndex": 1})),
            ev("messageStop", json!({"stopReason": "tool_use"})),
            ev(
                "metadata",
                json!({"usage": {"inputTokens": 9, "outputTokens": 4, "totalTokens": 13},
                       "metrics": {"latencyMs": 100}}),
            ),
        ]);
        let deltas: Vec<&Value> = chunks.iter().map(|c| &c["choices"][0]["delta"]).collect();
        assert_eq!(deltas[0], &json!({"role": "assistant", "content": ""}));
        assert_eq!(deltas[1], &json!({"content": "Let me"}));
        assert_eq!(
            deltas[2],
            &json!({"tool_calls": [{"id": "tooluse_1", "type": "function", "index": 0,
                                    "function": {"name": "w", "arguments": ""}}]})
        );
        assert_eq!(
            deltas[3],
            &json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"c\":"}}]})
        );
        assert_eq!(chunks[5]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(chunks.len(), 6);
        assert!(chunks.iter().all(|c| c["id"] == chunks[0]["id"]));
        assert_eq!(chunks[0]["model"], "amazon.nova-lite-v1:0");
        assert_eq!(*flows.last().unwrap(), Flow::Done);
        assert_eq!(t.usage().unwrap().total_tokens, 13);
    }

    #[test]
    fn exceptions_and_garbage_fail() {
        let dep = DeploymentSpec::new("b-0", "m", ProviderKind::Bedrock, "x");
        let mut t = ConverseStream::new(&dep);
        let mut out = Vec::new();
        let e = t
            .event(
                RawEvent::Aws {
                    event_type: "throttlingException".into(),
                    message_type: "exception".into(),
                    payload: Bytes::from_static(br#"{"message":"Too many requests"}"#),
                },
                &mut out,
            )
            .unwrap_err();
        assert!(matches!(e, Error::Upstream { status, .. } if status == 429));
        let e = t
            .event(
                RawEvent::Aws {
                    event_type: "contentBlockDelta".into(),
                    message_type: "event".into(),
                    payload: Bytes::from_static(b"{nope"),
                },
                &mut out,
            )
            .unwrap_err();
        assert!(matches!(e, Error::InvalidResponse { .. }));
        assert!(!t.at_eof(&mut out));
        assert!(out.is_empty());
    }
}
