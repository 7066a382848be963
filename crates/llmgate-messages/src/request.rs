//! Anthropic Messages request -> OpenAI chat completion request.
//!
//! | Anthropic | OpenAI |
//! |---|---|
//! | `system` (text or text blocks) | a `system` message (a string, or text parts keeping `cache_control`) |
//! | user `text`, `image` (`base64` / `url`), `document` (PDF) blocks | user content parts: `text`, `image_url` (a `data:` or `https:` URL), `file` |
//! | user `tool_result` blocks | `tool` messages, before the rest of the turn |
//! | assistant `text`, `tool_use`, `thinking` blocks | `content`, `tool_calls` (input as a JSON string), `thinking_blocks` |
//! | `tools` (`name`, `description`, `input_schema`) | `function` tools; Anthropic's own tool types pass through |
//! | `tool_choice` `auto` / `any` / `tool` / `none` | `auto` / `required` / named function / `none` |
//! | `disable_parallel_tool_use` | `parallel_tool_calls: false` |
//! | `max_tokens`, `stop_sequences`, `temperature`, `top_p` | `max_tokens`, `stop`, `temperature`, `top_p` |
//! | `metadata.user_id` | `user` |
//! | `stream` | `stream` with `stream_options.include_usage` |
//! | `top_k`, `thinking`, other fields | passed through (LiteLLM's names); gateway keys (`mock_response`, `num_retries`, ...) taken as for OpenAI clients |
//!
//! `cache_control` is kept on the parts, messages and tools it was on, where the Anthropic
//! dialect finds it again. A `tool_result`'s `is_error` has no OpenAI equivalent and is not
//! sent (the result text still says what went wrong).

use llmgate_core::wire::anthropic::{Content, ContentBlock, MessagesRequest, Source, ToolChoice};
use llmgate_core::wire::chat::{
    ContentPart, FunctionCall, FunctionDef, ImageUrl, MessageContent, StreamOptions, Tool, ToolCall,
};
use llmgate_core::wire::{ChatCompletionRequest, Message};
use llmgate_core::{ApiError, Endpoint, GatewayParams, LlmBody, LlmRequest};
use serde_json::{json, Map, Value};

/// Parses and translates an Anthropic request body. Errors are 400s.
pub(crate) fn to_llm(body: &[u8]) -> Result<LlmRequest, ApiError> {
    let req: MessagesRequest = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("invalid Messages API request body: {e}"))
            .with_code("invalid_json")
    })?;
    let (chat, gateway) = to_chat(req)?;
    Ok(LlmRequest::from_parts(
        Endpoint::ChatCompletions,
        LlmBody::Chat(chat),
        gateway,
    ))
}

/// The OpenAI request and the gateway's own parameters.
pub(crate) fn to_chat(
    req: MessagesRequest,
) -> Result<(ChatCompletionRequest, GatewayParams), ApiError> {
    let MessagesRequest {
        model,
        messages,
        max_tokens,
        system,
        stop_sequences,
        stream,
        temperature,
        top_p,
        top_k,
        tools,
        tool_choice,
        metadata,
        thinking,
        mut extra,
    } = req;
    let gateway = GatewayParams::take_from(&mut extra)?;

    let mut out = Vec::with_capacity(messages.len() + 1);
    if let Some(system) = system {
        out.push(message("system", Some(system_content(system)?)));
    }
    for m in messages {
        match m.role.as_str() {
            "user" => user_turn(m.content, &mut out)?,
            "assistant" => out.push(assistant_turn(m.content)?),
            other => {
                return Err(invalid(
                    format!("messages: role `{other}` is not `user` or `assistant`"),
                    "messages",
                ))
            }
        }
    }

    let tools = tools
        .map(|tools| {
            tools
                .into_iter()
                .map(|t| match t.tool_type.as_deref() {
                    None | Some("custom") => {
                        let mut extra = t.extra;
                        if let Some(c) = t.cache_control {
                            extra.insert("cache_control".to_owned(), c);
                        }
                        Tool {
                            tool_type: "function".to_owned(),
                            function: Some(FunctionDef {
                                name: t.name,
                                description: t.description,
                                parameters: t.input_schema,
                                strict: None,
                            }),
                            extra,
                        }
                    }
                    // Anthropic's own tools (web search, bash, text editor, ...): as they are.
                    Some(kind) => {
                        let kind = kind.to_owned();
                        let mut extra = t.extra;
                        extra.insert("name".to_owned(), Value::String(t.name));
                        for (k, v) in [
                            ("description", t.description.map(Value::String)),
                            ("input_schema", t.input_schema),
                            ("cache_control", t.cache_control),
                        ] {
                            if let Some(v) = v {
                                extra.insert(k.to_owned(), v);
                            }
                        }
                        Tool {
                            tool_type: kind,
                            function: None,
                            extra,
                        }
                    }
                })
                .collect::<Vec<_>>()
        })
        .filter(|t| !t.is_empty());

    let mut parallel = None;
    let tool_choice = tool_choice.map(|c| {
        let (choice, disable) = match c {
            ToolChoice::Auto {
                disable_parallel_tool_use,
            } => (json!("auto"), disable_parallel_tool_use),
            ToolChoice::Any {
                disable_parallel_tool_use,
            } => (json!("required"), disable_parallel_tool_use),
            ToolChoice::Tool {
                name,
                disable_parallel_tool_use,
            } => (
                json!({"type": "function", "function": {"name": name}}),
                disable_parallel_tool_use,
            ),
            ToolChoice::None => (json!("none"), None),
        };
        if disable == Some(true) {
            parallel = Some(false);
        }
        choice
    });
    if let Some(p) = parallel {
        extra.insert("parallel_tool_calls".to_owned(), Value::Bool(p));
    }
    if let Some(k) = top_k {
        extra.insert("top_k".to_owned(), Value::from(k));
    }
    if let Some(t) = thinking.filter(|t| !t.is_null()) {
        extra.insert("thinking".to_owned(), t);
    }
    let user = metadata
        .as_ref()
        .and_then(|m| m.get("user_id"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let stream = stream.filter(|s| *s);

    let chat = ChatCompletionRequest {
        model,
        messages: out,
        stream,
        stream_options: stream.map(|_| StreamOptions {
            include_usage: Some(true),
            extra: Map::new(),
        }),
        tools,
        tool_choice,
        response_format: None,
        max_tokens,
        max_completion_tokens: None,
        temperature,
        top_p,
        n: None,
        stop: stop_sequences
            .filter(|s| !s.is_empty())
            .map(|s| Value::Array(s.into_iter().map(Value::String).collect())),
        seed: None,
        user,
        extra,
    };
    Ok((chat, gateway))
}

fn invalid(message: String, param: &'static str) -> ApiError {
    ApiError::bad_request(message).with_param(param)
}

fn message(role: &str, content: Option<MessageContent>) -> Message {
    Message {
        role: role.to_owned(),
        content,
        name: None,
        tool_calls: None,
        tool_call_id: None,
        extra: Map::new(),
    }
}

fn system_content(system: Content) -> Result<MessageContent, ApiError> {
    let blocks = match system {
        Content::Text(t) => return Ok(MessageContent::Text(t)),
        Content::Blocks(blocks) => blocks,
    };
    let parts = blocks
        .into_iter()
        .map(|b| match b {
            ContentBlock::Text {
                text,
                cache_control,
                ..
            } => Ok(text_part(text, cache_control)),
            _ => Err(invalid(
                "system: only text blocks are allowed".to_owned(),
                "system",
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(compact(parts))
}

/// One plain text part is sent as a string.
fn compact(mut parts: Vec<ContentPart>) -> MessageContent {
    if let [p] = parts.as_slice() {
        if p.part_type == "text" && p.extra.is_empty() {
            if let Some(text) = parts.pop().and_then(|p| p.text) {
                return MessageContent::Text(text);
            }
        }
    }
    MessageContent::Parts(parts)
}

fn text_part(text: String, cache_control: Option<Value>) -> ContentPart {
    let mut extra = Map::new();
    if let Some(c) = cache_control {
        extra.insert("cache_control".to_owned(), c);
    }
    ContentPart {
        part_type: "text".to_owned(),
        text: Some(text),
        image_url: None,
        extra,
    }
}

/// A user turn: its tool results as `tool` messages first, then the rest as one user message.
fn user_turn(content: Content, out: &mut Vec<Message>) -> Result<(), ApiError> {
    let blocks = match content {
        Content::Text(t) => {
            out.push(message("user", Some(MessageContent::Text(t))));
            return Ok(());
        }
        Content::Blocks(blocks) => blocks,
    };
    let mut parts = Vec::new();
    for b in blocks {
        match b {
            ContentBlock::ToolResult {
                tool_use_id,
                content,
                is_error: _,
                cache_control,
            } => {
                let content = match content {
                    None => MessageContent::Text(String::new()),
                    Some(Content::Text(t)) => MessageContent::Text(t),
                    Some(Content::Blocks(blocks)) => compact(
                        blocks
                            .into_iter()
                            .map(part)
                            .collect::<Result<Vec<_>, _>>()?,
                    ),
                };
                let mut m = message("tool", Some(content));
                m.tool_call_id = Some(tool_use_id);
                if let Some(c) = cache_control {
                    m.extra.insert("cache_control".to_owned(), c);
                }
                out.push(m);
            }
            other => parts.push(part(other)?),
        }
    }
    if !parts.is_empty() {
        out.push(message("user", Some(compact(parts))));
    }
    Ok(())
}

/// A user content block as an OpenAI content part.
fn part(block: ContentBlock) -> Result<ContentPart, ApiError> {
    let with_cache = |mut p: ContentPart, cache: Option<Value>| {
        if let Some(c) = cache {
            p.extra.insert("cache_control".to_owned(), c);
        }
        p
    };
    match block {
        ContentBlock::Text {
            text,
            cache_control,
            ..
        } => Ok(text_part(text, cache_control)),
        ContentBlock::Image {
            source,
            cache_control,
        } => {
            let url = match source {
                Source::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
                Source::Url { url } => url,
                _ => {
                    return Err(invalid(
                        "messages: image sources must be `base64` or `url`".to_owned(),
                        "messages",
                    ))
                }
            };
            Ok(with_cache(
                ContentPart {
                    part_type: "image_url".to_owned(),
                    text: None,
                    image_url: Some(ImageUrl { url, detail: None }),
                    extra: Map::new(),
                },
                cache_control,
            ))
        }
        ContentBlock::Document {
            source,
            cache_control,
            ..
        } => match source {
            Source::Base64 { media_type, data } => {
                let mut extra = Map::new();
                extra.insert(
                    "file".to_owned(),
                    json!({"file_data": format!("data:{media_type};base64,{data}")}),
                );
                Ok(with_cache(
                    ContentPart {
                        part_type: "file".to_owned(),
                        text: None,
                        image_url: None,
                        extra,
                    },
                    cache_control,
                ))
            }
            Source::Text { data, .. } => Ok(text_part(data, cache_control)),
            _ => Err(invalid(
                "messages: document sources must be `base64` or `text`".to_owned(),
                "messages",
            )),
        },
        ContentBlock::ToolUse { .. }
        | ContentBlock::Thinking { .. }
        | ContentBlock::RedactedThinking { .. } => Err(invalid(
            "messages: `tool_use` and `thinking` blocks belong in assistant turns".to_owned(),
            "messages",
        )),
        ContentBlock::ToolResult { .. } => Err(invalid(
            "messages: `tool_result` blocks belong in user turns".to_owned(),
            "messages",
        )),
        ContentBlock::Unknown => Err(invalid(
            "messages: a content block of a type llmgate does not translate".to_owned(),
            "messages",
        )),
    }
}

fn assistant_turn(content: Content) -> Result<Message, ApiError> {
    let blocks = match content {
        Content::Text(t) => return Ok(message("assistant", Some(MessageContent::Text(t)))),
        Content::Blocks(blocks) => blocks,
    };
    let mut parts = Vec::new();
    let mut calls = Vec::new();
    let mut thinking = Vec::new();
    let mut cache = None;
    for b in blocks {
        match b {
            ContentBlock::Text {
                text,
                cache_control,
                ..
            } => parts.push(text_part(text, cache_control)),
            ContentBlock::ToolUse {
                id,
                name,
                input,
                cache_control,
            } => {
                if cache_control.is_some() {
                    cache = cache_control;
                }
                calls.push(ToolCall {
                    id: Some(id),
                    call_type: Some("function".to_owned()),
                    index: None,
                    function: Some(FunctionCall {
                        name: Some(name),
                        arguments: Some(input.to_string()),
                    }),
                });
            }
            b @ (ContentBlock::Thinking { .. } | ContentBlock::RedactedThinking { .. }) => {
                thinking.push(serde_json::to_value(b).map_err(|e| {
                    ApiError::internal(format!("could not keep a thinking block: {e}"))
                })?);
            }
            _ => {
                return Err(invalid(
                    "messages: assistant turns take text, tool_use and thinking blocks".to_owned(),
                    "messages",
                ))
            }
        }
    }
    let content = if parts.iter().any(|p| !p.extra.is_empty()) {
        Some(MessageContent::Parts(parts))
    } else {
        let text: String = parts.into_iter().filter_map(|p| p.text).collect();
        (!text.is_empty() || calls.is_empty()).then_some(MessageContent::Text(text))
    };
    let mut m = message("assistant", content);
    if !calls.is_empty() {
        m.tool_calls = Some(calls);
    }
    if !thinking.is_empty() {
        m.extra
            .insert("thinking_blocks".to_owned(), Value::Array(thinking));
    }
    if let Some(c) = cache {
        m.extra.insert("cache_control".to_owned(), c);
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(v: Value) -> Value {
        let (chat, _) = to_chat(serde_json::from_value(v).unwrap()).unwrap();
        serde_json::to_value(chat).unwrap()
    }

    #[test]
    fn claude_code_like_request() {
        let v = chat(json!({
            "model": "claude-sonnet-4-20250514", "max_tokens": 32000, "stream": true,
            "temperature": 1, "metadata": {"user_id": "u_1"},
            "system": [
                {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "Be concise."}],
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "list files"}]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "use ls", "signature": "sig"},
                    {"type": "text", "text": "Running ls."},
                    {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "a.txt", "is_error": false},
                    {"type": "text", "text": "now read it", "cache_control": {"type": "ephemeral"}}]}],
            "tools": [{"name": "Bash", "description": "Run a command", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "top_k": 5, "stop_sequences": ["END"]
        }));
        assert_eq!(
            v,
            json!({
                "model": "claude-sonnet-4-20250514", "max_tokens": 32000, "stream": true,
                "stream_options": {"include_usage": true}, "temperature": 1.0, "user": "u_1",
                "stop": ["END"], "top_k": 5, "parallel_tool_calls": false,
                "thinking": {"type": "enabled", "budget_tokens": 1024},
                "messages": [
                    {"role": "system", "content": [
                        {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
                        {"type": "text", "text": "Be concise."}]},
                    {"role": "user", "content": "list files"},
                    {"role": "assistant", "content": "Running ls.",
                        "tool_calls": [{"id": "toolu_1", "type": "function",
                            "function": {"name": "Bash", "arguments": "{\"command\":\"ls\"}"}}],
                        "thinking_blocks": [{"type": "thinking", "thinking": "use ls", "signature": "sig"}]},
                    {"role": "tool", "tool_call_id": "toolu_1", "content": "a.txt"},
                    {"role": "user", "content": [{"type": "text", "text": "now read it",
                        "cache_control": {"type": "ephemeral"}}]}],
                "tools": [{"type": "function", "function": {"name": "Bash",
                    "description": "Run a command", "parameters": {"type": "object"}}}],
                "tool_choice": "auto"
            })
        );
    }

    #[test]
    fn images_documents_and_choices() {
        let v = chat(
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}},
            {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}}]}],
            "tool_choice": {"type": "tool", "name": "f"}}),
        );
        assert_eq!(
            v["messages"][0]["content"],
            json!([
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
                {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
                {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE"}}])
        );
        assert_eq!(
            v["tool_choice"],
            json!({"type": "function", "function": {"name": "f"}})
        );
        assert_eq!(
            chat(json!({"model": "m", "messages": [], "tool_choice": {"type": "any"}}))
                ["tool_choice"],
            "required"
        );
    }

    #[test]
    fn gateway_params_are_taken_and_bad_requests_rejected() {
        let (chat, gw) = to_chat(
            serde_json::from_value(json!({"model": "m", "max_tokens": 1, "messages": [],
                "mock_response": "hi", "num_retries": 0, "service_tier": "auto"}))
            .unwrap(),
        )
        .unwrap();
        assert_eq!(gw.mock_response.as_deref(), Some("hi"));
        assert_eq!(gw.num_retries, Some(0));
        assert!(chat.extra.contains_key("service_tier"));
        assert!(!chat.extra.contains_key("mock_response"));

        let e = to_llm(br#"{"model": "m", "messages": [{"role": "system", "content": "x"}]}"#)
            .unwrap_err();
        assert_eq!(e.to_response().status(), 400);
        assert!(e.message().contains("role `system`"), "{}", e.message());
        let e = to_llm(br#"{"model": "m""#).unwrap_err();
        assert!(e.message().contains("invalid Messages API request body"));
    }
}
