//! Google's errors: `{"error": {"code": 429, "message": "...", "status": "RESOURCE_EXHAUSTED",
//! "details": [...]}}` (sometimes wrapped in a one-element list).
//!
//! The HTTP status is kept (so whether another attempt may succeed follows from it), the
//! message is Google's, the `status` becomes the error's `code` and chooses its `type`:
//!
//! | Google `status` | usual HTTP status | `type` |
//! |---|---|---|
//! | `INVALID_ARGUMENT`, `FAILED_PRECONDITION`, `OUT_OF_RANGE` | 400 | `invalid_request_error` |
//! | `UNAUTHENTICATED` | 401 | `authentication_error` |
//! | `PERMISSION_DENIED` | 403 | `permission_error` |
//! | `NOT_FOUND` | 404 | `not_found_error` |
//! | `RESOURCE_EXHAUSTED` | 429 | `rate_limit_error` |
//! | `DEADLINE_EXCEEDED` | 504 | `timeout_error` |
//! | `INTERNAL`, `UNAVAILABLE`, `UNKNOWN` | 500, 503 | `api_error` |
//!
//! A bad API key is a 400 `INVALID_ARGUMENT` from Google ("API key not valid"); it stays a
//! 400, with the `ErrorInfo` reason (`API_KEY_INVALID`) as the code. A `RetryInfo` detail's
//! `retryDelay` (`"37s"`) is the `Retry-After` when no header gives one. A body that is not
//! Google's shape is read as any other provider's (see [`crate::upstream_error`]).

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, StatusCode};
use llmgate_core::{DeploymentSpec, ProviderKind};
use serde_json::Value;

use crate::error::Error;
use crate::upstream_error;

/// The error for a non-2xx answer.
pub(super) fn from_response(
    dep: &DeploymentSpec,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Error {
    let error = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
        let v = match v {
            Value::Array(mut items) if !items.is_empty() => items.swap_remove(0),
            other => other,
        };
        match v {
            Value::Object(mut o) => o.remove("error").filter(Value::is_object),
            _ => None,
        }
    });
    match error {
        Some(error) => {
            let mut e = from_value(dep.provider, dep.id.clone(), Some(status), &error);
            if let (Error::Upstream { retry_after, .. }, Some(header)) =
                (&mut e, upstream_error::retry_after(headers))
            {
                *retry_after = Some(header);
            }
            e
        }
        None => upstream_error::from_response(dep.provider, dep.id.clone(), status, headers, body),
    }
}

/// The error for Google's `error` object; without an HTTP status (a stream's error event),
/// its `code`, else 500.
pub(super) fn from_value(
    provider: ProviderKind,
    deployment: Arc<str>,
    status: Option<StatusCode>,
    error: &Value,
) -> Error {
    let google_status = error.get("status").and_then(Value::as_str);
    let status = status
        .or_else(|| {
            error
                .get("code")
                .and_then(Value::as_u64)
                .and_then(|c| u16::try_from(c).ok())
                .and_then(|c| StatusCode::from_u16(c).ok())
                .filter(|s| s.is_client_error() || s.is_server_error())
        })
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .filter(|m| !m.trim().is_empty())
        .map_or_else(
            || format!("the upstream answered {status} without a message"),
            str::to_owned,
        );
    let details = error.get("details").and_then(Value::as_array);
    let detail = |kind: &str| {
        details.into_iter().flatten().find(|d| {
            d.get("@type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with(kind))
        })
    };
    let reason = detail("google.rpc.ErrorInfo")
        .and_then(|d| d.get("reason"))
        .and_then(Value::as_str);
    let retry_after = detail("google.rpc.RetryInfo")
        .and_then(|d| d.get("retryDelay"))
        .and_then(Value::as_str)
        .and_then(duration);
    let code = match (reason, google_status) {
        (Some("API_KEY_INVALID"), _) => Some("API_KEY_INVALID"),
        (_, s) => s,
    };
    Error::Upstream {
        provider,
        deployment,
        status,
        message,
        error_type: google_status.and_then(error_type).map(Box::from),
        code: code.map(Box::from),
        param: None,
        retry_after,
    }
}

/// OpenAI's error `type` for Google's `status`.
fn error_type(status: &str) -> Option<&'static str> {
    Some(match status {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => "invalid_request_error",
        "UNAUTHENTICATED" => "authentication_error",
        "PERMISSION_DENIED" => "permission_error",
        "NOT_FOUND" => "not_found_error",
        "RESOURCE_EXHAUSTED" => "rate_limit_error",
        "DEADLINE_EXCEEDED" => "timeout_error",
        "INTERNAL" | "UNAVAILABLE" | "UNKNOWN" => "api_error",
        _ => return None,
    })
}

/// A protobuf JSON duration (`"37s"`, `"1.5s"`), capped at a day.
fn duration(s: &str) -> Option<Duration> {
    let secs: f64 = s.trim().strip_suffix('s')?.parse().ok()?;
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    Duration::try_from_secs_f64(secs.min(86_400.0)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use llmgate_core::ErrorContract;
    use serde_json::json;

    fn dep() -> DeploymentSpec {
        DeploymentSpec::new("g-0", "group", ProviderKind::Gemini, "gemini-2.0-flash")
    }

    fn err(status: u16, body: &Value, headers: &HeaderMap) -> Error {
        from_response(
            &dep(),
            StatusCode::from_u16(status).unwrap(),
            headers,
            body.to_string().as_bytes(),
        )
    }

    #[test]
    fn statuses_types_and_retry() {
        for (status, google, kind, retryable) in [
            (400, "INVALID_ARGUMENT", "invalid_request_error", false),
            (403, "PERMISSION_DENIED", "permission_error", false),
            (404, "NOT_FOUND", "not_found_error", false),
            (429, "RESOURCE_EXHAUSTED", "rate_limit_error", true),
            (500, "INTERNAL", "api_error", true),
            (503, "UNAVAILABLE", "api_error", true),
            (504, "DEADLINE_EXCEEDED", "timeout_error", true),
        ] {
            let body = json!({"error": {"code": status, "message": "m", "status": google}});
            let e = err(status, &body, &HeaderMap::new());
            assert_eq!(e.status().as_u16(), status);
            assert_eq!(e.error_type().as_str(), kind, "{google}");
            assert_eq!(e.code().as_deref(), Some(google));
            assert_eq!(e.retryable(), retryable, "{google}");
            assert_eq!(e.to_string(), "gemini (deployment g-0): m");
        }
    }

    #[test]
    fn retry_info_and_header() {
        let body = json!([{"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}]}}]);
        let e = err(429, &body, &HeaderMap::new());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(37)));
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(
            err(429, &body, &h).retry_after(),
            Some(Duration::from_secs(2))
        );
    }

    #[test]
    fn bad_key_and_other_bodies() {
        let body = json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT", "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]}});
        let e = err(400, &body, &HeaderMap::new());
        assert_eq!(e.code().as_deref(), Some("API_KEY_INVALID"));
        assert!(!e.retryable());
        let e = from_response(
            &dep(),
            StatusCode::BAD_GATEWAY,
            &HeaderMap::new(),
            b"<html>bad gateway</html>",
        );
        assert_eq!(e.status(), StatusCode::BAD_GATEWAY);
        assert!(e.to_string().contains("<html>bad gateway</html>"), "{e}");
        let e = from_value(
            ProviderKind::Gemini,
            "g-0".into(),
            None,
            &json!({"code": 503, "message": "overloaded"}),
        );
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(e.retryable());
    }
}
