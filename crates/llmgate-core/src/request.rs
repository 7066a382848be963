//! [`LlmRequest`]: the request body, parsed once at the edge and shared by every layer.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::wire::{ChatCompletionRequest, CompletionRequest, EmbeddingRequest};

/// Which OpenAI endpoint a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `/v1/chat/completions`.
    ChatCompletions,
    /// `/v1/completions`.
    Completions,
    /// `/v1/embeddings`.
    Embeddings,
}

impl Endpoint {
    /// The path below `/v1`, as OpenAI-compatible providers serve it.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "/chat/completions",
            Endpoint::Completions => "/completions",
            Endpoint::Embeddings => "/embeddings",
        }
    }

    /// A stable name for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "chat_completions",
            Endpoint::Completions => "completions",
            Endpoint::Embeddings => "embeddings",
        }
    }
}

/// The typed body.
#[derive(Debug, Clone, PartialEq)]
#[expect(
    clippy::large_enum_variant,
    reason = "built once per request and held behind the Arc in LlmRequest"
)]
pub enum LlmBody {
    /// A chat completions request.
    Chat(ChatCompletionRequest),
    /// A legacy completions request.
    Completion(CompletionRequest),
    /// An embeddings request.
    Embedding(EmbeddingRequest),
}

/// Body fields that speak to the gateway, not the provider (LiteLLM's names). They are taken out
/// of the body at parse time and never sent upstream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GatewayParams {
    /// `mock_response`: answer with this text without calling a provider.
    pub mock_response: Option<String>,
    /// `mock_testing_fallbacks`: make the first deployment fail, to test fallbacks.
    pub mock_testing_fallbacks: bool,
    /// `timeout` in seconds, for this request's attempts.
    pub timeout: Option<Duration>,
    /// `num_retries` for this request.
    pub num_retries: Option<u32>,
    /// `metadata` (LiteLLM's: tags, trace ids, ...).
    pub metadata: Option<Value>,
    /// `tags`.
    pub tags: Vec<String>,
    /// `cache` controls (`no-cache`, `no-store`, `ttl`, ...).
    pub cache: Option<Value>,
    /// `fallbacks`: per-request fallback model groups.
    pub fallbacks: Option<Value>,
    /// `drop_params`: drop parameters the provider does not support.
    pub drop_params: Option<bool>,
}

/// Gateway-only body keys: parsed into [`GatewayParams`], removed from what goes upstream.
const GATEWAY_KEYS: &[&str] = &[
    "mock_response",
    "mock_testing_fallbacks",
    "timeout",
    "num_retries",
    "metadata",
    "tags",
    "cache",
    "fallbacks",
    "drop_params",
];

impl GatewayParams {
    /// Takes the gateway-only keys out of a body's other fields (what [`LlmRequest::parse`]
    /// does; also for endpoints that build their typed body themselves, such as
    /// `/v1/messages`).
    pub fn take_from(extra: &mut Map<String, Value>) -> Result<Self, ApiError> {
        let mut p = GatewayParams::default();
        if !GATEWAY_KEYS.iter().any(|k| extra.contains_key(*k)) {
            return Ok(p);
        }
        if let Some(v) = extra.remove("mock_response") {
            p.mock_response = match v {
                Value::String(s) => Some(s),
                Value::Null => None,
                _ => return Err(field_error("mock_response", "a string")),
            };
        }
        if let Some(v) = extra.remove("mock_testing_fallbacks") {
            p.mock_testing_fallbacks = v
                .as_bool()
                .ok_or_else(|| field_error("mock_testing_fallbacks", "a boolean"))?;
        }
        if let Some(v) = extra.remove("timeout") {
            let timeout = v
                .as_f64()
                .filter(|s| *s > 0.0)
                .and_then(crate::seconds::seconds)
                .ok_or_else(|| {
                    field_error(
                        "timeout",
                        &format!(
                            "a positive number of seconds, at most {}",
                            crate::seconds::MAX_SECONDS_TEXT
                        ),
                    )
                })?;
            p.timeout = Some(timeout);
        }
        if let Some(v) = extra.remove("num_retries") {
            let n = v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| field_error("num_retries", "a non-negative integer"))?;
            p.num_retries = Some(n);
        }
        p.metadata = extra.remove("metadata").filter(|v| !v.is_null());
        if let Some(v) = extra.remove("tags") {
            p.tags = match v {
                Value::Array(items) => items
                    .into_iter()
                    .map(|t| match t {
                        Value::String(s) => Ok(s),
                        _ => Err(field_error("tags", "a list of strings")),
                    })
                    .collect::<Result<_, _>>()?,
                Value::Null => Vec::new(),
                _ => return Err(field_error("tags", "a list of strings")),
            };
        }
        p.cache = extra.remove("cache").filter(|v| !v.is_null());
        p.fallbacks = extra.remove("fallbacks").filter(|v| !v.is_null());
        if let Some(v) = extra.remove("drop_params") {
            p.drop_params = Some(
                v.as_bool()
                    .ok_or_else(|| field_error("drop_params", "a boolean"))?,
            );
        }
        Ok(p)
    }
}

fn field_error(field: &'static str, expected: &str) -> ApiError {
    ApiError::bad_request(format!("invalid `{field}`: expected {expected}")).with_param(field)
}

#[derive(Debug)]
struct Parsed {
    endpoint: Endpoint,
    body: LlmBody,
    gateway: GatewayParams,
}

/// Extension: the parsed request body. Cheap to clone (an `Arc`), so the fallback layer can
/// send it again without the consumed HTTP body.
#[derive(Debug, Clone)]
pub struct LlmRequest(Arc<Parsed>);

impl LlmRequest {
    /// Parses a JSON body for `endpoint`. Errors are 400s in OpenAI's shape that say where the
    /// JSON broke or which field is wrong.
    pub fn parse(endpoint: Endpoint, json: &[u8]) -> Result<Self, ApiError> {
        let (body, gateway) = match endpoint {
            Endpoint::ChatCompletions => {
                let mut r: ChatCompletionRequest = from_json(json)?;
                let g = GatewayParams::take_from(&mut r.extra)?;
                (LlmBody::Chat(r), g)
            }
            Endpoint::Completions => {
                let mut r: CompletionRequest = from_json(json)?;
                let g = GatewayParams::take_from(&mut r.extra)?;
                (LlmBody::Completion(r), g)
            }
            Endpoint::Embeddings => {
                let mut r: EmbeddingRequest = from_json(json)?;
                let g = GatewayParams::take_from(&mut r.extra)?;
                (LlmBody::Embedding(r), g)
            }
        };
        Ok(Self::from_parts(endpoint, body, gateway))
    }

    /// Builds one from typed parts (for library users and tests).
    pub fn from_parts(endpoint: Endpoint, body: LlmBody, gateway: GatewayParams) -> Self {
        LlmRequest(Arc::new(Parsed {
            endpoint,
            body,
            gateway,
        }))
    }

    /// The same request for another model (a key's or team's alias resolved): a copy, made
    /// only when the name changes.
    #[must_use]
    pub fn with_model(&self, model: &str) -> Self {
        let mut body = self.0.body.clone();
        match &mut body {
            LlmBody::Chat(r) => r.model = model.to_owned(),
            LlmBody::Completion(r) => r.model = model.to_owned(),
            LlmBody::Embedding(r) => r.model = model.to_owned(),
        }
        Self::from_parts(self.0.endpoint, body, self.0.gateway.clone())
    }

    /// The request's end user: its `user` field (LiteLLM's customer id), if it names one.
    pub fn end_user(&self) -> Option<&str> {
        let user = match &self.0.body {
            LlmBody::Chat(r) => r.user.as_deref(),
            LlmBody::Completion(r) => r.extra.get("user").and_then(Value::as_str),
            LlmBody::Embedding(r) => r.extra.get("user").and_then(Value::as_str),
        };
        user.filter(|u| !u.is_empty())
    }

    /// The endpoint.
    pub fn endpoint(&self) -> Endpoint {
        self.0.endpoint
    }

    /// The typed body.
    pub fn body(&self) -> &LlmBody {
        &self.0.body
    }

    /// The gateway-only parameters.
    pub fn gateway(&self) -> &GatewayParams {
        &self.0.gateway
    }

    /// The model the client asked for.
    pub fn model(&self) -> &str {
        match &self.0.body {
            LlmBody::Chat(r) => &r.model,
            LlmBody::Completion(r) => &r.model,
            LlmBody::Embedding(r) => &r.model,
        }
    }

    /// Whether the client asked for a stream.
    pub fn is_stream(&self) -> bool {
        match &self.0.body {
            LlmBody::Chat(r) => r.stream == Some(true),
            LlmBody::Completion(r) => r.stream == Some(true),
            LlmBody::Embedding(_) => false,
        }
    }

    /// Whether the client asked for a final usage chunk in a stream.
    pub fn include_usage(&self) -> bool {
        let opts = match &self.0.body {
            LlmBody::Chat(r) => r.stream_options.as_ref(),
            LlmBody::Completion(r) => r.stream_options.as_ref(),
            LlmBody::Embedding(_) => None,
        };
        opts.and_then(|o| o.include_usage) == Some(true)
    }
}

fn from_json<T: serde::de::DeserializeOwned>(json: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(json).map_err(|e| {
        use serde_json::error::Category;
        let msg = match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => {
                format!("malformed JSON in request body: {e}")
            }
            Category::Data => format!("invalid request body: {e}"),
        };
        ApiError::bad_request(msg).with_code("invalid_json")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_gateway_params_out_and_keeps_unknown_fields() {
        let r = LlmRequest::parse(
            Endpoint::ChatCompletions,
            br#"{"model":"m","messages":[{"role":"user","content":"hi"}],
                "mock_response":"yo","timeout":2.5,"logit_bias":{"1":2},"metadata":{"a":1}}"#,
        )
        .unwrap();
        assert_eq!(r.gateway().mock_response.as_deref(), Some("yo"));
        assert_eq!(r.gateway().timeout, Some(Duration::from_millis(2500)));
        let LlmBody::Chat(c) = r.body() else { panic!() };
        assert!(c.extra.contains_key("logit_bias"));
        assert!(!c.extra.contains_key("metadata"));
        assert!(!r.is_stream());
    }

    #[test]
    fn says_where_json_broke() {
        let e = LlmRequest::parse(
            Endpoint::ChatCompletions,
            b"{\"model\": \"m\",\n \"messages\": [}",
        )
        .unwrap_err();
        assert_eq!(e.to_response().status(), 400);
        assert!(e.message().contains("line 2 column"), "{}", e.message());
        let e = LlmRequest::parse(Endpoint::ChatCompletions, br#"{"model":"m"}"#).unwrap_err();
        assert!(
            e.message().contains("missing field `messages`"),
            "{}",
            e.message()
        );
    }

    #[test]
    fn parts_and_tools_roundtrip() {
        let src = serde_json::json!({
            "model": "m",
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA==", "detail": "low"}},
                {"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}}
            ]}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
            "tool_choice": {"type": "function", "function": {"name": "f"}},
            "response_format": {"type": "json_object"},
            "stream": true, "stream_options": {"include_usage": true}
        });
        let r = LlmRequest::parse(Endpoint::ChatCompletions, src.to_string().as_bytes()).unwrap();
        assert!(r.is_stream() && r.include_usage());
        let LlmBody::Chat(c) = r.body() else { panic!() };
        assert_eq!(serde_json::to_value(c).unwrap(), src);
    }
}
