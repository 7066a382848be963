//! The one error contract.
//!
//! Every crate's `Error` implements [`ErrorContract`]: which HTTP status the client sees, which
//! OpenAI error `type` and `code` describe it, whether another attempt may succeed (the fallback
//! layer reads this), and where it came from. [`ApiError`] is the concrete value that travels:
//! services return it boxed in a [`BoxError`], and the rescue layer at the edge renders it once as
//! OpenAI's error body:
//!
//! ```json
//! {"error": {"message": "...", "type": "invalid_request_error", "param": null, "code": "model_not_found"}}
//! ```

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use serde::{Deserialize, Serialize};

use crate::attribution::Attribution;
use crate::body::{self, BoxBody};

/// The error type carried through Tower services.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Where an error came from, as pingora's errors say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// The client sent something we cannot serve (bad JSON, unknown model, no key).
    Downstream,
    /// The provider failed or answered with an error.
    Upstream,
    /// The gateway itself failed.
    Internal,
}

impl Origin {
    /// A stable lower-case name, for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Downstream => "downstream",
            Origin::Upstream => "upstream",
            Origin::Internal => "internal",
        }
    }
}

/// OpenAI's error `type` field. Upstream providers may send types of their own, which are kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ErrorType(Cow<'static, str>);

impl ErrorType {
    /// 400, 404 for a model, 405, 413: the request cannot be served as sent.
    pub const INVALID_REQUEST: ErrorType = ErrorType(Cow::Borrowed("invalid_request_error"));
    /// 401: no key, or an unknown one.
    pub const AUTHENTICATION: ErrorType = ErrorType(Cow::Borrowed("authentication_error"));
    /// 403: the key may not do this.
    pub const PERMISSION: ErrorType = ErrorType(Cow::Borrowed("permission_error"));
    /// 404 for a path.
    pub const NOT_FOUND: ErrorType = ErrorType(Cow::Borrowed("not_found_error"));
    /// 429.
    pub const RATE_LIMIT: ErrorType = ErrorType(Cow::Borrowed("rate_limit_error"));
    /// 408 / 504: an attempt ran past its deadline.
    pub const TIMEOUT: ErrorType = ErrorType(Cow::Borrowed("timeout_error"));
    /// 5xx from a provider, or a provider that could not be reached.
    pub const API: ErrorType = ErrorType(Cow::Borrowed("api_error"));
    /// 500 from the gateway itself.
    pub const SERVER: ErrorType = ErrorType(Cow::Borrowed("server_error"));

    /// A type string of the provider's own.
    pub fn other(s: impl Into<Cow<'static, str>>) -> Self {
        ErrorType(s.into())
    }

    /// The wire string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The type OpenAI uses for a status, when nothing more specific is known.
    pub fn for_status(status: StatusCode) -> Self {
        match status.as_u16() {
            401 => Self::AUTHENTICATION,
            403 => Self::PERMISSION,
            404 => Self::NOT_FOUND,
            408 | 504 => Self::TIMEOUT,
            429 => Self::RATE_LIMIT,
            400..=499 => Self::INVALID_REQUEST,
            _ => Self::API,
        }
    }
}

/// What every crate's error says about itself.
///
/// Rules: `status` is what the client sees; `retryable` is true only when the same request may
/// succeed on another attempt or deployment (429, 5xx, timeouts, connection failures), never for
/// the client's own mistakes (400, 401, 403, 404) or content-policy refusals.
pub trait ErrorContract: std::error::Error + Send + Sync + 'static {
    /// The HTTP status the client sees.
    fn status(&self) -> StatusCode;
    /// OpenAI's `type`.
    fn error_type(&self) -> ErrorType {
        ErrorType::for_status(self.status())
    }
    /// OpenAI's `code` (for example `model_not_found`, `rate_limit_exceeded`).
    fn code(&self) -> Option<Cow<'static, str>> {
        None
    }
    /// OpenAI's `param`: the request field at fault.
    fn param(&self) -> Option<Cow<'static, str>> {
        None
    }
    /// May another attempt succeed?
    fn retryable(&self) -> bool;
    /// Where it came from.
    fn origin(&self) -> Origin;
    /// How long the caller should wait before trying again, when known.
    fn retry_after(&self) -> Option<Duration> {
        None
    }
    /// Whether the failure says something about the deployment's health, so that it counts
    /// toward the deployment's failures per minute and cooldown. By default every upstream
    /// failure does; a deadline the caller chose (the request's `timeout`) does not: a caller
    /// who allows 10 ms must not take a shared deployment out of rotation for everyone else.
    fn counts_against_deployment(&self) -> bool {
        self.origin() == Origin::Upstream
    }
}

/// The concrete error that travels through the stack and is rendered at the edge.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    error_type: ErrorType,
    code: Option<Cow<'static, str>>,
    param: Option<Cow<'static, str>>,
    /// Boxed (16 bytes, not a `String`'s 24): keeps `ApiError` under clippy's
    /// `result_large_err` bound with the attribution added.
    message: Box<str>,
    retryable: bool,
    origin: Origin,
    retry_after: Option<Duration>,
    counts_against_deployment: bool,
    /// What the request reached: set by the router and the fallback layer, read by metering
    /// and rendered as the `x-llmgate-*` headers. Boxed: only failed requests pay for it.
    attribution: Option<Box<Attribution>>,
}

impl ApiError {
    /// An error with the status's default type; retryable as the status suggests.
    pub fn new(status: StatusCode, origin: Origin, message: impl Into<String>) -> Self {
        ApiError {
            status,
            error_type: ErrorType::for_status(status),
            code: None,
            param: None,
            message: message.into().into_boxed_str(),
            retryable: status_is_retryable(status),
            origin,
            retry_after: None,
            counts_against_deployment: origin == Origin::Upstream,
            attribution: None,
        }
    }

    /// Builds an `ApiError` from any crate's error.
    pub fn from_contract(e: &dyn ErrorContract) -> Self {
        ApiError {
            status: e.status(),
            error_type: e.error_type(),
            code: e.code(),
            param: e.param(),
            message: e.to_string().into_boxed_str(),
            retryable: e.retryable(),
            origin: e.origin(),
            retry_after: e.retry_after(),
            counts_against_deployment: e.counts_against_deployment(),
            attribution: None,
        }
    }

    /// Recovers the `ApiError` inside a boxed error, or wraps an unknown one as a 500.
    pub fn from_box(e: BoxError) -> Self {
        match e.downcast::<ApiError>() {
            Ok(api) => *api,
            Err(other) => ApiError::internal(other.to_string()),
        }
    }

    /// 500 from the gateway itself.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, Origin::Internal, message)
            .with_type(ErrorType::SERVER)
            .with_retryable(false)
    }

    /// 400 for something the client sent.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, Origin::Downstream, message)
    }

    /// 413 for a body over `limit` bytes.
    pub fn payload_too_large(limit: usize) -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            Origin::Downstream,
            format!("request body is larger than {limit} bytes"),
        )
        .with_code("request_too_large")
    }

    /// Sets the OpenAI `type`.
    #[must_use]
    pub fn with_type(mut self, t: ErrorType) -> Self {
        self.error_type = t;
        self
    }

    /// Sets the OpenAI `code`.
    #[must_use]
    pub fn with_code(mut self, code: impl Into<Cow<'static, str>>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Sets the OpenAI `param`.
    #[must_use]
    pub fn with_param(mut self, param: impl Into<Cow<'static, str>>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// Overrides the retry verdict.
    #[must_use]
    pub fn with_retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    /// Sets the `Retry-After` the client (and the fallback layer) should honour.
    #[must_use]
    pub fn with_retry_after(mut self, d: Option<Duration>) -> Self {
        self.retry_after = d;
        self
    }

    /// Overrides whether the failure counts against the deployment's health (see
    /// [`ErrorContract::counts_against_deployment`]).
    #[must_use]
    pub fn with_counts_against_deployment(mut self, counts: bool) -> Self {
        self.counts_against_deployment = counts;
        self
    }

    /// Replaces the message, keeping everything else.
    #[must_use]
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into().into_boxed_str();
        self
    }

    /// Attributes the failure: the group and deployment the request reached last, its
    /// attempts, its earlier failed attempts (see [`crate::attribution`]).
    #[must_use]
    pub fn with_attribution(mut self, a: Attribution) -> Self {
        self.attribution = Some(Box::new(a));
        self
    }

    /// What the failed request reached, when a router saw it.
    pub fn attribution(&self) -> Option<&Attribution> {
        self.attribution.as_deref()
    }

    /// The attribution, to complete it (the fallback layer sets the request's attempts).
    pub fn attribution_mut(&mut self) -> Option<&mut Attribution> {
        self.attribution.as_deref_mut()
    }

    /// Takes the attribution out.
    pub fn take_attribution(&mut self) -> Option<Attribution> {
        self.attribution.take().map(|b| *b)
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The OpenAI-shaped JSON body.
    pub fn to_json(&self) -> Bytes {
        let body = ErrorBody {
            error: ErrorObject {
                message: Cow::Borrowed(&self.message),
                error_type: Cow::Borrowed(self.error_type.as_str()),
                param: self.param.clone(),
                code: self.code.clone(),
            },
        };
        // Serialising plain strings into a Vec cannot fail.
        Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
    }

    /// The response the client sees: status, JSON body, `Retry-After` when known, and when
    /// the request reached a model group the headers a success carries
    /// (`x-llmgate-model-group`, `x-llmgate-deployment` when a deployment was tried,
    /// `x-llmgate-attempts`, `x-llmgate-fallbacks`).
    pub fn to_response(&self) -> Response<BoxBody> {
        let mut res = Response::new(body::full(self.to_json()));
        *res.headers_mut() = crate::headers::answer_map();
        *res.status_mut() = self.status;
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(d) = self.retry_after {
            // Round up: "retry after 0 s" would invite an immediate retry.
            let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        if let Some(a) = &self.attribution {
            let h = res.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&a.group) {
                h.insert(crate::headers::MODEL_GROUP, v);
            }
            if let Some(Ok(v)) = a.deployment.as_ref().map(|d| HeaderValue::from_str(&d.id)) {
                h.insert(crate::headers::DEPLOYMENT, v);
            }
            h.insert(
                crate::headers::ATTEMPTS,
                HeaderValue::from(a.attempts.attempts),
            );
            h.insert(
                crate::headers::FALLBACKS,
                HeaderValue::from(a.attempts.fallbacks),
            );
        }
        res
    }

    /// Boxes it as the services' error type.
    pub fn boxed(self) -> BoxError {
        Box::new(self)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

impl ErrorContract for ApiError {
    fn status(&self) -> StatusCode {
        self.status
    }
    fn error_type(&self) -> ErrorType {
        self.error_type.clone()
    }
    fn code(&self) -> Option<Cow<'static, str>> {
        self.code.clone()
    }
    fn param(&self) -> Option<Cow<'static, str>> {
        self.param.clone()
    }
    fn retryable(&self) -> bool {
        self.retryable
    }
    fn origin(&self) -> Origin {
        self.origin
    }
    fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
    fn counts_against_deployment(&self) -> bool {
        self.counts_against_deployment
    }
}

/// Whether a status is worth another attempt: 408, 409, 429 and every 5xx.
pub fn status_is_retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 409 | 429) || status.is_server_error()
}

/// OpenAI's error body, `{"error": {...}}`; also what providers that speak OpenAI send.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody<'a> {
    /// The error.
    #[serde(borrow)]
    pub error: ErrorObject<'a>,
}

/// The object inside [`ErrorBody`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorObject<'a> {
    /// Human-readable message.
    #[serde(borrow)]
    pub message: Cow<'a, str>,
    /// OpenAI's `type`.
    #[serde(rename = "type", borrow, default)]
    pub error_type: Cow<'a, str>,
    /// The request field at fault.
    #[serde(default)]
    pub param: Option<Cow<'static, str>>,
    /// OpenAI's `code`.
    #[serde(default)]
    pub code: Option<Cow<'static, str>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_openai_shape_with_retry_after() {
        let e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, Origin::Upstream, "slow down")
            .with_code("rate_limit_exceeded")
            .with_retry_after(Some(Duration::from_millis(1500)));
        let res = e.to_response();
        assert_eq!(res.status(), 429);
        assert_eq!(res.headers()[header::RETRY_AFTER], "2");
        let v: serde_json::Value = serde_json::from_slice(&e.to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"error": {"message": "slow down", "type": "rate_limit_error",
                "param": null, "code": "rate_limit_exceeded"}})
        );
        assert!(e.retryable());
    }

    #[test]
    fn unknown_boxed_errors_become_500() {
        let e = ApiError::from_box("boom".into());
        assert_eq!(e.status(), 500);
        assert!(!e.retryable());
        let back = ApiError::from_box(ApiError::bad_request("x").boxed());
        assert_eq!(back.status(), 400);
    }
}

/// LiteLLM's error classes, which `retry_policy` and `allowed_fails_policy` are keyed by
/// (`RateLimitErrorRetries`, `TimeoutErrorAllowedFails`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// 400 (other than the two below).
    BadRequest,
    /// 400 with `context_length_exceeded`: the prompt is too long for the model.
    ContextWindowExceeded,
    /// A content-policy refusal.
    ContentPolicyViolation,
    /// 401 / 403.
    Authentication,
    /// 404.
    NotFound,
    /// 408 / 504 / a deadline passed.
    Timeout,
    /// 429.
    RateLimit,
    /// 5xx and unreachable upstreams.
    InternalServer,
}

impl ErrorClass {
    /// Classifies an error by its status and code.
    pub fn of(e: &dyn ErrorContract) -> ErrorClass {
        let code = e.code();
        let code = code.as_deref().unwrap_or("");
        if code == "context_length_exceeded" || code == "context_window_exceeded" {
            return ErrorClass::ContextWindowExceeded;
        }
        if code == "content_policy_violation" || code == "content_filter" {
            return ErrorClass::ContentPolicyViolation;
        }
        match e.status().as_u16() {
            401 | 403 => ErrorClass::Authentication,
            404 => ErrorClass::NotFound,
            408 | 504 => ErrorClass::Timeout,
            429 => ErrorClass::RateLimit,
            400..=499 => ErrorClass::BadRequest,
            _ => ErrorClass::InternalServer,
        }
    }

    /// LiteLLM's name (`RateLimitError`, ...), as used in `retry_policy` keys.
    pub fn litellm_name(self) -> &'static str {
        match self {
            ErrorClass::BadRequest => "BadRequestError",
            ErrorClass::ContextWindowExceeded => "ContextWindowExceededError",
            ErrorClass::ContentPolicyViolation => "ContentPolicyViolationError",
            ErrorClass::Authentication => "AuthenticationError",
            ErrorClass::NotFound => "NotFoundError",
            ErrorClass::Timeout => "TimeoutError",
            ErrorClass::RateLimit => "RateLimitError",
            ErrorClass::InternalServer => "InternalServerError",
        }
    }

    /// Every class.
    pub const ALL: [ErrorClass; 8] = [
        ErrorClass::BadRequest,
        ErrorClass::ContextWindowExceeded,
        ErrorClass::ContentPolicyViolation,
        ErrorClass::Authentication,
        ErrorClass::NotFound,
        ErrorClass::Timeout,
        ErrorClass::RateLimit,
        ErrorClass::InternalServer,
    ];
}
