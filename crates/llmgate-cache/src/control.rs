//! Per-request cache controls: LiteLLM's `cache` body field and `Cache-Control` headers.

use std::time::Duration;

use http::header::CACHE_CONTROL;
use http::HeaderMap;
use llmgate_core::ApiError;
use serde_json::Value;

/// What one request asks of the cache.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Controls {
    /// Do not answer from the cache (`no-cache`, `max-age=0`).
    pub(crate) no_cache: bool,
    /// Do not store this answer (`no-store`).
    pub(crate) no_store: bool,
    /// Store this answer for this long instead of the configured TTL (`ttl`).
    pub(crate) ttl: Option<Duration>,
    /// Accept a stored answer only up to this age (`s-maxage`, `max-age`).
    pub(crate) max_age: Option<Duration>,
    /// Keep this request's entries under this namespace (`namespace`).
    pub(crate) namespace: Option<String>,
    /// Opt in when the cache is `default_off` (`use-cache: true`).
    pub(crate) use_cache: bool,
}

impl Controls {
    /// Reads the `cache` body field (already taken out of the body by the parser) and the
    /// `Cache-Control` request headers. A `cache` field of the wrong shape is a 400.
    pub(crate) fn read(field: Option<&Value>, headers: &HeaderMap) -> Result<Self, ApiError> {
        let mut c = Controls::default();
        if let Some(field) = field {
            c.body_field(field)?;
        }
        for value in headers.get_all(CACHE_CONTROL) {
            let Ok(value) = value.to_str() else { continue };
            c.header(value);
        }
        Ok(c)
    }

    fn body_field(&mut self, field: &Value) -> Result<(), ApiError> {
        let Value::Object(m) = field else {
            return Err(invalid("cache", "an object such as {\"no-cache\": true}"));
        };
        for (k, v) in m {
            match k.as_str() {
                "no-cache" => self.no_cache |= flag(v, "cache.no-cache")?,
                "no-store" => self.no_store |= flag(v, "cache.no-store")?,
                "use-cache" => self.use_cache |= flag(v, "cache.use-cache")?,
                "ttl" => self.ttl = seconds(v, "cache.ttl")?,
                "s-maxage" | "s-max-age" => {
                    self.max_age = min(self.max_age, seconds(v, "cache.s-maxage")?)
                }
                "namespace" => {
                    self.namespace = match v {
                        Value::String(s) if !s.is_empty() => Some(s.clone()),
                        Value::Null => None,
                        _ => return Err(invalid("cache.namespace", "a non-empty string")),
                    }
                }
                // LiteLLM ignores other keys; so do we.
                _ => {}
            }
        }
        Ok(())
    }

    fn header(&mut self, value: &str) {
        for directive in value.split(',') {
            let directive = directive.trim();
            let (name, arg) = match directive.split_once('=') {
                Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
                None => (directive, None),
            };
            if name.eq_ignore_ascii_case("no-cache") {
                self.no_cache = true;
            } else if name.eq_ignore_ascii_case("no-store") {
                self.no_store = true;
            } else if name.eq_ignore_ascii_case("max-age") || name.eq_ignore_ascii_case("s-maxage")
            {
                if let Some(secs) = arg.and_then(|a| a.parse::<u64>().ok()) {
                    if secs == 0 {
                        self.no_cache = true;
                    }
                    self.max_age = min(self.max_age, Some(Duration::from_secs(secs)));
                }
            }
        }
    }
}

fn min(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn flag(v: &Value, param: &'static str) -> Result<bool, ApiError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Null => Ok(false),
        _ => Err(invalid(param, "a boolean")),
    }
}

fn seconds(v: &Value, param: &'static str) -> Result<Option<Duration>, ApiError> {
    if v.is_null() {
        return Ok(None);
    }
    v.as_f64()
        .and_then(llmgate_core::seconds::seconds)
        .map(Some)
        .ok_or_else(|| {
            invalid(
                param,
                &format!(
                    "a non-negative number of seconds, at most {}",
                    llmgate_core::seconds::MAX_SECONDS_TEXT
                ),
            )
        })
}

fn invalid(param: &'static str, expected: &str) -> ApiError {
    ApiError::bad_request(format!("invalid `{param}`: expected {expected}")).with_param(param)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(field: Value, header: Option<&str>) -> Result<Controls, ApiError> {
        let mut h = HeaderMap::new();
        if let Some(v) = header {
            h.insert(CACHE_CONTROL, v.parse().unwrap());
        }
        Controls::read((!field.is_null()).then_some(&field), &h)
    }

    #[test]
    fn body_field_as_litellm_names_it() {
        let c = read(
            json!({"no-cache": true, "no-store": false, "ttl": 1.5, "s-maxage": 10,
                   "namespace": "team", "use-cache": true, "other": 1}),
            None,
        )
        .unwrap();
        assert_eq!(
            c,
            Controls {
                no_cache: true,
                no_store: false,
                ttl: Some(Duration::from_millis(1500)),
                max_age: Some(Duration::from_secs(10)),
                namespace: Some("team".into()),
                use_cache: true,
            }
        );
        assert_eq!(read(Value::Null, None).unwrap(), Controls::default());
    }

    #[test]
    fn cache_control_headers() {
        let c = read(Value::Null, Some("No-Store, max-age=30")).unwrap();
        assert!(c.no_store && !c.no_cache);
        assert_eq!(c.max_age, Some(Duration::from_secs(30)));
        assert!(read(Value::Null, Some("no-cache")).unwrap().no_cache);
        assert!(read(Value::Null, Some("max-age=0")).unwrap().no_cache);
        // The stricter of the body's and the header's ages wins.
        let c = read(json!({"s-maxage": 5}), Some("s-maxage=60")).unwrap();
        assert_eq!(c.max_age, Some(Duration::from_secs(5)));
    }

    #[test]
    fn wrong_shapes_are_400s_naming_the_field() {
        for (field, param) in [
            (json!("no-cache"), "cache"),
            (json!({"no-cache": "yes"}), "cache.no-cache"),
            (json!({"ttl": -1}), "cache.ttl"),
            (json!({"ttl": 1e300}), "cache.ttl"),
            (json!({"ttl": 1e18}), "cache.ttl"),
            (json!({"s-maxage": 1e300}), "cache.s-maxage"),
            (json!({"namespace": 3}), "cache.namespace"),
        ] {
            let e = read(field, None).unwrap_err();
            assert_eq!(e.to_response().status(), 400);
            assert!(e.message().contains(param), "{}", e.message());
        }
    }
}
