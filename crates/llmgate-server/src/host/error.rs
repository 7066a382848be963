//! Why Pingora could not read a request header, as a [`HostError`].

use std::borrow::Cow;

use llmgate::HostError;

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
