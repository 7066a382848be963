//! Chat and legacy completion requests: OpenAI messages to Gemini's `contents` and
//! `systemInstruction`, with the parameters around them (see [`super::params`]).

use std::collections::HashMap;

use bytes::Bytes;
use llmgate_core::wire::chat::{ContentPart, Message, MessageContent, ToolCall};
use llmgate_core::wire::{ChatCompletionRequest, CompletionRequest};
use serde_json::{json, Map, Value};

use super::params;
use crate::dialect::Ctx;
use crate::error::Error;

/// What separates a tool call's id from the thought signature it carries (LiteLLM's format,
/// so ids survive a round trip through either gateway).
pub(super) const THOUGHT_SIGNATURE_SEPARATOR: &str = "__thought__";

/// The thought signature carried in a tool call id, if any.
pub(super) fn signature_of(id: &str) -> Option<&str> {
    id.split_once(THOUGHT_SIGNATURE_SEPARATOR)
        .map(|(_, sig)| sig)
        .filter(|sig| !sig.is_empty())
}

/// The `generateContent` body for a chat request.
pub(super) fn chat(ctx: &Ctx<'_>, r: &ChatCompletionRequest) -> Result<Bytes, Error> {
    let (contents, system) = contents(ctx, &r.messages)?;
    let mut body = Map::new();
    body.insert("contents".to_owned(), Value::Array(contents));
    if let Some(system) = system {
        body.insert("systemInstruction".to_owned(), system);
    }
    params::apply(ctx, params::of_chat(ctx, r), &mut body)?;
    encode(ctx, &body)
}

/// The `generateContent` body for a legacy completion: its one prompt as one user message.
pub(super) fn completion(ctx: &Ctx<'_>, r: &CompletionRequest) -> Result<Bytes, Error> {
    let prompt = match &r.prompt {
        Value::String(s) => Some(s.as_str()),
        Value::Array(items) if items.len() == 1 => items.first().and_then(Value::as_str),
        _ => None,
    };
    let Some(prompt) = prompt else {
        // Several prompts (one answer each) or token ids: Gemini takes one text.
        return Err(Error::unsupported_param(ctx.dep, "prompt"));
    };
    let mut body = Map::new();
    body.insert(
        "contents".to_owned(),
        json!([{"role": "user", "parts": [{"text": prompt}]}]),
    );
    params::apply(ctx, params::of_completion(ctx, r), &mut body)?;
    encode(ctx, &body)
}

fn encode(ctx: &Ctx<'_>, body: &Map<String, Value>) -> Result<Bytes, Error> {
    serde_json::to_vec(body)
        .map(Bytes::from)
        .map_err(|e| ctx.config(format!("could not serialise the request body: {e}")))
}

/// Who speaks a content, and whether it answers tool calls (answers are merged only with
/// other answers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Turn {
    User,
    Model,
    Tool,
}

impl Turn {
    fn role(self) -> &'static str {
        match self {
            Turn::User | Turn::Tool => "user",
            Turn::Model => "model",
        }
    }
}

/// `contents` and `systemInstruction` for a conversation.
fn contents(ctx: &Ctx<'_>, messages: &[Message]) -> Result<(Vec<Value>, Option<Value>), Error> {
    let mut system: Vec<Value> = Vec::new();
    let mut turns: Vec<(Turn, Vec<Value>)> = Vec::with_capacity(messages.len());
    // Tool call id -> function name, for the answers.
    let mut names: HashMap<&str, &str> = HashMap::new();
    for m in messages {
        let (turn, parts) = match m.role.as_str() {
            "system" | "developer" => {
                system.extend(system_parts(ctx, m.content.as_ref())?);
                continue;
            }
            "user" => (Turn::User, user_parts(ctx, m.content.as_ref())?),
            "assistant" => {
                let mut parts = Vec::new();
                if let Some(text) = m.content.as_ref().map(MessageContent::text) {
                    if !text.is_empty() {
                        parts.push(json!({ "text": text }));
                    }
                }
                for call in m.tool_calls.iter().flatten() {
                    let name = call
                        .function
                        .as_ref()
                        .and_then(|f| f.name.as_deref())
                        .unwrap_or_default();
                    if let Some(id) = call.id.as_deref() {
                        names.insert(id, name);
                    }
                    parts.push(function_call(call, name));
                }
                (Turn::Model, parts)
            }
            "tool" => {
                let name = m
                    .tool_call_id
                    .as_deref()
                    .and_then(|id| names.get(id).copied())
                    .or(m.name.as_deref())
                    .unwrap_or_default();
                (
                    Turn::Tool,
                    vec![function_response(name, m.content.as_ref())],
                )
            }
            // OpenAI's deprecated function-calling messages.
            "function" => {
                let name = m.name.as_deref().unwrap_or_default();
                (
                    Turn::Tool,
                    vec![function_response(name, m.content.as_ref())],
                )
            }
            _ => {
                ctx.unsupported("messages[].role")?;
                continue;
            }
        };
        if parts.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, existing)) if *last == turn => existing.extend(parts),
            _ => turns.push((turn, parts)),
        }
    }
    let contents = turns
        .into_iter()
        .map(|(turn, parts)| json!({"role": turn.role(), "parts": parts}))
        .collect();
    let system = (!system.is_empty()).then(|| json!({ "parts": system }));
    Ok((contents, system))
}

fn text_part(text: &str) -> Option<Value> {
    (!text.is_empty()).then(|| json!({ "text": text }))
}

/// A system message's text parts (Gemini's system instruction is text).
fn system_parts(ctx: &Ctx<'_>, content: Option<&MessageContent>) -> Result<Vec<Value>, Error> {
    match content {
        None => Ok(Vec::new()),
        Some(MessageContent::Text(t)) => Ok(text_part(t).into_iter().collect()),
        Some(MessageContent::Parts(parts)) => {
            let mut out = Vec::with_capacity(parts.len());
            for p in parts {
                match (p.part_type.as_str(), p.text.as_deref()) {
                    ("text", Some(t)) => out.extend(text_part(t)),
                    ("text", None) => {}
                    _ => ctx.unsupported("system message content part")?,
                }
            }
            Ok(out)
        }
    }
}

fn user_parts(ctx: &Ctx<'_>, content: Option<&MessageContent>) -> Result<Vec<Value>, Error> {
    match content {
        None => Ok(Vec::new()),
        Some(MessageContent::Text(t)) => Ok(text_part(t).into_iter().collect()),
        Some(MessageContent::Parts(parts)) => {
            let mut out = Vec::with_capacity(parts.len());
            for p in parts {
                if let Some(part) = content_part(ctx, p)? {
                    out.push(part);
                }
            }
            Ok(out)
        }
    }
}

fn content_part(ctx: &Ctx<'_>, p: &ContentPart) -> Result<Option<Value>, Error> {
    match p.part_type.as_str() {
        "text" => Ok(p.text.as_deref().and_then(text_part)),
        "image_url" => match &p.image_url {
            Some(image) => media(ctx, &image.url, None, "image/jpeg", "image_url"),
            None => ctx.unsupported("image_url").map(|()| None),
        },
        "input_audio" => {
            let audio = p.extra.get("input_audio");
            let data = audio.and_then(|a| a.get("data")).and_then(Value::as_str);
            let format = audio.and_then(|a| a.get("format")).and_then(Value::as_str);
            match (data, format) {
                (Some(data), Some(format)) => Ok(Some(json!({"inlineData": {
                    "mimeType": format!("audio/{format}"),
                    "data": data,
                }}))),
                _ => ctx.unsupported("input_audio").map(|()| None),
            }
        }
        "file" => {
            let file = p.extra.get("file");
            let field = |name: &str| file.and_then(|f| f.get(name)).and_then(Value::as_str);
            let format = field("format");
            if let Some(data) = field("file_data") {
                media(ctx, data, format, "application/pdf", "file")
            } else if let Some(id) = field("file_id") {
                media(ctx, id, format, "application/pdf", "file")
            } else {
                ctx.unsupported("file").map(|()| None)
            }
        }
        _ => ctx.unsupported("content part").map(|()| None),
    }
}

/// A `data:` URL as `inlineData`; an `http(s)://` or `gs://` URL as `fileData` with `mime`
/// or the MIME type its extension suggests, else `fallback`.
fn media(
    ctx: &Ctx<'_>,
    url: &str,
    mime: Option<&str>,
    fallback: &'static str,
    what: &'static str,
) -> Result<Option<Value>, Error> {
    if let Some(rest) = url.strip_prefix("data:") {
        return match rest.split_once(";base64,") {
            Some((meta, data)) => {
                let declared = meta.split(';').next().filter(|m| !m.is_empty());
                let mime = declared.or(mime).unwrap_or(fallback);
                Ok(Some(
                    json!({"inlineData": {"mimeType": mime, "data": data}}),
                ))
            }
            // A URL-encoded data URL: Gemini takes base64 only.
            None => ctx.unsupported(what).map(|()| None),
        };
    }
    let remote = ["https://", "http://", "gs://"].iter().any(|scheme| {
        url.get(..scheme.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
    });
    if !remote {
        // An OpenAI file id, a local path: nothing Gemini can fetch.
        return ctx.unsupported(what).map(|()| None);
    }
    let mime = mime.or_else(|| guess_mime(url)).unwrap_or(fallback);
    Ok(Some(
        json!({"fileData": {"mimeType": mime, "fileUri": url}}),
    ))
}

/// The MIME type a URL's extension suggests, for the types Gemini reads.
fn guess_mime(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "mp3" => "audio/mp3",
        "wav" => "audio/wav",
        "flac" => "audio/flac",
        "ogg" => "audio/ogg",
        "mp4" => "video/mp4",
        "mov" => "video/quicktime",
        "webm" => "video/webm",
        _ => return None,
    })
}

/// An assistant's tool call as a `functionCall` part.
fn function_call(call: &ToolCall, name: &str) -> Value {
    let args = call
        .function
        .as_ref()
        .and_then(|f| f.arguments.as_deref())
        .map_or_else(
            || json!({}),
            |a| {
                if a.trim().is_empty() {
                    json!({})
                } else {
                    // Arguments that are not JSON are sent as they are: Gemini's 400 names them.
                    serde_json::from_str(a).unwrap_or_else(|_| Value::String(a.to_owned()))
                }
            },
        );
    let mut part = Map::new();
    part.insert(
        "functionCall".to_owned(),
        json!({"name": name, "args": args}),
    );
    if let Some(sig) = call.id.as_deref().and_then(signature_of) {
        part.insert("thoughtSignature".to_owned(), Value::String(sig.to_owned()));
    }
    Value::Object(part)
}

/// A tool's answer as a `functionResponse` part: the content as a JSON object when it is
/// one, else wrapped as `{"content": ...}`.
fn function_response(name: &str, content: Option<&MessageContent>) -> Value {
    let text = content.map(MessageContent::text).unwrap_or_default();
    let response = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(o)) => Value::Object(o),
        Ok(other) => json!({ "content": other }),
        Err(_) => json!({ "content": text }),
    };
    json!({"functionResponse": {"name": name, "response": response}})
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmgate_core::{DeploymentSpec, Endpoint, LlmBody, LlmRequest, ProviderKind};

    fn body(v: Value, drop_params: bool) -> Result<Value, Error> {
        let llm = LlmRequest::parse(Endpoint::ChatCompletions, v.to_string().as_bytes()).unwrap();
        let mut dep = DeploymentSpec::new("g-0", "group", ProviderKind::Gemini, "gemini-2.0-flash");
        dep.drop_params = drop_params;
        let ctx = Ctx::new(&llm, &dep);
        let LlmBody::Chat(r) = llm.body() else {
            panic!()
        };
        chat(&ctx, r).map(|b| serde_json::from_slice(&b).unwrap())
    }

    #[test]
    fn roles_system_and_merging() {
        let v = body(
            json!({"model": "m", "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "developer", "content": [{"type": "text", "text": "and kind"}]},
                {"role": "user", "content": "hi"},
                {"role": "user", "content": [{"type": "text", "text": "there"}, {"type": "text", "text": ""}]},
                {"role": "assistant", "content": "hello", "name": "bot"},
                {"role": "user", "content": ""},
                {"role": "user", "content": "again"}
            ]}),
            false,
        )
        .unwrap();
        assert_eq!(
            v,
            json!({
                "systemInstruction": {"parts": [{"text": "be brief"}, {"text": "and kind"}]},
                "contents": [
                    {"role": "user", "parts": [{"text": "hi"}, {"text": "there"}]},
                    {"role": "model", "parts": [{"text": "hello"}]},
                    {"role": "user", "parts": [{"text": "again"}]}
                ]
            })
        );
    }

    #[test]
    fn tool_calls_and_answers() {
        let v = body(
            json!({"model": "m", "messages": [
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1__thought__c2ln", "type": "function",
                     "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": ""}}
                ]},
                {"role": "tool", "tool_call_id": "call_1__thought__c2ln", "content": "{\"temp\": 21}"},
                {"role": "tool", "tool_call_id": "call_2", "content": "noon"},
                {"role": "tool", "tool_call_id": "unknown", "name": "fallback", "content": "[1,2]"}
            ]}),
            false,
        )
        .unwrap();
        assert_eq!(
            v["contents"],
            json!([
                {"role": "user", "parts": [{"text": "weather?"}]},
                {"role": "model", "parts": [
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                     "thoughtSignature": "c2ln"},
                    {"functionCall": {"name": "get_time", "args": {}}}
                ]},
                {"role": "user", "parts": [
                    {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
                    {"functionResponse": {"name": "get_time", "response": {"content": "noon"}}},
                    {"functionResponse": {"name": "fallback", "response": {"content": [1, 2]}}}
                ]}
            ])
        );
    }

    #[test]
    fn media_parts() {
        let v = body(
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
                {"type": "image_url", "image_url": {"url": "https://x.test/cat.WEBP?size=2"}},
                {"type": "image_url", "image_url": {"url": "https://x.test/cat"}},
                {"type": "image_url", "image_url": {"url": "gs://bucket/doc.pdf"}},
                {"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}},
                {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"}}
            ]}]}),
            false,
        )
        .unwrap();
        assert_eq!(
            v["contents"][0]["parts"],
            json!([
                {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
                {"fileData": {"mimeType": "image/webp", "fileUri": "https://x.test/cat.WEBP?size=2"}},
                {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://x.test/cat"}},
                {"fileData": {"mimeType": "application/pdf", "fileUri": "gs://bucket/doc.pdf"}},
                {"inlineData": {"mimeType": "audio/wav", "data": "UklG"}},
                {"inlineData": {"mimeType": "application/pdf", "data": "JVBE"}}
            ])
        );
    }

    #[test]
    fn unknown_parts_are_unsupported() {
        let msg = json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "look"},
            {"type": "file", "file": {"file_id": "file-abc"}}
        ]}]});
        let e = body(msg.clone(), false).unwrap_err();
        assert!(e.to_string().contains("`file`"), "{e}");
        let v = body(msg, true).unwrap();
        assert_eq!(v["contents"][0]["parts"], json!([{"text": "look"}]));
    }

    #[test]
    fn signature_in_ids() {
        assert_eq!(signature_of("call_1__thought__abc"), Some("abc"));
        assert_eq!(signature_of("call_1__thought__"), None);
        assert_eq!(signature_of("call_1"), None);
    }
}
