//! The Anthropic dialect: `POST /v1/messages`, answered in Anthropic's Messages API format.
//!
//! Like the real API it requires an `x-api-key` header (else 401 `authentication_error`),
//! an `anthropic-version` header, and `model`, `max_tokens` and `messages` in the body (else
//! 400 `invalid_request_error`), with errors shaped
//! `{"type": "error", "error": {"type", "message"}}`.
//!
//! Answers: `"mock reply to: <last user text>"` as one text block, cut to `max_tokens` words
//! (`stop_reason: max_tokens`) or before a matching `stop_sequences` entry
//! (`stop_reason: stop_sequence`). A request whose `tool_choice` forces a tool
//! (`{"type": "tool", "name": ...}`) gets a `tool_use` of that tool instead, with the input
//! `{"mock": "<last user text>"}` (or the [`crate::Behaviour::Reply`] text, when it is a JSON
//! object). Usage counts words as tokens, with the cache counts at 0. Streams are Anthropic's
//! named SSE events: `message_start`, `content_block_start`, `ping`, `content_block_delta`
//! (one per word, or `input_json_delta` fragments), `content_block_stop`, `message_delta`,
//! `message_stop`.

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, Method, StatusCode};
use serde_json::{json, Value};

use crate::behaviour::Behaviour;
use crate::openai::{count_tokens, pieces};
use crate::server::{Ctx, Dialect, MockProvider, Recorded, Reply};

impl MockProvider {
    /// Starts a mock Anthropic Messages API on `127.0.0.1:0` (`POST /v1/messages`); point a
    /// deployment's `api_base` at [`MockProvider::base_url`].
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound; use [`MockProvider::try_start_anthropic`] to get
    /// the error.
    #[expect(
        clippy::expect_used,
        reason = "a test fixture: failing to bind loopback means the test cannot run at all"
    )]
    pub async fn start_anthropic() -> Self {
        Self::try_start_anthropic()
            .await
            .expect("llmgate-testkit: could not bind 127.0.0.1:0")
    }

    /// Starts a mock Anthropic Messages API, returning the bind error.
    pub async fn try_start_anthropic() -> io::Result<Self> {
        Self::start_dialect(Arc::new(Anthropic)).await
    }
}

impl Behaviour {
    /// An error in Anthropic's shape, `{"type":"error","error":{"type","message"}}`, with the
    /// `type` Anthropic uses for the status:
    ///
    /// | status | `type` |
    /// |---|---|
    /// | 400 | `invalid_request_error` |
    /// | 401 | `authentication_error` |
    /// | 403 | `permission_error` |
    /// | 404 | `not_found_error` |
    /// | 413 | `request_too_large` |
    /// | 429 | `rate_limit_error` |
    /// | 529 | `overloaded_error` |
    /// | other 5xx | `api_error` |
    ///
    /// ```
    /// use llmgate_testkit::Behaviour;
    /// let b = Behaviour::anthropic_error(529, "Overloaded");
    /// ```
    #[must_use]
    pub fn anthropic_error(status: u16, message: impl Into<String>) -> Self {
        let body = error_body(error_type(status), &message.into());
        Self::json(status, &body)
    }
}

/// Anthropic's error `type` for a status.
pub(crate) fn error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}

fn error_body(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

/// The Anthropic wire format.
#[derive(Debug)]
pub(crate) struct Anthropic;

impl Dialect for Anthropic {
    fn default_models(&self) -> Vec<String> {
        ["claude-sonnet-4-20250514", "claude-3-5-haiku-20241022"]
            .map(String::from)
            .to_vec()
    }

    fn is_stream(&self, req: &Recorded) -> bool {
        req.json.get("stream").and_then(Value::as_bool) == Some(true)
    }

    fn respond(&self, req: &Recorded, content: Option<&str>, ctx: &Ctx) -> Reply {
        if req.path != "/v1/messages" || req.method != Method::POST {
            return error_reply(StatusCode::NOT_FOUND, "Not Found");
        }
        if req.header("x-api-key").is_none_or(str::is_empty) {
            return error_reply(StatusCode::UNAUTHORIZED, "x-api-key header is required");
        }
        if req.header("anthropic-version").is_none() {
            return error_reply(
                StatusCode::BAD_REQUEST,
                "anthropic-version: header is required",
            );
        }
        if !req.json.is_object() {
            return error_reply(
                StatusCode::BAD_REQUEST,
                "There was an error parsing the body",
            );
        }
        for field in ["model", "max_tokens", "messages"] {
            if req.json.get(field).is_none() {
                return error_reply(StatusCode::BAD_REQUEST, &format!("{field}: Field required"));
            }
        }
        let model = req.model().unwrap_or_default();
        let answer = answer(&req.json, content);
        let id = format!("msg_mock{:06}", ctx.seq);
        if self.is_stream(req) {
            events(&id, model, &answer, ctx)
        } else {
            let body = json!({
                "id": id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [answer.block()],
                "stop_reason": answer.stop_reason,
                "stop_sequence": answer.stop_sequence,
                "usage": answer.usage(answer.output_tokens),
            });
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            request_id(&mut headers, ctx);
            Reply::Full {
                status: StatusCode::OK,
                headers,
                body: Bytes::from(body.to_string()),
            }
        }
    }

    fn invalid_body(&self, req: &Recorded) -> Reply {
        let mut headers = HeaderMap::new();
        if self.is_stream(req) {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
            Reply::Events {
                headers,
                events: vec![
                    Bytes::from_static(
                        b"event: message_start\ndata: {\"type\": \"message_start\", this is not json\n\n",
                    ),
                    Bytes::from_static(b"event: message_stop\ndata: {\"type\": \"message_stop\"}\n\n"),
                ],
            }
        } else {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Reply::Full {
                status: StatusCode::OK,
                headers,
                body: Bytes::from_static(b"{\"id\": this is not json"),
            }
        }
    }
}

fn error_reply(status: StatusCode, message: &str) -> Reply {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Reply::Full {
        status,
        headers,
        body: Bytes::from(error_body(error_type(status.as_u16()), message).to_string()),
    }
}

fn request_id(headers: &mut HeaderMap, ctx: &Ctx) {
    if let Ok(v) = HeaderValue::from_str(&format!("req_mock{:06}", ctx.seq)) {
        headers.insert(HeaderName::from_static("request-id"), v);
    }
}

/// What the mock answers with.
struct Answer {
    /// Text, or a tool call `(id, name, input)`.
    text: String,
    tool: Option<(String, String, Value)>,
    stop_reason: &'static str,
    stop_sequence: Option<String>,
    input_tokens: u64,
    output_tokens: u64,
}

impl Answer {
    fn block(&self) -> Value {
        match &self.tool {
            Some((id, name, input)) => {
                json!({"type": "tool_use", "id": id, "name": name, "input": input})
            }
            None => json!({"type": "text", "text": self.text}),
        }
    }

    fn usage(&self, output_tokens: u64) -> Value {
        json!({
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output_tokens,
            "service_tier": "standard"
        })
    }
}

/// The text of a content value: a string, or its text blocks (and tool results' text)
/// joined by a space.
fn text_of(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter_map(|b| match b.get("type").and_then(Value::as_str) {
                Some("text") => b.get("text").and_then(Value::as_str).map(str::to_owned),
                Some("tool_result") => Some(text_of(b.get("content"))),
                _ => None,
            })
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

fn answer(body: &Value, content: Option<&str>) -> Answer {
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let input_tokens = count_tokens(&text_of(body.get("system")))
        + messages
            .iter()
            .map(|m| count_tokens(&text_of(m.get("content"))))
            .sum::<u64>();
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .map(|m| text_of(m.get("content")))
        .unwrap_or_default();

    let forced = body
        .get("tool_choice")
        .filter(|c| c.get("type").and_then(Value::as_str) == Some("tool"))
        .and_then(|c| c.get("name"))
        .and_then(Value::as_str);
    if let Some(name) = forced {
        let input = content
            .and_then(|c| serde_json::from_str::<Value>(c).ok())
            .filter(Value::is_object)
            .unwrap_or_else(|| json!({ "mock": last_user }));
        let output_tokens = count_tokens(&input.to_string()).max(1);
        return Answer {
            text: String::new(),
            tool: Some(("toolu_mock01".to_owned(), name.to_owned(), input)),
            stop_reason: "tool_use",
            stop_sequence: None,
            input_tokens,
            output_tokens,
        };
    }

    let mut text = content.map_or_else(
        || {
            let prompt = last_user.trim();
            if prompt.is_empty() {
                "mock reply".to_owned()
            } else {
                format!("mock reply to: {prompt}")
            }
        },
        str::to_owned,
    );
    let mut stop_reason = "end_turn";
    let mut stop_sequence = None;
    let stops = body.get("stop_sequences").and_then(Value::as_array);
    if let Some((at, s)) = stops
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s).map(|at| (at, s)))
        .min_by_key(|(at, _)| *at)
    {
        text.truncate(at);
        stop_reason = "stop_sequence";
        stop_sequence = Some(s.to_owned());
    }
    if let Some(max) = body.get("max_tokens").and_then(Value::as_u64) {
        if count_tokens(&text) > max {
            let words: Vec<&str> = text
                .split_whitespace()
                .take(usize::try_from(max).unwrap_or(usize::MAX))
                .collect();
            text = words.join(" ");
            stop_reason = "max_tokens";
            stop_sequence = None;
        }
    }
    let output_tokens = count_tokens(&text);
    Answer {
        text,
        tool: None,
        stop_reason,
        stop_sequence,
        input_tokens,
        output_tokens,
    }
}

fn event(name: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

fn events(id: &str, model: &str, answer: &Answer, ctx: &Ctx) -> Reply {
    let mut out = vec![event(
        "message_start",
        &json!({"type": "message_start", "message": {
            "id": id, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": null, "stop_sequence": null, "usage": answer.usage(1)}}),
    )];
    let start = match &answer.tool {
        Some((id, name, _)) => json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
        None => json!({"type": "text", "text": ""}),
    };
    out.push(event(
        "content_block_start",
        &json!({"type": "content_block_start", "index": 0, "content_block": start}),
    ));
    out.push(event("ping", &json!({"type": "ping"})));
    let delta = |d: Value| {
        event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": 0, "delta": d}),
        )
    };
    match &answer.tool {
        Some((_, _, input)) => {
            let json = input.to_string();
            let mut mid = json.len() / 2;
            while !json.is_char_boundary(mid) {
                mid -= 1;
            }
            out.push(delta(
                json!({"type": "input_json_delta", "partial_json": ""}),
            ));
            for part in [&json[..mid], &json[mid..]] {
                out.push(delta(
                    json!({"type": "input_json_delta", "partial_json": part}),
                ));
            }
        }
        None => {
            for p in pieces(&answer.text) {
                out.push(delta(json!({"type": "text_delta", "text": p})));
            }
        }
    }
    out.push(event(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": 0}),
    ));
    out.push(event(
        "message_delta",
        &json!({"type": "message_delta",
            "delta": {"stop_reason": answer.stop_reason, "stop_sequence": answer.stop_sequence},
            "usage": {"output_tokens": answer.output_tokens}}),
    ));
    out.push(event("message_stop", &json!({"type": "message_stop"})));

    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    request_id(&mut headers, ctx);
    Reply::Events {
        headers,
        events: out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_stop_and_limit() {
        let a = answer(
            &json!({"system": "be nice", "max_tokens": 100, "messages": [
                {"role": "user", "content": [{"type": "text", "text": "hello there"}]}]}),
            None,
        );
        assert_eq!(a.text, "mock reply to: hello there");
        assert_eq!((a.input_tokens, a.output_tokens), (4, 5));
        assert_eq!(a.stop_reason, "end_turn");

        let a = answer(
            &json!({"max_tokens": 2, "messages": [{"role": "user", "content": "a b c"}]}),
            None,
        );
        assert_eq!(
            (a.text.as_str(), a.stop_reason),
            ("mock reply", "max_tokens")
        );

        let a = answer(
            &json!({"max_tokens": 100, "stop_sequences": ["to:"],
                "messages": [{"role": "user", "content": "x"}]}),
            None,
        );
        assert_eq!(a.text, "mock reply ");
        assert_eq!(a.stop_sequence.as_deref(), Some("to:"));
    }

    #[test]
    fn forced_tools() {
        let a = answer(
            &json!({"max_tokens": 9, "tool_choice": {"type": "tool", "name": "f"},
                "messages": [{"role": "user", "content": "q"}]}),
            None,
        );
        let (_, name, input) = a.tool.unwrap();
        assert_eq!((name.as_str(), input), ("f", json!({"mock": "q"})));
        assert_eq!(a.stop_reason, "tool_use");
    }

    #[test]
    fn error_types() {
        assert_eq!(error_type(529), "overloaded_error");
        assert_eq!(error_type(503), "api_error");
        assert_eq!(error_type(422), "invalid_request_error");
    }
}
