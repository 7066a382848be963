//! The Ollama dialect: Ollama's native API as `ollama serve` answers it.
//!
//! | request | answer |
//! |---|---|
//! | `POST /api/chat` | `{"model","created_at","message":{"role","content"},"done":true,"done_reason",...counts}`; streamed (the default unless `"stream": false`) as NDJSON lines with `"done": false`, then a last line with `"done": true`, `done_reason` and the counts |
//! | `POST /api/generate` | the same with `response` instead of `message`, and `context` on the last line |
//! | `POST /api/embed` | `{"model","embeddings":[[...]],"total_duration","load_duration","prompt_eval_count"}` |
//! | `GET /api/tags` | `{"models":[{"name","model","modified_at","size","digest","details"}]}` |
//! | `GET /api/version` | `{"version":"0.12.3"}` |
//! | `GET /`, `HEAD /` | `Ollama is running` |
//!
//! Errors are Ollama's `{"error": "<text>"}`: 400 for a body that is not JSON, a missing
//! model, or tool-call arguments that are not an object (Ollama cannot decode them); anything
//! else is `404 page not found` in plain text. Every model is served (a mock never needs a
//! pull); use [`Behaviour::ollama_error`] for Ollama's 404 on a missing model.
//!
//! Tokens are whitespace-separated words, as in the OpenAI dialect: `prompt_eval_count` counts
//! the words of the messages (or prompt, or inputs), `eval_count` those of the reply.
//! `options.num_predict` cuts the reply to that many words, with `done_reason: "length"`.

use std::io;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Method, StatusCode};
use serde_json::{json, Value};

use crate::behaviour::Behaviour;
use crate::openai::{count_tokens, pieces};
use crate::server::{Ctx, Dialect, MockProvider, Recorded, Reply};

/// The version `/api/version` reports.
const VERSION: &str = "0.12.3";

/// Length of a mock embedding when the request sets no `dimensions`.
const DEFAULT_DIMENSIONS: usize = 16;

impl MockProvider {
    /// Starts a mock Ollama server (native API) on `127.0.0.1:0`; its
    /// [`base_url`](MockProvider::base_url) is what a deployment's `api_base` takes.
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound; use [`MockProvider::try_start_ollama`] to get the
    /// error.
    #[expect(
        clippy::expect_used,
        reason = "a test fixture: failing to bind loopback means the test cannot run at all"
    )]
    pub async fn start_ollama() -> Self {
        Self::try_start_ollama()
            .await
            .expect("llmgate-testkit: could not bind 127.0.0.1:0")
    }

    /// Starts a mock Ollama server on `127.0.0.1:0`, returning the bind error.
    pub async fn try_start_ollama() -> io::Result<Self> {
        Self::start_dialect(Arc::new(Ollama)).await
    }
}

impl Behaviour {
    /// Ollama's error answer: this status with `{"error": message}`, e.g.
    /// `Behaviour::ollama_error(404, "model \"llama9\" not found, try pulling it first")`.
    #[must_use]
    pub fn ollama_error(status: u16, message: impl Into<String>) -> Self {
        Self::json(status, &json!({"error": message.into()}))
    }

    /// A `200 OK` NDJSON body of these lines (`application/x-ndjson`), sent whole: a
    /// hand-written Ollama stream (tool calls, thinking, an error line).
    #[must_use]
    pub fn ndjson(lines: &[Value]) -> Self {
        let mut body = String::new();
        for line in lines {
            body.push_str(&line.to_string());
            body.push('\n');
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        );
        Self::Status {
            status: StatusCode::OK,
            body: Bytes::from(body),
            headers,
        }
    }
}

/// Ollama's native wire format.
#[derive(Debug)]
struct Ollama;

impl Dialect for Ollama {
    fn default_models(&self) -> Vec<String> {
        ["llama3.2:latest", "nomic-embed-text:latest"]
            .map(String::from)
            .to_vec()
    }

    fn is_stream(&self, req: &Recorded) -> bool {
        // Ollama streams unless told not to; embeddings never stream.
        matches!(req.path.as_str(), "/api/chat" | "/api/generate")
            && req.json.get("stream").and_then(Value::as_bool) != Some(false)
    }

    fn respond(&self, req: &Recorded, content: Option<&str>, ctx: &Ctx) -> Reply {
        let path = req.path.as_str();
        match (&req.method, path) {
            (&Method::GET | &Method::HEAD, "/") => text(StatusCode::OK, "Ollama is running"),
            (&Method::GET, "/api/tags") => tags(ctx),
            (&Method::GET, "/api/version") => json_reply(&json!({"version": VERSION})),
            (&Method::POST, "/api/chat" | "/api/generate" | "/api/embed") => {
                if let Some(reply) = rejection(req) {
                    return reply;
                }
                let stream = self.is_stream(req);
                match path {
                    "/api/chat" => chat(&req.json, content, stream),
                    "/api/generate" => generate(&req.json, content, stream),
                    _ => embed(&req.json),
                }
            }
            _ => text(StatusCode::NOT_FOUND, "404 page not found"),
        }
    }

    fn invalid_body(&self, req: &Recorded) -> Reply {
        if self.is_stream(req) {
            ndjson_reply(vec![
                Bytes::from_static(b"{\"model\": this is not json\n"),
                Bytes::from(format!("{}\n", done_line(req.model().unwrap_or(""), 0, 0))),
            ])
        } else {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(JSON));
            Reply::Full {
                status: StatusCode::OK,
                headers,
                body: Bytes::from_static(b"{\"model\": this is not json"),
            }
        }
    }
}

const JSON: &str = "application/json; charset=utf-8";

fn json_reply(body: &Value) -> Reply {
    json_status(StatusCode::OK, body)
}

fn json_status(status: StatusCode, body: &Value) -> Reply {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(JSON));
    Reply::Full {
        status,
        headers,
        body: Bytes::from(body.to_string()),
    }
}

fn error(status: StatusCode, message: &str) -> Reply {
    json_status(status, &json!({"error": message}))
}

fn text(status: StatusCode, body: &'static str) -> Reply {
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Reply::Full {
        status,
        headers,
        body: Bytes::from_static(body.as_bytes()),
    }
}

fn ndjson_reply(events: Vec<Bytes>) -> Reply {
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Reply::Events { headers, events }
}

/// Ollama's answer to a request it rejects before running a model.
fn rejection(req: &Recorded) -> Option<Reply> {
    if !req.json.is_object() {
        return Some(error(
            StatusCode::BAD_REQUEST,
            "invalid character looking for beginning of value",
        ));
    }
    if req.model().is_none_or(str::is_empty) {
        return Some(error(StatusCode::BAD_REQUEST, "model is required"));
    }
    let messages = req.json.get("messages").and_then(Value::as_array);
    for m in messages.into_iter().flatten() {
        let calls = m.get("tool_calls").and_then(Value::as_array);
        for call in calls.into_iter().flatten() {
            let args = call.pointer("/function/arguments");
            if args.is_some_and(|a| !a.is_object()) {
                return Some(error(
                    StatusCode::BAD_REQUEST,
                    "json: cannot unmarshal string into Go struct field \
                     ToolCallFunction.messages.tool_calls.function.arguments of type \
                     api.ToolCallFunctionArguments",
                ));
            }
        }
    }
    None
}

fn tags(ctx: &Ctx) -> Reply {
    let models: Vec<Value> = ctx
        .models
        .iter()
        .map(|name| {
            json!({
                "name": name,
                "model": name,
                "modified_at": rfc3339(1_721_680_408),
                "size": 2_019_393_189_u64,
                "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
                "details": {"parent_model": "", "format": "gguf", "family": "llama",
                            "families": ["llama"], "parameter_size": "3.2B",
                            "quantization_level": "Q4_K_M"}
            })
        })
        .collect();
    json_reply(&json!({"models": models}))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `YYYY-MM-DDTHH:MM:SS.000000000Z` for unix seconds (as Go prints `created_at`).
fn rfc3339(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.000000000Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The text of a message's `content`.
fn content_text(m: &Value) -> &str {
    m.get("content").and_then(Value::as_str).unwrap_or_default()
}

fn default_reply(prompt: &str) -> String {
    let prompt = prompt.trim();
    if prompt.is_empty() {
        "mock reply".to_owned()
    } else {
        format!("mock reply to: {prompt}")
    }
}

/// The reply cut to `options.num_predict` words, and the `done_reason`.
fn limit(body: &Value, text: String) -> (String, &'static str) {
    let max = body.pointer("/options/num_predict").and_then(Value::as_i64);
    match max {
        Some(max) if max >= 0 && count_tokens(&text) > max.unsigned_abs() => {
            let words: Vec<&str> = text
                .split_whitespace()
                .take(usize::try_from(max).unwrap_or(usize::MAX))
                .collect();
            (words.join(" "), "length")
        }
        _ => (text, "stop"),
    }
}

/// The final line's counts and durations (nanoseconds).
fn done_fields(line: &mut Value, prompt: u64, eval: u64, reason: &str) {
    line["done_reason"] = json!(reason);
    line["done"] = json!(true);
    line["total_duration"] = json!(4_883_583_458_u64);
    line["load_duration"] = json!(1_334_875);
    line["prompt_eval_count"] = json!(prompt);
    line["prompt_eval_duration"] = json!(342_546_000);
    line["eval_count"] = json!(eval);
    line["eval_duration"] = json!(4_535_599_000_u64);
}

/// A last chat line, for the invalid-body stream.
fn done_line(model: &str, prompt: u64, eval: u64) -> Value {
    let mut line = json!({"model": model, "created_at": rfc3339(now()),
                          "message": {"role": "assistant", "content": ""}});
    done_fields(&mut line, prompt, eval, "stop");
    line
}

fn lines(values: &[Value]) -> Vec<Bytes> {
    values
        .iter()
        .map(|v| Bytes::from(format!("{v}\n")))
        .collect()
}

fn chat(body: &Value, content: Option<&str>, stream: bool) -> Reply {
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let prompt: u64 = messages.iter().map(|m| count_tokens(content_text(m))).sum();
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .map(content_text)
        .unwrap_or_default();
    let text = content.map_or_else(|| default_reply(last_user), str::to_owned);
    let (text, reason) = limit(body, text);
    let eval = count_tokens(&text);
    let created = rfc3339(now());
    let line = |content: &str| {
        json!({"model": model, "created_at": created,
               "message": {"role": "assistant", "content": content}, "done": false})
    };
    if !stream {
        let mut answer = line(&text);
        done_fields(&mut answer, prompt, eval, reason);
        return json_reply(&answer);
    }
    let mut out: Vec<Value> = pieces(&text).into_iter().map(line).collect();
    let mut last = line("");
    done_fields(&mut last, prompt, eval, reason);
    out.push(last);
    ndjson_reply(lines(&out))
}

fn generate(body: &Value, content: Option<&str>, stream: bool) -> Reply {
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let prompt_text = body
        .get("prompt")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let prompt = count_tokens(prompt_text);
    let text = content.map_or_else(|| default_reply(prompt_text), str::to_owned);
    let (text, reason) = limit(body, text);
    let eval = count_tokens(&text);
    let created = rfc3339(now());
    let line = |response: &str| json!({"model": model, "created_at": created, "response": response, "done": false});
    let finish = |mut v: Value| {
        done_fields(&mut v, prompt, eval, reason);
        v["context"] = json!([128_006, 882, 128_007]);
        v
    };
    if !stream {
        return json_reply(&finish(line(&text)));
    }
    let mut out: Vec<Value> = pieces(&text).into_iter().map(line).collect();
    out.push(finish(line("")));
    ndjson_reply(lines(&out))
}

fn embed(body: &Value) -> Reply {
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let inputs: Vec<&str> = match body.get("input") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
            items.iter().filter_map(Value::as_str).collect()
        }
        _ => return error(StatusCode::BAD_REQUEST, "invalid input type"),
    };
    let dims = body
        .get("dimensions")
        .and_then(Value::as_u64)
        .and_then(|d| usize::try_from(d).ok())
        .filter(|d| *d > 0)
        .unwrap_or(DEFAULT_DIMENSIONS)
        .min(4096);
    let embeddings: Vec<Vec<f32>> = inputs.iter().map(|t| vector(t, dims)).collect();
    let prompt: u64 = inputs.iter().map(|t| count_tokens(t)).sum();
    json_reply(&json!({
        "model": model,
        "embeddings": embeddings,
        "total_duration": 14_143_917,
        "load_duration": 1_019_500,
        "prompt_eval_count": prompt
    }))
}

/// A deterministic unit vector for a text (FNV-1a of the text and the component index).
fn vector(text: &str, dims: usize) -> Vec<f32> {
    let raw: Vec<f32> = (0..dims)
        .map(|i| {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in text.bytes().chain((i as u64).to_le_bytes()) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            (h % 2000) as f32 / 1000.0 - 1.0
        })
        .collect();
    let norm = raw.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        raw.iter().map(|x| x / norm).collect()
    } else {
        raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_unix_seconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(1_721_680_408), "2024-07-22T20:33:28.000000000Z");
        assert_eq!(rfc3339(1_709_251_199), "2024-02-29T23:59:59.000000000Z");
    }

    #[test]
    fn num_predict_cuts_the_reply() {
        let body = json!({"options": {"num_predict": 2}});
        assert_eq!(limit(&body, "a b c".into()), ("a b".into(), "length"));
        let body = json!({"options": {"num_predict": -1}});
        assert_eq!(limit(&body, "a b c".into()), ("a b c".into(), "stop"));
    }

    #[test]
    fn vectors_are_unit_length_and_deterministic() {
        let v = vector("hello", 8);
        assert_eq!(v, vector("hello", 8));
        let norm: f32 = v.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-5);
    }
}
