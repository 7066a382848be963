//! OpenAI messages -> Anthropic's `system` and turns.
//!
//! System and developer messages (wherever they are) become `system` text blocks, in order.
//! User content parts become `text`, `image` (`base64` from a `data:` URL, `url` from an
//! `http(s)` URL) and `document` (a PDF `file` part) blocks. An assistant turn becomes its
//! `thinking_blocks` (sent back unchanged, signatures included), text and `tool_use` blocks;
//! `tool` messages become `tool_result` blocks in a user turn. Consecutive turns of one role
//! are merged into one. `cache_control` on a part stays on its block; on a message it goes on
//! the message's last block (LiteLLM's rule). A turn of one plain text block is sent as a
//! string.

use llmgate_core::wire::anthropic::{Content, ContentBlock, InputMessage, Source};
use llmgate_core::wire::chat::{ContentPart, MessageContent, ToolCall};
use llmgate_core::wire::Message;
use serde_json::{json, Map, Value};

use crate::dialect::Ctx;
use crate::error::Error;

/// The system prompt and the turns.
pub(super) fn conversation(
    ctx: &Ctx<'_>,
    messages: &[Message],
) -> Result<(Option<Content>, Vec<InputMessage>), Error> {
    let mut system: Vec<ContentBlock> = Vec::new();
    let mut turns: Vec<(&'static str, Vec<ContentBlock>)> = Vec::new();
    for m in messages {
        let (role, mut blocks) = match m.role.as_str() {
            "system" | "developer" => {
                let mut blocks = system_blocks(ctx, m.content.as_ref())?;
                mark_last(&mut blocks, m.extra.get("cache_control"));
                system.extend(blocks);
                continue;
            }
            "user" => ("user", user_blocks(ctx, m.content.as_ref())?),
            "assistant" => ("assistant", assistant_blocks(ctx, m)?),
            "tool" => ("user", vec![tool_result(ctx, m)?]),
            "function" => {
                ctx.unsupported("function messages")?;
                continue;
            }
            _ => {
                ctx.unsupported("messages[].role")?;
                continue;
            }
        };
        if blocks.is_empty() {
            // An assistant turn with nothing in it (Anthropic rejects empty content).
            continue;
        }
        mark_last(&mut blocks, m.extra.get("cache_control"));
        match turns.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    let system = (!system.is_empty()).then(|| compact(system));
    let turns = turns
        .into_iter()
        .map(|(role, blocks)| InputMessage {
            role: role.to_owned(),
            content: compact(blocks),
        })
        .collect();
    Ok((system, turns))
}

/// One plain text block is sent as a string.
fn compact(mut blocks: Vec<ContentBlock>) -> Content {
    if let [ContentBlock::Text {
        cache_control: None,
        citations: None,
        ..
    }] = blocks.as_slice()
    {
        if let Some(ContentBlock::Text { text, .. }) = blocks.pop() {
            return Content::Text(text);
        }
    }
    Content::Blocks(blocks)
}

/// A message-level `cache_control` goes on the message's last block (LiteLLM's rule).
fn mark_last(blocks: &mut [ContentBlock], cache: Option<&Value>) {
    let Some(cache) = cache.filter(|c| !c.is_null()) else {
        return;
    };
    if let Some(
        ContentBlock::Text { cache_control, .. }
        | ContentBlock::Image { cache_control, .. }
        | ContentBlock::Document { cache_control, .. }
        | ContentBlock::ToolUse { cache_control, .. }
        | ContentBlock::ToolResult { cache_control, .. },
    ) = blocks.last_mut()
    {
        *cache_control = Some(cache.clone());
    }
}

fn text_block(text: String, part: Option<&ContentPart>) -> ContentBlock {
    ContentBlock::Text {
        text,
        cache_control: part.and_then(|p| p.extra.get("cache_control")).cloned(),
        citations: None,
    }
}

fn system_blocks(
    ctx: &Ctx<'_>,
    content: Option<&MessageContent>,
) -> Result<Vec<ContentBlock>, Error> {
    let mut out = Vec::new();
    match content {
        Some(MessageContent::Text(t)) if !t.is_empty() => out.push(text_block(t.clone(), None)),
        None | Some(MessageContent::Text(_)) => {}
        Some(MessageContent::Parts(parts)) => {
            for p in parts {
                match (&p.part_type[..], &p.text) {
                    ("text", Some(t)) => out.push(text_block(t.clone(), Some(p))),
                    _ => ctx.unsupported("non-text content in system messages")?,
                }
            }
        }
    }
    Ok(out)
}

fn user_blocks(
    ctx: &Ctx<'_>,
    content: Option<&MessageContent>,
) -> Result<Vec<ContentBlock>, Error> {
    match content {
        None => Ok(Vec::new()),
        Some(MessageContent::Text(t)) => Ok(vec![text_block(t.clone(), None)]),
        Some(MessageContent::Parts(parts)) => {
            let mut out = Vec::with_capacity(parts.len());
            for p in parts {
                if let Some(b) = part_block(ctx, p)? {
                    out.push(b);
                }
            }
            Ok(out)
        }
    }
}

/// One content part as a block; `None` when it is dropped (with `drop_params`).
fn part_block(ctx: &Ctx<'_>, p: &ContentPart) -> Result<Option<ContentBlock>, Error> {
    let cache_control = p.extra.get("cache_control").cloned();
    Ok(Some(match p.part_type.as_str() {
        "text" => text_block(p.text.clone().unwrap_or_default(), Some(p)),
        "image_url" => {
            let Some(url) = p.image_url.as_ref().map(|i| i.url.as_str()) else {
                ctx.unsupported("image_url")?;
                return Ok(None);
            };
            let Some(source) = source_of(url) else {
                ctx.unsupported("image_url")?;
                return Ok(None);
            };
            ContentBlock::Image {
                source,
                cache_control,
            }
        }
        "file" => {
            // `{"file": {"file_data": "data:application/pdf;base64,..."}}`; file ids are
            // OpenAI's own and mean nothing to Anthropic.
            let data = p
                .extra
                .get("file")
                .and_then(|f| f.get("file_data"))
                .and_then(Value::as_str);
            let Some(source) = data.and_then(source_of) else {
                ctx.unsupported("file")?;
                return Ok(None);
            };
            ContentBlock::Document {
                source,
                cache_control,
                extra: Map::new(),
            }
        }
        "input_audio" => {
            ctx.unsupported("input_audio")?;
            return Ok(None);
        }
        _ => {
            ctx.unsupported("content part type")?;
            return Ok(None);
        }
    }))
}

/// `data:<media type>;base64,<data>` as a base64 source; `http(s)://` as a URL source.
fn source_of(url: &str) -> Option<Source> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest.split_once(',')?;
        let media_type = meta.strip_suffix(";base64")?;
        return Some(Source::Base64 {
            media_type: media_type.to_owned(),
            data: data.to_owned(),
        });
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Some(Source::Url {
            url: url.to_owned(),
        });
    }
    None
}

fn assistant_blocks(ctx: &Ctx<'_>, m: &Message) -> Result<Vec<ContentBlock>, Error> {
    let mut out = Vec::new();
    // Thinking must come first and be sent back unchanged (with its signature) when the
    // turn also called tools.
    if let Some(Value::Array(blocks)) = m.extra.get("thinking_blocks") {
        for b in blocks {
            match serde_json::from_value::<ContentBlock>(b.clone()) {
                Ok(b @ (ContentBlock::Thinking { .. } | ContentBlock::RedactedThinking { .. })) => {
                    out.push(b);
                }
                _ => ctx.unsupported("thinking_blocks")?,
            }
        }
    }
    match &m.content {
        Some(MessageContent::Text(t)) if !t.is_empty() => out.push(text_block(t.clone(), None)),
        None | Some(MessageContent::Text(_)) => {}
        Some(MessageContent::Parts(parts)) => {
            for p in parts {
                match (&p.part_type[..], &p.text) {
                    ("text", Some(t)) if t.is_empty() => {}
                    ("text", Some(t)) => out.push(text_block(t.clone(), Some(p))),
                    ("refusal", _) => {
                        if let Some(r) = p.extra.get("refusal").and_then(Value::as_str) {
                            out.push(text_block(r.to_owned(), Some(p)));
                        }
                    }
                    _ => ctx.unsupported("non-text content in assistant messages")?,
                }
            }
        }
    }
    for call in m.tool_calls.iter().flatten() {
        out.push(tool_use(call));
    }
    Ok(out)
}

fn tool_use(call: &ToolCall) -> ContentBlock {
    let f = call.function.as_ref();
    let args = f.and_then(|f| f.arguments.as_deref()).unwrap_or("").trim();
    let input = if args.is_empty() {
        Value::Object(Map::new())
    } else {
        match serde_json::from_str::<Value>(args) {
            Ok(v @ Value::Object(_)) => v,
            // Anthropic takes only an object; keep whatever the model produced under a key
            // rather than losing it.
            Ok(other) => json!({ "arguments": other }),
            Err(_) => json!({ "arguments": args }),
        }
    };
    ContentBlock::ToolUse {
        id: call.id.clone().unwrap_or_default(),
        name: f.and_then(|f| f.name.clone()).unwrap_or_default(),
        input,
        cache_control: None,
    }
}

fn tool_result(ctx: &Ctx<'_>, m: &Message) -> Result<ContentBlock, Error> {
    let content = match &m.content {
        None => None,
        Some(MessageContent::Text(t)) => Some(Content::Text(t.clone())),
        Some(MessageContent::Parts(parts)) => {
            let mut blocks = Vec::with_capacity(parts.len());
            for p in parts {
                if let Some(b) = part_block(ctx, p)? {
                    blocks.push(b);
                }
            }
            Some(Content::Blocks(blocks))
        }
    };
    Ok(ContentBlock::ToolResult {
        tool_use_id: m.tool_call_id.clone().unwrap_or_default(),
        content,
        is_error: None,
        cache_control: None,
    })
}
