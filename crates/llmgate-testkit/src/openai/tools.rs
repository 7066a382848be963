//! OpenAI's chat API answered the way a model that uses tools answers
//! (`MockProvider::start_tool_caller`): everything else as [`OpenAi`].
//!
//! A chat completion whose request offers `function` tools, does not say `tool_choice: "none"`,
//! and ends with the user's message (not a tool result) is answered with one tool call: to the
//! function `tool_choice` names, else to the first one. Its arguments fill each `required`
//! property of the function's `parameters` (every property when none is required): a string
//! with the user's last text, an integer or a number with `0`, a boolean with `false`, others
//! with `null`. `finish_reason` is `tool_calls`; the call's id is `call_mock<request number>`.
//! Streamed, the call's first chunk carries its id and name, then the arguments in two
//! fragments. After a tool result the answer is text: `"mock reply to: <the tool result>"`.

use http::{Method, StatusCode};
use serde_json::{json, Map, Value};

use super::{content_text, count_tokens, json_reply, now, sse_reply, usage, OpenAi};
use crate::server::{Ctx, Dialect, MockProvider, Recorded, Reply};

impl MockProvider {
    /// Starts a mock OpenAI-compatible provider on `127.0.0.1:0` whose chat completions call
    /// the request's function tools the way a model would (see the module's documentation).
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound.
    #[expect(
        clippy::expect_used,
        reason = "a test fixture: failing to bind loopback means the test cannot run at all"
    )]
    pub async fn start_tool_caller() -> Self {
        Self::start_dialect(std::sync::Arc::new(ToolCaller))
            .await
            .expect("llmgate-testkit: could not bind 127.0.0.1:0")
    }
}

/// OpenAI's API with chat completions that call tools.
#[derive(Debug)]
pub(crate) struct ToolCaller;

impl Dialect for ToolCaller {
    fn default_models(&self) -> Vec<String> {
        OpenAi.default_models()
    }

    fn is_stream(&self, req: &Recorded) -> bool {
        OpenAi.is_stream(req)
    }

    fn respond(&self, req: &Recorded, content: Option<&str>, ctx: &Ctx) -> Reply {
        let path = req.path.strip_prefix("/v1").unwrap_or(&req.path);
        if content.is_some() || path != "/chat/completions" || req.method != Method::POST {
            return OpenAi.respond(req, content, ctx);
        }
        let messages = req
            .json
            .get("messages")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        let Some(last) = messages.last() else {
            return OpenAi.respond(req, content, ctx);
        };
        let last_text = last.get("content").map(content_text).unwrap_or_default();
        if last.get("role").and_then(Value::as_str) == Some("tool") {
            let reply = format!("mock reply to: {last_text}");
            return OpenAi.respond(req, Some(&reply), ctx);
        }
        match chosen_tool(&req.json) {
            Some(function) => {
                let call = ToolCall {
                    id: format!("call_mock{:06}", ctx.seq),
                    name: function
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    arguments: arguments(function.get("parameters"), &last_text).to_string(),
                };
                let prompt_tokens = messages
                    .iter()
                    .filter_map(|m| m.get("content"))
                    .map(|c| count_tokens(&content_text(c)))
                    .sum();
                tool_call_reply(req, &call, prompt_tokens, ctx)
            }
            None => OpenAi.respond(req, content, ctx),
        }
    }
}

/// The `function` of the tool to call, or `None` when the answer is text.
fn chosen_tool(body: &Value) -> Option<&Value> {
    let functions: Vec<&Value> = body
        .get("tools")?
        .as_array()?
        .iter()
        .filter(|t| t.get("type").and_then(Value::as_str) == Some("function"))
        .filter_map(|t| t.get("function"))
        .collect();
    let named = |name: &str| {
        functions
            .iter()
            .copied()
            .find(|f| f.get("name").and_then(Value::as_str) == Some(name))
    };
    match body.get("tool_choice") {
        Some(Value::String(s)) if s == "none" => None,
        Some(choice @ Value::Object(_)) => choice
            .pointer("/function/name")
            .and_then(Value::as_str)
            .and_then(named),
        _ => functions.first().copied(),
    }
}

/// Arguments for a function's JSON schema: each required property (every property when none
/// is), strings filled with `text`.
fn arguments(parameters: Option<&Value>, text: &str) -> Value {
    let properties = parameters
        .and_then(|p| p.get("properties"))
        .and_then(Value::as_object);
    let Some(properties) = properties else {
        return json!({});
    };
    let required: Vec<&str> = parameters
        .and_then(|p| p.get("required"))
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out = Map::new();
    for (name, schema) in properties {
        if !required.is_empty() && !required.contains(&name.as_str()) {
            continue;
        }
        let value = match schema.get("type").and_then(Value::as_str) {
            Some("string") => json!(text),
            Some("integer" | "number") => json!(0),
            Some("boolean") => json!(false),
            _ => Value::Null,
        };
        out.insert(name.clone(), value);
    }
    Value::Object(out)
}

struct ToolCall {
    id: String,
    name: String,
    arguments: String,
}

fn tool_call_reply(req: &Recorded, call: &ToolCall, prompt_tokens: u64, ctx: &Ctx) -> Reply {
    let model = req.model().unwrap_or_default();
    let id = format!("chatcmpl-mock{:06}", ctx.seq);
    let created = now();
    let usage = usage(prompt_tokens, count_tokens(&call.arguments));
    if !OpenAi.is_stream(req) {
        let body = json!({
            "id": id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": null, "refusal": null,
                    "annotations": [],
                    "tool_calls": [{"id": call.id, "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments}}]},
                "logprobs": null,
                "finish_reason": "tool_calls"
            }],
            "usage": usage, "service_tier": "default", "system_fingerprint": "fp_mock"
        });
        return json_reply(StatusCode::OK, &body, ctx);
    }
    let include_usage = req
        .json
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        == Some(true);
    let chunk = |delta: Value, finish: Option<&str>| {
        let mut c = json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "service_tier": "default", "system_fingerprint": "fp_mock",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]
        });
        if include_usage {
            c["usage"] = Value::Null;
        }
        c
    };
    let fragment = |arguments: &str| json!({"tool_calls": [{"index": 0, "function": {"arguments": arguments}}]});
    let half = call.arguments.len() / 2;
    let half = (half..=call.arguments.len())
        .find(|i| call.arguments.is_char_boundary(*i))
        .unwrap_or(call.arguments.len());
    let mut chunks = vec![
        chunk(
            json!({"role": "assistant", "content": null, "refusal": null,
                "tool_calls": [{"index": 0, "id": call.id, "type": "function",
                    "function": {"name": call.name, "arguments": ""}}]}),
            None,
        ),
        chunk(fragment(&call.arguments[..half]), None),
        chunk(fragment(&call.arguments[half..]), None),
        chunk(json!({}), Some("tool_calls")),
    ];
    if include_usage {
        let mut last = chunk(json!({}), None);
        last["choices"] = json!([]);
        last["usage"] = usage;
        chunks.push(last);
    }
    sse_reply(chunks, ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_named_tool_else_the_first_and_none_for_none() {
        let tools = json!([
            {"type": "function", "function": {"name": "a"}},
            {"type": "function", "function": {"name": "b"}}
        ]);
        let pick = |choice: Value| {
            let body = json!({"tools": tools, "tool_choice": choice});
            chosen_tool(&body).and_then(|f| f.get("name").cloned())
        };
        assert_eq!(pick(json!("auto")), Some(json!("a")));
        assert_eq!(pick(json!("required")), Some(json!("a")));
        assert_eq!(
            pick(json!({"type": "function", "function": {"name": "b"}})),
            Some(json!("b"))
        );
        assert_eq!(pick(json!("none")), None);
        assert_eq!(chosen_tool(&json!({"messages": []})), None);
    }

    #[test]
    fn arguments_fill_the_required_properties() {
        let schema = json!({"type": "object", "properties": {
            "location": {"type": "string"}, "days": {"type": "integer"},
            "unit": {"type": "string"}}, "required": ["location", "days"]});
        assert_eq!(
            arguments(Some(&schema), "Paris?"),
            json!({"location": "Paris?", "days": 0})
        );
        let open = json!({"properties": {"flag": {"type": "boolean"}}});
        assert_eq!(arguments(Some(&open), "x"), json!({"flag": false}));
        assert_eq!(arguments(None, "x"), json!({}));
    }
}
