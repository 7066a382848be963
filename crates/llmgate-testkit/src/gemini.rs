//! The Gemini dialect: Google AI Studio's Gemini API (`generativelanguage.googleapis.com`) as
//! it answers.
//!
//! | request | answer |
//! |---|---|
//! | `POST /v1beta/models/{model}:generateContent` | `{"candidates":[{"content":{"parts":[{"text"}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{...},"modelVersion","responseId"}` |
//! | `POST ...:streamGenerateContent?alt=sse` | the same split into SSE events (`data: {...}\r\n\r\n`), one word each, the last with `finishReason` and the full `usageMetadata`; then the body ends (no end event) |
//! | `POST ...:streamGenerateContent` | without `alt=sse`: the events as one JSON array, streamed element by element |
//! | `POST ...:batchEmbedContents` | `{"embeddings":[{"values":[...]}]}` |
//! | `POST ...:embedContent` | `{"embedding":{"values":[...]}}` |
//! | `POST ...:countTokens` | `{"totalTokens": n}` |
//! | `GET /v1beta/models`, `GET /v1beta/models/{model}` | model resources |
//!
//! `/v1/...` is served like `/v1beta/...`, and `tunedModels/...` like `models/...`; every model
//! is served. The key (`x-goog-api-key` or `?key=`) is recorded, not checked.
//!
//! Like Gemini, the mock rejects what Gemini rejects, with Google's error body
//! (`{"error":{"code","message","status"}}`, 400 `INVALID_ARGUMENT`): a body that is not JSON,
//! no `contents`, a role other than `user`/`model`, unknown fields at the top level or in
//! `generationConfig`, JSON Schema keys outside Gemini's subset in function parameters or
//! `responseSchema` (`additionalProperties`, `$schema`, ...), an embedding request whose
//! `model` is not the URL's. Unknown paths are 404 `NOT_FOUND`. [`Behaviour::gemini_error`]
//! builds Google's error for any status, [`Behaviour::gemini_sse`] a hand-written stream.
//!
//! Answers: the reply is `"mock reply to: <the last user text>"` (after a function response,
//! `"mock reply to: <name> returned <response JSON>"`), one candidate per `candidateCount`.
//! With `toolConfig.functionCallingConfig.mode: ANY` the model calls the first allowed (else
//! declared) function, its required arguments filled (`"mock"`, `1`, `true`). With
//! `thinkingConfig.includeThoughts` a thought part (`"mock thought"`) comes first and counts
//! as `thoughtsTokenCount`. Tokens are whitespace-separated words (`promptTokenCount` the
//! words of every text part and system instruction, `candidatesTokenCount` those of the
//! reply); `maxOutputTokens` cuts the reply with `finishReason: MAX_TOKENS`.

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Method, StatusCode};
use serde_json::{json, Value};

use crate::behaviour::Behaviour;
use crate::server::{Ctx, Dialect, MockProvider, Recorded, Reply};

mod embed;
mod generate;
mod validate;

use generate::{generate, prompt_tokens, stream};

impl MockProvider {
    /// Starts a mock Gemini API (Google AI Studio) on `127.0.0.1:0`; its
    /// [`base_url`](MockProvider::base_url) is what a `gemini/` deployment's `api_base` takes.
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound; use [`MockProvider::try_start_gemini`] to get the
    /// error.
    #[expect(
        clippy::expect_used,
        reason = "a test fixture: failing to bind loopback means the test cannot run at all"
    )]
    pub async fn start_gemini() -> Self {
        Self::try_start_gemini()
            .await
            .expect("llmgate-testkit: could not bind 127.0.0.1:0")
    }

    /// Starts a mock Gemini API on `127.0.0.1:0`, returning the bind error.
    pub async fn try_start_gemini() -> io::Result<Self> {
        Self::start_dialect(Arc::new(Gemini)).await
    }
}

impl Behaviour {
    /// Google's error answer: this status with
    /// `{"error": {"code": status, "message": message, "status": "<GOOGLE_STATUS>"}}`, the
    /// status name chosen as Google does (400 `INVALID_ARGUMENT`, 403 `PERMISSION_DENIED`,
    /// 404 `NOT_FOUND`, 429 `RESOURCE_EXHAUSTED`, 500 `INTERNAL`, 503 `UNAVAILABLE`, 504
    /// `DEADLINE_EXCEEDED`, ...).
    ///
    /// ```
    /// use llmgate_testkit::Behaviour;
    /// let b = Behaviour::gemini_error(429, "Resource has been exhausted (e.g. check quota).");
    /// ```
    #[must_use]
    pub fn gemini_error(status: u16, message: impl Into<String>) -> Self {
        Self::json(status, &google_error(status, &message.into()))
    }

    /// A `200 OK` Gemini stream of these `GenerateContentResponse` events, framed as
    /// `streamGenerateContent?alt=sse` frames them, sent whole: a hand-written stream (function
    /// calls, blocked prompts, an error event).
    #[must_use]
    pub fn gemini_sse(events: &[Value]) -> Self {
        let mut body = String::new();
        for e in events {
            body.push_str("data: ");
            body.push_str(&e.to_string());
            body.push_str("\r\n\r\n");
        }
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        Self::Status {
            status: StatusCode::OK,
            body: Bytes::from(body),
            headers,
        }
    }
}

/// Google's status name for an HTTP status.
pub(crate) fn google_status(status: u16) -> &'static str {
    match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        500 => "INTERNAL",
        501 => "NOT_IMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        s if (400..500).contains(&s) => "FAILED_PRECONDITION",
        _ => "UNKNOWN",
    }
}

fn google_error(status: u16, message: &str) -> Value {
    json!({"error": {"code": status, "message": message, "status": google_status(status)}})
}

fn error_reply(status: StatusCode, message: &str) -> Reply {
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    Reply::Full {
        status,
        headers,
        body: Bytes::from(google_error(status.as_u16(), message).to_string()),
    }
}

fn json_reply(body: &Value) -> Reply {
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    Reply::Full {
        status: StatusCode::OK,
        headers,
        body: Bytes::from(body.to_string()),
    }
}

/// The Gemini wire format.
#[derive(Debug)]
pub(crate) struct Gemini;

/// What a request asks for, read from its path.
struct Target<'a> {
    /// `models/gemini-2.0-flash`.
    resource: &'a str,
    method: &'a str,
}

fn target(path: &str) -> Option<Target<'_>> {
    let rest = path
        .strip_prefix("/v1beta/")
        .or_else(|| path.strip_prefix("/v1/"))?;
    let (resource, method) = match rest.rsplit_once(':') {
        Some((r, m)) => (r, m),
        None => (rest, ""),
    };
    let ok = ["models/", "tunedModels/"].iter().any(|p| {
        resource
            .strip_prefix(p)
            .is_some_and(|id| !id.is_empty() && !id.contains('/'))
    }) || resource == "models";
    ok.then_some(Target { resource, method })
}

impl Dialect for Gemini {
    fn default_models(&self) -> Vec<String> {
        [
            "gemini-2.0-flash",
            "gemini-2.5-flash",
            "gemini-2.5-pro",
            "text-embedding-004",
        ]
        .map(String::from)
        .to_vec()
    }

    fn is_stream(&self, req: &Recorded) -> bool {
        req.path.ends_with(":streamGenerateContent")
    }

    fn respond(&self, req: &Recorded, content: Option<&str>, ctx: &Ctx) -> Reply {
        let not_found = || {
            error_reply(
                StatusCode::NOT_FOUND,
                &format!("Method not found: {} {}", req.method, req.path),
            )
        };
        let Some(t) = target(&req.path) else {
            return not_found();
        };
        if req.method == Method::GET {
            return match (t.resource, t.method) {
                ("models", "") => {
                    let models: Vec<Value> = ctx.models.iter().map(|m| model_json(m)).collect();
                    json_reply(&json!({ "models": models }))
                }
                (r, "") if r.starts_with("models/") => {
                    let id = r.trim_start_matches("models/");
                    if ctx.models.iter().any(|m| m == id) {
                        json_reply(&model_json(id))
                    } else {
                        error_reply(
                            StatusCode::NOT_FOUND,
                            &format!("models/{id} is not found for API version v1beta"),
                        )
                    }
                }
                _ => not_found(),
            };
        }
        if req.method != Method::POST || t.resource == "models" {
            return not_found();
        }
        if !req.json.is_object() {
            return error_reply(
                StatusCode::BAD_REQUEST,
                "Invalid JSON payload received. Unexpected token.",
            );
        }
        let model = t.resource.rsplit('/').next().unwrap_or(t.resource);
        let result = match t.method {
            "generateContent" => {
                generate(&req.json, content, model, ctx).map(|a| json_reply(&a.full()))
            }
            "streamGenerateContent" => generate(&req.json, content, model, ctx).map(|a| {
                let sse = req.path_and_query.contains("alt=sse");
                stream(&a.events(), sse)
            }),
            "batchEmbedContents" => embed::batch(&req.json, t.resource).map(|v| json_reply(&v)),
            "embedContent" => {
                let values = embed::values(&req.json);
                Ok(json_reply(&json!({"embedding": {"values": values}})))
            }
            "countTokens" => {
                let n = validate::contents(&req.json).map_or(0, |c| prompt_tokens(&req.json, c));
                Ok(json_reply(&json!({ "totalTokens": n })))
            }
            _ => return not_found(),
        };
        result.unwrap_or_else(|message| error_reply(StatusCode::BAD_REQUEST, &message))
    }
}

fn model_json(id: &str) -> Value {
    let embedding = id.contains("embedding");
    let methods = if embedding {
        json!(["embedContent", "batchEmbedContents"])
    } else {
        json!(["generateContent", "countTokens", "streamGenerateContent"])
    };
    json!({
        "name": format!("models/{id}"),
        "version": "001",
        "displayName": id,
        "inputTokenLimit": 1_048_576,
        "outputTokenLimit": 8192,
        "supportedGenerationMethods": methods,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = target("/v1beta/models/gemini-2.0-flash:generateContent").unwrap();
        assert_eq!(
            (t.resource, t.method),
            ("models/gemini-2.0-flash", "generateContent")
        );
        assert!(target("/v1beta/tunedModels/x:generateContent").is_some());
        assert!(target("/v1beta/models").is_some());
        assert!(target("/v1beta/files/x:generateContent").is_none());
        assert!(target("/chat/completions").is_none());
    }
}
