//! OpenAI messages and tools as Converse `system`, `messages` and `toolConfig.tools`.
//!
//! - `system` and `developer` messages (wherever they are) become `system` text blocks.
//! - `user` content parts become `text` and `image` blocks; images must be `data:` URLs
//!   (`image/png`, `jpeg`, `gif`, `webp`), since Converse takes image bytes, not links.
//! - `assistant` messages become `text` and `toolUse` blocks (the call's JSON arguments parsed
//!   into `input`), preceded by `reasoningContent` for LiteLLM's `thinking_blocks`.
//! - `tool` messages become `toolResult` blocks in a user turn.
//! - Consecutive turns of the same role are merged, as Converse wants roles to alternate.
//! - `cache_control` on a message, a content part or a tool adds a `cachePoint` after it
//!   (Bedrock's prompt caching).

use llmgate_core::wire::chat::{ContentPart, MessageContent, Tool, ToolCall};
use llmgate_core::wire::Message;
use serde_json::{json, Map, Value};

use crate::dialect::Ctx;
use crate::error::Error;

/// `system` blocks and the `messages` turns.
pub(super) struct Conversation {
    pub(super) system: Vec<Value>,
    pub(super) messages: Vec<Value>,
}

fn cache_point() -> Value {
    json!({"cachePoint": {"type": "default"}})
}

fn has_cache_control(extra: &Map<String, Value>) -> bool {
    extra.get("cache_control").is_some_and(|v| !v.is_null())
}

/// Translates the conversation.
pub(super) fn conversation(ctx: &Ctx<'_>, messages: &[Message]) -> Result<Conversation, Error> {
    let mut system = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::with_capacity(messages.len());
    for m in messages {
        // A tool message's `name` repeats the tool's; on other turns it names a participant,
        // which Converse has no field for.
        if m.name.is_some() && m.role != "tool" {
            ctx.unsupported("name")?;
        }
        let (role, mut blocks) = match m.role.as_str() {
            "system" | "developer" => {
                system.extend(content_blocks(ctx, m.content.as_ref(), Part::System)?);
                if has_cache_control(&m.extra) {
                    system.push(cache_point());
                }
                continue;
            }
            "user" => ("user", content_blocks(ctx, m.content.as_ref(), Part::User)?),
            "assistant" => ("assistant", assistant_blocks(ctx, m)?),
            "tool" => ("user", vec![tool_result(ctx, m)?]),
            "function" => {
                ctx.unsupported("functions")?;
                continue;
            }
            _ => {
                ctx.unsupported("messages")?;
                continue;
            }
        };
        if has_cache_control(&m.extra) {
            blocks.push(cache_point());
        }
        match turns.last_mut() {
            Some((last, content)) if *last == role => content.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    let messages = turns
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    Ok(Conversation { system, messages })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    System,
    User,
    ToolResult,
}

fn content_blocks(
    ctx: &Ctx<'_>,
    content: Option<&MessageContent>,
    kind: Part,
) -> Result<Vec<Value>, Error> {
    match content {
        None => Ok(Vec::new()),
        Some(MessageContent::Text(t)) => Ok(vec![json!({"text": t})]),
        Some(MessageContent::Parts(parts)) => {
            let mut out = Vec::with_capacity(parts.len());
            for p in parts {
                if let Some(block) = part_block(ctx, p, kind)? {
                    out.push(block);
                    if has_cache_control(&p.extra) && kind != Part::ToolResult {
                        out.push(cache_point());
                    }
                }
            }
            Ok(out)
        }
    }
}

/// One content part as a block; `None` when it was dropped (`drop_params`).
fn part_block(ctx: &Ctx<'_>, p: &ContentPart, kind: Part) -> Result<Option<Value>, Error> {
    match p.part_type.as_str() {
        "text" => Ok(Some(json!({"text": p.text.as_deref().unwrap_or_default()}))),
        "image_url" if kind != Part::System => {
            let image = p.image_url.as_ref().and_then(|i| image_block(&i.url));
            match image {
                Some(block) => Ok(Some(block)),
                None => ctx.unsupported("image_url").map(|()| None),
            }
        }
        "image_url" => ctx.unsupported("image_url").map(|()| None),
        "input_audio" => ctx.unsupported("input_audio").map(|()| None),
        "file" => ctx.unsupported("file").map(|()| None),
        _ => ctx.unsupported("content").map(|()| None),
    }
}

/// `data:image/<png|jpeg|gif|webp>;base64,<data>` as an image block (the base64 is what
/// Converse's JSON takes for bytes, so it is passed as it is). Links are not fetched.
fn image_block(url: &str) -> Option<Value> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let mime = meta.strip_suffix(";base64")?;
    let format = match mime.to_ascii_lowercase().as_str() {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpeg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        _ => return None,
    };
    Some(json!({"image": {"format": format, "source": {"bytes": data}}}))
}

fn assistant_blocks(ctx: &Ctx<'_>, m: &Message) -> Result<Vec<Value>, Error> {
    let mut out = Vec::new();
    // LiteLLM's `thinking_blocks`: Anthropic's signed reasoning, sent back on the next turn.
    if let Some(Value::Array(blocks)) = m.extra.get("thinking_blocks") {
        for b in blocks {
            match b.get("type").and_then(Value::as_str) {
                Some("thinking") => {
                    let mut text = Map::new();
                    text.insert(
                        "text".into(),
                        b.get("thinking").cloned().unwrap_or(json!("")),
                    );
                    if let Some(sig) = b.get("signature").filter(|s| !s.is_null()) {
                        text.insert("signature".into(), sig.clone());
                    }
                    out.push(json!({"reasoningContent": {"reasoningText": text}}));
                }
                Some("redacted_thinking") => {
                    let data = b.get("data").cloned().unwrap_or(json!(""));
                    out.push(json!({"reasoningContent": {"redactedContent": data}}));
                }
                _ => {}
            }
        }
    }
    // Converse refuses blank text blocks; an assistant turn with only tool calls often
    // carries `content: ""`.
    for block in content_blocks(ctx, m.content.as_ref(), Part::User)? {
        let blank = block
            .get("text")
            .and_then(Value::as_str)
            .is_some_and(|t| t.trim().is_empty());
        if !blank {
            out.push(block);
        }
    }
    for call in m.tool_calls.iter().flatten() {
        out.push(tool_use(call));
    }
    Ok(out)
}

fn tool_use(call: &ToolCall) -> Value {
    let function = call.function.as_ref();
    let name = function.and_then(|f| f.name.as_deref()).unwrap_or_default();
    let args = function
        .and_then(|f| f.arguments.as_deref())
        .unwrap_or_default();
    let input = if args.trim().is_empty() {
        json!({})
    } else {
        // Arguments that are not JSON are sent as a JSON string: the model wrote them.
        serde_json::from_str(args).unwrap_or_else(|_| Value::String(args.to_owned()))
    };
    json!({"toolUse": {
        "toolUseId": call.id.as_deref().unwrap_or_default(),
        "name": name,
        "input": input,
    }})
}

/// A `tool` message as a `toolResult` block. The result is sent as text (and images): every
/// Bedrock model that takes tools takes text results, not all take `json` ones.
fn tool_result(ctx: &Ctx<'_>, m: &Message) -> Result<Value, Error> {
    let mut content = content_blocks(ctx, m.content.as_ref(), Part::ToolResult)?;
    if content.is_empty() {
        content.push(json!({"text": ""}));
    }
    Ok(json!({"toolResult": {
        "toolUseId": m.tool_call_id.as_deref().unwrap_or_default(),
        "content": content,
    }}))
}

/// OpenAI tools as Converse `toolSpec`s.
pub(super) fn tools(ctx: &Ctx<'_>, tools: &[Tool]) -> Result<Vec<Value>, Error> {
    let mut out = Vec::with_capacity(tools.len());
    for t in tools {
        let Some(f) = t.function.as_ref().filter(|_| t.tool_type == "function") else {
            ctx.unsupported("tools")?;
            continue;
        };
        if f.strict == Some(true) {
            ctx.unsupported("strict")?;
        }
        let mut spec = Map::new();
        spec.insert("name".into(), json!(f.name));
        if let Some(d) = f.description.as_deref().filter(|d| !d.is_empty()) {
            spec.insert("description".into(), json!(d));
        }
        let schema = f
            .parameters
            .clone()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
        spec.insert("inputSchema".into(), json!({"json": schema}));
        out.push(json!({"toolSpec": spec}));
        if has_cache_control(&t.extra) {
            out.push(cache_point());
        }
    }
    Ok(out)
}

/// OpenAI's `tool_choice` as Converse's `toolChoice`; `None` to send none.
pub(super) fn tool_choice(
    ctx: &Ctx<'_>,
    choice: Option<&Value>,
    has_tools: bool,
) -> Result<Option<Value>, Error> {
    let Some(choice) = choice else {
        return Ok(None);
    };
    let mapped = match choice {
        // Nothing offered, nothing to forbid.
        Value::String(s) if s == "none" && !has_tools => return Ok(None),
        Value::String(s) if s == "auto" => Some(json!({"auto": {}})),
        Value::String(s) if s == "required" => Some(json!({"any": {}})),
        Value::Object(o) => o
            .get("function")
            .and_then(|f| f.get("name"))
            .and_then(Value::as_str)
            .map(|name| json!({"tool": {"name": name}})),
        // "none": Converse cannot forbid tool calls while offering tools.
        _ => None,
    };
    match mapped {
        Some(c) if has_tools => Ok(Some(c)),
        Some(c) if c.get("auto").is_some() => Ok(None),
        _ => ctx.unsupported("tool_choice").map(|()| None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_from_data_urls_only() {
        assert_eq!(
            image_block("data:image/png;base64,iVBORw0KGgo=").unwrap(),
            json!({"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}})
        );
        assert_eq!(
            image_block("data:image/jpg;base64,/9j/")
                .unwrap()
                .pointer("/image/format")
                .unwrap(),
            "jpeg"
        );
        assert!(image_block("https://example.com/cat.png").is_none());
        assert!(image_block("data:image/tiff;base64,AAAA").is_none());
        assert!(image_block("data:image/png,rawbytes").is_none());
    }

    #[test]
    fn tool_use_input_is_json() {
        let call: ToolCall = serde_json::from_value(json!({
            "id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}
        }))
        .unwrap();
        assert_eq!(
            tool_use(&call),
            json!({"toolUse": {"toolUseId": "call_1", "name": "get_weather",
                   "input": {"city": "Paris"}}})
        );
        let call: ToolCall = serde_json::from_value(json!({
            "id": "call_2", "type": "function", "function": {"name": "now", "arguments": ""}
        }))
        .unwrap();
        assert_eq!(tool_use(&call)["toolUse"]["input"], json!({}));
    }
}
