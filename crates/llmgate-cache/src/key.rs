//! Cache keys: what makes two requests "the same request".
//!
//! The key is the SHA-256 of a canonical JSON document built from the parsed request, never
//! from the raw body bytes, so whitespace, field order and number spelling (`0.70` vs `0.7`
//! for typed fields) do not matter:
//!
//! ```text
//! {"endpoint": "chat_completions" | "completions" | "embeddings",
//!  "group":    <model group the requested model resolves to (aliases followed)>,
//!  "body":     <the parsed body without `model`; top-level nulls dropped>,
//!  "key":      <the virtual key's token, only with per-key isolation>,
//!  "v": 1}
//! ```
//!
//! Canonical means: objects with their keys sorted (at every depth), no whitespace, strings
//! and numbers as `serde_json` writes them. The body is the request as parsed, so it holds
//! every field that changes the answer (`messages`, `tools`, `tool_choice`, `temperature`,
//! `max_tokens`, `response_format`, `seed`, `stream`, `stream_options`, `user`, unknown
//! provider fields, ...) and none of the gateway-only fields (`metadata`, `tags`, `cache`,
//! `timeout`, `num_retries`, `fallbacks`, ...), which the parser already took out.
//!
//! The stored key is `<namespace>:<hex digest>` when a namespace applies, else the hex digest.

use std::io::{self, Write};

use llmgate_core::{LlmBody, LlmRequest};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Version of the key derivation: bump it when the canonical form changes, so old entries are
/// not read with a new meaning.
const KEY_VERSION: u64 = 1;

/// Computes the cache key of `req` for model group `group`; `isolate` is the caller's key token
/// when entries are kept per key. `None` when the body cannot be serialized (not cached).
pub fn cache_key(
    req: &LlmRequest,
    group: &str,
    isolate: Option<&str>,
    namespace: Option<&str>,
) -> Option<String> {
    let body = match req.body() {
        LlmBody::Chat(b) => serde_json::to_value(b),
        LlmBody::Completion(b) => serde_json::to_value(b),
        LlmBody::Embedding(b) => serde_json::to_value(b),
    }
    .ok()?;
    let Value::Object(mut body) = body else {
        return None;
    };
    body.remove("model");
    body.retain(|_, v| !v.is_null());

    let mut doc = Map::new();
    doc.insert("v".into(), Value::from(KEY_VERSION));
    doc.insert("endpoint".into(), Value::from(req.endpoint().as_str()));
    doc.insert("group".into(), Value::from(group));
    doc.insert("body".into(), Value::Object(body));
    if let Some(k) = isolate {
        doc.insert("key".into(), Value::from(k));
    }
    let mut h = HashWriter(Sha256::new());
    canonical(&Value::Object(doc), &mut h).ok()?;
    let digest = h.0.finalize();
    let mut out = String::with_capacity(namespace.map_or(0, |n| n.len() + 1) + 64);
    if let Some(ns) = namespace {
        out.push_str(ns);
        out.push(':');
    }
    for b in digest.iter() {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    Some(out)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes `v` as canonical JSON: object keys sorted at every depth, no whitespace.
fn canonical(v: &Value, w: &mut impl Write) -> io::Result<()> {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            w.write_all(b"{")?;
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    w.write_all(b",")?;
                }
                serde_json::to_writer(&mut *w, k)?;
                w.write_all(b":")?;
                canonical(v, w)?;
            }
            w.write_all(b"}")
        }
        Value::Array(items) => {
            w.write_all(b"[")?;
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    w.write_all(b",")?;
                }
                canonical(v, w)?;
            }
            w.write_all(b"]")
        }
        scalar => serde_json::to_writer(w, scalar).map_err(io::Error::from),
    }
}

struct HashWriter(Sha256);

impl Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmgate_core::Endpoint;

    fn key(json: &str) -> String {
        key_in(Endpoint::ChatCompletions, json, "g")
    }

    fn key_in(endpoint: Endpoint, json: &str, group: &str) -> String {
        let r = LlmRequest::parse(endpoint, json.as_bytes()).unwrap();
        cache_key(&r, group, None, None).unwrap()
    }

    #[test]
    fn stable_across_field_order_whitespace_and_gateway_fields() {
        let a = key(
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.7,
                "response_format":{"type":"json_schema","json_schema":{"name":"x","strict":true}}}"#,
        );
        let b = key(
            r#"{ "temperature" : 0.70, "response_format": {"json_schema": {"strict": true, "name": "x"}, "type": "json_schema"},
                 "messages" : [ {"content":"hi", "role":"user"} ], "model": "alias",
                 "metadata": {"trace": 1}, "cache": {"ttl": 5}, "tags": ["t"], "num_retries": 2 }"#,
        );
        assert_eq!(a, b);
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn every_answer_changing_parameter_changes_the_key() {
        let base = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
        let k = key(base);
        let variants = [
            r#"{"model":"m","messages":[{"role":"user","content":"hi!"}]}"#,
            r#"{"model":"m","messages":[{"role":"system","content":"hi"}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.5}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":5}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"seed":1}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_object"}}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f"}}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"logit_bias":{"1":2}}"#,
        ];
        for v in variants {
            assert_ne!(key(v), k, "{v}");
        }
        // The model group, not the name the client used, and the endpoint.
        assert_ne!(key_in(Endpoint::ChatCompletions, base, "other"), k);
        let e = key_in(Endpoint::Embeddings, r#"{"model":"m","input":"hi"}"#, "g");
        assert_ne!(
            e,
            key_in(Endpoint::Embeddings, r#"{"model":"m","input":"ho"}"#, "g")
        );
    }

    #[test]
    fn namespace_and_isolation() {
        let r =
            LlmRequest::parse(Endpoint::Embeddings, br#"{"model":"m","input":["a","b"]}"#).unwrap();
        let plain = cache_key(&r, "g", None, None).unwrap();
        let ns = cache_key(&r, "g", None, Some("team-a")).unwrap();
        assert_eq!(ns, format!("team-a:{plain}"));
        let k1 = cache_key(&r, "g", Some("tok1"), None).unwrap();
        assert_ne!(k1, plain);
        assert_ne!(k1, cache_key(&r, "g", Some("tok2"), None).unwrap());
    }

    #[test]
    fn canonical_form() {
        let v: Value = serde_json::from_str(r#"{"b":[1,{"d":"x\"","c":null}],"a":1.5}"#).unwrap();
        let mut out = Vec::new();
        canonical(&v, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":1.5,"b":[1,{"c":null,"d":"x\""}]}"#
        );
    }
}
