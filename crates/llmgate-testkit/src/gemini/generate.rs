//! `generateContent` and `streamGenerateContent`: the mock model's answer and its framing.

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::HeaderMap;
use serde_json::{json, Map, Value};

use super::validate;
use crate::openai::{count_tokens, pieces};
use crate::server::{Ctx, Reply};

/// The text of the thought part sent with `includeThoughts`.
pub(super) const THOUGHT: &str = "mock thought";

/// A complete answer, before it is framed.
pub(super) struct Answer {
    candidates: Vec<Value>,
    /// The reply's words, for streaming; empty for a function call.
    text: String,
    call: Option<Value>,
    thought: bool,
    finish: &'static str,
    prompt: u64,
    output: u64,
    thoughts: u64,
    model: String,
    id: String,
}

impl Answer {
    fn usage(&self, last: bool) -> Value {
        let mut u = Map::new();
        u.insert("promptTokenCount".into(), json!(self.prompt));
        if last {
            u.insert("candidatesTokenCount".into(), json!(self.output));
        }
        let mut total = self.prompt;
        if last {
            total += self.output + self.thoughts;
        }
        u.insert("totalTokenCount".into(), json!(total));
        u.insert(
            "promptTokensDetails".into(),
            json!([{"modality": "TEXT", "tokenCount": self.prompt}]),
        );
        if self.thoughts > 0 && last {
            u.insert("thoughtsTokenCount".into(), json!(self.thoughts));
        }
        Value::Object(u)
    }

    fn response(&self, candidates: Vec<Value>, last: bool) -> Value {
        json!({
            "candidates": candidates,
            "usageMetadata": self.usage(last),
            "modelVersion": self.model,
            "responseId": self.id,
        })
    }

    pub(super) fn full(&self) -> Value {
        self.response(self.candidates.clone(), true)
    }

    /// The stream's events: the thought, one per word, the last with `finishReason`.
    pub(super) fn events(&self) -> Vec<Value> {
        let n = self.candidates.len();
        let candidate = |i: usize, parts: Value, finish: Option<&str>| {
            let mut c = json!({"content": {"parts": parts, "role": "model"}, "index": i});
            if let Some(f) = finish {
                c["finishReason"] = json!(f);
            }
            c
        };
        let mut out = Vec::new();
        if self.thought {
            let cands = (0..n)
                .map(|i| candidate(i, json!([{"text": THOUGHT, "thought": true}]), None))
                .collect();
            out.push(self.response(cands, false));
        }
        let mut parts: Vec<Value> = pieces(&self.text)
            .into_iter()
            .map(|p| json!([{ "text": p }]))
            .collect();
        if let Some(call) = &self.call {
            parts.push(json!([call]));
        }
        let last = parts.pop().unwrap_or_else(|| json!([]));
        for p in parts {
            let cands = (0..n).map(|i| candidate(i, p.clone(), None)).collect();
            out.push(self.response(cands, false));
        }
        let cands = (0..n)
            .map(|i| candidate(i, last.clone(), Some(self.finish)))
            .collect();
        out.push(self.response(cands, true));
        out
    }
}

pub(super) fn stream(events: &[Value], sse: bool) -> Reply {
    let mut headers = HeaderMap::new();
    let framed = if sse {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        events
            .iter()
            .map(|e| Bytes::from(format!("data: {e}\r\n\r\n")))
            .collect()
    } else {
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=UTF-8"),
        );
        let last = events.len().saturating_sub(1);
        events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let open = if i == 0 { "[" } else { ",\r\n" };
                let close = if i == last { "]" } else { "" };
                Bytes::from(format!("{open}{e}{close}"))
            })
            .collect()
    };
    Reply::Events {
        headers,
        events: framed,
    }
}

/// The words of every text part of `contents` and the system instruction.
pub(super) fn prompt_tokens(body: &Value, contents: &[Value]) -> u64 {
    let system = body
        .get("systemInstruction")
        .or_else(|| body.get("system_instruction"));
    contents
        .iter()
        .chain(system)
        .flat_map(|c| {
            c.get("parts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .map(count_tokens)
        .sum()
}

/// What the model says to the last user turn.
fn reply_to(contents: &[Value]) -> String {
    let Some(last) = contents
        .iter()
        .rev()
        .find(|c| c.get("role").and_then(Value::as_str).unwrap_or("user") == "user")
    else {
        return "mock reply".to_owned();
    };
    let parts = last
        .get("parts")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let text: Vec<&str> = parts
        .iter()
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect();
    let said = if text.is_empty() {
        parts
            .iter()
            .filter_map(|p| p.get("functionResponse"))
            .map(|r| {
                let name = r.get("name").and_then(Value::as_str).unwrap_or_default();
                let response = r.get("response").cloned().unwrap_or(Value::Null);
                format!("{name} returned {response}")
            })
            .collect::<Vec<_>>()
            .join("; ")
    } else {
        text.join(" ")
    };
    let said = said.trim();
    if said.is_empty() {
        "mock reply".to_owned()
    } else {
        format!("mock reply to: {said}")
    }
}

/// The function the model calls, when `toolConfig` forces one.
fn forced_call(body: &Value) -> Option<Value> {
    let config = body.pointer("/toolConfig/functionCallingConfig")?;
    if config.get("mode").and_then(Value::as_str) != Some("ANY") {
        return None;
    }
    let declared: Vec<&Value> = body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("functionDeclarations").and_then(Value::as_array))
        .flatten()
        .collect();
    let allowed = config
        .pointer("/allowedFunctionNames/0")
        .and_then(Value::as_str);
    let f = match allowed {
        Some(name) => declared
            .iter()
            .find(|d| d.get("name").and_then(Value::as_str) == Some(name))?,
        None => declared.first()?,
    };
    let mut args = Map::new();
    let params = f.get("parameters");
    for name in params
        .and_then(|p| p.get("required"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        let kind = params
            .and_then(|p| p.get("properties"))
            .and_then(|p| p.get(name))
            .and_then(|p| p.get("type"))
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase);
        let value = match kind.as_deref() {
            Some("string") => json!("mock"),
            Some("integer" | "number") => json!(1),
            Some("boolean") => json!(true),
            _ => Value::Null,
        };
        args.insert(name.to_owned(), value);
    }
    Some(json!({"functionCall": {"name": f.get("name"), "args": args}}))
}

pub(super) fn generate(
    body: &Value,
    content: Option<&str>,
    model: &str,
    ctx: &Ctx,
) -> Result<Answer, String> {
    validate::generate_request(body)?;
    let contents = validate::contents(body)?;
    let config = body.get("generationConfig");
    let get = |k: &str| config.and_then(|c| c.get(k));
    let n = get("candidateCount")
        .and_then(Value::as_u64)
        .unwrap_or(1)
        .max(1);
    let thought = get("thinkingConfig")
        .and_then(|t| t.get("includeThoughts"))
        .and_then(Value::as_bool)
        == Some(true);
    let call = if content.is_some() {
        None
    } else {
        forced_call(body)
    };
    let mut text = if call.is_some() {
        String::new()
    } else {
        content.map_or_else(|| reply_to(contents), str::to_owned)
    };
    let mut finish = "STOP";
    if let Some(max) = get("maxOutputTokens").and_then(Value::as_u64) {
        if count_tokens(&text) > max {
            let words: Vec<&str> = text
                .split_whitespace()
                .take(usize::try_from(max).unwrap_or(usize::MAX))
                .collect();
            text = words.join(" ");
            finish = "MAX_TOKENS";
        }
    }
    let mut parts = Vec::new();
    if thought {
        parts.push(json!({"text": THOUGHT, "thought": true}));
    }
    if let Some(call) = &call {
        parts.push(call.clone());
    } else {
        parts.push(json!({ "text": text }));
    }
    let candidates = (0..n)
        .map(|i| json!({"content": {"parts": parts, "role": "model"}, "finishReason": finish, "index": i}))
        .collect();
    let output = if call.is_some() {
        5
    } else {
        count_tokens(&text)
    };
    Ok(Answer {
        candidates,
        text,
        call,
        thought,
        finish,
        prompt: prompt_tokens(body, contents),
        output,
        thoughts: if thought { count_tokens(THOUGHT) } else { 0 },
        model: model.to_owned(),
        id: format!("mock-resp-{:06}", ctx.seq),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx {
        Ctx {
            seq: 7,
            models: Vec::new(),
        }
    }

    #[test]
    fn answers_and_events() {
        let body = json!({"contents": [{"role": "user", "parts": [{"text": "hello there"}]}],
                          "generationConfig": {"candidateCount": 2, "thinkingConfig": {"includeThoughts": true}}});
        let a = generate(&body, None, "gemini-2.0-flash", &ctx()).unwrap();
        let full = a.full();
        assert_eq!(full["candidates"].as_array().unwrap().len(), 2);
        assert_eq!(
            full["candidates"][1]["content"]["parts"],
            json!([{"text": THOUGHT, "thought": true}, {"text": "mock reply to: hello there"}])
        );
        assert_eq!(full["usageMetadata"]["totalTokenCount"], 2 + 5 + 2);
        assert_eq!(full["responseId"], "mock-resp-000007");
        let events = a.events();
        assert_eq!(events.len(), 1 + 5);
        assert_eq!(events[5]["candidates"][1]["finishReason"], "STOP");
        assert!(events[2]["candidates"][0].get("finishReason").is_none());
    }

    #[test]
    fn forced_calls_and_function_responses() {
        let body = json!({
            "contents": [{"role": "user", "parts": [{"text": "weather"}]}],
            "tools": [{"functionDeclarations": [{"name": "get_weather", "parameters": {
                "type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                "required": ["city", "days"]}}]}],
            "toolConfig": {"functionCallingConfig": {"mode": "ANY"}}
        });
        let a = generate(&body, None, "m", &ctx()).unwrap();
        assert_eq!(
            a.full()["candidates"][0]["content"]["parts"],
            json!([{"functionCall": {"name": "get_weather", "args": {"city": "mock", "days": 1}}}])
        );
        let contents = [json!({"role": "user", "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}}]})];
        assert_eq!(
            reply_to(&contents),
            "mock reply to: get_weather returned {\"temp\":21}"
        );
    }
}
