//! [`HostError`]: what the host refuses before the gateway sees a request, in the one error
//! contract, and [`raw_answer`] to write one where Pingora cannot (after a header that failed
//! to parse, or on a connection refused at the cap).

use std::borrow::Cow;
use std::fmt::Write as _;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use llmgate::core::{ApiError, ErrorContract, ErrorType, Origin};

/// A request the host refuses. Each is the client's doing (or the gateway's load), answered in
/// OpenAI's error shape, and the connection is closed after it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The whole header did not arrive within `llmgate_request_header_timeout`.
    #[error("the request header did not arrive within {0:?} (llmgate_request_header_timeout)")]
    HeaderTimeout(Duration),
    /// The whole body did not arrive within `llmgate_request_body_timeout`.
    #[error("the request body did not arrive within {0:?} (llmgate_request_body_timeout)")]
    BodyTimeout(Duration),
    /// The header is larger than `llmgate_max_header_bytes` (or the parser's own ceiling).
    #[error("the request header is larger than {0} bytes (llmgate_max_header_bytes)")]
    HeaderTooLarge(usize),
    /// More header fields than `llmgate_max_headers` (or the parser's own ceiling).
    #[error("the request has more than {0} header fields (llmgate_max_headers)")]
    TooManyHeaders(usize),
    /// Not HTTP/1.x the host can parse; the reason names what is wrong, never the bytes.
    #[error("malformed HTTP request: {0}")]
    Malformed(Cow<'static, str>),
    /// `llmgate_max_connections` connections are open already.
    #[error("too many open connections ({0}, llmgate_max_connections); retry shortly")]
    TooManyConnections(usize),
}

/// How long a client refused at the connection cap is asked to wait.
const RETRY_CONNECTION_AFTER: Duration = Duration::from_secs(1);

impl ErrorContract for HostError {
    fn status(&self) -> StatusCode {
        match self {
            Self::HeaderTimeout(_) | Self::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::HeaderTooLarge(_) | Self::TooManyHeaders(_) => {
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
            }
            Self::Malformed(_) => StatusCode::BAD_REQUEST,
            Self::TooManyConnections(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_type(&self) -> ErrorType {
        match self {
            Self::TooManyConnections(_) => ErrorType::SERVER,
            _ => ErrorType::for_status(self.status()),
        }
    }

    fn code(&self) -> Option<Cow<'static, str>> {
        Some(Cow::Borrowed(match self {
            Self::HeaderTimeout(_) => "request_header_timeout",
            Self::BodyTimeout(_) => "request_body_timeout",
            Self::HeaderTooLarge(_) => "request_header_too_large",
            Self::TooManyHeaders(_) => "too_many_headers",
            Self::Malformed(_) => "invalid_http_request",
            Self::TooManyConnections(_) => "too_many_connections",
        }))
    }

    fn retryable(&self) -> bool {
        matches!(self, Self::TooManyConnections(_))
    }

    fn origin(&self) -> Origin {
        match self {
            Self::TooManyConnections(_) => Origin::Internal,
            _ => Origin::Downstream,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::TooManyConnections(_) => Some(RETRY_CONNECTION_AFTER),
            _ => None,
        }
    }
}

impl HostError {
    /// The error as the gateway renders it.
    pub(crate) fn to_api(&self) -> ApiError {
        ApiError::from_contract(self)
    }

    /// The response with a request id, like every other response of the gateway.
    pub(crate) fn to_response(&self) -> http::Response<llmgate::core::BoxBody> {
        let mut response = self.to_api().to_response();
        if let Some(id) = llmgate::request_id::header_value() {
            response
                .headers_mut()
                .insert(llmgate::core::headers::REQUEST_ID, id);
        }
        response
    }
}

/// `error` as the bytes of a whole HTTP/1.1 response that closes the connection: the same
/// status, headers and JSON body the gateway sends, written straight to the socket.
/// `request_id` adds the request-id header (left out of answers rendered once and reused).
pub(crate) fn raw_answer(error: &HostError, request_id: bool) -> Bytes {
    let response = if request_id {
        error.to_response()
    } else {
        error.to_api().to_response()
    };
    let status = response.status();
    let body = error.to_api().to_json();
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    for (name, value) in response.headers() {
        if let Ok(value) = value.to_str() {
            let _ = write!(head, "{name}: {value}\r\n");
        }
    }
    let _ = write!(
        head,
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let mut bytes = Vec::with_capacity(head.len() + body.len());
    bytes.extend_from_slice(head.as_bytes());
    bytes.extend_from_slice(&body);
    Bytes::from(bytes)
}

/// Why Pingora could not read a request header, as the client is told. `max_header_bytes` and
/// `max_headers` name the caps the parser's own ceilings stand in for.
pub(crate) fn header_error(
    e: &pingora_core::Error,
    max_header_bytes: usize,
    max_headers: usize,
) -> HostError {
    let context = e.context.as_ref().map(|c| c.as_str()).unwrap_or_default();
    let cause = e.cause.as_ref().map(|c| c.to_string()).unwrap_or_default();
    if context.starts_with("Request header larger than") {
        return HostError::HeaderTooLarge(max_header_bytes);
    }
    if cause.contains("too many headers") {
        return HostError::TooManyHeaders(max_headers);
    }
    let reason: Cow<'static, str> = match e.etype() {
        pingora_core::ErrorType::ConnectionClosed => {
            "the connection was closed before the request header was complete".into()
        }
        // Pingora's own explanations (Content-Length, Transfer-Encoding, Host and target
        // checks) say what is wrong; a parse failure's context holds the client's bytes.
        _ if !context.is_empty() && !context.starts_with("buf:") => context.to_owned().into(),
        _ => "the request line or a header field is not valid HTTP/1.1".into(),
    };
    HostError::Malformed(reason)
}
