//! The response object and its output items, every field the specification lists present
//! (nullable ones as `null`), for the complete answer, the stream's events and the store.

use std::time::{SystemTime, UNIX_EPOCH};

use llmgate_core::wire::Usage;
use serde_json::{json, Map, Value};

use crate::request::Parsed;

/// Unix seconds now.
pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A new id with `prefix` (`resp`, `msg`, `fc`, `rs`).
pub(crate) fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// The response object's fields that echo the request, with the specification's defaults.
/// `status` is `in_progress`, `output` empty and `usage` null until [`finish`].
pub(crate) fn base(parsed: &Parsed, id: &str, created_at: i64) -> Map<String, Value> {
    let f = &parsed.fields;
    let get = |k: &str, default: Value| f.get(k).cloned().unwrap_or(default);
    let text = match f.get("text") {
        Some(Value::Object(t)) => {
            let mut t = t.clone();
            t.entry("format").or_insert(json!({"type": "text"}));
            Value::Object(t)
        }
        _ => json!({"format": {"type": "text"}}),
    };
    let reasoning = match f.get("reasoning") {
        Some(Value::Object(r)) => json!({
            "effort": r.get("effort").cloned().unwrap_or(Value::Null),
            "summary": r.get("summary").cloned().unwrap_or(Value::Null),
        }),
        _ => Value::Null,
    };
    let tools: Vec<Value> = f
        .get("tools")
        .and_then(Value::as_array)
        .map(|tools| tools.iter().map(echo_tool).collect())
        .unwrap_or_default();
    let mut o = Map::new();
    o.insert("id".into(), json!(id));
    o.insert("object".into(), json!("response"));
    o.insert("created_at".into(), json!(created_at));
    o.insert("completed_at".into(), Value::Null);
    o.insert("status".into(), json!("in_progress"));
    o.insert("incomplete_details".into(), Value::Null);
    o.insert("model".into(), json!(parsed.model()));
    o.insert(
        "previous_response_id".into(),
        get("previous_response_id", Value::Null),
    );
    o.insert("instructions".into(), get("instructions", Value::Null));
    o.insert("output".into(), json!([]));
    o.insert("error".into(), Value::Null);
    o.insert("tools".into(), Value::Array(tools));
    o.insert("tool_choice".into(), get("tool_choice", json!("auto")));
    o.insert("truncation".into(), get("truncation", json!("disabled")));
    o.insert(
        "parallel_tool_calls".into(),
        get("parallel_tool_calls", json!(true)),
    );
    o.insert("text".into(), text);
    o.insert("top_p".into(), get("top_p", json!(1.0)));
    o.insert(
        "presence_penalty".into(),
        get("presence_penalty", json!(0.0)),
    );
    o.insert(
        "frequency_penalty".into(),
        get("frequency_penalty", json!(0.0)),
    );
    o.insert("top_logprobs".into(), get("top_logprobs", json!(0)));
    o.insert("temperature".into(), get("temperature", json!(1.0)));
    o.insert("reasoning".into(), reasoning);
    o.insert("usage".into(), Value::Null);
    o.insert(
        "max_output_tokens".into(),
        get("max_output_tokens", Value::Null),
    );
    o.insert("max_tool_calls".into(), get("max_tool_calls", Value::Null));
    o.insert("store".into(), json!(parsed.store()));
    o.insert("background".into(), json!(false));
    o.insert("service_tier".into(), get("service_tier", json!("default")));
    o.insert("metadata".into(), get("metadata", json!({})));
    o.insert(
        "safety_identifier".into(),
        get("safety_identifier", Value::Null),
    );
    o.insert(
        "prompt_cache_key".into(),
        get("prompt_cache_key", Value::Null),
    );
    o.insert("user".into(), get("user", Value::Null));
    o
}

/// A function tool as the response object lists it: every field present.
fn echo_tool(t: &Value) -> Value {
    let field = |k: &str| t.get(k).cloned().unwrap_or(Value::Null);
    json!({"type": "function", "name": field("name"), "description": field("description"),
        "parameters": field("parameters"), "strict": field("strict")})
}

/// How a response ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum End {
    Completed,
    /// `incomplete_details.reason`: `max_output_tokens` or `content_filter`.
    Incomplete(&'static str),
    /// `error.code` and `error.message`.
    Failed(String, String),
}

impl End {
    /// The end a chat `finish_reason` means.
    pub(crate) fn of_finish(finish: Option<&str>) -> End {
        match finish {
            Some("length") => End::Incomplete("max_output_tokens"),
            Some("content_filter") => End::Incomplete("content_filter"),
            _ => End::Completed,
        }
    }

    /// The stream's terminal event type.
    pub(crate) fn event(&self) -> &'static str {
        match self {
            End::Completed => "response.completed",
            End::Incomplete(_) => "response.incomplete",
            End::Failed(..) => "response.failed",
        }
    }
}

/// `base` finished: status, output, usage, and the error or incomplete details.
pub(crate) fn finish(
    mut o: Map<String, Value>,
    end: &End,
    output: Vec<Value>,
    usage: Option<&Usage>,
) -> Value {
    let (status, incomplete, error) = match end {
        End::Completed => ("completed", Value::Null, Value::Null),
        End::Incomplete(reason) => ("incomplete", json!({"reason": reason}), Value::Null),
        End::Failed(code, message) => (
            "failed",
            Value::Null,
            json!({"code": code, "message": message}),
        ),
    };
    o.insert("status".into(), json!(status));
    if matches!(end, End::Completed) {
        o.insert("completed_at".into(), json!(now()));
    }
    o.insert("incomplete_details".into(), incomplete);
    o.insert("error".into(), error);
    o.insert("output".into(), Value::Array(output));
    o.insert("usage".into(), usage.map_or(Value::Null, usage_json));
    Value::Object(o)
}

/// Chat usage as the Responses API's.
pub(crate) fn usage_json(u: &Usage) -> Value {
    let cached = u
        .prompt_tokens_details
        .as_ref()
        .and_then(|d| d.cached_tokens)
        .unwrap_or(0);
    let reasoning = u
        .completion_tokens_details
        .as_ref()
        .and_then(|d| d.reasoning_tokens)
        .unwrap_or(0);
    json!({
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": u.total_tokens.max(u.prompt_tokens + u.completion_tokens),
    })
}

/// An `output_text` content part.
pub(crate) fn output_text(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

/// An assistant `message` item.
pub(crate) fn message_item(id: &str, status: &str, content: Vec<Value>) -> Value {
    json!({"id": id, "type": "message", "status": status, "role": "assistant", "content": content})
}

/// A `function_call` item.
pub(crate) fn function_call_item(
    id: &str,
    status: &str,
    call_id: &str,
    name: &str,
    arguments: &str,
) -> Value {
    json!({"id": id, "type": "function_call", "status": status, "call_id": call_id,
        "name": name, "arguments": arguments})
}

/// A `reasoning_text` content part.
pub(crate) fn reasoning_text(text: &str) -> Value {
    json!({"type": "reasoning_text", "text": text})
}

/// A `summary_text` part.
pub(crate) fn summary_text(text: &str) -> Value {
    json!({"type": "summary_text", "text": text})
}

/// A `reasoning` item. Without `encrypted_content` (the gateway keeps none): it is an
/// optional string, and `null` fails the Open Responses schema.
pub(crate) fn reasoning_item(id: &str, content: Vec<Value>) -> Value {
    json!({"id": id, "type": "reasoning", "summary": [], "content": content})
}

/// A complete `reasoning` item holding `text`: as its summary when the request asked for one
/// (`reasoning.summary`), else as `reasoning_text` content.
pub(crate) fn reasoning_done(id: &str, text: &str, summary: bool) -> Value {
    let mut item = reasoning_item(id, Vec::new());
    if summary {
        item["summary"] = json!([summary_text(text)]);
    } else {
        item["content"] = json!([reasoning_text(text)]);
    }
    item
}

/// Whether the response object `base` says a reasoning summary was asked for.
pub(crate) fn wants_summary(base: &Map<String, Value>) -> bool {
    base.get("reasoning")
        .and_then(|r| r.get("summary"))
        .is_some_and(Value::is_string)
}
