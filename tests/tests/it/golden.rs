//! Golden translation cases: `tests/golden/<provider>/<case>.json`, one file per mapping, so a
//! change in any translation shows up in review as a changed file.
//!
//! Each case configures one deployment (`model_name: m`) with the case's `litellm_params` and
//! `api_base` pointed at a mock that answers with the case's upstream response; it sends the
//! case's client request through the real gateway and checks what the upstream received and
//! what the client got. The string `"<any>"` in an expected value matches anything.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use llmgate_tests::{Behaviour, MockProvider, TestGateway};
use serde_json::Value;

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("golden");
    let mut out = Vec::new();
    let Ok(providers) = std::fs::read_dir(&root) else {
        return out;
    };
    for dir in providers.flatten() {
        if let Ok(files) = std::fs::read_dir(dir.path()) {
            out.extend(
                files
                    .flatten()
                    .map(|f| f.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "json")),
            );
        }
    }
    out.sort();
    out
}

/// `expected` matches `got`: equal, or `"<any>"`, recursively; objects must have the same keys.
fn matches(expected: &Value, got: &Value, at: &str, errors: &mut Vec<String>) {
    match (expected, got) {
        (Value::String(s), _) if s == "<any>" => {}
        (Value::Object(e), Value::Object(g)) => {
            for (k, ev) in e {
                match g.get(k) {
                    Some(gv) => matches(ev, gv, &format!("{at}.{k}"), errors),
                    None => errors.push(format!("{at}.{k}: missing (expected {ev})")),
                }
            }
            for k in g.keys().filter(|k| !e.contains_key(*k)) {
                errors.push(format!("{at}.{k}: unexpected {}", g[k]));
            }
        }
        (Value::Array(e), Value::Array(g)) if e.len() == g.len() => {
            for (i, (ev, gv)) in e.iter().zip(g).enumerate() {
                matches(ev, gv, &format!("{at}[{i}]"), errors);
            }
        }
        _ if expected == got => {}
        _ => errors.push(format!("{at}: expected {expected}, got {got}")),
    }
}

fn upstream_behaviour(respond: &Value) -> Behaviour {
    let status = StatusCode::from_u16(respond["status"].as_u64().unwrap_or(200) as u16).unwrap();
    let mut headers = HeaderMap::new();
    if let Some(h) = respond["headers"].as_object() {
        for (k, v) in h {
            headers.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v.as_str().unwrap()).unwrap(),
            );
        }
    }
    let body = if let Some(j) = respond.get("json") {
        bytes::Bytes::from(j.to_string())
    } else if let Some(t) = respond["text"].as_str() {
        bytes::Bytes::from(t.to_owned())
    } else if let Some(b) = respond["base64"].as_str() {
        bytes::Bytes::from(base64_decode(b))
    } else {
        bytes::Bytes::new()
    };
    Behaviour::Status {
        status,
        body,
        headers,
    }
}

/// Standard base64 (RFC 4648, padded), for binary upstream bodies (AWS event streams).
fn base64_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
        let v = ALPHABET.iter().position(|a| *a == c).expect("base64") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

fn config(case: &Value, api_base: &str) -> String {
    let mut params = case["litellm_params"].clone();
    params["api_base"] = Value::String(api_base.to_owned());
    let entry = serde_json::json!([{"model_name": "m", "litellm_params": params}]);
    // JSON is YAML.
    format!("model_list: {entry}\n")
}

async fn run(path: &Path) -> Vec<String> {
    let case: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mock = MockProvider::start().await;
    mock.push(upstream_behaviour(&case["upstream"]["respond"]));
    let gw = TestGateway::start(&config(&case, &mock.base_url())).await;
    let req = &case["request"];
    let path_str = req["path"].as_str().unwrap_or("/v1/chat/completions");
    let extra_headers: Vec<(String, String)> = req["headers"]
        .as_object()
        .map(|h| {
            h.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let headers: Vec<(&str, &str)> = extra_headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let res = gw
        .send(Method::POST, path_str, req["body"].to_string(), &headers)
        .await;

    let mut errors = Vec::new();
    let expect = &case["upstream"]["expect"];
    match mock.last_request() {
        None if expect.is_null() => {}
        None => errors.push("the upstream was not called".to_owned()),
        Some(up) => {
            if let Some(m) = expect["method"].as_str() {
                if up.method.as_str() != m {
                    errors.push(format!("upstream method: expected {m}, got {}", up.method));
                }
            }
            if let Some(p) = expect["path_and_query"].as_str() {
                if up.path_and_query != p {
                    errors.push(format!(
                        "upstream path: expected {p}, got {}",
                        up.path_and_query
                    ));
                }
            }
            if let Some(h) = expect["headers"].as_object() {
                for (k, v) in h {
                    let got = up
                        .header(k)
                        .map(|s| Value::String(s.to_owned()))
                        .unwrap_or(Value::Null);
                    matches(v, &got, &format!("upstream header {k}"), &mut errors);
                }
            }
            if let Some(b) = expect.get("body") {
                matches(b, &up.json, "upstream body", &mut errors);
            }
        }
    }

    let want = &case["response"];
    let status = want["status"].as_u64().unwrap_or(200);
    if u64::from(res.status.as_u16()) != status {
        errors.push(format!(
            "client status: expected {status}, got {} ({})",
            res.status,
            res.text()
        ));
        return errors;
    }
    if let Some(j) = want.get("json") {
        match serde_json::from_slice::<Value>(&res.body) {
            Ok(got) => matches(j, &got, "client body", &mut errors),
            Err(e) => errors.push(format!("client body is not JSON ({e}): {}", res.text())),
        }
    }
    if let Some(events) = want["events"].as_array() {
        let text = res.text();
        let got: Vec<Value> = text
            .split("\n\n")
            .filter(|e| !e.trim().is_empty())
            .map(|e| {
                let data: String = e
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:").map(str::trim_start))
                    .collect::<Vec<_>>()
                    .join("\n");
                serde_json::from_str(&data).unwrap_or(Value::String(data))
            })
            .collect();
        matches(
            &Value::Array(events.clone()),
            &Value::Array(got.clone()),
            "client events",
            &mut errors,
        );
        if events.len() != got.len() {
            errors.push(format!(
                "client events: expected {} events, got {}: {got:?}",
                events.len(),
                got.len()
            ));
        }
    }
    errors
}

#[tokio::test]
async fn golden_translations() {
    let mut failures = Vec::new();
    let cases = cases();
    for path in &cases {
        let errors = run(path).await;
        if !errors.is_empty() {
            failures.push(format!("{}:\n  {}", path.display(), errors.join("\n  ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} golden cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
