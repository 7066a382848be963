//! OpenAI chat messages -> Ollama's `messages`, borrowing the client's text.

use std::borrow::Cow;

use llmgate_core::wire::chat::{ContentPart, MessageContent, ToolCall};
use llmgate_core::wire::Message;
use serde::Serialize;
use serde_json::Value;

use crate::dialect::Ctx;
use crate::error::Error;

/// One message as Ollama takes it.
#[derive(Debug, Serialize)]
pub(super) struct OutMessage<'a> {
    role: &'a str,
    content: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    images: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<OutToolCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_name: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct OutToolCall<'a> {
    function: OutFunction<'a>,
}

#[derive(Debug, Serialize)]
struct OutFunction<'a> {
    name: &'a str,
    /// An object (Ollama's shape), parsed from OpenAI's JSON string.
    arguments: Value,
}

/// Translates the conversation.
pub(super) fn translate<'a>(
    ctx: &Ctx<'_>,
    messages: &'a [Message],
) -> Result<Vec<OutMessage<'a>>, Error> {
    // Tool-call id -> function name, for the `tool` messages that answer them.
    let mut names: Vec<(&'a str, &'a str)> = Vec::new();
    let mut out = Vec::with_capacity(messages.len());
    for m in messages {
        let role = match m.role.as_str() {
            "developer" => "system",
            "function" => "tool",
            other => other,
        };
        let (content, images) = content(ctx, m.content.as_ref())?;
        let tool_calls = m
            .tool_calls
            .as_deref()
            .unwrap_or_default()
            .iter()
            .filter_map(|call| {
                let f = call.function.as_ref()?;
                let name = f.name.as_deref().unwrap_or_default();
                if let Some(id) = call.id.as_deref() {
                    names.push((id, name));
                }
                Some(OutToolCall {
                    function: OutFunction {
                        name,
                        arguments: arguments(call),
                    },
                })
            })
            .collect();
        let tool_name = match (role, m.tool_call_id.as_deref()) {
            ("tool", Some(id)) => names.iter().find(|(i, _)| *i == id).map(|(_, n)| *n),
            // Legacy `function` messages name the function.
            ("tool", None) => m.name.as_deref(),
            _ => None,
        };
        let thinking = ["reasoning_content", "thinking"]
            .iter()
            .find_map(|k| m.extra.get(*k).and_then(Value::as_str));
        out.push(OutMessage {
            role,
            content,
            thinking,
            images,
            tool_calls,
            tool_name,
        });
    }
    Ok(out)
}

/// OpenAI's arguments (a JSON string) as a JSON value; an empty string is `{}`. Text that is
/// not JSON is sent as it is, for Ollama to reject.
fn arguments(call: &ToolCall) -> Value {
    let raw = call
        .function
        .as_ref()
        .and_then(|f| f.arguments.as_deref())
        .unwrap_or_default();
    if raw.trim().is_empty() {
        return Value::Object(serde_json::Map::new());
    }
    serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()))
}

/// The text of a message and its images (base64, without the `data:` prefix).
fn content<'a>(
    ctx: &Ctx<'_>,
    content: Option<&'a MessageContent>,
) -> Result<(Cow<'a, str>, Vec<&'a str>), Error> {
    let parts = match content {
        None => return Ok((Cow::Borrowed(""), Vec::new())),
        Some(MessageContent::Text(t)) => return Ok((Cow::Borrowed(t), Vec::new())),
        Some(MessageContent::Parts(parts)) => parts,
    };
    let mut texts: Vec<&'a str> = Vec::new();
    let mut images = Vec::new();
    for part in parts {
        match part.part_type.as_str() {
            "text" => texts.extend(part.text.as_deref()),
            "image_url" => {
                if let Some(b64) = image(ctx, part)? {
                    images.push(b64);
                }
            }
            "input_audio" => ctx.unsupported("input_audio")?,
            "file" => ctx.unsupported("file")?,
            _ => ctx.unsupported("content part")?,
        }
    }
    let text = match texts.as_slice() {
        [] => Cow::Borrowed(""),
        [one] => Cow::Borrowed(*one),
        many => Cow::Owned(many.concat()),
    };
    Ok((text, images))
}

/// The base64 payload of a `data:` image URL; other URLs are unsupported (Ollama does not
/// fetch images).
fn image<'a>(ctx: &Ctx<'_>, part: &'a ContentPart) -> Result<Option<&'a str>, Error> {
    let url = part.image_url.as_ref().map_or("", |u| u.url.as_str());
    let payload = url
        .strip_prefix("data:")
        .and_then(|rest| rest.split_once(','))
        .filter(|(meta, _)| {
            meta.rsplit(';')
                .next()
                .is_some_and(|enc| enc.eq_ignore_ascii_case("base64"))
        })
        .map(|(_, data)| data);
    match payload {
        Some(data) => Ok(Some(data)),
        None => ctx.unsupported("image_url (remote)").map(|()| None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmgate_core::{DeploymentSpec, Endpoint, LlmBody, LlmRequest, ProviderKind};
    use serde_json::json;

    fn translated(messages: Value, drop: bool) -> Result<Value, Error> {
        let mut dep = DeploymentSpec::new("o-0", "g", ProviderKind::Ollama, "llava");
        dep.drop_params = drop;
        let body = json!({"model": "g", "messages": messages});
        let llm =
            LlmRequest::parse(Endpoint::ChatCompletions, body.to_string().as_bytes()).unwrap();
        let ctx = Ctx::new(&llm, &dep);
        let LlmBody::Chat(r) = llm.body() else {
            unreachable!()
        };
        let out = translate(&ctx, &r.messages)?;
        Ok(serde_json::to_value(out).unwrap())
    }

    #[test]
    fn roles_text_and_tool_round_trip() {
        let v = translated(
            json!([
                {"role": "developer", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "weather "},
                                              {"type": "text", "text": "in Paris?"}]},
                {"role": "assistant", "content": null, "reasoning_content": "hmm",
                 "tool_calls": [{"id": "call_1", "type": "function",
                   "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                   {"id": "call_2", "type": "function",
                   "function": {"name": "now", "arguments": ""}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "22C"},
                {"role": "tool", "tool_call_id": "call_2", "content": "noon"},
                {"role": "assistant", "content": "22C at noon", "refusal": null, "name": "bot"}
            ]),
            false,
        )
        .unwrap();
        assert_eq!(
            v,
            json!([
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "weather in Paris?"},
                {"role": "assistant", "content": "", "thinking": "hmm", "tool_calls": [
                    {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                    {"function": {"name": "now", "arguments": {}}}]},
                {"role": "tool", "content": "22C", "tool_name": "get_weather"},
                {"role": "tool", "content": "noon", "tool_name": "now"},
                {"role": "assistant", "content": "22C at noon"}
            ])
        );
    }

    #[test]
    fn data_images_become_base64_and_remote_ones_are_unsupported() {
        let v = translated(
            json!([{"role": "user", "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
            ]}]),
            false,
        )
        .unwrap();
        assert_eq!(
            v,
            json!([{"role": "user", "content": "what is this?", "images": ["iVBORw0KGgo="]}])
        );
        let remote = json!([{"role": "user", "content": [
            {"type": "text", "text": "and this?"},
            {"type": "image_url", "image_url": {"url": "https://example.test/cat.png"}}
        ]}]);
        let e = translated(remote.clone(), false).unwrap_err();
        assert!(e.to_string().contains("`image_url (remote)`"), "{e}");
        assert_eq!(
            translated(remote, true).unwrap(),
            json!([{"role": "user", "content": "and this?"}])
        );
        let e = translated(
            json!([{"role": "user", "content": [
                {"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}}]}]),
            false,
        )
        .unwrap_err();
        assert!(e.to_string().contains("`input_audio`"), "{e}");
    }
}
