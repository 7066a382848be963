//! Amazon SageMaker's runtime with a Hugging Face TGI container behind it:
//! `POST /endpoints/{name}/invocations` and `/invocations-response-stream`, SigV4-signed.
//!
//! - **Authentication**: a SigV4 `Authorization` for the service `sagemaker` signed with
//!   [`bedrock::ACCESS_KEY_ID`] and [`bedrock::SECRET_ACCESS_KEY`] (checked with the same
//!   independent verifier as the Bedrock mock), else 403 with `x-amzn-errortype`
//!   (`MissingAuthenticationTokenException`, `InvalidSignatureException`, ...).
//! - **TGI's generate** (`{"inputs": "...", "parameters": {...}}`): `[{"generated_text":
//!   "mock reply to: <inputs>"}]` (or the [`Behaviour::Reply`] text), with `details`
//!   (`finish_reason`, `generated_tokens` = words) when `parameters.details` is true.
//! - **TGI's messages API** (`{"messages": [...]}`): a `chat.completion` replying `"mock reply
//!   to: <last user text>"`, with usage (words).
//! - **Streams** need `"stream": true` in the body. The TGI events
//!   (`data:{"token": {"text", "special"}, "generated_text", "details"}`, a word per event,
//!   then a special `</s>` token carrying the `generated_text`) or the chat chunks (ending
//!   with `data: [DONE]`, no usage) are concatenated and cut every 7 bytes into
//!   `PayloadPart` event-stream messages, so events straddle messages as they do on AWS.
//! - **Errors**: a body the container refuses is SageMaker's `ModelError` (424,
//!   `{"ErrorCode", "OriginalStatusCode", "OriginalMessage", "Message"}`); [`model_error`]
//!   and [`stream_exception`] make others.

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, Method, StatusCode};
use serde_json::{json, Value};

use crate::bedrock::{self, frame, verify_sigv4, SigV4};
use crate::behaviour::Behaviour;
use crate::openai::{count_tokens, pieces};
use crate::server::{Ctx, Dialect, MockProvider, Recorded, Reply};

/// How many bytes each `PayloadPart` carries.
const PART_BYTES: usize = 7;

impl MockProvider {
    /// Starts a mock SageMaker runtime on `127.0.0.1:0` (see [`crate::sagemaker`]).
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound.
    #[expect(
        clippy::expect_used,
        reason = "a test fixture: failing to bind loopback means the test cannot run at all"
    )]
    pub async fn start_sagemaker() -> Self {
        Self::try_start_sagemaker()
            .await
            .expect("llmgate-testkit: could not bind 127.0.0.1:0")
    }

    /// Starts a mock SageMaker runtime, returning the bind error.
    pub async fn try_start_sagemaker() -> io::Result<Self> {
        Self::start_dialect(Arc::new(Sagemaker)).await
    }
}

/// SageMaker's `ModelError`: the container answered `original` with `message`.
#[must_use]
pub fn model_error(original: u16, message: &str) -> Behaviour {
    Behaviour::json(424, &model_error_body(original, message)).with_header(
        "x-amzn-errortype",
        "ModelError:http://internal.amazon.com/coral/com.amazon.sagemaker/",
    )
}

fn model_error_body(original: u16, message: &str) -> Value {
    json!({
        "ErrorCode": "CLIENT_ERROR_FROM_MODEL",
        "LogStreamArn": "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/mock",
        "OriginalMessage": message,
        "OriginalStatusCode": original,
        "Message": format!("Received client error ({original}) from primary with message \"{message}\". See the log stream for more information."),
    })
}

/// A stream exception message (`ModelStreamError`, `InternalStreamFailure`).
#[must_use]
pub fn stream_exception(exception_type: &str, message: &str) -> Bytes {
    frame(
        &[
            (":exception-type", exception_type),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        json!({"Message": message, "ErrorCode": "ModelError"})
            .to_string()
            .as_bytes(),
    )
}

/// `bytes` cut into `PayloadPart` messages of [`PART_BYTES`] each.
#[must_use]
pub fn payload_parts(bytes: &[u8]) -> Vec<Bytes> {
    bytes
        .chunks(PART_BYTES)
        .map(|part| {
            frame(
                &[
                    (":event-type", "PayloadPart"),
                    (":content-type", "application/octet-stream"),
                    (":message-type", "event"),
                ],
                part,
            )
        })
        .collect()
}

struct Sagemaker;

fn aws_error(status: StatusCode, kind: &str, message: &str) -> Reply {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{kind}:http://internal.amazon.com/coral/com.amazon.sagemaker/"
    )) {
        headers.insert("x-amzn-errortype", v);
    }
    Reply::Full {
        status,
        headers,
        body: Bytes::from(json!({ "message": message }).to_string()),
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

/// `Err((exception, message))` unless the request is signed for `sagemaker` with the test
/// keys.
fn authenticate(req: &Recorded) -> Result<(), (&'static str, String)> {
    let auth = req.header(AUTHORIZATION.as_str()).ok_or((
        "MissingAuthenticationTokenException",
        "Missing Authentication Token".to_owned(),
    ))?;
    let sig = SigV4::parse(auth).map_err(|e| ("IncompleteSignatureException", e))?;
    if sig.service != "sagemaker" {
        return Err((
            "InvalidSignatureException",
            "Credential should be scoped to correct service: 'sagemaker'.".to_owned(),
        ));
    }
    if sig.access_key_id != bedrock::ACCESS_KEY_ID {
        return Err((
            "UnrecognizedClientException",
            "The security token included in the request is invalid.".to_owned(),
        ));
    }
    verify_sigv4(req, bedrock::SECRET_ACCESS_KEY)
        .map(drop)
        .map_err(|e| ("InvalidSignatureException", e))
}

impl Dialect for Sagemaker {
    fn default_models(&self) -> Vec<String> {
        Vec::new()
    }

    fn is_stream(&self, req: &Recorded) -> bool {
        req.path.ends_with("/invocations-response-stream")
    }

    fn respond(&self, req: &Recorded, content: Option<&str>, ctx: &Ctx) -> Reply {
        let rest = req.path.strip_prefix("/endpoints/").unwrap_or_default();
        let stream = match rest.split_once('/') {
            Some((name, "invocations")) if !name.is_empty() => false,
            Some((name, "invocations-response-stream")) if !name.is_empty() => true,
            _ => return aws_error(StatusCode::NOT_FOUND, "UnknownOperationException", ""),
        };
        if req.method != Method::POST {
            return aws_error(StatusCode::NOT_FOUND, "UnknownOperationException", "");
        }
        if let Err((kind, message)) = authenticate(req) {
            return aws_error(StatusCode::FORBIDDEN, kind, &message);
        }
        let body = &req.json;
        if stream && body["stream"] != json!(true) {
            return json_reply(
                StatusCode::FAILED_DEPENDENCY,
                &model_error_body(422, "the response stream needs `stream: true`"),
            );
        }
        if body["messages"].is_array() {
            chat(body, content, stream, ctx)
        } else if let Some(inputs) = body["inputs"].as_str() {
            generate(inputs, &body["parameters"], content, stream)
        } else {
            json_reply(
                StatusCode::FAILED_DEPENDENCY,
                &model_error_body(422, "Failed to deserialize the JSON body into the target type: missing field `inputs`"),
            )
        }
    }
}

fn event_stream(bytes: &[u8]) -> Reply {
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.amazon.eventstream"),
    );
    Reply::Events {
        headers,
        events: payload_parts(bytes),
    }
}

/// TGI's `generate` (and `generate_stream`).
fn generate(inputs: &str, parameters: &Value, content: Option<&str>, stream: bool) -> Reply {
    let text = content.map_or_else(|| format!("mock reply to: {inputs}"), str::to_owned);
    let details = (parameters["details"] == json!(true)).then(|| {
        json!({"finish_reason": "eos_token", "generated_tokens": count_tokens(&text), "seed": null})
    });
    if !stream {
        let mut answer = json!({"generated_text": text});
        if let Some(d) = details {
            answer["details"] = d;
        }
        return json_reply(StatusCode::OK, &json!([answer]));
    }
    let mut sse = String::new();
    for (i, piece) in pieces(&text).into_iter().enumerate() {
        let event = json!({"index": i, "token": {"id": i, "text": piece, "logprob": -0.25, "special": false},
                           "generated_text": null, "details": null});
        sse.push_str(&format!("data:{event}\n\n"));
    }
    let last = json!({"index": 999, "token": {"id": 2, "text": "</s>", "logprob": -0.01, "special": true},
                      "generated_text": text, "details": details});
    sse.push_str(&format!("data:{last}\n\n"));
    event_stream(sse.as_bytes())
}

/// TGI's messages API.
fn chat(body: &Value, content: Option<&str>, stream: bool, ctx: &Ctx) -> Reply {
    let messages = body["messages"].as_array().map_or(&[][..], Vec::as_slice);
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default();
    let text = content.map_or_else(|| format!("mock reply to: {last_user}"), str::to_owned);
    let id = format!("chatcmpl-sm{:04}", ctx.seq);
    let model = "tgi";
    if !stream {
        let prompt: u64 = messages
            .iter()
            .filter_map(|m| m["content"].as_str())
            .map(count_tokens)
            .sum();
        let completion = count_tokens(&text);
        return json_reply(
            StatusCode::OK,
            &json!({"id": id, "object": "chat.completion", "created": 1_730_000_000u64,
                    "model": model, "system_fingerprint": "3.0.1-native",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                 "logprobs": null, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                              "total_tokens": prompt + completion}}),
        );
    }
    let chunk = |delta: Value, finish: Value| {
        json!({"id": id, "object": "chat.completion.chunk", "created": 1_730_000_000u64,
               "model": model, "system_fingerprint": "3.0.1-native",
               "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
               "usage": null})
    };
    let mut sse = String::new();
    for (i, piece) in pieces(&text).into_iter().enumerate() {
        let delta = if i == 0 {
            json!({"role": "assistant", "content": piece})
        } else {
            json!({"content": piece})
        };
        sse.push_str(&format!("data: {}\n\n", chunk(delta, Value::Null)));
    }
    sse.push_str(&format!("data: {}\n\n", chunk(json!({}), json!("stop"))));
    sse.push_str("data: [DONE]\n\n");
    event_stream(sse.as_bytes())
}
