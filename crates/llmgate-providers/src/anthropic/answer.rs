//! Anthropic answer -> OpenAI `chat.completion`.
//!
//! Text blocks are joined into `content` (`null` when the answer only calls tools);
//! `tool_use` blocks become `tool_calls` with their input as a JSON string; thinking becomes
//! `reasoning_content` (the text) and `thinking_blocks` (the blocks with their signatures, to
//! send back on the next turn), as LiteLLM names them. A `tool_use` of [`JSON_TOOL`] (the
//! `response_format` tool) becomes the text content instead.

use bytes::Bytes;
use llmgate_core::wire::anthropic::{self, ContentBlock, Message};
use llmgate_core::wire::chat::{Choice, FunctionCall, MessageContent, ToolCall};
use llmgate_core::wire::{self, ChatCompletion, PromptTokensDetails, Usage};
use serde_json::{json, Map, Value};

use super::{json_mode, JSON_TOOL};
use crate::dialect::now;
use crate::dialect::{Answered, Ctx};
use crate::error::Error;

/// Reads a complete answer.
pub(crate) fn read(ctx: &Ctx<'_>, body: &[u8]) -> Result<Answered, Error> {
    let msg: Message = serde_json::from_slice(body)
        .map_err(|e| ctx.invalid(format!("not an Anthropic message: {e}")))?;
    let json_tool = json_mode(ctx);
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut thinking_blocks = Vec::new();
    let mut tool_calls = Vec::new();
    let mut json_answer = false;
    for block in msg.content {
        match block {
            ContentBlock::Text { text: t, .. } => text.push_str(&t),
            ContentBlock::ToolUse { name, input, .. } if json_tool && name == JSON_TOOL => {
                text.push_str(&input.to_string());
                json_answer = true;
            }
            ContentBlock::ToolUse {
                id, name, input, ..
            } => tool_calls.push(ToolCall {
                id: Some(id),
                call_type: Some("function".to_owned()),
                index: None,
                function: Some(FunctionCall {
                    name: Some(name),
                    arguments: Some(input.to_string()),
                }),
            }),
            ContentBlock::Thinking {
                thinking,
                signature,
            } => {
                reasoning.push_str(&thinking);
                thinking_blocks.push(
                    json!({"type": "thinking", "thinking": thinking, "signature": signature}),
                );
            }
            ContentBlock::RedactedThinking { data } => {
                thinking_blocks.push(json!({"type": "redacted_thinking", "data": data}));
            }
            // Server tools' blocks and types not known yet have no OpenAI equivalent.
            _ => {}
        }
    }
    let mut finish = finish_reason(msg.stop_reason.as_deref());
    if json_answer && tool_calls.is_empty() && finish.as_deref() == Some("tool_calls") {
        finish = Some("stop".to_owned());
    }
    let mut extra = Map::new();
    if !thinking_blocks.is_empty() {
        extra.insert("reasoning_content".to_owned(), Value::String(reasoning));
        extra.insert("thinking_blocks".to_owned(), Value::Array(thinking_blocks));
    }
    let content = if text.is_empty() && !tool_calls.is_empty() {
        // OpenAI sends `"content": null` beside tool calls (the typed field is skipped when
        // `None`).
        extra.insert("content".to_owned(), Value::Null);
        None
    } else {
        Some(MessageContent::Text(text))
    };
    let usage = openai_usage(&msg.usage);
    let completion = ChatCompletion {
        id: msg.id,
        object: "chat.completion".to_owned(),
        created: now(),
        model: if msg.model.is_empty() {
            ctx.dep.model.to_string()
        } else {
            msg.model
        },
        choices: vec![Choice {
            index: 0,
            message: wire::Message {
                role: "assistant".to_owned(),
                content,
                name: None,
                tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
                tool_call_id: None,
                extra,
            },
            finish_reason: finish,
            logprobs: None,
        }],
        usage: Some(usage.clone()),
        extra: Map::new(),
    };
    let json = serde_json::to_vec(&completion)
        .map_err(|e| ctx.invalid(format!("could not serialise the translated answer: {e}")))?;
    Ok(Answered {
        json: Bytes::from(json),
        usage: Some(usage),
    })
}

/// Anthropic's `stop_reason` as OpenAI's `finish_reason`.
pub(crate) fn finish_reason(stop_reason: Option<&str>) -> Option<String> {
    let r = match stop_reason? {
        "end_turn" | "stop_sequence" | "pause_turn" => "stop",
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    };
    Some(r.to_owned())
}

/// Anthropic's usage in OpenAI's shape: `prompt_tokens` counts every input token, cache reads
/// and writes included (as LiteLLM reports it); cache reads are also
/// `prompt_tokens_details.cached_tokens`, cache writes `cache_creation_input_tokens`.
pub(crate) fn openai_usage(u: &anthropic::Usage) -> Usage {
    let read = u.cache_read_input_tokens;
    let created = u.cache_creation_input_tokens;
    let prompt = u.input_tokens.unwrap_or(0) + read.unwrap_or(0) + created.unwrap_or(0);
    let completion = u.output_tokens.unwrap_or(0);
    let mut extra = Map::new();
    if let Some(c) = created {
        extra.insert("cache_creation_input_tokens".to_owned(), Value::from(c));
    }
    Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt + completion,
        prompt_tokens_details: read.map(|r| PromptTokensDetails {
            cached_tokens: Some(r),
            extra: Map::new(),
        }),
        completion_tokens_details: None,
        extra,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmgate_core::{DeploymentSpec, Endpoint, LlmRequest, ProviderKind};

    fn read_json(req: Value, answer: Value) -> Value {
        let llm = LlmRequest::parse(Endpoint::ChatCompletions, req.to_string().as_bytes()).unwrap();
        let dep = DeploymentSpec::new("a-0", "g", ProviderKind::Anthropic, "claude-x");
        let ctx = Ctx::new(&llm, &dep);
        let a = read(&ctx, answer.to_string().as_bytes()).unwrap();
        serde_json::from_slice(&a.json).unwrap()
    }

    fn plain() -> Value {
        json!({"model": "g", "messages": [{"role": "user", "content": "x"}]})
    }

    #[test]
    fn text_tools_thinking_and_usage() {
        let v = read_json(
            plain(),
            json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                    {"type": "text", "text": "let me "}, {"type": "text", "text": "check"},
                    {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}],
                "stop_reason": "tool_use", "stop_sequence": null,
                "usage": {"input_tokens": 10, "output_tokens": 5,
                    "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20}}),
        );
        let m = &v["choices"][0]["message"];
        assert_eq!(m["content"], "let me check");
        assert_eq!(m["reasoning_content"], "hmm");
        assert_eq!(
            m["thinking_blocks"],
            json!([{"type": "thinking", "thinking": "hmm", "signature": "sig"}])
        );
        assert_eq!(
            m["tool_calls"],
            json!([{"id": "toolu_1", "type": "function",
                "function": {"name": "f", "arguments": "{\"a\":1}"}}])
        );
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(
            v["usage"],
            json!({"prompt_tokens": 130, "completion_tokens": 5, "total_tokens": 135,
                "prompt_tokens_details": {"cached_tokens": 100},
                "cache_creation_input_tokens": 20})
        );
        assert_eq!(v["id"], "msg_1");
        assert_eq!(v["object"], "chat.completion");
    }

    #[test]
    fn tool_only_answer_has_null_content_and_json_tool_is_text() {
        let v = read_json(
            plain(),
            json!({"id": "m", "model": "c", "content": [
                {"type": "tool_use", "id": "t", "name": "f", "input": {}}],
                "stop_reason": "tool_use", "usage": {"input_tokens": 1, "output_tokens": 1}}),
        );
        assert_eq!(
            v["choices"][0]["message"].get("content"),
            Some(&Value::Null)
        );
        let mut req = plain();
        req["response_format"] = json!({"type": "json_object"});
        let v = read_json(
            req,
            json!({"id": "m", "model": "c", "content": [
                {"type": "tool_use", "id": "t", "name": "json_tool_call", "input": {"k": "v"}}],
                "stop_reason": "tool_use", "usage": {"input_tokens": 1, "output_tokens": 1}}),
        );
        assert_eq!(v["choices"][0]["message"]["content"], "{\"k\":\"v\"}");
        assert!(v["choices"][0]["message"].get("tool_calls").is_none());
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
    }

    #[test]
    fn stop_reasons() {
        for (a, o) in [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("max_tokens", "length"),
            ("tool_use", "tool_calls"),
            ("refusal", "content_filter"),
        ] {
            assert_eq!(finish_reason(Some(a)).as_deref(), Some(o));
        }
        assert_eq!(finish_reason(None), None);
    }
}
