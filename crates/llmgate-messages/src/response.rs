//! OpenAI answers and errors -> Anthropic's.
//!
//! A `chat.completion` becomes a `message`: `thinking` blocks (from `thinking_blocks`, else
//! `reasoning_content`), a `text` block, `tool_use` blocks (arguments parsed back into an
//! object), `stop_reason` from `finish_reason` (`stop` -> `end_turn`, `length` ->
//! `max_tokens`, `tool_calls` -> `tool_use`, `content_filter` -> `refusal`) and `usage` with
//! `input_tokens` not counting cache reads and writes (which Anthropic reports apart).
//!
//! An error becomes `{"type": "error", "error": {"type", "message"}}` with the same status
//! and headers (`Retry-After`, `x-llmgate-*`): the type is Anthropic's own when the provider
//! was Anthropic (kept as the OpenAI error's `code`), else the one Anthropic uses for the
//! status.

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use http::{Response, StatusCode};
use llmgate_core::wire::anthropic::{
    self, error_type_for_status, status_for_error_type, ContentBlock, ErrorBody,
};
use llmgate_core::wire::chat::MessageContent;
use llmgate_core::wire::{ChatCompletion, Usage};
use llmgate_core::{body, ApiError, BoxBody, ErrorContract};
use serde_json::{json, Map, Value};

/// A complete OpenAI answer as an Anthropic message.
pub(crate) fn complete(parts: http::response::Parts, body: &[u8]) -> Response<BoxBody> {
    let completion: ChatCompletion = match serde_json::from_slice(body) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "a chat completion that does not parse, for /v1/messages");
            return error(
                StatusCode::BAD_GATEWAY,
                "api_error",
                &format!("the provider's answer could not be read: {e}"),
            );
        }
    };
    let message = to_message(completion);
    match serde_json::to_vec(&message) {
        Ok(json) => with_body(parts, Bytes::from(json), "application/json"),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            &format!("could not serialise the answer: {e}"),
        ),
    }
}

/// The message for a chat completion (its first choice).
pub(crate) fn to_message(c: ChatCompletion) -> anthropic::Message {
    let usage = c
        .usage
        .as_ref()
        .map(usage)
        .unwrap_or_else(|| usage_of(0, 0, 0, 0));
    let mut content = Vec::new();
    let mut stop = None;
    if let Some(choice) = c.choices.into_iter().next() {
        stop = Some(stop_reason(choice.finish_reason.as_deref()));
        let m = choice.message;
        content.extend(thinking_blocks(&m.extra));
        let text = m
            .content
            .as_ref()
            .map(MessageContent::text)
            .unwrap_or_default();
        let refusal = m.extra.get("refusal").and_then(Value::as_str).unwrap_or("");
        let text = if text.is_empty() {
            refusal.to_owned()
        } else {
            text
        };
        if !text.is_empty() {
            content.push(ContentBlock::Text {
                text,
                cache_control: None,
                citations: None,
            });
        }
        for call in m.tool_calls.into_iter().flatten() {
            let f = call
                .function
                .unwrap_or(llmgate_core::wire::chat::FunctionCall {
                    name: None,
                    arguments: None,
                });
            content.push(ContentBlock::ToolUse {
                id: call.id.unwrap_or_default(),
                name: f.name.unwrap_or_default(),
                input: tool_input(f.arguments.as_deref().unwrap_or("")),
                cache_control: None,
            });
        }
    }
    anthropic::Message {
        id: c.id,
        message_type: "message".to_owned(),
        role: "assistant".to_owned(),
        model: c.model,
        content,
        stop_reason: Some(stop.unwrap_or("end_turn").to_owned()),
        stop_sequence: None,
        usage,
    }
}

/// The message's thinking blocks: LiteLLM's `thinking_blocks` (with signatures), else the
/// `reasoning_content` text as one block without a signature.
fn thinking_blocks(extra: &Map<String, Value>) -> Vec<ContentBlock> {
    if let Some(Value::Array(blocks)) = extra.get("thinking_blocks") {
        let blocks: Vec<ContentBlock> = blocks
            .iter()
            .filter_map(|b| serde_json::from_value(b.clone()).ok())
            .filter(|b| {
                matches!(
                    b,
                    ContentBlock::Thinking { .. } | ContentBlock::RedactedThinking { .. }
                )
            })
            .collect();
        if !blocks.is_empty() {
            return blocks;
        }
    }
    match extra.get("reasoning_content").and_then(Value::as_str) {
        Some(t) if !t.is_empty() => vec![ContentBlock::Thinking {
            thinking: t.to_owned(),
            signature: Some(String::new()),
        }],
        _ => Vec::new(),
    }
}

/// Tool-call arguments (JSON text) as Anthropic's `input` object; what is not an object is
/// kept under `arguments` rather than lost.
pub(crate) fn tool_input(arguments: &str) -> Value {
    let args = arguments.trim();
    if args.is_empty() {
        return Value::Object(Map::new());
    }
    match serde_json::from_str::<Value>(args) {
        Ok(v @ Value::Object(_)) => v,
        Ok(other) => json!({ "arguments": other }),
        Err(_) => json!({ "arguments": args }),
    }
}

/// OpenAI's `finish_reason` as Anthropic's `stop_reason`.
pub(crate) fn stop_reason(finish: Option<&str>) -> &'static str {
    match finish {
        Some("length") => "max_tokens",
        Some("tool_calls" | "function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

/// OpenAI usage as Anthropic's: `input_tokens` without the cached reads
/// (`prompt_tokens_details.cached_tokens`) and cache writes (`cache_creation_input_tokens`).
pub(crate) fn usage(u: &Usage) -> anthropic::Usage {
    let read = u
        .prompt_tokens_details
        .as_ref()
        .and_then(|d| d.cached_tokens)
        .unwrap_or(0);
    let created = u
        .extra
        .get("cache_creation_input_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let input = u.prompt_tokens.saturating_sub(read).saturating_sub(created);
    usage_of(input, u.completion_tokens, read, created)
}

fn usage_of(input: u64, output: u64, read: u64, created: u64) -> anthropic::Usage {
    anthropic::Usage {
        input_tokens: Some(input),
        output_tokens: Some(output),
        cache_creation_input_tokens: Some(created),
        cache_read_input_tokens: Some(read),
        extra: Map::new(),
    }
}

/// An OpenAI-shaped error response (from any layer) in Anthropic's shape, headers kept.
pub(crate) fn from_openai_error(parts: http::response::Parts, body: &[u8]) -> Response<BoxBody> {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let e = v.get("error");
    let text = |k: &str| e.and_then(|e| e.get(k)).and_then(Value::as_str);
    let message = text("message")
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    let kind = anthropic_type(parts.status, text("code"));
    let json = error_json(kind, &message);
    with_body(parts, json, "application/json")
}

/// An [`ApiError`] in Anthropic's shape, with its status and `Retry-After`.
pub(crate) fn from_api_error(e: &ApiError) -> Response<BoxBody> {
    let mut res = e.to_response();
    let code = e.code();
    let kind = anthropic_type(e.status(), code.as_deref());
    *res.body_mut() = body::full(error_json(kind, e.message()));
    res
}

/// An Anthropic error response.
pub(crate) fn error(status: StatusCode, kind: &str, message: &str) -> Response<BoxBody> {
    let mut res = Response::new(body::full(error_json(kind, message)));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

/// Anthropic's error type: the code when it is one of Anthropic's (an Anthropic upstream's
/// error passed along), else the type for the status.
pub(crate) fn anthropic_type(status: StatusCode, code: Option<&str>) -> &str {
    match code {
        Some(c) if status_for_error_type(c).is_some() => c,
        _ => error_type_for_status(status.as_u16()),
    }
}

pub(crate) fn error_json(kind: &str, message: &str) -> Bytes {
    Bytes::from(serde_json::to_vec(&ErrorBody::new(kind, message)).unwrap_or_default())
}

fn with_body(
    mut parts: http::response::Parts,
    bytes: Bytes,
    content_type: &'static str,
) -> Response<BoxBody> {
    parts.headers.remove(CONTENT_LENGTH);
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    Response::from_parts(parts, body::full(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_to_message() {
        let c: ChatCompletion = serde_json::from_value(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "Checking.", "reasoning_content": "hm",
                "tool_calls": [{"id": "call_1", "type": "function",
                    "function": {"name": "f", "arguments": "{\"a\":1}"}}]}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 7, "total_tokens": 107,
                "prompt_tokens_details": {"cached_tokens": 60}, "cache_creation_input_tokens": 10}
        }))
        .unwrap();
        assert_eq!(
            serde_json::to_value(to_message(c)).unwrap(),
            json!({"id": "chatcmpl-1", "type": "message", "role": "assistant", "model": "gpt-4o",
                "content": [
                    {"type": "thinking", "thinking": "hm", "signature": ""},
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}}],
                "stop_reason": "tool_use", "stop_sequence": null,
                "usage": {"input_tokens": 30, "output_tokens": 7,
                    "cache_creation_input_tokens": 10, "cache_read_input_tokens": 60}})
        );
    }

    #[test]
    fn errors_take_anthropic_types() {
        assert_eq!(
            anthropic_type(StatusCode::from_u16(529).unwrap(), Some("overloaded_error")),
            "overloaded_error"
        );
        assert_eq!(
            anthropic_type(StatusCode::TOO_MANY_REQUESTS, Some("rate_limit_exceeded")),
            "rate_limit_error"
        );
        assert_eq!(anthropic_type(StatusCode::BAD_GATEWAY, None), "api_error");
        assert_eq!(tool_input("[1]"), json!({"arguments": [1]}));
        assert_eq!(tool_input("{oops"), json!({"arguments": "{oops"}));
    }
}
