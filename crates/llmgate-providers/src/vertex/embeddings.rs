//! `/v1/embeddings` on Vertex AI as its text-embedding models' `:predict`, as LiteLLM sends
//! it: `{"instances": [{"content": text, "task_type"?, "title"?}], "parameters":
//! {"outputDimensionality"?}}`, answered with `{"predictions": [{"embeddings": {"values",
//! "statistics": {"token_count"}}}]}`.
//!
//! Parameters: `dimensions` is `outputDimensionality`; `task_type` and `title` go into every
//! instance; `encoding_format` `float` or `base64` (little-endian f32s, encoded here). Token-id
//! inputs and every other parameter are unsupported (dropped with `drop_params`). Usage is the
//! sum of the predictions' `token_count`.

use bytes::Bytes;
use llmgate_core::wire::{EmbeddingRequest, Usage};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::dialect::{Answered, Ctx};
use crate::error::Error;

/// The `:predict` body.
pub(super) fn body(ctx: &Ctx<'_>, r: &EmbeddingRequest) -> Result<Bytes, Error> {
    let texts = inputs(ctx, &r.input)?;
    let p = ctx.params();
    let mut instance_extra = Map::new();
    let mut parameters = Map::new();
    if let Some(d) = p.or(r.dimensions.map(Value::from), "dimensions", |v| {
        Some(v.clone()).filter(|v| !v.is_null())
    }) {
        parameters.insert("outputDimensionality".to_owned(), d);
    }
    match r.encoding_format.as_deref() {
        None | Some("float" | "base64") => {}
        Some(_) => ctx.unsupported("encoding_format")?,
    }
    for (key, value) in p.entries() {
        match key {
            "task_type" | "title" => {
                instance_extra.insert(key.to_owned(), value.clone());
            }
            "dimensions" | "encoding_format" | "input" | "model" => {}
            _ => crate::gemini::params::unsupported_key(ctx, key)?,
        }
    }
    let instances: Vec<Value> = texts
        .iter()
        .map(|text| {
            let mut i = instance_extra.clone();
            i.insert("content".to_owned(), json!(text));
            Value::Object(i)
        })
        .collect();
    let mut body = json!({ "instances": instances });
    if !parameters.is_empty() {
        body["parameters"] = Value::Object(parameters);
    }
    serde_json::to_vec(&body)
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

#[derive(Deserialize)]
struct Predicted {
    predictions: Option<Vec<Prediction>>,
}

#[derive(Deserialize)]
struct Prediction {
    embeddings: PredictionEmbeddings,
}

#[derive(Deserialize)]
struct PredictionEmbeddings {
    values: Vec<f64>,
    statistics: Option<Statistics>,
}

#[derive(Deserialize)]
struct Statistics {
    token_count: Option<f64>,
}

/// OpenAI's embeddings `list` for a `:predict` answer.
pub(super) fn read(ctx: &Ctx<'_>, r: &EmbeddingRequest, body: &[u8]) -> Result<Answered, Error> {
    let answer: Predicted = serde_json::from_slice(body)
        .map_err(|e| ctx.invalid(format!("not a predict answer: {e}")))?;
    let predictions = answer
        .predictions
        .ok_or_else(|| ctx.invalid("the answer has no `predictions`"))?;
    let base64 = r.encoding_format.as_deref() == Some("base64");
    let mut tokens = 0u64;
    let data: Vec<Value> = predictions
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let count = p.embeddings.statistics.as_ref().and_then(|s| s.token_count);
            tokens += count.map_or(0, |n| n.max(0.0) as u64);
            let embedding = if base64 {
                let floats: Vec<f32> = p.embeddings.values.iter().map(|x| *x as f32).collect();
                json!(crate::mock::base64_f32(&floats))
            } else {
                json!(p.embeddings.values)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    let out = json!({
        "object": "list",
        "data": data,
        "model": &*ctx.dep.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    });
    let json = serde_json::to_vec(&out)
        .map_err(|e| ctx.invalid(format!("could not serialise the answer: {e}")))?;
    Ok(Answered {
        json: Bytes::from(json),
        usage: Some(Usage {
            prompt_tokens: tokens,
            completion_tokens: 0,
            total_tokens: tokens,
            prompt_tokens_details: None,
            completion_tokens_details: None,
            extra: Map::new(),
        }),
    })
}
