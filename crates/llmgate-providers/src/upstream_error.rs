//! Reading a provider's failure: its error body, its `Retry-After`, a transport error.
//!
//! Providers that speak OpenAI's API mostly send `{"error": {"message", "type", "param",
//! "code"}}`, but not all of them, and not always: OpenRouter sends a numeric `code` and the
//! real provider's message under `error.metadata.raw`, Mistral puts `message` (sometimes an
//! object) at the top level, FastAPI-based servers (vLLM, TGI) send `{"detail": ...}`, some send
//! `{"error": "text"}` or a list. Whatever is found becomes the message; failing all, the raw
//! body (truncated).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::header::RETRY_AFTER;
use http::{HeaderMap, StatusCode};
use llmgate_core::ProviderKind;
use serde_json::Value;

use crate::error::{chain, Error};

/// Bytes of an error body read at most (error bodies are small; a huge one is truncated).
pub(crate) const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// Characters of a raw (non-JSON) error body kept in the message.
const RAW_MESSAGE_LIMIT: usize = 512;

/// The longest `Retry-After` honoured; longer values (or nonsense) are capped.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(24 * 60 * 60);

/// The error for a non-2xx upstream answer.
pub(crate) fn from_response(
    provider: ProviderKind,
    deployment: Arc<str>,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Error {
    let found = parse_body(body);
    let message = match found.message {
        Some(m) if !m.trim().is_empty() => m,
        _ => raw_message(status, body),
    };
    Error::Upstream {
        provider,
        deployment,
        status,
        message,
        error_type: found.error_type,
        code: found.code,
        param: found.param,
        retry_after: retry_after(headers),
    }
}

/// The error for a request that got no answer (refused, reset, DNS, TLS).
pub(crate) fn transport(
    provider: ProviderKind,
    deployment: Arc<str>,
    e: &hyper_util::client::legacy::Error,
) -> Error {
    Error::Unreachable {
        provider,
        deployment,
        cause: chain(e),
    }
}

#[derive(Debug, Default, PartialEq)]
struct Found {
    message: Option<String>,
    error_type: Option<Box<str>>,
    code: Option<Box<str>>,
    param: Option<Box<str>>,
}

fn parse_body(body: &[u8]) -> Found {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return Found::default();
    };
    let v = match v {
        // Google-style `[{"error": {...}}]`.
        Value::Array(items) => items.into_iter().next().unwrap_or(Value::Null),
        other => other,
    };
    let Value::Object(mut top) = v else {
        return Found::default();
    };
    match top.remove("error") {
        Some(Value::Object(mut e)) => {
            let mut message = e.remove("message").and_then(text);
            // OpenRouter: "Provider returned error", the provider's own words in metadata.raw.
            let raw = e
                .get("metadata")
                .and_then(|m| m.get("raw"))
                .and_then(|r| text(r.clone()));
            if let (Some(m), Some(raw)) = (&mut message, raw) {
                m.push_str(": ");
                m.push_str(&truncate(&raw, RAW_MESSAGE_LIMIT));
            }
            Found {
                message,
                error_type: e.remove("type").and_then(text).map(Box::from),
                code: e.remove("code").and_then(text).map(Box::from),
                param: e.remove("param").and_then(text).map(Box::from),
            }
        }
        Some(Value::String(s)) => Found {
            message: Some(s),
            error_type: top.remove("type").and_then(text).map(Box::from),
            code: top.remove("code").and_then(text).map(Box::from),
            param: None,
        },
        _ => Found {
            message: top
                .remove("message")
                .or_else(|| top.remove("detail"))
                .and_then(text),
            error_type: top.remove("type").and_then(text).map(Box::from),
            code: top.remove("code").and_then(text).map(Box::from),
            param: top.remove("param").and_then(text).map(Box::from),
        },
    }
}

/// A JSON value as message text: strings as they are, numbers and objects as compact JSON.
fn text(v: Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

fn raw_message(status: StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        format!("the upstream answered {status} with an empty body")
    } else {
        truncate(text, RAW_MESSAGE_LIMIT)
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// `retry-after-ms` (OpenAI, Azure) or `Retry-After` (seconds, or an HTTP date).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let header = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        if let Some(d) = seconds(ms / 1000.0) {
            return Some(d);
        }
    }
    let v = header(RETRY_AFTER.as_str())?;
    if let Ok(secs) = v.parse::<f64>() {
        return seconds(secs);
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
            .min(RETRY_AFTER_CAP),
    )
}

fn seconds(secs: f64) -> Option<Duration> {
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    Duration::try_from_secs_f64(secs.min(RETRY_AFTER_CAP.as_secs_f64())).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use serde_json::json;

    fn found(v: Value) -> Found {
        parse_body(v.to_string().as_bytes())
    }

    #[test]
    fn openai_shape() {
        let f = found(
            json!({"error": {"message": "Rate limit reached", "type": "requests",
            "param": null, "code": "rate_limit_exceeded"}}),
        );
        assert_eq!(
            f,
            Found {
                message: Some("Rate limit reached".into()),
                error_type: Some("requests".into()),
                code: Some("rate_limit_exceeded".into()),
                param: None,
            }
        );
    }

    #[test]
    fn other_shapes() {
        let f = found(
            json!({"error": {"message": "Provider returned error", "code": 429,
            "metadata": {"raw": "upstream is busy", "provider_name": "X"}}}),
        );
        assert_eq!(
            f.message.as_deref(),
            Some("Provider returned error: upstream is busy")
        );
        assert_eq!(f.code.as_deref(), Some("429"));

        let f = found(
            json!({"object": "error", "message": {"detail": [{"type": "extra_forbidden"}]},
            "type": "invalid_request_error", "param": null, "code": null}),
        );
        assert_eq!(
            f.message.as_deref(),
            Some(r#"{"detail":[{"type":"extra_forbidden"}]}"#)
        );
        assert_eq!(f.error_type.as_deref(), Some("invalid_request_error"));

        assert_eq!(
            found(json!({"detail": "Not Found"})).message.as_deref(),
            Some("Not Found")
        );
        assert_eq!(
            found(json!({"error": "model not loaded"}))
                .message
                .as_deref(),
            Some("model not loaded")
        );
        assert_eq!(
            found(json!([{"error": {"message": "quota", "code": 429}}]))
                .message
                .as_deref(),
            Some("quota")
        );
    }

    #[test]
    fn raw_bodies_are_truncated() {
        let e = from_response(
            ProviderKind::OpenAi,
            "d".into(),
            StatusCode::BAD_GATEWAY,
            &HeaderMap::new(),
            "x".repeat(2000).as_bytes(),
        );
        let Error::Upstream { message, .. } = e else {
            panic!()
        };
        assert!(message.len() < 600 && message.ends_with('…'), "{message}");
        let e = from_response(
            ProviderKind::OpenAi,
            "d".into(),
            StatusCode::SERVICE_UNAVAILABLE,
            &HeaderMap::new(),
            b"",
        );
        assert!(
            e.to_string()
                .contains("503 Service Unavailable with an empty body"),
            "{e}"
        );
    }

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert("retry-after-ms", HeaderValue::from_static("1500"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(1500)));
        h.remove("retry-after-ms");
        let later = SystemTime::now() + Duration::from_secs(120);
        let date = httpdate::fmt_http_date(later);
        h.insert("retry-after", HeaderValue::from_str(&date).unwrap());
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(100) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        h.insert("retry-after", HeaderValue::from_static("-3"));
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", HeaderValue::from_static("1e300"));
        assert_eq!(retry_after(&h), Some(RETRY_AFTER_CAP));
    }
}
