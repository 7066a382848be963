//! Converse and ConverseStream answers, and InvokeModel embeddings, built from the request.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, StatusCode};
use serde_json::{json, Map, Value};

use super::{aws_error, frame::frame, EVENT_STREAM};
use crate::openai::{count_tokens, pieces};
use crate::server::{Ctx, Reply};

/// Bedrock pads stream payloads with a `p` field (to hide token lengths); so does the mock.
const PAD: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123";

fn request_id(headers: &mut HeaderMap, ctx: &Ctx) {
    if let Ok(v) = HeaderValue::from_str(&format!("00000000-0000-4000-8000-{:012}", ctx.seq)) {
        headers.insert(HeaderName::from_static("x-amzn-requestid"), v);
    }
}

/// The texts of a list of content blocks (`text`, and the texts inside `toolResult`s).
fn block_texts(blocks: &Value) -> Vec<&str> {
    let mut out = Vec::new();
    for b in blocks.as_array().map_or(&[][..], Vec::as_slice) {
        if let Some(t) = b.get("text").and_then(Value::as_str) {
            out.push(t);
        } else if let Some(content) = b.pointer("/toolResult/content") {
            out.extend(block_texts(content));
        }
    }
    out
}

/// Words of every text before the last `cachePoint` (system first, then the messages), and
/// after it.
fn prompt_tokens(body: &Value) -> (u64, u64) {
    let mut blocks: Vec<&Value> = Vec::new();
    if let Some(system) = body.get("system").and_then(Value::as_array) {
        blocks.extend(system);
    }
    for m in body
        .get("messages")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
    {
        if let Some(c) = m.get("content").and_then(Value::as_array) {
            blocks.extend(c);
        }
    }
    let last_cache_point = blocks.iter().rposition(|b| b.get("cachePoint").is_some());
    let (mut cached, mut fresh) = (0, 0);
    for (i, b) in blocks.iter().enumerate() {
        let words: u64 = block_texts(&json!([b]))
            .iter()
            .map(|t| count_tokens(t))
            .sum();
        if last_cache_point.is_some_and(|p| i < p) {
            cached += words;
        } else {
            fresh += words;
        }
    }
    (cached, fresh)
}

/// A value for a tool input property of this JSON Schema.
fn sample(schema: &Value) -> Value {
    match schema.get("type").and_then(Value::as_str) {
        Some("string") => schema
            .get("enum")
            .and_then(|e| e.get(0))
            .cloned()
            .unwrap_or_else(|| json!("mock")),
        Some("integer" | "number") => json!(1),
        Some("boolean") => json!(true),
        Some("array") => json!([]),
        Some("object") => json!({}),
        _ => Value::Null,
    }
}

/// The tool the request forces (`toolChoice` `any`: the first tool; `tool`: the named one)
/// and an input with a sample value for each required property.
fn forced_tool(body: &Value) -> Option<(String, Value)> {
    let config = body.get("toolConfig")?;
    let choice = config.get("toolChoice")?;
    let tools = config.get("tools")?.as_array()?;
    let specs = tools.iter().filter_map(|t| t.get("toolSpec"));
    let spec = if choice.get("any").is_some() {
        specs.into_iter().next()?
    } else {
        let name = choice.pointer("/tool/name")?.as_str()?;
        specs
            .into_iter()
            .find(|s| s.get("name").and_then(Value::as_str) == Some(name))?
    };
    let name = spec.get("name")?.as_str()?.to_owned();
    let schema = spec
        .pointer("/inputSchema/json")
        .cloned()
        .unwrap_or_default();
    let mut input = Map::new();
    for required in schema
        .get("required")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
    {
        if let Some(key) = required.as_str() {
            let prop = schema.pointer(&format!("/properties/{key}"));
            input.insert(key.to_owned(), prop.map_or(Value::Null, sample));
        }
    }
    Some((name, Value::Object(input)))
}

enum Answer {
    Text(String),
    Tool {
        id: String,
        name: String,
        input: Value,
    },
}

/// A chat answer: Converse JSON, or the ConverseStream events.
pub(super) fn chat(body: &Value, content: Option<&str>, stream: bool, ctx: &Ctx) -> Reply {
    if !body.get("messages").is_some_and(Value::is_array) {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "Malformed input request: #: required key [messages] not found, please reformat your input and try again.",
        );
    }
    let last_user = body
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|m| {
            m.iter()
                .rev()
                .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        })
        .and_then(|m| m.get("content"))
        .map(|c| block_texts(c).join(" "))
        .unwrap_or_default();
    let answer = match (content, forced_tool(body)) {
        (Some(text), _) => Answer::Text(text.to_owned()),
        (None, Some((name, input))) => Answer::Tool {
            id: format!("tooluse_mock{:06}", ctx.seq),
            name,
            input,
        },
        (None, None) => {
            let prompt = last_user.trim();
            Answer::Text(if prompt.is_empty() {
                "mock reply".to_owned()
            } else {
                format!("mock reply to: {prompt}")
            })
        }
    };
    let max = body
        .pointer("/inferenceConfig/maxTokens")
        .and_then(Value::as_u64);
    let (answer, stop_reason) = match answer {
        Answer::Text(text) => match max {
            Some(max) if count_tokens(&text) > max => {
                let words: Vec<&str> = text
                    .split_whitespace()
                    .take(usize::try_from(max).unwrap_or(usize::MAX))
                    .collect();
                (Answer::Text(words.join(" ")), "max_tokens")
            }
            _ => (Answer::Text(text), "end_turn"),
        },
        tool @ Answer::Tool { .. } => (tool, "tool_use"),
    };
    let output_tokens = match &answer {
        Answer::Text(t) => count_tokens(t),
        Answer::Tool { input, .. } => count_tokens(&input.to_string()),
    };
    let (cached, fresh) = prompt_tokens(body);
    let mut usage = json!({
        "inputTokens": fresh,
        "outputTokens": output_tokens,
        "totalTokens": fresh + cached + output_tokens,
    });
    if cached > 0 {
        usage["cacheReadInputTokens"] = json!(cached);
        usage["cacheWriteInputTokens"] = json!(0);
    }
    let mut headers = HeaderMap::new();
    request_id(&mut headers, ctx);

    if !stream {
        let block = match &answer {
            Answer::Text(t) => json!({"text": t}),
            Answer::Tool { id, name, input } => {
                json!({"toolUse": {"toolUseId": id, "name": name, "input": input}})
            }
        };
        let out = json!({
            "output": {"message": {"role": "assistant", "content": [block]}},
            "stopReason": stop_reason,
            "usage": usage,
            "metrics": {"latencyMs": 1}
        });
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        return Reply::Full {
            status: StatusCode::OK,
            headers,
            body: Bytes::from(out.to_string()),
        };
    }

    let mut events = vec![event("messageStart", json!({"role": "assistant"}))];
    match &answer {
        Answer::Text(t) => {
            for piece in pieces(t) {
                events.push(event(
                    "contentBlockDelta",
                    json!({"contentBlockIndex": 0, "delta": {"text": piece}}),
                ));
            }
        }
        Answer::Tool { id, name, input } => {
            events.push(event(
                "contentBlockStart",
                json!({"contentBlockIndex": 0,
                       "start": {"toolUse": {"toolUseId": id, "name": name}}}),
            ));
            let input = input.to_string();
            let mut mid = input.len() / 2;
            while !input.is_char_boundary(mid) {
                mid -= 1;
            }
            for part in [&input[..mid], &input[mid..]] {
                events.push(event(
                    "contentBlockDelta",
                    json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": part}}}),
                ));
            }
        }
    }
    events.push(event("contentBlockStop", json!({"contentBlockIndex": 0})));
    events.push(event("messageStop", json!({"stopReason": stop_reason})));
    events.push(event(
        "metadata",
        json!({"usage": usage, "metrics": {"latencyMs": 1}}),
    ));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(EVENT_STREAM));
    Reply::Events { headers, events }
}

/// One ConverseStream event, padded as Bedrock pads them.
pub(super) fn event(event_type: &str, mut payload: Value) -> Bytes {
    if let Some(o) = payload.as_object_mut() {
        let n = 1 + (event_type.len() * 7) % (PAD.len() - 1);
        o.insert("p".into(), json!(&PAD[..n]));
    }
    frame(
        &[
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload.to_string().as_bytes(),
    )
}

/// A deterministic embedding of `text` with `dims` numbers.
fn vector(text: &str, dims: usize) -> Vec<f64> {
    let seed = text
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    (0..dims as u64)
        .map(|i| {
            let v = seed.wrapping_add(i.wrapping_mul(2_654_435_761)) % 2000;
            f64::from(u32::try_from(v).unwrap_or(0)) / 1000.0 - 1.0
        })
        .collect()
}

/// `InvokeModel` for Titan and Cohere embedding models.
pub(super) fn invoke(model: &str, body: &Value, ctx: &Ctx) -> Reply {
    let out = if model.contains("amazon.titan-embed") {
        let Some(text) = body.get("inputText").and_then(Value::as_str) else {
            return aws_error(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                "Malformed input request: #: required key [inputText] not found, please reformat your input and try again.",
            );
        };
        let default = if model.contains("v2") { 1024 } else { 1536 };
        let dims = body
            .get("dimensions")
            .and_then(Value::as_u64)
            .map_or(default, |d| usize::try_from(d).unwrap_or(default));
        json!({"embedding": vector(text, dims), "inputTextTokenCount": count_tokens(text)})
    } else if model.contains("cohere.embed") {
        let texts: Vec<&str> = body
            .get("texts")
            .and_then(Value::as_array)
            .map(|t| t.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if texts.is_empty() || body.get("input_type").is_none() {
            return aws_error(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                "Malformed input request: #: required key [input_type] not found, please reformat your input and try again.",
            );
        }
        let embeddings: Vec<Vec<f64>> = texts.iter().map(|t| vector(t, 1024)).collect();
        json!({"embeddings": embeddings, "id": format!("emb-mock{:06}", ctx.seq),
               "response_type": "embeddings_floats", "texts": texts})
    } else {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "The provided model identifier is invalid.",
        );
    };
    let mut headers = HeaderMap::new();
    request_id(&mut headers, ctx);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Reply::Full {
        status: StatusCode::OK,
        headers,
        body: Bytes::from(out.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forced_tools_get_sample_inputs() {
        let body = json!({"toolConfig": {
            "tools": [{"toolSpec": {"name": "a", "inputSchema": {"json": {}}}},
                      {"toolSpec": {"name": "w", "inputSchema": {"json": {
                          "type": "object",
                          "properties": {"city": {"type": "string"}, "days": {"type": "integer"},
                                         "unit": {"type": "string", "enum": ["c", "f"]}},
                          "required": ["city", "unit"]}}}}],
            "toolChoice": {"tool": {"name": "w"}}}});
        assert_eq!(
            forced_tool(&body),
            Some(("w".to_owned(), json!({"city": "mock", "unit": "c"})))
        );
        let mut any = body.clone();
        any["toolConfig"]["toolChoice"] = json!({"any": {}});
        assert_eq!(forced_tool(&any).unwrap().0, "a");
        any["toolConfig"]["toolChoice"] = json!({"auto": {}});
        assert!(forced_tool(&any).is_none());
    }

    #[test]
    fn cache_points_split_the_prompt() {
        let body = json!({
            "system": [{"text": "one two three"}, {"cachePoint": {"type": "default"}}],
            "messages": [{"role": "user", "content": [{"text": "four five"}]}]
        });
        assert_eq!(prompt_tokens(&body), (3, 2));
        let body = json!({"messages": [{"role": "user", "content": [{"text": "a b"}]}]});
        assert_eq!(prompt_tokens(&body), (0, 2));
    }
}
