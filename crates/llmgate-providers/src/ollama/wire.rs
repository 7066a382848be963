//! What Ollama answers (`/api/chat`, `/api/generate`, `/api/embed`), and the pieces of its
//! translation the complete answer and the stream share.

use llmgate_core::wire::chat::{FunctionCall, ToolCall};
use llmgate_core::Usage;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

/// A `/api/chat` or `/api/generate` answer, or one line of their streams.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Chunk {
    #[serde(default)]
    pub(super) model: Option<String>,
    #[serde(default)]
    pub(super) created_at: Option<String>,
    /// `/api/chat`.
    #[serde(default)]
    pub(super) message: Option<OllamaMessage>,
    /// `/api/generate`.
    #[serde(default)]
    pub(super) response: Option<String>,
    #[serde(default)]
    pub(super) done: bool,
    #[serde(default)]
    pub(super) done_reason: Option<String>,
    #[serde(default)]
    pub(super) prompt_eval_count: Option<u64>,
    #[serde(default)]
    pub(super) eval_count: Option<u64>,
    /// An error reported with a success status or mid-stream.
    #[serde(default)]
    pub(super) error: Option<Value>,
}

/// `message`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct OllamaMessage {
    #[serde(default)]
    pub(super) content: Option<String>,
    #[serde(default)]
    pub(super) thinking: Option<String>,
    #[serde(default)]
    pub(super) tool_calls: Option<Vec<OllamaToolCall>>,
}

/// One tool call: recent Ollama versions add an `id`, older ones only the function.
#[derive(Debug, Deserialize)]
pub(super) struct OllamaToolCall {
    #[serde(default)]
    pub(super) id: Option<String>,
    pub(super) function: OllamaFunction,
}

/// `function`: its arguments are a JSON object.
#[derive(Debug, Deserialize)]
pub(super) struct OllamaFunction {
    pub(super) name: String,
    #[serde(default)]
    pub(super) arguments: Value,
}

/// A `/api/embed` answer. The vectors are kept as Ollama wrote them (float32s in their
/// shortest form), so that passing them on adds no digits.
#[derive(Debug, Deserialize)]
pub(super) struct Embeddings<'a> {
    #[serde(default)]
    pub(super) model: Option<String>,
    #[serde(borrow)]
    pub(super) embeddings: Vec<&'a RawValue>,
    #[serde(default)]
    pub(super) prompt_eval_count: Option<u64>,
}

impl Chunk {
    /// The usage, when the line reports counts (the final one does).
    pub(super) fn usage(&self) -> Option<Usage> {
        if self.prompt_eval_count.is_none() && self.eval_count.is_none() {
            return None;
        }
        let prompt = self.prompt_eval_count.unwrap_or(0);
        let completion = self.eval_count.unwrap_or(0);
        Some(Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
            ..Usage::default()
        })
    }

    /// The error text of an error line.
    pub(super) fn error_message(&self) -> Option<String> {
        match self.error.as_ref()? {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => Some(
                o.get("message")
                    .and_then(Value::as_str)
                    .map_or_else(|| Value::Object(o.clone()).to_string(), str::to_owned),
            ),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }
}

/// OpenAI's `finish_reason` for Ollama's `done_reason`.
pub(super) fn finish_reason(done_reason: Option<&str>, called_tools: bool) -> &'static str {
    if called_tools {
        return "tool_calls";
    }
    match done_reason {
        Some("length") => "length",
        _ => "stop",
    }
}

/// An Ollama tool call in OpenAI's shape (`index` set in stream deltas only).
pub(super) fn tool_call(call: &OllamaToolCall, index: Option<u32>) -> ToolCall {
    ToolCall {
        id: Some(tool_call_id(call)),
        call_type: Some("function".to_owned()),
        index,
        function: Some(FunctionCall {
            name: Some(call.function.name.clone()),
            arguments: Some(arguments(&call.function.arguments)),
        }),
    }
}

/// The call's id: Ollama's, else a fresh one.
pub(super) fn tool_call_id(call: &OllamaToolCall) -> String {
    match call.id.as_deref() {
        Some(id) if !id.is_empty() => id.to_owned(),
        _ => super::new_id("call_"),
    }
}

/// Arguments as OpenAI's JSON string.
pub(super) fn arguments(v: &Value) -> String {
    match v {
        Value::Null => "{}".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Unix seconds of an RFC 3339 time (`2024-07-22T20:33:28.123456Z`, with `Z` or an offset).
pub(super) fn unix_seconds(t: &str) -> Option<u64> {
    let b = t.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let s = t.get(from..from + len)?;
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, min, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let secs = num(i + 1, 2)? * 3600 + num(i + 4, 2)? * 60;
            if *sign == b'+' {
                secs
            } else {
                -secs
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec - offset;
    u64::try_from(secs).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc3339() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            unix_seconds("2023-12-12T14:13:43.416799Z"),
            Some(1_702_390_423)
        );
        assert_eq!(
            unix_seconds("2023-08-04T08:52:19.385406455-07:00"),
            Some(1_691_164_339)
        );
        assert_eq!(
            unix_seconds("2024-02-29T23:59:59+01:00"),
            Some(1_709_247_599)
        );
        for bad in [
            "",
            "yesterday",
            "2023-13-01T00:00:00Z",
            "2023-12-12 14:13:43",
            "2023-12-12T14:13:43.5Zjunk",
            "1969-12-31T23:59:59Z",
        ] {
            assert_eq!(unix_seconds(bad), None, "{bad}");
        }
    }

    #[test]
    fn tool_calls_get_openai_shape() {
        let call: OllamaToolCall =
            serde_json::from_value(json!({"function": {"name": "f", "arguments": {"a": 1}}}))
                .unwrap();
        let t = tool_call(&call, Some(0));
        assert!(t.id.as_deref().unwrap().starts_with("call_"));
        assert_eq!(t.function.unwrap().arguments.as_deref(), Some(r#"{"a":1}"#));
        let call: OllamaToolCall =
            serde_json::from_value(json!({"id": "call_x", "function": {"index": 0, "name": "f"}}))
                .unwrap();
        let t = tool_call(&call, None);
        assert_eq!(t.id.as_deref(), Some("call_x"));
        assert_eq!(t.function.unwrap().arguments.as_deref(), Some("{}"));
    }

    #[test]
    fn finish_reasons() {
        assert_eq!(finish_reason(Some("stop"), false), "stop");
        assert_eq!(finish_reason(Some("length"), false), "length");
        assert_eq!(finish_reason(Some("load"), false), "stop");
        assert_eq!(finish_reason(Some("stop"), true), "tool_calls");
        assert_eq!(finish_reason(None, false), "stop");
    }
}
