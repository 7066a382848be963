//! `/v1/embeddings` as `batchEmbedContents`: one `EmbedContentRequest` per input string, and
//! the answer as OpenAI's `list` of `embedding` objects.
//!
//! Parameters: `dimensions` is `outputDimensionality`; `task_type` (or `taskType`) and `title`
//! pass to every request, as LiteLLM does; `encoding_format` `float` or `base64` (little-endian
//! f32s, encoded here). Token-id inputs are unsupported (Gemini takes text), as is every
//! other parameter.
//!
//! Gemini's `batchEmbedContents` reports no usage (newer versions may send `usageMetadata`,
//! which is used when present): `prompt_tokens` and `total_tokens` are then estimated at one
//! token per four characters of input, rounded up per input, the same rule as the mock
//! answers use.

use bytes::Bytes;
use llmgate_core::wire::{EmbeddingRequest, Usage};
use serde_json::{json, Map, Value};

use super::wire::Embeddings;
use super::{model_path, params};
use crate::dialect::{Answered, Ctx};
use crate::error::Error;

/// The `batchEmbedContents` body.
pub(super) fn body(ctx: &Ctx<'_>, r: &EmbeddingRequest) -> Result<Bytes, Error> {
    let texts = inputs(ctx, &r.input)?;
    let mut p = Map::new();
    let EmbeddingRequest {
        model: _,
        input: _,
        encoding_format,
        dimensions,
        extra,
    } = r;
    if let Some(f) = encoding_format {
        p.insert("encoding_format".to_owned(), json!(f));
    }
    if let Some(d) = dimensions {
        p.insert("dimensions".to_owned(), json!(d));
    }
    // `input` is the request itself (Gemini's `content`), never a parameter.
    let p = params::gather(ctx, p, extra, &["input"]);

    let mut common = Map::new();
    for (key, value) in p {
        if value.is_null() {
            continue;
        }
        match key.as_str() {
            "dimensions" => {
                common.insert("outputDimensionality".to_owned(), value);
            }
            "task_type" | "taskType" => {
                common.insert("taskType".to_owned(), value);
            }
            "title" => {
                common.insert("title".to_owned(), value);
            }
            "encoding_format" => match value.as_str() {
                Some("float" | "base64") => {}
                _ => ctx.unsupported("encoding_format")?,
            },
            _ => params::unsupported_key(ctx, &key)?,
        }
    }
    let model = model_path(&ctx.dep.model);
    let requests: Vec<Value> = texts
        .iter()
        .map(|text| {
            let mut req = Map::with_capacity(2 + common.len());
            req.insert("model".to_owned(), json!(model));
            req.insert("content".to_owned(), json!({"parts": [{"text": text}]}));
            req.extend(common.iter().map(|(k, v)| (k.clone(), v.clone())));
            Value::Object(req)
        })
        .collect();
    serde_json::to_vec(&json!({ "requests": requests }))
        .map(Bytes::from)
        .map_err(|e| ctx.config(format!("could not serialise the request body: {e}")))
}

/// The input strings; token ids are not text.
fn inputs<'a>(ctx: &Ctx<'_>, input: &'a Value) -> Result<Vec<&'a str>, Error> {
    let texts = match input {
        Value::String(s) => Some(vec![s.as_str()]),
        Value::Array(items) => items.iter().map(Value::as_str).collect(),
        _ => None,
    };
    texts.ok_or_else(|| Error::unsupported_param(ctx.dep, "input"))
}

/// OpenAI's embeddings `list` for a `batchEmbedContents` answer.
pub(super) fn read(ctx: &Ctx<'_>, r: &EmbeddingRequest, body: &[u8]) -> Result<Answered, Error> {
    let answer: Embeddings = serde_json::from_slice(body)
        .map_err(|e| ctx.invalid(format!("not a batchEmbedContents answer: {e}")))?;
    let Some(embeddings) = answer.embeddings else {
        return Err(ctx.invalid("the answer has no `embeddings`"));
    };
    let base64 = r.encoding_format.as_deref() == Some("base64");
    let data: Vec<Value> = embeddings
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let embedding = if base64 {
                let floats: Vec<f32> = e.values.iter().map(|x| *x as f32).collect();
                json!(crate::mock::base64_f32(&floats))
            } else {
                json!(e.values)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    let prompt = match answer.usage_metadata.and_then(|m| m.prompt_token_count) {
        Some(n) => n,
        None => inputs(ctx, &r.input)
            .map(|texts| {
                texts
                    .iter()
                    .map(|t| (t.chars().count() as u64).div_ceil(4))
                    .sum()
            })
            .unwrap_or(0),
    };
    let usage = Usage {
        prompt_tokens: prompt,
        completion_tokens: 0,
        total_tokens: prompt,
        prompt_tokens_details: None,
        completion_tokens_details: None,
        extra: Map::new(),
    };
    let out = json!({
        "object": "list",
        "data": data,
        "model": &*ctx.dep.model,
        "usage": {"prompt_tokens": prompt, "total_tokens": prompt},
    });
    let json = serde_json::to_vec(&out)
        .map_err(|e| ctx.invalid(format!("could not serialise the answer: {e}")))?;
    Ok(Answered {
        json: Bytes::from(json),
        usage: Some(usage),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmgate_core::{DeploymentSpec, Endpoint, LlmBody, LlmRequest, ProviderKind};

    fn with(v: Value, f: impl FnOnce(&Ctx<'_>, &EmbeddingRequest)) {
        let llm = LlmRequest::parse(Endpoint::Embeddings, v.to_string().as_bytes()).unwrap();
        let mut dep =
            DeploymentSpec::new("g-0", "group", ProviderKind::Gemini, "text-embedding-004");
        dep.default_params
            .insert("task_type".into(), json!("RETRIEVAL_DOCUMENT"));
        let ctx = Ctx::new(&llm, &dep);
        let LlmBody::Embedding(r) = llm.body() else {
            panic!()
        };
        f(&ctx, r);
    }

    #[test]
    fn body_per_input() {
        with(
            json!({"model": "m", "input": ["a", "bc"], "dimensions": 8}),
            |ctx, r| {
                let v: Value = serde_json::from_slice(&body(ctx, r).unwrap()).unwrap();
                assert_eq!(
                    v,
                    json!({"requests": [
                        {"model": "models/text-embedding-004", "content": {"parts": [{"text": "a"}]},
                         "outputDimensionality": 8, "taskType": "RETRIEVAL_DOCUMENT"},
                        {"model": "models/text-embedding-004", "content": {"parts": [{"text": "bc"}]},
                         "outputDimensionality": 8, "taskType": "RETRIEVAL_DOCUMENT"}
                    ]})
                );
            },
        );
        with(json!({"model": "m", "input": [[1, 2, 3]]}), |ctx, r| {
            let e = body(ctx, r).unwrap_err();
            assert!(matches!(e, Error::UnsupportedParam { param: "input", .. }));
        });
        with(
            json!({"model": "m", "input": "x", "user": "u"}),
            |ctx, r| {
                let e = body(ctx, r).unwrap_err();
                assert!(matches!(e, Error::UnsupportedParam { param: "user", .. }));
            },
        );
    }

    #[test]
    fn answers_as_a_list() {
        with(
            json!({"model": "m", "input": ["abcdefgh", "abc"], "encoding_format": "base64"}),
            |ctx, r| {
                let a = read(
                    ctx,
                    r,
                    br#"{"embeddings": [{"values": [1.0, 0.0]}, {"values": [0.5, 0.5]}]}"#,
                )
                .unwrap();
                let v: Value = serde_json::from_slice(&a.json).unwrap();
                assert_eq!(v["object"], "list");
                assert_eq!(v["model"], "text-embedding-004");
                assert_eq!(v["data"][0]["embedding"], "AACAPwAAAAA=");
                assert_eq!(v["data"][1]["index"], 1);
                assert_eq!(v["usage"], json!({"prompt_tokens": 3, "total_tokens": 3}));
                assert_eq!(a.usage.unwrap().prompt_tokens, 3);
                assert!(read(ctx, r, b"{}").is_err());
            },
        );
    }
}
