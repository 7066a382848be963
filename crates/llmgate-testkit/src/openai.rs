//! The OpenAI dialect: `/chat/completions`, `/completions`, `/embeddings` and `/models`,
//! each with and without the `/v1` prefix, answered in OpenAI's wire format.
//!
//! Tokens are counted as whitespace-separated words: `prompt_tokens` is the number of words
//! in the request's texts, `completion_tokens` the number of words in the reply, and
//! `total_tokens` their sum, in both the non-streamed body and the stream's usage chunk.

use std::io;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, Method, StatusCode};
use serde_json::{json, Map, Value};

use crate::server::{Ctx, Dialect, MockProvider, Recorded, Reply};

pub(crate) mod embeddings;
pub(crate) mod responses;
pub(crate) mod tools;

use embeddings::embeddings;

impl MockProvider {
    /// Starts a mock OpenAI-compatible provider on `127.0.0.1:0`.
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound; use [`MockProvider::try_start`] to get the error.
    #[expect(
        clippy::expect_used,
        reason = "a test fixture: failing to bind loopback means the test cannot run at all"
    )]
    pub async fn start() -> Self {
        Self::try_start()
            .await
            .expect("llmgate-testkit: could not bind 127.0.0.1:0")
    }

    /// Starts a mock OpenAI provider on `127.0.0.1:0` that also serves the Responses API
    /// (`/v1/responses`, streamed and not, with responses stored in this mock; Azure's
    /// `/openai/v1/responses` and `/openai/responses` paths too).
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound.
    #[expect(
        clippy::expect_used,
        reason = "a test fixture: failing to bind loopback means the test cannot run at all"
    )]
    pub async fn start_responses() -> Self {
        Self::start_dialect(responses::WithResponses::new())
            .await
            .expect("llmgate-testkit: could not bind 127.0.0.1:0")
    }

    /// Starts a mock OpenAI-compatible provider on `127.0.0.1:0`, returning the bind error.
    pub async fn try_start() -> io::Result<Self> {
        Self::start_dialect(Arc::new(OpenAi)).await
    }
}

/// The OpenAI wire format.
#[derive(Debug)]
pub(crate) struct OpenAi;

impl Dialect for OpenAi {
    fn default_models(&self) -> Vec<String> {
        [
            "gpt-4o",
            "gpt-4o-mini",
            "gpt-3.5-turbo-instruct",
            "text-embedding-3-small",
        ]
        .map(String::from)
        .to_vec()
    }

    fn is_stream(&self, req: &Recorded) -> bool {
        req.json.get("stream").and_then(Value::as_bool) == Some(true)
    }

    fn respond(&self, req: &Recorded, content: Option<&str>, ctx: &Ctx) -> Reply {
        let path = req.path.strip_prefix("/v1").unwrap_or(&req.path);
        let endpoint = match path {
            "/chat/completions" => Endpoint::Chat,
            "/completions" => Endpoint::Completions,
            "/embeddings" => Endpoint::Embeddings,
            "/models" => Endpoint::Models,
            p => match p.strip_prefix("/models/") {
                Some(id) if !id.is_empty() && req.method == Method::GET => {
                    return model_object(id, ctx);
                }
                _ => return invalid_url(req),
            },
        };
        let wanted = if endpoint == Endpoint::Models {
            Method::GET
        } else {
            Method::POST
        };
        if req.method != wanted {
            return invalid_url(req);
        }
        if endpoint == Endpoint::Models {
            let data: Vec<Value> = ctx.models.iter().map(|id| model_json(id)).collect();
            return json_reply(
                StatusCode::OK,
                &json!({"object": "list", "data": data}),
                ctx,
            );
        }
        if !req.json.is_object() {
            return error_reply(
                StatusCode::BAD_REQUEST,
                "We could not parse the JSON body of your request. (HINT: This likely means \
                 you aren't using your HTTP library correctly.)",
                None,
            );
        }
        let Some(model) = req.model() else {
            return error_reply(
                StatusCode::BAD_REQUEST,
                "you must provide a model parameter",
                Some("model"),
            );
        };
        let stream = self.is_stream(req);
        let include_usage = req
            .json
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            == Some(true);
        let call = Call {
            model,
            stream,
            include_usage,
            ctx,
        };
        match endpoint {
            Endpoint::Chat => chat(&req.json, content, &call),
            Endpoint::Completions => completion(&req.json, content, &call),
            Endpoint::Embeddings => embeddings(&req.json, &call),
            Endpoint::Models => invalid_url(req),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Chat,
    Completions,
    Embeddings,
    Models,
}

/// What every endpoint's answer depends on besides the body.
struct Call<'a> {
    model: &'a str,
    stream: bool,
    include_usage: bool,
    ctx: &'a Ctx,
}

impl Call<'_> {
    fn id(&self, prefix: &str) -> String {
        format!("{prefix}-mock{:06}", self.ctx.seq)
    }
}

/// `type` and `code` of OpenAI's error body for a status (see [`crate::Behaviour::error`]).
pub(crate) fn error_kind(status: StatusCode) -> (&'static str, Option<&'static str>) {
    match status.as_u16() {
        400 | 422 => ("invalid_request_error", None),
        401 => ("invalid_request_error", Some("invalid_api_key")),
        403 => ("invalid_request_error", Some("permission_denied")),
        404 => ("invalid_request_error", Some("model_not_found")),
        408 => ("timeout", Some("timeout")),
        413 => ("invalid_request_error", Some("request_too_large")),
        429 => ("requests", Some("rate_limit_exceeded")),
        503 => ("server_error", Some("service_unavailable")),
        500..=599 => ("server_error", None),
        400..=499 => ("invalid_request_error", None),
        _ => ("api_error", None),
    }
}

/// OpenAI's error body: `{"error":{"message","type","param":null,"code"}}`.
pub(crate) fn error_body(message: &str, kind: &str, code: Option<&str>) -> Value {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

fn error_reply(status: StatusCode, message: &str, param: Option<&str>) -> Reply {
    let (kind, code) = error_kind(status);
    let mut body = error_body(message, kind, code);
    if let Some(p) = param {
        body["error"]["param"] = json!(p);
    }
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Reply::Full {
        status,
        headers,
        body: Bytes::from(body.to_string()),
    }
}

fn invalid_url(req: &Recorded) -> Reply {
    let message = format!("Invalid URL ({} {})", req.method, req.path);
    let (kind, _) = error_kind(StatusCode::NOT_FOUND);
    let body = error_body(&message, kind, None);
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Reply::Full {
        status: StatusCode::NOT_FOUND,
        headers,
        body: Bytes::from(body.to_string()),
    }
}

fn request_id_header(headers: &mut HeaderMap, ctx: &Ctx) {
    if let Ok(v) = HeaderValue::from_str(&format!("req_mock{:06}", ctx.seq)) {
        headers.insert(HeaderName::from_static("x-request-id"), v);
    }
}

fn json_reply(status: StatusCode, body: &Value, ctx: &Ctx) -> Reply {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    request_id_header(&mut headers, ctx);
    Reply::Full {
        status,
        headers,
        body: Bytes::from(body.to_string()),
    }
}

fn sse_reply(chunks: Vec<Value>, ctx: &Ctx) -> Reply {
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    request_id_header(&mut headers, ctx);
    let mut events: Vec<Bytes> = chunks
        .iter()
        .map(|c| Bytes::from(format!("data: {c}\n\n")))
        .collect();
    events.push(Bytes::from_static(b"data: [DONE]\n\n"));
    Reply::Events { headers, events }
}

fn model_json(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": 1_686_935_002, "owned_by": "llmgate-testkit"})
}

fn model_object(id: &str, ctx: &Ctx) -> Reply {
    if ctx.models.iter().any(|m| m == id) {
        json_reply(StatusCode::OK, &model_json(id), ctx)
    } else {
        let message = format!("The model '{id}' does not exist");
        error_reply(StatusCode::NOT_FOUND, &message, Some("model"))
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Number of "tokens" (whitespace-separated words) in a text.
pub(crate) fn count_tokens(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// The text of a message's `content`: a string, or the `text` of its text parts joined by a space.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// The reply text, cut to `max_tokens` words if the request set a lower limit; the second
/// value is the `finish_reason`.
fn limit(body: &Value, text: String) -> (String, &'static str) {
    let max = body
        .get("max_completion_tokens")
        .or_else(|| body.get("max_tokens"))
        .and_then(Value::as_u64);
    match max {
        Some(max) if count_tokens(&text) > max => {
            let words: Vec<&str> = text
                .split_whitespace()
                .take(usize::try_from(max).unwrap_or(usize::MAX))
                .collect();
            (words.join(" "), "length")
        }
        _ => (text, "stop"),
    }
}

/// Splits a text into stream pieces, one word each with its trailing spaces; they
/// concatenate back to the text.
pub(crate) fn pieces(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut prev_space = false;
    for (i, c) in text.char_indices() {
        if prev_space && !c.is_whitespace() {
            pieces.push(&text[start..i]);
            start = i;
        }
        prev_space = c.is_whitespace();
    }
    if start < text.len() {
        pieces.push(&text[start..]);
    }
    pieces
}

fn default_reply(prompt: &str) -> String {
    let prompt = prompt.trim();
    if prompt.is_empty() {
        "mock reply".to_owned()
    } else {
        format!("mock reply to: {prompt}")
    }
}

fn usage(prompt: u64, completion: u64) -> Value {
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0
        }
    })
}

fn chat(body: &Value, content: Option<&str>, call: &Call<'_>) -> Reply {
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let prompt_tokens: u64 = messages
        .iter()
        .filter_map(|m| m.get("content"))
        .map(|c| count_tokens(&content_text(c)))
        .sum();
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .and_then(|m| m.get("content"))
        .map(content_text)
        .unwrap_or_default();
    let text = content.map_or_else(|| default_reply(&last_user), str::to_owned);
    let (text, finish_reason) = limit(body, text);
    let usage = usage(prompt_tokens, count_tokens(&text));
    let id = call.id("chatcmpl");
    let created = now();

    if !call.stream {
        let body = json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": call.model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": null, "annotations": []},
                "logprobs": null,
                "finish_reason": finish_reason
            }],
            "usage": usage,
            "service_tier": "default",
            "system_fingerprint": "fp_mock"
        });
        return json_reply(StatusCode::OK, &body, call.ctx);
    }

    let chunk = |delta: Value, finish: Option<&str>| {
        let mut c = json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": call.model,
            "service_tier": "default",
            "system_fingerprint": "fp_mock",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]
        });
        if call.include_usage {
            c["usage"] = Value::Null;
        }
        c
    };
    let mut chunks = vec![chunk(
        json!({"role": "assistant", "content": "", "refusal": null}),
        None,
    )];
    chunks.extend(
        pieces(&text)
            .into_iter()
            .map(|p| chunk(json!({"content": p}), None)),
    );
    chunks.push(chunk(json!({}), Some(finish_reason)));
    if call.include_usage {
        let mut last = chunk(json!({}), None);
        last["choices"] = json!([]);
        last["usage"] = usage;
        chunks.push(last);
    }
    sse_reply(chunks, call.ctx)
}

/// The prompt of a legacy completion: a string, or several joined by a space.
fn prompt_text(prompt: Option<&Value>) -> String {
    match prompt {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

fn completion(body: &Value, content: Option<&str>, call: &Call<'_>) -> Reply {
    let prompt = prompt_text(body.get("prompt"));
    let text = content.map_or_else(|| default_reply(&prompt), str::to_owned);
    let (text, finish_reason) = limit(body, text);
    let mut usage = usage(count_tokens(&prompt), count_tokens(&text));
    if let Some(u) = usage.as_object_mut() {
        // Legacy completions report only the three counts.
        u.remove("prompt_tokens_details");
        u.remove("completion_tokens_details");
    }
    let id = call.id("cmpl");
    let created = now();
    let object = |choices: Value| {
        let mut o = Map::new();
        o.insert("id".into(), json!(id));
        o.insert("object".into(), json!("text_completion"));
        o.insert("created".into(), json!(created));
        o.insert("model".into(), json!(call.model));
        o.insert("choices".into(), choices);
        o.insert("system_fingerprint".into(), json!("fp_mock"));
        Value::Object(o)
    };
    let choice = |text: &str, finish: Option<&str>| json!({"text": text, "index": 0, "logprobs": null, "finish_reason": finish});

    if !call.stream {
        let mut body = object(json!([choice(&text, Some(finish_reason))]));
        body["usage"] = usage;
        return json_reply(StatusCode::OK, &body, call.ctx);
    }
    let mut chunks: Vec<Value> = pieces(&text)
        .into_iter()
        .map(|p| object(json!([choice(p, None)])))
        .collect();
    chunks.push(object(json!([choice("", Some(finish_reason))])));
    if call.include_usage {
        for c in &mut chunks {
            c["usage"] = Value::Null;
        }
        let mut last = object(json!([]));
        last["usage"] = usage;
        chunks.push(last);
    }
    sse_reply(chunks, call.ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_concatenate_back() {
        let text = "mock reply to:  hello world";
        assert_eq!(pieces(text).concat(), text);
        assert_eq!(
            pieces(text),
            ["mock ", "reply ", "to:  ", "hello ", "world"]
        );
        assert!(pieces("").is_empty());
    }

    #[test]
    fn limit_cuts_to_max_tokens() {
        let body = json!({"max_tokens": 2});
        assert_eq!(limit(&body, "a b c".into()), ("a b".into(), "length"));
        assert_eq!(limit(&json!({}), "a b c".into()), ("a b c".into(), "stop"));
    }

    #[test]
    fn error_kinds() {
        assert_eq!(
            error_kind(StatusCode::TOO_MANY_REQUESTS),
            ("requests", Some("rate_limit_exceeded"))
        );
        assert_eq!(error_kind(StatusCode::BAD_GATEWAY), ("server_error", None));
        assert_eq!(
            error_kind(StatusCode::UNAUTHORIZED),
            ("invalid_request_error", Some("invalid_api_key"))
        );
    }
}
