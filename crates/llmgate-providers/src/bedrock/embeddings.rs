//! `/v1/embeddings` through `InvokeModel` (`POST /model/{modelId}/invoke`).
//!
//! - Amazon Titan text embeddings (`amazon.titan-embed-text-v1`, `-v2:0`, and
//!   `amazon.titan-embed-image-v1` for text): `{"inputText", "dimensions"?}` answered by
//!   `{"embedding": [...], "inputTextTokenCount"}`. Titan embeds one text per call, so a list
//!   of several inputs is refused (the dialect seam sends one request per client request).
//! - Cohere (`cohere.embed-*`): `{"texts": [...], "input_type"}` (`input_type` defaults to
//!   `search_document`) answered by `{"embeddings": [[...], ...]}`. Bedrock reports Cohere's
//!   token counts only in response headers, so the usage is zero and not metered.
//!
//! `encoding_format: "base64"` is served by encoding the floats as OpenAI does (little-endian
//! `f32`s, base64). Fields OpenAI does not define (`normalize`, `truncate`, ...) are sent to
//! the model as they are.

use bytes::Bytes;
use llmgate_core::wire::{EmbeddingRequest, Usage};
use serde_json::{json, Map, Value};

use super::model_id;
use crate::dialect::{Answered, Ctx};
use crate::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Titan,
    Cohere,
}

fn family(ctx: &Ctx<'_>) -> Result<Family, Error> {
    let model = model_id(ctx.dep);
    if model.contains("amazon.titan-embed") {
        Ok(Family::Titan)
    } else if model.contains("cohere.embed") {
        Ok(Family::Cohere)
    } else {
        Err(ctx.unsupported_endpoint(
            "/v1/embeddings (only Amazon Titan and Cohere embedding models are translated)",
        ))
    }
}

/// The `InvokeModel` body.
pub(super) fn build(ctx: &Ctx<'_>, req: &EmbeddingRequest) -> Result<Bytes, Error> {
    let family = family(ctx)?;
    let params = ctx.params();
    let texts: Vec<&str> = match &req.input {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) if items.iter().all(Value::is_string) => {
            items.iter().filter_map(Value::as_str).collect()
        }
        _ => return Err(ctx.unsupported_endpoint("/v1/embeddings with token ids")),
    };
    if let Some(f) = req.encoding_format.as_deref() {
        if f != "float" && f != "base64" {
            ctx.unsupported("encoding_format")?;
        }
    }
    let dimensions = params.or(req.dimensions.map(Value::from), "dimensions", |v| {
        Some(v.clone())
    });
    let mut body = Map::new();
    match family {
        Family::Titan => {
            let [text] = texts.as_slice() else {
                return Err(ctx.unsupported_endpoint(
                    "/v1/embeddings with several inputs (Titan embeds one text per call)",
                ));
            };
            body.insert("inputText".into(), json!(text));
            if let Some(d) = dimensions {
                if model_id(ctx.dep).contains("titan-embed-text-v2") {
                    body.insert("dimensions".into(), d);
                } else {
                    ctx.unsupported("dimensions")?;
                }
            }
        }
        Family::Cohere => {
            body.insert("texts".into(), json!(texts));
            let input_type = params
                .get("input_type")
                .cloned()
                .unwrap_or_else(|| json!("search_document"));
            body.insert("input_type".into(), input_type);
            if dimensions.is_some() {
                ctx.unsupported("dimensions")?;
            }
        }
    }
    for (key, value) in params.raw_entries() {
        match key {
            "model" | "input" | "encoding_format" | "dimensions" | "input_type" => {}
            "user" => ctx.unsupported("user")?,
            _ if value.is_null() => {}
            k => {
                body.insert(k.to_owned(), value.clone());
            }
        }
    }
    serde_json::to_vec(&Value::Object(body))
        .map(Bytes::from)
        .map_err(|e| ctx.config(format!("could not serialise the request body: {e}")))
}

/// The `InvokeModel` answer as OpenAI's embeddings `list`.
pub(super) fn read(ctx: &Ctx<'_>, req: &EmbeddingRequest, body: &[u8]) -> Result<Answered, Error> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ctx.invalid(format!("not an embeddings answer: {e}")))?;
    let (vectors, tokens): (Vec<&Value>, Option<u64>) = match family(ctx)? {
        Family::Titan => {
            let e = v
                .get("embedding")
                .filter(|e| e.is_array())
                .ok_or_else(|| ctx.invalid("the answer has no `embedding` list"))?;
            (
                vec![e],
                v.get("inputTextTokenCount").and_then(Value::as_u64),
            )
        }
        Family::Cohere => {
            let list = v
                .get("embeddings")
                .and_then(|e| e.as_array().or_else(|| e.get("float")?.as_array()))
                .ok_or_else(|| ctx.invalid("the answer has no `embeddings` list"))?;
            (list.iter().collect(), None)
        }
    };
    let base64 = req.encoding_format.as_deref() == Some("base64");
    let mut data = Vec::with_capacity(vectors.len());
    for (i, vector) in vectors.into_iter().enumerate() {
        let floats = vector
            .as_array()
            .filter(|a| a.iter().all(Value::is_number))
            .ok_or_else(|| ctx.invalid("an embedding is not a list of numbers"))?;
        let embedding = if base64 {
            Value::String(floats_base64(floats))
        } else {
            Value::Array(floats.clone())
        };
        data.push(json!({"object": "embedding", "index": i, "embedding": embedding}));
    }
    let usage = tokens.map(|t| Usage {
        prompt_tokens: t,
        total_tokens: t,
        ..Usage::default()
    });
    let shown = tokens.unwrap_or(0);
    let out = json!({
        "object": "list",
        "data": data,
        "model": model_id(ctx.dep),
        "usage": {"prompt_tokens": shown, "total_tokens": shown},
    });
    let json = serde_json::to_vec(&out)
        .map(Bytes::from)
        .map_err(|e| ctx.invalid(format!("cannot serialise the answer: {e}")))?;
    Ok(Answered { json, usage })
}

/// Floats as OpenAI's base64 embeddings: little-endian `f32`s, standard base64 with padding.
fn floats_base64(floats: &[Value]) -> String {
    let mut bytes = Vec::with_capacity(floats.len() * 4);
    for f in floats {
        // OpenAI's base64 embeddings are f32s.
        let f = f.as_f64().unwrap_or(0.0) as f32;
        bytes.extend_from_slice(&f.to_le_bytes());
    }
    base64(&bytes)
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
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
    fn base64_matches_rfc_4648() {
        for (raw, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(raw.as_bytes()), encoded);
        }
        // 1.0f32 is 00 00 80 3f little-endian.
        assert_eq!(floats_base64(&[json!(1.0)]), "AACAPw==");
    }
}
