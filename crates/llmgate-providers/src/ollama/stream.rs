//! `/api/chat`'s NDJSON stream, translated line by line into OpenAI chat chunks.
//!
//! ```text
//! {"model":"llama3.2","created_at":"..","message":{"role":"assistant","content":"The"},"done":false}
//! {"model":"llama3.2","created_at":"..","message":{"role":"assistant","content":" sky"},"done":false}
//! {"model":"llama3.2","created_at":"..","message":{"role":"assistant","content":""},"done":true,
//!  "done_reason":"stop","prompt_eval_count":26,"eval_count":2, ...}
//! ```
//!
//! becomes a chunk per line (the first with `role: "assistant"`), then one with the
//! `finish_reason`. Ollama sends each tool call whole in one line; it becomes two fragments,
//! the first with `id`, `type` and `function.name` (arguments `""`), the second with the
//! arguments, as OpenAI streams them.

use std::sync::Arc;

use http::{HeaderMap, StatusCode};
use llmgate_core::wire::chat::{ChunkChoice, Delta, FunctionCall, ToolCall};
use llmgate_core::wire::ChatCompletionChunk;
use llmgate_core::Usage;
use serde_json::{Map, Value};

use super::new_id;
use super::wire::{self, Chunk};
use crate::dialect::now;
use crate::dialect::{Ctx, Flow, RawEvent, Translator};
use crate::error::{Error, Named};

/// The state of one chat stream.
pub(super) struct ChatStream {
    named: Named,
    /// The deployment's model, until Ollama names its own.
    upstream_model: Arc<str>,
    id: String,
    /// Set from the first line.
    created: Option<u64>,
    model: Option<String>,
    role_sent: bool,
    tool_calls: u32,
    usage: Option<Usage>,
}

impl ChatStream {
    pub(super) fn new(ctx: &Ctx<'_>) -> Self {
        ChatStream {
            named: Named::of(ctx.dep),
            upstream_model: ctx.dep.model.clone(),
            id: new_id("chatcmpl-"),
            created: None,
            model: None,
            role_sent: false,
            tool_calls: 0,
            usage: None,
        }
    }

    fn chunk(&self, delta: Delta, finish_reason: Option<&str>) -> ChatCompletionChunk {
        ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".to_owned(),
            created: self.created.unwrap_or(0),
            model: self
                .model
                .clone()
                .unwrap_or_else(|| self.upstream_model.to_string()),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish_reason.map(str::to_owned),
                logprobs: None,
            }],
            usage: None,
            extra: Map::new(),
        }
    }

    /// A delta, with the role on the stream's first one.
    fn delta(&mut self) -> Delta {
        let mut d = Delta::default();
        if !self.role_sent {
            d.role = Some("assistant".to_owned());
            self.role_sent = true;
        }
        d
    }

    fn upstream_error(&self, line: &[u8]) -> Error {
        // Ollama's mid-stream failures are the model runner's: a server error.
        super::error::from_response(
            self.named.provider,
            self.named.deployment.clone(),
            StatusCode::INTERNAL_SERVER_ERROR,
            &HeaderMap::new(),
            line,
        )
    }
}

impl Translator for ChatStream {
    fn event(
        &mut self,
        event: RawEvent,
        out: &mut Vec<ChatCompletionChunk>,
    ) -> Result<Flow, Error> {
        let RawEvent::Line(line) = event else {
            return Ok(Flow::Continue);
        };
        let mut chunk: Chunk = serde_json::from_slice(&line).map_err(|e| {
            self.named
                .invalid(format!("a stream line is not Ollama's JSON: {e}"))
        })?;
        if chunk.error_message().is_some() {
            return Err(self.upstream_error(&line));
        }
        if self.created.is_none() {
            self.created = Some(
                chunk
                    .created_at
                    .as_deref()
                    .and_then(wire::unix_seconds)
                    .unwrap_or_else(now),
            );
        }
        if self.model.is_none() {
            self.model.clone_from(&chunk.model);
        }

        let message = chunk.message.take().unwrap_or_default();
        let text = message.content.unwrap_or_default();
        let thinking = message.thinking.unwrap_or_default();
        // Text and thinking in one chunk; the first chunk goes out even when empty, so the
        // client sees the role at once.
        if !text.is_empty() || !thinking.is_empty() || !self.role_sent {
            let mut d = self.delta();
            if !text.is_empty() || d.role.is_some() {
                d.content = Some(text);
            }
            if !thinking.is_empty() {
                d.extra
                    .insert("reasoning_content".to_owned(), Value::String(thinking));
            }
            out.push(self.chunk(d, None));
        }
        for call in message.tool_calls.as_deref().unwrap_or_default() {
            let index = self.tool_calls;
            self.tool_calls += 1;
            let mut d = self.delta();
            d.tool_calls = Some(vec![ToolCall {
                id: Some(wire::tool_call_id(call)),
                call_type: Some("function".to_owned()),
                index: Some(index),
                function: Some(FunctionCall {
                    name: Some(call.function.name.clone()),
                    arguments: Some(String::new()),
                }),
            }]);
            out.push(self.chunk(d, None));
            let mut d = self.delta();
            d.tool_calls = Some(vec![ToolCall {
                id: None,
                call_type: None,
                index: Some(index),
                function: Some(FunctionCall {
                    name: None,
                    arguments: Some(wire::arguments(&call.function.arguments)),
                }),
            }]);
            out.push(self.chunk(d, None));
        }

        if !chunk.done {
            return Ok(Flow::Continue);
        }
        self.usage = chunk.usage();
        let reason = wire::finish_reason(chunk.done_reason.as_deref(), self.tool_calls > 0);
        let d = self.delta();
        out.push(self.chunk(d, Some(reason)));
        Ok(Flow::Done)
    }

    fn usage(&self) -> Option<Usage> {
        self.usage.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use llmgate_core::ProviderKind;
    use llmgate_core::{DeploymentSpec, Endpoint, ErrorContract, LlmRequest};
    use serde_json::json;

    fn run(lines: &[Value]) -> (Vec<Value>, Result<Flow, Error>, Option<Usage>) {
        let dep = DeploymentSpec::new("o-0", "g", ProviderKind::Ollama, "llama3.2");
        let llm = LlmRequest::parse(
            Endpoint::ChatCompletions,
            br#"{"model":"g","messages":[],"stream":true}"#,
        )
        .unwrap();
        let mut t = ChatStream::new(&Ctx::new(&llm, &dep));
        let mut out = Vec::new();
        let mut flow = Ok(Flow::Continue);
        for l in lines {
            flow = t.event(RawEvent::Line(Bytes::from(l.to_string())), &mut out);
            if !matches!(flow, Ok(Flow::Continue)) {
                break;
            }
        }
        let chunks = out
            .iter()
            .map(|c| serde_json::to_value(c).unwrap())
            .collect();
        (chunks, flow, t.usage())
    }

    fn line(content: &str) -> Value {
        json!({"model": "llama3.2", "created_at": "2024-07-22T20:33:28Z",
               "message": {"role": "assistant", "content": content}, "done": false})
    }

    fn done(reason: &str) -> Value {
        json!({"model": "llama3.2", "created_at": "2024-07-22T20:33:29Z",
               "message": {"role": "assistant", "content": ""}, "done": true,
               "done_reason": reason, "prompt_eval_count": 26, "eval_count": 2,
               "total_duration": 1, "eval_duration": 1})
    }

    #[test]
    fn text_stream() {
        let (chunks, flow, usage) = run(&[line("The"), line(" sky"), done("length")]);
        assert!(matches!(flow, Ok(Flow::Done)));
        let deltas: Vec<_> = chunks.iter().map(|c| c["choices"][0].clone()).collect();
        assert_eq!(
            deltas,
            vec![
                json!({"index": 0, "delta": {"role": "assistant", "content": "The"},
                       "finish_reason": null}),
                json!({"index": 0, "delta": {"content": " sky"}, "finish_reason": null}),
                json!({"index": 0, "delta": {}, "finish_reason": "length"}),
            ]
        );
        assert_eq!(chunks[0]["created"], 1_721_680_408);
        assert_eq!(chunks[2]["created"], 1_721_680_408);
        assert_eq!(chunks[0]["model"], "llama3.2");
        assert_eq!(chunks[0]["id"], chunks[2]["id"]);
        assert_eq!(chunks[0]["object"], "chat.completion.chunk");
        let u = usage.unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (26, 2, 28)
        );
    }

    #[test]
    fn tool_call_stream() {
        let call = json!({"model": "qwen3", "created_at": "2024-07-22T20:33:28Z",
            "message": {"role": "assistant", "content": "", "thinking": "need weather",
                "tool_calls": [{"function": {"name": "get_weather",
                                             "arguments": {"city": "Paris"}}}]},
            "done": false});
        let (chunks, flow, _) = run(&[call, done("stop")]);
        assert!(matches!(flow, Ok(Flow::Done)));
        let deltas: Vec<_> = chunks
            .iter()
            .map(|c| c["choices"][0]["delta"].clone())
            .collect();
        assert_eq!(
            deltas[0],
            json!({"role": "assistant", "content": "", "reasoning_content": "need weather"})
        );
        let first = &deltas[1]["tool_calls"][0];
        assert!(first["id"].as_str().unwrap().starts_with("call_"));
        assert_eq!(first["type"], "function");
        assert_eq!(first["index"], 0);
        assert_eq!(
            first["function"],
            json!({"name": "get_weather", "arguments": ""})
        );
        assert_eq!(
            deltas[2],
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":\"Paris\"}"}}]})
        );
        assert_eq!(chunks[3]["choices"][0]["finish_reason"], "tool_calls");
    }

    #[test]
    fn error_lines_and_garbage_fail() {
        let (chunks, flow, _) = run(&[line("a"), json!({"error": "model runner crashed"})]);
        assert_eq!(chunks.len(), 1);
        let e = flow.unwrap_err().into_api();
        assert_eq!(e.status(), 500);
        assert!(
            e.message().contains("model runner crashed"),
            "{}",
            e.message()
        );

        let dep = DeploymentSpec::new("o-0", "g", ProviderKind::Ollama, "llama3.2");
        let llm = LlmRequest::parse(Endpoint::ChatCompletions, br#"{"model":"g","messages":[]}"#)
            .unwrap();
        let mut t = ChatStream::new(&Ctx::new(&llm, &dep));
        let e = t
            .event(
                RawEvent::Line(Bytes::from_static(b"{nope")),
                &mut Vec::new(),
            )
            .unwrap_err();
        assert!(matches!(e, Error::InvalidResponse { .. }), "{e}");
    }

    #[test]
    fn done_first_still_sends_the_role() {
        let (chunks, _, _) = run(&[done("stop")]);
        assert_eq!(chunks.len(), 2);
        assert_eq!(
            chunks[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": ""})
        );
        assert_eq!(chunks[1]["choices"][0]["finish_reason"], "stop");
    }
}
