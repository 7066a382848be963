//! Bedrock's errors as [`Error::Upstream`].
//!
//! An error answer is `{"message": "..."}` with the exception's name in the `x-amzn-errortype`
//! header (`ValidationException:http://internal.amazon.com/...`), or in the body's `__type`.
//! Stream exceptions are event-stream messages with an `:exception-type`
//! (`throttlingException`, ...). The name decides the status and OpenAI-style code:
//!
//! | exception | status | code |
//! |---|---|---|
//! | `ThrottlingException` | 429 | `rate_limit_exceeded` |
//! | `AccessDeniedException` | 403 | `permission_denied` |
//! | `UnrecognizedClientException`, `InvalidSignatureException`, `ExpiredTokenException`, ... | 403 | `invalid_api_key` |
//! | `ValidationException` | 400 | (`context_length_exceeded` when the input is too long) |
//! | `ResourceNotFoundException` | 404 | `model_not_found` |
//! | `ModelTimeoutException` | 408 | `timeout` |
//! | `ServiceUnavailableException` | 503 | `service_unavailable` |
//! | `ModelNotReadyException` | 503 | `model_not_ready` |
//! | `InternalServerException` | 500 | |
//! | `ModelStreamErrorException` (in a stream) | 502 | `model_stream_error` |
//! | anything else | the HTTP status (502 in a stream) | |
//!
//! Whether another attempt may succeed follows from the status (429 and 5xx are retryable).

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use llmgate_core::{DeploymentSpec, ProviderKind};
use serde_json::Value;

use crate::error::Error;

/// Status and code for an exception name (any case, without its namespace).
fn classify(name: &str, message: &str) -> Option<(StatusCode, Option<&'static str>)> {
    let found = match name.to_ascii_lowercase().as_str() {
        "throttlingexception" => (StatusCode::TOO_MANY_REQUESTS, Some("rate_limit_exceeded")),
        "accessdeniedexception" => (StatusCode::FORBIDDEN, Some("permission_denied")),
        "unrecognizedclientexception"
        | "invalidsignatureexception"
        | "incompletesignatureexception"
        | "missingauthenticationtokenexception"
        | "expiredtokenexception" => (StatusCode::FORBIDDEN, Some("invalid_api_key")),
        "validationexception" => {
            let m = message.to_ascii_lowercase();
            let too_long = m.contains("too long")
                || m.contains("context window")
                || m.contains("context length");
            (
                StatusCode::BAD_REQUEST,
                too_long.then_some("context_length_exceeded"),
            )
        }
        "resourcenotfoundexception" => (StatusCode::NOT_FOUND, Some("model_not_found")),
        "modeltimeoutexception" => (StatusCode::REQUEST_TIMEOUT, Some("timeout")),
        "serviceunavailableexception" => {
            (StatusCode::SERVICE_UNAVAILABLE, Some("service_unavailable"))
        }
        "modelnotreadyexception" => (StatusCode::SERVICE_UNAVAILABLE, Some("model_not_ready")),
        "internalserverexception" => (StatusCode::INTERNAL_SERVER_ERROR, None),
        "modelstreamerrorexception" => (StatusCode::BAD_GATEWAY, Some("model_stream_error")),
        _ => return None,
    };
    Some(found)
}

/// `Foo:http://...` or `com.amazon#Foo` as `Foo`.
fn short_name(raw: &str) -> &str {
    let name = raw.split(':').next().unwrap_or(raw);
    name.rsplit('#').next().unwrap_or(name).trim()
}

/// The error for a non-2xx answer.
pub(crate) fn from_response(
    dep: &DeploymentSpec,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Error {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let name = headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(short_name)
        .or_else(|| {
            json.as_ref()
                .and_then(|j| j.get("__type"))
                .and_then(Value::as_str)
                .map(short_name)
        })
        .filter(|n| !n.is_empty());
    let base =
        crate::upstream_error::from_response(dep.provider, dep.id.clone(), status, headers, body);
    let Error::Upstream {
        mut message,
        retry_after,
        ..
    } = base
    else {
        return base;
    };
    // `{"Message": ...}` (capitalised) is what some AWS front doors send.
    if let Some(m) = json
        .as_ref()
        .filter(|j| j.get("message").is_none())
        .and_then(|j| j.get("Message"))
        .and_then(Value::as_str)
    {
        message = m.to_owned();
    }
    let (status, code) = name
        .and_then(|n| classify(n, &message))
        .unwrap_or((status, None));
    Error::Upstream {
        provider: dep.provider,
        deployment: dep.id.clone(),
        status,
        message,
        error_type: None,
        code: code.map(Box::from),
        param: None,
        retry_after,
    }
}

/// The error for an exception (or error) message in a stream.
pub(crate) fn from_stream(
    provider: ProviderKind,
    deployment: Arc<str>,
    exception_type: &str,
    payload: &Bytes,
) -> Error {
    let json: Option<Value> = serde_json::from_slice(payload).ok();
    let message = json
        .as_ref()
        .and_then(|j| j.get("message").or_else(|| j.get("Message")))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(payload).into_owned());
    let message = if message.trim().is_empty() {
        format!("the stream failed with {exception_type}")
    } else {
        message
    };
    let (status, code) =
        classify(short_name(exception_type), &message).unwrap_or((StatusCode::BAD_GATEWAY, None));
    Error::Upstream {
        provider,
        deployment,
        status,
        message,
        error_type: None,
        code: code.map(Box::from),
        param: None,
        retry_after: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use llmgate_core::ErrorContract;

    fn answer(status: u16, name: &str, body: &str) -> Error {
        let dep = DeploymentSpec::new("b-0", "m", ProviderKind::Bedrock, "x");
        let mut h = HeaderMap::new();
        if !name.is_empty() {
            h.insert("x-amzn-errortype", HeaderValue::from_str(name).unwrap());
        }
        from_response(
            &dep,
            StatusCode::from_u16(status).unwrap(),
            &h,
            body.as_bytes(),
        )
    }

    #[test]
    fn statuses_and_codes() {
        let e = answer(
            429,
            "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/",
            r#"{"message":"Too many requests, please wait before trying again."}"#,
        );
        assert_eq!(e.status(), 429);
        assert!(e.retryable());
        assert_eq!(e.code().as_deref(), Some("rate_limit_exceeded"));
        assert_eq!(
            e.to_string(),
            "bedrock (deployment b-0): Too many requests, please wait before trying again."
        );

        let e = answer(
            400,
            "ValidationException",
            r#"{"message":"Input is too long for requested model."}"#,
        );
        assert_eq!(e.status(), 400);
        assert!(!e.retryable());
        assert_eq!(e.code().as_deref(), Some("context_length_exceeded"));

        let e = answer(
            403,
            "",
            r#"{"__type":"com.amazon.coral.service#UnrecognizedClientException","Message":"The security token included in the request is invalid."}"#,
        );
        assert_eq!(e.status(), 403);
        assert_eq!(e.code().as_deref(), Some("invalid_api_key"));
        assert!(e
            .to_string()
            .ends_with("The security token included in the request is invalid."));

        for (name, status) in [
            ("AccessDeniedException", 403),
            ("ResourceNotFoundException", 404),
            ("ModelTimeoutException", 408),
            ("ServiceUnavailableException", 503),
            ("ModelNotReadyException", 503),
            ("InternalServerException", 500),
        ] {
            let e = answer(400, name, r#"{"message":"x"}"#);
            assert_eq!(e.status(), status, "{name}");
        }
        let e = answer(424, "ModelErrorException", r#"{"message":"x"}"#);
        assert_eq!(e.status(), 424);
        assert!(!e.retryable());
    }

    #[test]
    fn stream_exceptions() {
        let e = |t: &str| {
            from_stream(
                ProviderKind::Bedrock,
                "b-0".into(),
                t,
                &Bytes::from_static(br#"{"message":"m"}"#),
            )
        };
        assert_eq!(e("throttlingException").status(), 429);
        assert_eq!(e("validationException").status(), 400);
        assert_eq!(e("internalServerException").status(), 500);
        assert_eq!(e("modelStreamErrorException").status(), 502);
        assert_eq!(e("serviceUnavailableException").status(), 503);
        assert_eq!(e("somethingNew").status(), 502);
        assert!(e("modelStreamErrorException").retryable());
    }
}
