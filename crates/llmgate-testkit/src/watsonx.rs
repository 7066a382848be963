//! IBM Cloud IAM's token endpoint and watsonx.ai's chat API, as they answer.
//!
//! | request | answer |
//! |---|---|
//! | `POST /identity/token`, `grant_type=urn:ibm:params:oauth:grant-type:apikey&apikey=<key>` | `{"access_token": "iam.mock-<n>", "refresh_token": "not_supported", "token_type": "Bearer", "expires_in", "expiration", "scope": "ibm openid"}`; an unknown key: 400 `{"errorCode": "BXNIM0415E", "errorMessage": "Provided API key could not be found."}` |
//! | `POST /ml/v1/text/chat?version=<date>` | `{"id", "model_id", "model", "created", "choices": [{"index", "message", "finish_reason"}], "usage", ...}` |
//! | `POST /ml/v1/text/chat_stream?version=<date>` | SSE `id: n` / `event: message` / `data: {...}` events with `choices[].delta`, the last with `finish_reason` and `usage`; then the body ends |
//! | `POST /ml/v1/text/embeddings?version=<date>` | `{"model_id", "results": [{"embedding": [16 floats]}], "created_at", "input_token_count"}` |
//!
//! The chat mock wants `Authorization: Bearer` with a token the IAM mock issued and that has
//! not expired (401 otherwise), a `version` query, `model_id`, `project_id` or `space_id`,
//! `messages`, and no `model` or `stream` field (400 in watsonx's
//! `{"errors": [{"code", "message"}], "status_code"}` otherwise). The reply is
//! `"mock reply to: <last user text>"`; with `tools` and `tool_choice_option: "required"` (or
//! a named `tool_choice`) the model calls the first (or named) tool with `{"mock": true}`.
//! The embeddings mock wants the same token and `version`, `model_id`, a project or space,
//! `inputs` as a list of strings and no `input` or `model` (400 otherwise); each vector is
//! the OpenAI mock's for the same text, and `input_token_count` counts words.

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Method, StatusCode};
use serde_json::{json, Value};

use crate::google::AccessTokens;
use crate::openai::embeddings::{embed, DEFAULT_DIMENSIONS};
use crate::openai::{count_tokens, pieces};
use crate::server::{Ctx, Dialect, MockProvider, Recorded, Reply};

impl MockProvider {
    /// Starts a mock IBM Cloud IAM token endpoint that issues `tokens` for `api_key`; its
    /// [`iam_url`](MockProvider::iam_url) is what `WATSONX_IAM_URL` takes.
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound.
    #[expect(
        clippy::expect_used,
        reason = "a test fixture: failing to bind loopback means the test cannot run at all"
    )]
    pub async fn start_ibm_iam(tokens: AccessTokens, api_key: &str) -> Self {
        let iam = Iam {
            tokens,
            api_key: api_key.to_owned(),
        };
        Self::start_dialect(Arc::new(iam))
            .await
            .expect("llmgate-testkit: could not bind 127.0.0.1:0")
    }

    /// `http://127.0.0.1:PORT/identity/token`.
    #[must_use]
    pub fn iam_url(&self) -> String {
        format!("{}/identity/token", self.base_url())
    }

    /// Starts a mock watsonx.ai chat API accepting only the tokens in `tokens`; its
    /// [`base_url`](MockProvider::base_url) is a `watsonx/` deployment's `api_base`.
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound.
    #[expect(
        clippy::expect_used,
        reason = "a test fixture: failing to bind loopback means the test cannot run at all"
    )]
    pub async fn start_watsonx(tokens: AccessTokens) -> Self {
        Self::try_start_watsonx(tokens)
            .await
            .expect("llmgate-testkit: could not bind 127.0.0.1:0")
    }

    /// Starts a mock watsonx.ai chat API, returning the bind error.
    pub async fn try_start_watsonx(tokens: AccessTokens) -> io::Result<Self> {
        Self::start_dialect(Arc::new(Watsonx { tokens })).await
    }
}

fn json_reply(status: StatusCode, body: &Value) -> Reply {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Reply::Full {
        status,
        headers,
        body: Bytes::from(body.to_string()),
    }
}

struct Iam {
    tokens: AccessTokens,
    api_key: String,
}

impl Dialect for Iam {
    fn default_models(&self) -> Vec<String> {
        Vec::new()
    }

    fn is_stream(&self, _req: &Recorded) -> bool {
        false
    }

    fn respond(&self, req: &Recorded, _content: Option<&str>, ctx: &Ctx) -> Reply {
        let form = String::from_utf8_lossy(&req.body);
        let field = |name: &str| {
            form.split('&')
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .map(str::to_owned)
        };
        let grant = field("grant_type");
        if req.method != Method::POST
            || req.path != "/identity/token"
            || grant.as_deref() != Some("urn%3Aibm%3Aparams%3Aoauth%3Agrant-type%3Aapikey")
        {
            return json_reply(
                StatusCode::BAD_REQUEST,
                &json!({"errorCode": "BXNIM0103E", "errorMessage": "Unsupported grant type."}),
            );
        }
        if field("apikey").as_deref() != Some(self.api_key.as_str()) {
            return json_reply(
                StatusCode::BAD_REQUEST,
                &json!({"errorCode": "BXNIM0415E", "errorMessage": "Provided API key could not be found.", "context": {"requestId": "mock"}}),
            );
        }
        let lifetime = self.tokens.lifetime().as_secs();
        let token = self.tokens.issue("iam.mock-", ctx.seq);
        json_reply(
            StatusCode::OK,
            &json!({
                "access_token": token,
                "refresh_token": "not_supported",
                "token_type": "Bearer",
                "expires_in": lifetime,
                "expiration": 1_900_000_000u64,
                "scope": "ibm openid",
            }),
        )
    }
}

struct Watsonx {
    tokens: AccessTokens,
}

fn wx_error(status: StatusCode, code: &str, message: &str) -> Reply {
    json_reply(
        status,
        &json!({"errors": [{"code": code, "message": message}], "trace": "mock-trace", "status_code": status.as_u16()}),
    )
}

/// Why watsonx refuses the body, if it does.
fn invalid(body: &Value) -> Option<String> {
    if !body.is_object() {
        return Some("Failed to parse the request body as JSON".to_owned());
    }
    for field in ["model", "stream", "stream_options"] {
        if body.get(field).is_some() {
            return Some(format!("Json field `{field}` is not allowed"));
        }
    }
    if body["model_id"].as_str().is_none() {
        return Some("Missing required field: model_id".to_owned());
    }
    if body.get("project_id").is_none() && body.get("space_id").is_none() {
        return Some("Either project_id or space_id must be specified".to_owned());
    }
    if !body["messages"].is_array() {
        return Some("Missing required field: messages".to_owned());
    }
    None
}

impl Dialect for Watsonx {
    fn default_models(&self) -> Vec<String> {
        vec!["ibm/granite-3-8b-instruct".to_owned()]
    }

    fn is_stream(&self, req: &Recorded) -> bool {
        req.path == "/ml/v1/text/chat_stream"
    }

    fn respond(&self, req: &Recorded, content: Option<&str>, ctx: &Ctx) -> Reply {
        let stream = match req.path.as_str() {
            "/ml/v1/text/chat" => Some(false),
            "/ml/v1/text/chat_stream" => Some(true),
            "/ml/v1/text/embeddings" => None,
            _ => return wx_error(StatusCode::NOT_FOUND, "not_found", "Not Found"),
        };
        if req.method != Method::POST {
            return wx_error(StatusCode::NOT_FOUND, "not_found", "Not Found");
        }
        let why = match req.bearer_token() {
            Some(t) => self.tokens.check(t),
            None => Some("Failed to authenticate the request due to no Authorization header"),
        };
        if let Some(why) = why {
            return wx_error(
                StatusCode::UNAUTHORIZED,
                "authentication_token_expired",
                why,
            );
        }
        if !req.path_and_query.contains("version=") {
            return wx_error(
                StatusCode::BAD_REQUEST,
                "json_validation_error",
                "Missing query parameter `version`",
            );
        }
        let Some(stream) = stream else {
            return embeddings(&req.json);
        };
        if let Some(why) = invalid(&req.json) {
            return wx_error(StatusCode::BAD_REQUEST, "json_validation_error", &why);
        }
        let answer = answer(&req.json, content, ctx);
        if stream {
            events(&answer)
        } else {
            json_reply(StatusCode::OK, &answer.full())
        }
    }
}

/// `text/embeddings`: the OpenAI mock's vector for each input.
fn embeddings(body: &Value) -> Reply {
    let inputs: Option<Vec<&str>> = body["inputs"]
        .as_array()
        .and_then(|items| items.iter().map(Value::as_str).collect());
    let why = if body.get("input").is_some() || body.get("model").is_some() {
        Some("Json fields `input` and `model` are not allowed")
    } else if body["model_id"].as_str().is_none() {
        Some("Missing required field: model_id")
    } else if body.get("project_id").is_none() && body.get("space_id").is_none() {
        Some("Either project_id or space_id must be specified")
    } else if inputs.is_none() {
        Some("Json field `inputs` must be a list of strings")
    } else {
        None
    };
    if let Some(why) = why {
        return wx_error(StatusCode::BAD_REQUEST, "json_validation_error", why);
    }
    let inputs = inputs.unwrap_or_default();
    let results: Vec<Value> = inputs
        .iter()
        .map(|t| json!({"embedding": embed(t, DEFAULT_DIMENSIONS)}))
        .collect();
    let tokens: u64 = inputs.iter().map(|t| count_tokens(t)).sum();
    json_reply(
        StatusCode::OK,
        &json!({"model_id": body["model_id"], "results": results,
                "created_at": "2024-10-27T00:00:00.000Z", "input_token_count": tokens}),
    )
}

struct Answer {
    id: String,
    model: String,
    text: String,
    call: Option<Value>,
    prompt: u64,
}

impl Answer {
    fn usage(&self) -> Value {
        let completion = count_tokens(&self.text) + u64::from(self.call.is_some());
        json!({"prompt_tokens": self.prompt, "completion_tokens": completion,
               "total_tokens": self.prompt + completion})
    }

    fn finish(&self) -> &'static str {
        if self.call.is_some() {
            "tool_calls"
        } else {
            "stop"
        }
    }

    fn full(&self) -> Value {
        let mut message = json!({"role": "assistant", "content": self.text});
        if let Some(call) = &self.call {
            message["tool_calls"] = json!([call]);
        }
        json!({
            "id": self.id, "model_id": self.model, "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": self.finish()}],
            "created": 1_730_000_000u64, "model_version": "1.1.0",
            "created_at": "2024-10-27T00:00:00.000Z", "usage": self.usage(),
            "system": {"warnings": [{"message": "mock", "id": "disclaimer_warning"}]},
        })
    }
}

fn answer(body: &Value, content: Option<&str>, ctx: &Ctx) -> Answer {
    let messages = body["messages"].as_array().map_or(&[][..], Vec::as_slice);
    let text_of = |m: &Value| match &m["content"] {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    };
    let prompt = messages.iter().map(|m| count_tokens(&text_of(m))).sum();
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .map(text_of)
        .unwrap_or_default();
    let tools = body["tools"].as_array().map_or(&[][..], Vec::as_slice);
    let named = body
        .pointer("/tool_choice/function/name")
        .and_then(Value::as_str);
    let required = body["tool_choice_option"] == "required";
    let tool = named.or_else(|| {
        required
            .then(|| tools.first()?.pointer("/function/name")?.as_str())
            .flatten()
    });
    let call = tool.map(|name| {
        json!({"id": "chatcmpl-tool-mock", "type": "function",
               "function": {"name": name, "arguments": "{\"mock\": true}"}})
    });
    let text = if call.is_some() {
        String::new()
    } else {
        content.map_or_else(
            || format!("mock reply to: {}", last_user.trim()),
            str::to_owned,
        )
    };
    Answer {
        id: format!("chat-mock{:06}", ctx.seq),
        model: body["model_id"].as_str().unwrap_or_default().to_owned(),
        text,
        call,
        prompt,
    }
}

fn events(a: &Answer) -> Reply {
    let chunk = |n: usize, delta: Value, finish: Option<&str>, usage: Option<Value>| {
        let mut data = json!({
            "id": a.id, "model_id": a.model, "model": a.model, "created": 1_730_000_000u64,
            "model_version": "1.1.0", "created_at": "2024-10-27T00:00:00.000Z",
            "choices": [{"index": 0, "finish_reason": finish, "delta": delta}],
        });
        if let Some(u) = usage {
            data["usage"] = u;
        }
        Bytes::from(format!("id: {n}\nevent: message\ndata: {data}\n\n"))
    };
    let mut out = vec![chunk(
        1,
        json!({"role": "assistant", "content": ""}),
        None,
        None,
    )];
    for p in pieces(&a.text) {
        out.push(chunk(out.len() + 1, json!({"content": p}), None, None));
    }
    let last = match &a.call {
        Some(call) => json!({"tool_calls": [{"index": 0, "id": call["id"], "type": "function",
                                             "function": call["function"]}]}),
        None => json!({}),
    };
    out.push(chunk(
        out.len() + 1,
        last,
        Some(a.finish()),
        Some(a.usage()),
    ));
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    Reply::Events {
        headers,
        events: out,
    }
}
