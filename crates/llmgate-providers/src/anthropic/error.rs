//! Anthropic's errors: `{"type": "error", "error": {"type": "...", "message": "..."}}`, with
//! statuses 400, 401, 403, 404, 413, 429, 500 and 529 (`overloaded_error`), and the same
//! object in a stream's `error` event (which has no status of its own).
//!
//! The client sees the status, the provider's message, OpenAI's `type` for the status and
//! Anthropic's error type as the `code` (`overloaded_error`, `rate_limit_error`, ...). The
//! retry verdict follows the status: 429, 5xx and 529 are retryable.

use std::sync::Arc;

use http::{HeaderMap, StatusCode};
use llmgate_core::wire::anthropic::{status_for_error_type, ErrorBody, ErrorObject};
use llmgate_core::{DeploymentSpec, ErrorType, ProviderKind};

use crate::error::Error;
use crate::upstream_error;

/// The error for a non-2xx answer.
pub(crate) fn from_response(
    dep: &DeploymentSpec,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Error {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(b) if !b.error.message.trim().is_empty() => upstream(
            dep.provider,
            dep.id.clone(),
            status,
            b.error,
            upstream_error::retry_after(headers),
        ),
        // Not Anthropic's shape (a proxy in between, an HTML page): read it the common way.
        _ => upstream_error::from_response(dep.provider, dep.id.clone(), status, headers, body),
    }
}

/// The error for a stream's `error` event: the status its type implies (an unknown type is a
/// 500).
pub(crate) fn from_event(
    provider: ProviderKind,
    deployment: Arc<str>,
    error: ErrorObject,
) -> Error {
    let status = status_for_error_type(&error.error_type)
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    upstream(provider, deployment, status, error, None)
}

fn upstream(
    provider: ProviderKind,
    deployment: Arc<str>,
    status: StatusCode,
    error: ErrorObject,
    retry_after: Option<std::time::Duration>,
) -> Error {
    let code = (!error.error_type.is_empty()).then(|| Box::from(error.error_type.as_str()));
    Error::Upstream {
        provider,
        deployment,
        status,
        message: error.message,
        error_type: Some(Box::from(ErrorType::for_status(status).as_str())),
        code,
        param: None,
        retry_after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use llmgate_core::{ApiError, ErrorContract};

    fn dep() -> DeploymentSpec {
        DeploymentSpec::new("claude-0", "g", ProviderKind::Anthropic, "c")
    }

    fn err(status: u16, body: &str) -> ApiError {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("3"));
        from_response(
            &dep(),
            StatusCode::from_u16(status).unwrap(),
            &h,
            body.as_bytes(),
        )
        .into_api()
    }

    #[test]
    fn statuses_types_codes_and_retries() {
        for (status, kind, retryable, openai_type) in [
            (400, "invalid_request_error", false, "invalid_request_error"),
            (401, "authentication_error", false, "authentication_error"),
            (403, "permission_error", false, "permission_error"),
            (404, "not_found_error", false, "not_found_error"),
            (413, "request_too_large", false, "invalid_request_error"),
            (429, "rate_limit_error", true, "rate_limit_error"),
            (500, "api_error", true, "api_error"),
            (529, "overloaded_error", true, "api_error"),
        ] {
            let body = format!(
                r#"{{"type":"error","error":{{"type":"{kind}","message":"m {status}"}},"request_id":"req_1"}}"#
            );
            let e = err(status, &body);
            assert_eq!(e.status().as_u16(), status);
            assert_eq!(e.retryable(), retryable, "{status}");
            assert_eq!(e.code().as_deref(), Some(kind));
            assert_eq!(e.error_type().as_str(), openai_type);
            assert_eq!(
                e.message(),
                format!("anthropic (deployment claude-0): m {status}")
            );
            assert_eq!(e.retry_after(), Some(std::time::Duration::from_secs(3)));
        }
        let e = err(502, "<html>bad gateway</html>");
        assert_eq!(e.status(), 502);
        assert!(e.message().contains("<html>"), "{}", e.message());
    }

    #[test]
    fn stream_error_events() {
        let e = from_event(
            ProviderKind::Anthropic,
            "claude-0".into(),
            ErrorObject {
                error_type: "overloaded_error".into(),
                message: "Overloaded".into(),
            },
        )
        .into_api();
        assert_eq!(e.status().as_u16(), 529);
        assert!(e.retryable());
        let e = from_event(
            ProviderKind::Anthropic,
            "claude-0".into(),
            ErrorObject {
                error_type: "new_kind".into(),
                message: "?".into(),
            },
        )
        .into_api();
        assert_eq!(e.status(), 500);
    }
}
