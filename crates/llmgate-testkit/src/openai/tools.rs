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
//!
//! A request with `reasoning_effort` that gets a text answer reasons first, as DeepSeek's and
//! other OpenAI-compatible reasoning models do: `reasoning_content` is `"thinking about:
//! <the user's last text>"` (streamed word by word before the content), counted in
//! `completion_tokens_details.reasoning_tokens`.

use http::{Method, StatusCode};
use serde_json::{json, Map, Value};

use super::{content_text, count_tokens, json_reply, now, pieces, sse_reply, usage, OpenAi};
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
        let prompt_tokens = messages
            .iter()
            .filter_map(|m| m.get("content"))
            .map(|c| count_tokens(&content_text(c)))
            .sum();
        let reasons = req.json.get("reasoning_effort").is_some();
        if last.get("role").and_then(Value::as_str) == Some("tool") {
            let reply = format!("mock reply to: {last_text}");
            if reasons {
                return reasoned_reply(req, &last_text, &reply, prompt_tokens, ctx);
            }
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
                tool_call_reply(req, &call, prompt_tokens, ctx)
            }
            None if reasons => {
                let user = messages
                    .iter()
                    .rev()
                    .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
                    .and_then(|m| m.get("content"))
                    .map(content_text)
                    .unwrap_or_default();
                let reply = format!("mock reply to: {}", user.trim());
                reasoned_reply(req, &user, &reply, prompt_tokens, ctx)
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

/// What every chunk and body of one answer shares.
struct Frame<'a> {
    id: String,
    created: u64,
    model: &'a str,
    stream: bool,
    include_usage: bool,
}

impl<'a> Frame<'a> {
    fn of(req: &'a Recorded, ctx: &Ctx) -> Self {
        Frame {
            id: format!("chatcmpl-mock{:06}", ctx.seq),
            created: now(),
            model: req.model().unwrap_or_default(),
            stream: OpenAi.is_stream(req),
            include_usage: req
                .json
                .pointer("/stream_options/include_usage")
                .and_then(Value::as_bool)
                == Some(true),
        }
    }

    /// The non-streamed answer: one choice with `message`.
    fn body(&self, message: Value, finish: &str, usage: Value, ctx: &Ctx) -> Reply {
        let body = json!({
            "id": self.id, "object": "chat.completion", "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
            "usage": usage, "service_tier": "default", "system_fingerprint": "fp_mock"
        });
        json_reply(StatusCode::OK, &body, ctx)
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Value {
        let mut c = json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model, "service_tier": "default", "system_fingerprint": "fp_mock",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]
        });
        if self.include_usage {
            c["usage"] = Value::Null;
        }
        c
    }

    /// The stream: these deltas, the `finish` chunk, the usage chunk when asked for.
    fn stream(&self, deltas: Vec<Value>, finish: &str, usage: Value, ctx: &Ctx) -> Reply {
        let mut chunks: Vec<Value> = deltas.into_iter().map(|d| self.chunk(d, None)).collect();
        chunks.push(self.chunk(json!({}), Some(finish)));
        if self.include_usage {
            let mut last = self.chunk(json!({}), None);
            last["choices"] = json!([]);
            last["usage"] = usage;
            chunks.push(last);
        }
        sse_reply(chunks, ctx)
    }
}

fn tool_call_reply(req: &Recorded, call: &ToolCall, prompt_tokens: u64, ctx: &Ctx) -> Reply {
    let frame = Frame::of(req, ctx);
    let usage = usage(prompt_tokens, count_tokens(&call.arguments));
    if !frame.stream {
        let message = json!({"role": "assistant", "content": null, "refusal": null,
            "annotations": [],
            "tool_calls": [{"id": call.id, "type": "function",
                "function": {"name": call.name, "arguments": call.arguments}}]});
        return frame.body(message, "tool_calls", usage, ctx);
    }
    let fragment = |arguments: &str| json!({"tool_calls": [{"index": 0, "function": {"arguments": arguments}}]});
    let half = (call.arguments.len() / 2..=call.arguments.len())
        .find(|i| call.arguments.is_char_boundary(*i))
        .unwrap_or(call.arguments.len());
    let deltas = vec![
        json!({"role": "assistant", "content": null, "refusal": null,
            "tool_calls": [{"index": 0, "id": call.id, "type": "function",
                "function": {"name": call.name, "arguments": ""}}]}),
        fragment(&call.arguments[..half]),
        fragment(&call.arguments[half..]),
    ];
    frame.stream(deltas, "tool_calls", usage, ctx)
}

/// A text answer with `reasoning_content` before it.
fn reasoned_reply(req: &Recorded, about: &str, text: &str, prompt_tokens: u64, ctx: &Ctx) -> Reply {
    let frame = Frame::of(req, ctx);
    let reasoning = format!("thinking about: {}", about.trim());
    let reasoning_tokens = count_tokens(&reasoning);
    let mut usage = usage(prompt_tokens, count_tokens(text) + reasoning_tokens);
    usage["completion_tokens_details"]["reasoning_tokens"] = json!(reasoning_tokens);
    if !frame.stream {
        let message = json!({"role": "assistant", "content": text,
            "reasoning_content": reasoning, "refusal": null, "annotations": []});
        return frame.body(message, "stop", usage, ctx);
    }
    let mut deltas = vec![json!({"role": "assistant", "content": ""})];
    deltas.extend(
        pieces(&reasoning)
            .into_iter()
            .map(|p| json!({"reasoning_content": p})),
    );
    deltas.extend(pieces(text).into_iter().map(|p| json!({"content": p})));
    frame.stream(deltas, "stop", usage, ctx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn answer(body: &Value) -> Reply {
        let req = http::Request::post("/v1/chat/completions")
            .body(())
            .unwrap();
        let (parts, ()) = req.into_parts();
        let recorded = Recorded::new(&parts, Bytes::from(body.to_string()));
        let ctx = Ctx {
            seq: 7,
            models: Vec::new(),
        };
        ToolCaller.respond(&recorded, None, &ctx)
    }

    fn json_of(reply: Reply) -> Value {
        let Reply::Full { body, .. } = reply else {
            panic!("not a complete answer")
        };
        serde_json::from_slice(&body).unwrap()
    }

    /// The data of each event, `[DONE]` left out.
    fn events_of(reply: Reply) -> Vec<Value> {
        let Reply::Events { events, .. } = reply else {
            panic!("not a stream")
        };
        let data = |e: &Bytes| {
            let text = std::str::from_utf8(e).unwrap();
            serde_json::from_str(text.trim().strip_prefix("data: ").unwrap()).ok()
        };
        events.iter().filter_map(data).collect()
    }

    fn weather() -> Value {
        json!([{"type": "function", "function": {"name": "get_weather", "parameters": {
            "type": "object", "properties": {"location": {"type": "string"}},
            "required": ["location"]}}}])
    }

    #[test]
    fn a_user_turn_with_tools_is_a_tool_call_streamed_and_not() {
        let body = json!({"model": "m", "tools": weather(),
            "messages": [{"role": "user", "content": "Weather in Paris?"}]});
        let v = json_of(answer(&body));
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
        let call = &v["choices"][0]["message"]["tool_calls"][0];
        assert_eq!(call["id"], "call_mock000007");
        assert_eq!(call["function"]["name"], "get_weather");
        assert_eq!(
            call["function"]["arguments"],
            r#"{"location":"Weather in Paris?"}"#
        );

        let mut body = body;
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
        let events = events_of(answer(&body));
        let first = &events[0]["choices"][0]["delta"]["tool_calls"][0];
        assert_eq!(first["function"]["name"], "get_weather");
        let arguments: String = events
            .iter()
            .filter_map(|e| e.pointer("/choices/0/delta/tool_calls/0/function/arguments"))
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(arguments, r#"{"location":"Weather in Paris?"}"#);
        assert_eq!(events[3]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(events[4]["usage"]["prompt_tokens"], 3);
    }

    #[test]
    fn after_a_tool_result_the_answer_is_text_reasoned_when_asked() {
        let body = json!({"model": "m", "tools": weather(), "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                "function": {"name": "get_weather", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"}]});
        let v = json_of(answer(&body));
        assert_eq!(
            v["choices"][0]["message"]["content"],
            "mock reply to: sunny"
        );
        assert!(v["choices"][0]["message"]
            .get("reasoning_content")
            .is_none());

        let mut body = body;
        body["reasoning_effort"] = json!("low");
        let v = json_of(answer(&body));
        let message = &v["choices"][0]["message"];
        assert_eq!(message["content"], "mock reply to: sunny");
        assert_eq!(message["reasoning_content"], "thinking about: sunny");
        assert_eq!(
            v["usage"]["completion_tokens_details"]["reasoning_tokens"],
            3
        );
    }

    #[test]
    fn a_reasoned_stream_sends_the_reasoning_before_the_text() {
        let body = json!({"model": "m", "stream": true, "reasoning_effort": "high",
            "messages": [{"role": "user", "content": "hi there"}]});
        let events = events_of(answer(&body));
        let text = |key: &str| -> String {
            events
                .iter()
                .filter_map(|e| e["choices"][0]["delta"].get(key))
                .filter_map(Value::as_str)
                .collect()
        };
        assert_eq!(text("reasoning_content"), "thinking about: hi there");
        assert_eq!(text("content"), "mock reply to: hi there");
        let first_content = events
            .iter()
            .position(|e| e["choices"][0]["delta"]["content"] == "mock ");
        let last_reasoning = events
            .iter()
            .rposition(|e| e["choices"][0]["delta"].get("reasoning_content").is_some());
        assert!(last_reasoning < first_content);
    }

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
