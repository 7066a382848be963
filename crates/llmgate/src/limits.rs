//! [`HttpLimits`]: what a host bounds before the gateway sees a request (deadlines for the
//! request header and body, header size and count, open connections), from `general_settings`;
//! [`HostError`]: the answer when a client passes one, and [`raw_answer`] to write it straight
//! to a socket where the HTTP server cannot (a header it failed to parse, a connection refused
//! at the cap).

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;

use llmgate_config::GeneralSettings;
use llmgate_core::{ApiError, ErrorContract, ErrorType, Origin};

/// The bounds a host puts on clients, read from `general_settings` (llmgate's own keys, each
/// with a default; see `docs/configuration.md`). The `llmgate` binary's Pingora host enforces
/// them all; [`crate::serve`] enforces those hyper offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpLimits {
    /// `llmgate_request_header_timeout`: the longest a client may take to send a whole request
    /// header, from a new connection's accept or from the first byte of a kept-alive
    /// connection's next request. Past it: a 408 when anything was received, else a close.
    pub request_header_timeout: Duration,
    /// `llmgate_request_body_timeout`: the longest a client may take to send a whole request
    /// body, from the end of its header. Past it: a 408.
    pub request_body_timeout: Duration,
    /// `llmgate_max_header_bytes`: the largest request header (request line and fields).
    /// Past it: a 431.
    pub max_header_bytes: usize,
    /// `llmgate_max_headers`: the most header fields in one request. Past it: a 431.
    pub max_headers: usize,
    /// `llmgate_max_connections`: client connections open at once. Past it: a 503 with
    /// `Retry-After`, and the connection is closed.
    pub max_connections: usize,
}

impl HttpLimits {
    /// The limits `general` configures (defaults for what it leaves out).
    pub fn from_settings(general: &GeneralSettings) -> Self {
        Self {
            request_header_timeout: general.request_header_timeout(),
            request_body_timeout: general.request_body_timeout(),
            max_header_bytes: to_usize(general.max_header_bytes()),
            max_headers: to_usize(general.max_headers()),
            max_connections: to_usize(general.max_connections()),
        }
    }
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self::from_settings(&GeneralSettings::default())
    }
}

/// The count of open client connections, shared by a host's accept loops.
#[derive(Debug, Clone, Default)]
pub struct OpenConnections(Arc<AtomicUsize>);

impl OpenConnections {
    /// Count one more connection, unless `max` are open already; it counts until the returned
    /// guard drops.
    pub fn try_open(&self, max: usize) -> Option<OpenConnection> {
        let before = self.0.fetch_add(1, Ordering::AcqRel);
        if before >= max {
            self.0.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(OpenConnection(self.0.clone()))
    }

    /// Connections open now.
    pub fn count(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

/// One open connection, counted while it lives.
#[derive(Debug)]
pub struct OpenConnection(Arc<AtomicUsize>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// A request a host refuses under its [`HttpLimits`] (or because it is not HTTP it can parse).
/// Each is the client's doing (or the gateway's load), answered in OpenAI's error shape, and the
/// connection is closed after it. `docs/errors.md` lists them.
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
    pub fn to_api(&self) -> ApiError {
        ApiError::from_contract(self)
    }

    /// The response with a request id, like every other response of the gateway.
    pub fn to_response(&self) -> http::Response<llmgate_core::BoxBody> {
        let mut response = self.to_api().to_response();
        if let Some(id) = crate::request_id::header_value() {
            response
                .headers_mut()
                .insert(llmgate_core::headers::REQUEST_ID, id);
        }
        response
    }
}

/// `error` as the bytes of a whole HTTP/1.1 response that closes the connection: the same
/// status, headers and JSON body the gateway sends, written straight to the socket.
/// `request_id` adds the request-id header (left out of answers rendered once and reused).
pub fn raw_answer(error: &HostError, request_id: bool) -> Bytes {
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
