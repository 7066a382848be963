//! A Converse answer in OpenAI's shape (`chat.completion`, or `text_completion` for the legacy
//! endpoint).
//!
//! `output.message.content` becomes the message: `text` blocks joined as `content` (`null`
//! when there are none), `toolUse` blocks as `tool_calls` (the `input` object as the JSON
//! `arguments` string), `reasoningContent` as LiteLLM's `reasoning_content` and
//! `thinking_blocks`. `stopReason` becomes `finish_reason` ([`finish_reason`]) and `usage` the
//! OpenAI usage ([`TokenUsage::to_usage`]).

use bytes::Bytes;
use llmgate_core::wire::{PromptTokensDetails, Usage};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{model_id, new_id};
use crate::dialect::now;
use crate::dialect::{Answered, Ctx};
use crate::error::Error;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConverseResponse {
    output: Output,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<TokenUsage>,
}

#[derive(Deserialize)]
struct Output {
    #[serde(default)]
    message: Option<OutputMessage>,
}

#[derive(Deserialize)]
struct OutputMessage {
    #[serde(default)]
    content: Vec<Value>,
}

/// Converse's `usage` (also in the stream's `metadata` event).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TokenUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_write_input_tokens: Option<u64>,
}

impl TokenUsage {
    /// OpenAI's usage. Bedrock counts cache reads and writes apart from `inputTokens`;
    /// OpenAI's `prompt_tokens` includes them, with the reads as `cached_tokens` (and the
    /// writes as `cache_creation_input_tokens`, as LiteLLM reports them).
    pub(super) fn to_usage(self) -> Usage {
        let read = self.cache_read_input_tokens.unwrap_or(0);
        let write = self.cache_write_input_tokens.unwrap_or(0);
        let prompt = self.input_tokens + read + write;
        let mut usage = Usage {
            prompt_tokens: prompt,
            completion_tokens: self.output_tokens,
            total_tokens: prompt + self.output_tokens,
            ..Usage::default()
        };
        if self.cache_read_input_tokens.is_some() || self.cache_write_input_tokens.is_some() {
            usage.prompt_tokens_details = Some(PromptTokensDetails {
                cached_tokens: Some(read),
                extra: Map::new(),
            });
        }
        if let Some(w) = self.cache_write_input_tokens {
            usage
                .extra
                .insert("cache_creation_input_tokens".into(), json!(w));
        }
        usage
    }
}

/// Converse's `stopReason` as OpenAI's `finish_reason`.
pub(super) fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "guardrail_intervened" | "content_filtered" => "content_filter",
        // end_turn, stop_sequence, and anything new.
        _ => "stop",
    }
}

/// What an answer says, read once for both endpoints.
struct Read {
    text: Option<String>,
    tool_calls: Vec<Value>,
    reasoning: Option<String>,
    thinking_blocks: Vec<Value>,
    finish_reason: &'static str,
    usage: Option<Usage>,
}

fn read(ctx: &Ctx<'_>, body: &[u8]) -> Result<Read, Error> {
    let res: ConverseResponse = serde_json::from_slice(body)
        .map_err(|e| ctx.invalid(format!("not a Converse answer: {e}")))?;
    let message = res
        .output
        .message
        .ok_or_else(|| ctx.invalid("the answer has no `output.message`".to_owned()))?;
    let mut text: Option<String> = None;
    let mut reasoning: Option<String> = None;
    let mut tool_calls = Vec::new();
    let mut thinking_blocks = Vec::new();
    for block in &message.content {
        if let Some(t) = block.get("text").and_then(Value::as_str) {
            text.get_or_insert_with(String::new).push_str(t);
        } else if let Some(tool) = block.get("toolUse") {
            let input = tool.get("input").cloned().unwrap_or_else(|| json!({}));
            tool_calls.push(json!({
                "id": tool.get("toolUseId").cloned().unwrap_or(Value::Null),
                "type": "function",
                "function": {
                    "name": tool.get("name").cloned().unwrap_or(Value::Null),
                    "arguments": input.to_string(),
                },
            }));
        } else if let Some(r) = block.get("reasoningContent") {
            if let Some(rt) = r.get("reasoningText") {
                let t = rt.get("text").and_then(Value::as_str).unwrap_or_default();
                reasoning.get_or_insert_with(String::new).push_str(t);
                let mut b = json!({"type": "thinking", "thinking": t});
                if let Some(sig) = rt.get("signature") {
                    b["signature"] = sig.clone();
                }
                thinking_blocks.push(b);
            } else if let Some(data) = r.get("redactedContent") {
                thinking_blocks.push(json!({"type": "redacted_thinking", "data": data}));
            }
        }
    }
    Ok(Read {
        text,
        tool_calls,
        reasoning,
        thinking_blocks,
        finish_reason: finish_reason(res.stop_reason.as_deref().unwrap_or("end_turn")),
        usage: res.usage.map(TokenUsage::to_usage),
    })
}

fn encode(ctx: &Ctx<'_>, v: &Value) -> Result<Bytes, Error> {
    serde_json::to_vec(v)
        .map(Bytes::from)
        .map_err(|e| ctx.invalid(format!("cannot serialise the answer: {e}")))
}

/// A chat answer as `chat.completion`.
pub(super) fn read_chat(ctx: &Ctx<'_>, body: &[u8]) -> Result<Answered, Error> {
    let r = read(ctx, body)?;
    let mut message = json!({"role": "assistant", "content": r.text});
    if !r.tool_calls.is_empty() {
        message["tool_calls"] = Value::Array(r.tool_calls);
    }
    if let Some(reasoning) = r.reasoning {
        message["reasoning_content"] = Value::String(reasoning);
    }
    if !r.thinking_blocks.is_empty() {
        message["thinking_blocks"] = Value::Array(r.thinking_blocks);
    }
    let mut out = json!({
        "id": new_id("chatcmpl"),
        "object": "chat.completion",
        "created": now(),
        "model": model_id(ctx.dep),
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": r.finish_reason,
        }],
    });
    if let Some(u) = &r.usage {
        out["usage"] = serde_json::to_value(u).unwrap_or(Value::Null);
    }
    Ok(Answered {
        json: encode(ctx, &out)?,
        usage: r.usage,
    })
}

/// A legacy completions answer as `text_completion`.
pub(super) fn read_completion(ctx: &Ctx<'_>, body: &[u8]) -> Result<Answered, Error> {
    let r = read(ctx, body)?;
    let mut out = json!({
        "id": new_id("cmpl"),
        "object": "text_completion",
        "created": now(),
        "model": model_id(ctx.dep),
        "choices": [{
            "text": r.text.unwrap_or_default(),
            "index": 0,
            "logprobs": null,
            "finish_reason": r.finish_reason,
        }],
    });
    if let Some(u) = &r.usage {
        out["usage"] = serde_json::to_value(u).unwrap_or(Value::Null);
    }
    Ok(Answered {
        json: encode(ctx, &out)?,
        usage: r.usage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_counts_cache_reads_as_prompt_tokens() {
        let u: TokenUsage = serde_json::from_value(json!({
            "inputTokens": 10, "outputTokens": 5, "totalTokens": 115,
            "cacheReadInputTokens": 100
        }))
        .unwrap();
        let u = serde_json::to_value(u.to_usage()).unwrap();
        assert_eq!(
            u,
            json!({"prompt_tokens": 110, "completion_tokens": 5, "total_tokens": 115,
                   "prompt_tokens_details": {"cached_tokens": 100}})
        );
        let u: TokenUsage =
            serde_json::from_value(json!({"inputTokens": 3, "outputTokens": 4, "totalTokens": 7}))
                .unwrap();
        assert_eq!(
            serde_json::to_value(u.to_usage()).unwrap(),
            json!({"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7})
        );
    }

    #[test]
    fn finish_reasons() {
        for (stop, finish) in [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("max_tokens", "length"),
            ("tool_use", "tool_calls"),
            ("guardrail_intervened", "content_filter"),
            ("content_filtered", "content_filter"),
        ] {
            assert_eq!(finish_reason(stop), finish);
        }
    }
}
