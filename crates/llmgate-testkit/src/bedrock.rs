//! The Amazon Bedrock dialect: `POST /model/{modelId}/converse`, `/converse-stream` and
//! `/invoke` (Titan and Cohere embeddings), with every request's authentication checked.
//!
//! - **Authentication.** A request must carry a SigV4 `Authorization` header for the service
//!   `bedrock` signed with [`ACCESS_KEY_ID`] and [`SECRET_ACCESS_KEY`] (checked with an
//!   independent verifier, [`verify_sigv4`], and an `x-amz-date` within 15 minutes of now),
//!   or `Authorization: Bearer` [`API_KEY`] (a Bedrock API key). Otherwise the answer is a
//!   403 as Bedrock sends it (`MissingAuthenticationTokenException`,
//!   `UnrecognizedClientException`, `InvalidSignatureException`, ...). The region is not
//!   checked; read it from [`SigV4::region`].
//! - **Converse** answers `"mock reply to: <last user turn's text>"` (or the
//!   [`Behaviour::Reply`] text), cut to `inferenceConfig.maxTokens` words (`stopReason:
//!   max_tokens`). When `toolConfig.toolChoice` forces a tool (`any`: the first, `tool`: the
//!   named one) it calls it instead, with a sample value for each required property of its
//!   schema (strings `"mock"` or the first `enum` value, numbers `1`, booleans `true`).
//!   Tokens are words; words before the last `cachePoint` are reported as
//!   `cacheReadInputTokens` (as if already cached), the rest as `inputTokens`.
//! - **ConverseStream** sends the same answer as AWS event-stream messages:
//!   `messageStart`, `contentBlockDelta` per word (or `contentBlockStart` and two
//!   `toolUse.input` fragments for a tool call), `contentBlockStop`, `messageStop`,
//!   `metadata` with the usage; payloads carry Bedrock's `p` padding field.
//! - **Errors** are `{"message": "..."}` with `x-amzn-errortype` ([`error`]); stream
//!   exceptions are event-stream messages ([`exception`]); [`stream`] serves hand-made frames.
//!
//! ```
//! use llmgate_testkit::{bedrock, MockProvider};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let mock = MockProvider::start_bedrock().await;
//! mock.push(bedrock::error(429, "ThrottlingException", "Too many requests, please wait before trying again."));
//! mock.push(bedrock::stream([
//!     bedrock::event("messageStart", &serde_json::json!({"role": "assistant"})),
//!     bedrock::exception("modelStreamErrorException", "the model failed"),
//! ]));
//! # }
//! ```

use std::io;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use http::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, Method, StatusCode};
use serde_json::{json, Value};

use crate::behaviour::Behaviour;
use crate::server::{Ctx, Dialect, MockProvider, Recorded, Reply};

mod converse;
mod frame;
mod sigv4;

pub use frame::frame;
pub use sigv4::{verify_sigv4, SigV4};

/// The access key id the mock accepts.
pub const ACCESS_KEY_ID: &str = "AKIDLLMGATETESTKIT";
/// The secret access key the mock verifies signatures with.
pub const SECRET_ACCESS_KEY: &str = "llmgate/testkit/bedrock+SECRETKEY";
/// The Bedrock API key (bearer token) the mock accepts.
pub const API_KEY: &str = "bedrock-api-key-llmgate-testkit";

/// The event stream's content type.
pub(crate) const EVENT_STREAM: &str = "application/vnd.amazon.eventstream";

/// How far `x-amz-date` may be from now, as AWS allows.
const MAX_SKEW_SECS: u64 = 15 * 60;

impl MockProvider {
    /// Starts a mock Amazon Bedrock runtime on `127.0.0.1:0` (see [`crate::bedrock`]).
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound; use [`MockProvider::try_start_bedrock`] to get the
    /// error.
    #[expect(
        clippy::expect_used,
        reason = "a test fixture: failing to bind loopback means the test cannot run at all"
    )]
    pub async fn start_bedrock() -> Self {
        Self::try_start_bedrock()
            .await
            .expect("llmgate-testkit: could not bind 127.0.0.1:0")
    }

    /// Starts a mock Amazon Bedrock runtime, returning the bind error.
    pub async fn try_start_bedrock() -> io::Result<Self> {
        Self::start_dialect(Arc::new(Bedrock)).await
    }
}

/// An event-stream `event` message with this `:event-type` and JSON payload (as given, no
/// padding).
#[must_use]
pub fn event(event_type: &str, payload: &Value) -> Bytes {
    frame(
        &[
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload.to_string().as_bytes(),
    )
}

/// An event-stream `exception` message (`throttlingException`, `modelStreamErrorException`,
/// `validationException`, ...) with `{"message": message}`.
#[must_use]
pub fn exception(exception_type: &str, message: &str) -> Bytes {
    frame(
        &[
            (":exception-type", exception_type),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        json!({ "message": message }).to_string().as_bytes(),
    )
}

/// A `200 OK` event stream made of these messages, sent as one body.
#[must_use]
pub fn stream(messages: impl IntoIterator<Item = Bytes>) -> Behaviour {
    let mut body = BytesMut::new();
    for m in messages {
        body.extend_from_slice(&m);
    }
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(EVENT_STREAM));
    Behaviour::Status {
        status: StatusCode::OK,
        body: body.freeze(),
        headers,
    }
}

/// A Bedrock error answer: `status`, `{"message": message}` and
/// `x-amzn-errortype: {error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/`.
#[must_use]
pub fn error(status: u16, error_type: &str, message: &str) -> Behaviour {
    Behaviour::json(status, &json!({ "message": message })).with_header(
        "x-amzn-errortype",
        &format!("{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/"),
    )
}

pub(crate) fn aws_error(status: StatusCode, error_type: &str, message: &str) -> Reply {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/"
    )) {
        headers.insert("x-amzn-errortype", v);
    }
    Reply::Full {
        status,
        headers,
        body: Bytes::from(json!({ "message": message }).to_string()),
    }
}

/// The Bedrock runtime's wire format.
#[derive(Debug)]
struct Bedrock;

/// `/model/{id}/{operation}`, the id percent-decoded.
fn route(path: &str) -> Option<(String, &str)> {
    let rest = path.strip_prefix("/model/")?;
    let (id, op) = rest.rsplit_once('/')?;
    if id.is_empty() || id.contains('/') {
        return None;
    }
    let bytes = id.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some((String::from_utf8(out).ok()?, op))
}

/// Bedrock's 403 when the request is not authenticated.
fn unauthenticated(req: &Recorded) -> Option<Reply> {
    let (kind, message) = authenticate(req).err()?;
    Some(aws_error(StatusCode::FORBIDDEN, kind, &message))
}

/// `Err((exception, message))` unless the request is authenticated.
fn authenticate(req: &Recorded) -> Result<(), (&'static str, String)> {
    let Some(auth) = req.header(AUTHORIZATION.as_str()) else {
        return Err((
            "MissingAuthenticationTokenException",
            "Missing Authentication Token".to_owned(),
        ));
    };
    if let Some(key) = auth.strip_prefix("Bearer ") {
        return if key == API_KEY {
            Ok(())
        } else {
            Err((
                "UnrecognizedClientException",
                "Invalid API Key format: Must start with pre-defined prefix".to_owned(),
            ))
        };
    }
    let sig = SigV4::parse(auth).map_err(|e| ("IncompleteSignatureException", e))?;
    if sig.service != "bedrock" {
        return Err((
            "InvalidSignatureException",
            "Credential should be scoped to correct service: 'bedrock'.".to_owned(),
        ));
    }
    if sig.access_key_id != ACCESS_KEY_ID {
        return Err((
            "UnrecognizedClientException",
            "The security token included in the request is invalid.".to_owned(),
        ));
    }
    verify_sigv4(req, SECRET_ACCESS_KEY).map_err(|e| ("InvalidSignatureException", e))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let signed_at = req
        .header("x-amz-date")
        .and_then(sigv4::amz_date_to_unix)
        .unwrap_or(0);
    if now.abs_diff(signed_at) > MAX_SKEW_SECS {
        return Err((
            "InvalidSignatureException",
            "Signature expired: the x-amz-date is more than 15 minutes from now.".to_owned(),
        ));
    }
    Ok(())
}

impl Dialect for Bedrock {
    fn default_models(&self) -> Vec<String> {
        [
            "anthropic.claude-3-5-sonnet-20240620-v1:0",
            "amazon.nova-lite-v1:0",
            "amazon.titan-embed-text-v2:0",
            "cohere.embed-english-v3",
        ]
        .map(String::from)
        .to_vec()
    }

    fn is_stream(&self, req: &Recorded) -> bool {
        req.path.ends_with("/converse-stream")
    }

    fn respond(&self, req: &Recorded, content: Option<&str>, ctx: &Ctx) -> Reply {
        let Some((model, op)) = route(&req.path).filter(|_| req.method == Method::POST) else {
            return aws_error(StatusCode::NOT_FOUND, "UnknownOperationException", "");
        };
        if let Some(reply) = unauthenticated(req) {
            return reply;
        }
        if !req.json.is_object() {
            return aws_error(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                "Malformed input request, please reformat your input and try again.",
            );
        }
        match op {
            "converse" => converse::chat(&req.json, content, false, ctx),
            "converse-stream" => converse::chat(&req.json, content, true, ctx),
            "invoke" => converse::invoke(&model, &req.json, ctx),
            _ => aws_error(StatusCode::NOT_FOUND, "UnknownOperationException", ""),
        }
    }

    fn invalid_body(&self, req: &Recorded) -> Reply {
        let mut headers = HeaderMap::new();
        if self.is_stream(req) {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(EVENT_STREAM));
            let bad = frame(
                &[
                    (":event-type", "contentBlockDelta"),
                    (":content-type", "application/json"),
                    (":message-type", "event"),
                ],
                b"{\"contentBlockIndex\": this is not json",
            );
            Reply::Events {
                headers,
                events: vec![
                    bad,
                    event("messageStop", &json!({"stopReason": "end_turn"})),
                ],
            }
        } else {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Reply::Full {
                status: StatusCode::OK,
                headers,
                body: Bytes::from_static(b"{\"output\": this is not json"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            route("/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"),
            Some((
                "anthropic.claude-3-5-sonnet-20240620-v1:0".to_owned(),
                "converse"
            ))
        );
        assert_eq!(
            route("/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fx/invoke")
                .unwrap()
                .0,
            "arn:aws:bedrock:us-east-1:1:inference-profile/x"
        );
        assert!(route("/model/a/b/converse").is_none());
        assert!(route("/chat/completions").is_none());
    }
}
