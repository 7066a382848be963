//! `/v1/embeddings` on watsonx.ai as its text embeddings API, as LiteLLM sends it:
//! `POST {api_base}/ml/v1/text/embeddings?version=..` with `{"inputs": [text, ...],
//! "model_id", "project_id" | "space_id", "parameters"?}`, answered with `{"model_id",
//! "results": [{"embedding": [...]}], "input_token_count", "created_at"}`.
//!
//! Parameters: the client's fields that are not OpenAI's (such as `truncate_input_tokens` or
//! `return_options`) and the deployment's defaults go into `parameters` as they are;
//! `dimensions` has no equivalent (dropped with `drop_params`, else a 400), `encoding_format`
//! `float` or `base64` (little-endian f32s, encoded here). Token-id inputs are refused, as
//! watsonx takes text only. Usage is `input_token_count`.

use bytes::Bytes;
use llmgate_core::wire::{EmbeddingRequest, Usage};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::dialect::{Answered, Ctx};
use crate::error::Error;

/// The embeddings body (see the module docs).
pub(super) fn body(ctx: &Ctx<'_>, r: &EmbeddingRequest) -> Result<Bytes, Error> {
    let inputs = inputs(ctx, &r.input)?;
    let p = ctx.params();
    if r.dimensions.is_some() {
        ctx.unsupported("dimensions")?;
    }
    match r.encoding_format.as_deref() {
        None | Some("float" | "base64") => {}
        Some(_) => ctx.unsupported("encoding_format")?,
    }
    let mut parameters = Map::new();
    for (key, value) in p.entries() {
        match key {
            "input" | "model" | "encoding_format" | "user" => {}
            "dimensions" => ctx.unsupported("dimensions")?,
            _ => {
                parameters.insert(key.to_owned(), value.clone());
            }
        }
    }
    let mut body = json!({ "inputs": inputs, "model_id": &*ctx.dep.model });
    super::add_project(ctx, &mut body)?;
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
struct Embedded {
    model_id: Option<String>,
    results: Option<Vec<Vector>>,
    input_token_count: Option<u64>,
}

#[derive(Deserialize)]
struct Vector {
    embedding: Vec<f64>,
}

/// OpenAI's embeddings `list` for watsonx's answer.
pub(super) fn read(ctx: &Ctx<'_>, r: &EmbeddingRequest, body: &[u8]) -> Result<Answered, Error> {
    let answer: Embedded = serde_json::from_slice(body)
        .map_err(|e| ctx.invalid(format!("not a watsonx embeddings answer: {e}")))?;
    let results = answer
        .results
        .ok_or_else(|| ctx.invalid("the answer has no `results`"))?;
    let base64 = r.encoding_format.as_deref() == Some("base64");
    let data: Vec<Value> = results
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let embedding = if base64 {
                let floats: Vec<f32> = e.embedding.iter().map(|x| *x as f32).collect();
                json!(crate::mock::base64_f32(&floats))
            } else {
                json!(e.embedding)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    let tokens = answer.input_token_count.unwrap_or(0);
    let out = json!({
        "object": "list",
        "data": data,
        "model": answer.model_id.as_deref().unwrap_or(&ctx.dep.model),
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
