//! Ollama's failures: `{"error": "<text>"}` with the status that says what went wrong.
//!
//! | status | when | OpenAI `type` / `code` |
//! |---|---|---|
//! | 400 | a bad request (unknown option type, invalid format, context too long) | `invalid_request_error` |
//! | 404 | `model "x" not found, try pulling it first` | `not_found_error` / `model_not_found` |
//! | 401, 403 | Ollama behind a proxy or its cloud, without a valid key | `authentication_error`, `permission_error` |
//! | 429 | rate limited (Ollama's cloud) | `rate_limit_error` / `rate_limit_exceeded` |
//! | 500 | the model runner failed | `api_error` |
//! | 503 | `server busy, please try again. maximum pending requests exceeded` | `api_error` / `service_unavailable` |
//!
//! The message is Ollama's own; retryable or not follows from the status (429 and 5xx are).

use std::sync::Arc;

use http::{HeaderMap, StatusCode};
use llmgate_core::ProviderKind;

use crate::error::Error;
use crate::upstream_error;

/// The error for an Ollama answer with `status` and `body`.
pub(super) fn from_response(
    provider: ProviderKind,
    deployment: Arc<str>,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Error {
    let mut e = upstream_error::from_response(provider, deployment, status, headers, body);
    if let Error::Upstream { code, message, .. } = &mut e {
        if code.is_none() {
            *code = match status.as_u16() {
                404 if message.contains("not found") => Some("model_not_found".into()),
                429 => Some("rate_limit_exceeded".into()),
                503 => Some("service_unavailable".into()),
                _ => None,
            };
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmgate_core::{ErrorContract, ErrorType};

    fn err(status: u16, body: &str) -> llmgate_core::ApiError {
        from_response(
            ProviderKind::Ollama,
            "o-0".into(),
            StatusCode::from_u16(status).unwrap(),
            &HeaderMap::new(),
            body.as_bytes(),
        )
        .into_api()
    }

    #[test]
    fn statuses_and_messages() {
        let e = err(
            404,
            r#"{"error":"model \"llama9\" not found, try pulling it first"}"#,
        );
        assert_eq!(e.status(), 404);
        assert!(!e.retryable());
        assert_eq!(e.error_type(), ErrorType::NOT_FOUND);
        assert_eq!(e.code().as_deref(), Some("model_not_found"));
        assert_eq!(
            e.message(),
            "ollama (deployment o-0): model \"llama9\" not found, try pulling it first"
        );

        let e = err(400, r#"{"error":"invalid options: num_ctx"}"#);
        assert_eq!(
            (e.status().as_u16(), e.retryable(), e.code()),
            (400, false, None)
        );
        assert_eq!(e.error_type(), ErrorType::INVALID_REQUEST);

        let e = err(
            503,
            r#"{"error":"server busy, please try again.  maximum pending requests exceeded"}"#,
        );
        assert!(e.retryable());
        assert_eq!(e.code().as_deref(), Some("service_unavailable"));

        let e = err(500, "llama runner process has terminated");
        assert!(e.retryable());
        assert!(e.message().ends_with("llama runner process has terminated"));
    }
}
