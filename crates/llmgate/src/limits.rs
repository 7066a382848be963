//! [`HttpLimits`]: what a host bounds before the gateway sees a request (deadlines for the
//! request header and body, header size and count, open connections), from `general_settings`.

use std::time::Duration;

use llmgate_config::GeneralSettings;

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

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}
