//! `/embeddings`: deterministic unit vectors, as floats or base64.

use http::StatusCode;
use serde_json::{json, Value};

use super::{count_tokens, error_reply, json_reply, Call};
use crate::server::Reply;

/// The inputs of an embeddings request as texts, with their token counts.
fn embedding_inputs(input: Option<&Value>) -> Vec<(String, u64)> {
    let as_tokens = |items: &[Value]| -> Option<(String, u64)> {
        let ids: Option<Vec<u64>> = items.iter().map(Value::as_u64).collect();
        ids.map(|ids| {
            let text = ids.iter().map(u64::to_string).collect::<Vec<_>>().join(" ");
            (text, ids.len() as u64)
        })
    };
    match input {
        Some(Value::String(s)) => vec![(s.clone(), count_tokens(s))],
        Some(Value::Array(items)) if !items.is_empty() && items.iter().all(Value::is_u64) => {
            as_tokens(items).into_iter().collect()
        }
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|item| match item {
                Value::String(s) => Some((s.clone(), count_tokens(s))),
                Value::Array(tokens) => as_tokens(tokens),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Default length of a mock embedding when the request does not set `dimensions`.
pub(crate) const DEFAULT_DIMENSIONS: usize = 16;

/// A deterministic unit vector for a text (FNV-1a of the text and the component index).
pub(crate) fn embed(text: &str, dimensions: usize) -> Vec<f32> {
    let raw: Vec<f32> = (0..dimensions)
        .map(|i| {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in text.bytes().chain((i as u64).to_le_bytes()) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            // Map to [-1, 1); h % 2000 is exact in an f32.
            (h % 2000) as f32 / 1000.0 - 1.0
        })
        .collect();
    let norm = raw.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        raw.iter().map(|x| x / norm).collect()
    } else {
        raw
    }
}

pub(super) fn embeddings(body: &Value, call: &Call<'_>) -> Reply {
    let inputs = embedding_inputs(body.get("input"));
    if inputs.is_empty() {
        return error_reply(
            StatusCode::BAD_REQUEST,
            "'input' must be a non-empty string or array",
            Some("input"),
        );
    }
    let dimensions = body
        .get("dimensions")
        .and_then(Value::as_u64)
        .and_then(|d| usize::try_from(d).ok())
        .unwrap_or(DEFAULT_DIMENSIONS);
    let base64 = body.get("encoding_format").and_then(Value::as_str) == Some("base64");
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, (text, _))| {
            let vector = embed(text, dimensions);
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                json!(base64_encode(&bytes))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let tokens: u64 = inputs.iter().map(|(_, t)| t).sum();
    let body = json!({
        "object": "list",
        "data": data,
        "model": call.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens}
    });
    json_reply(StatusCode::OK, &body, call.ctx)
}

/// Standard base64 with padding (what OpenAI sends for `encoding_format: "base64"`).
pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(input.as_bytes()), expected);
        }
    }

    #[test]
    fn embeddings_are_deterministic_unit_vectors() {
        let a = embed("hello", 8);
        assert_eq!(a, embed("hello", 8));
        assert_ne!(a, embed("world", 8));
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
    }

    #[test]
    fn embedding_inputs_accept_every_shape() {
        let inputs = |v: Value| embedding_inputs(Some(&v)).len();
        assert_eq!(inputs(json!("a b")), 1);
        assert_eq!(inputs(json!(["a", "b c"])), 2);
        assert_eq!(inputs(json!([1, 2, 3])), 1);
        assert_eq!(inputs(json!([[1, 2], [3]])), 2);
        assert_eq!(inputs(json!([])), 0);
    }
}
