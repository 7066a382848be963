//! A complete Ollama answer in OpenAI's shape: `chat.completion`, `text_completion`, or the
//! embeddings `list`.

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use llmgate_core::{LlmBody, Usage};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use super::new_id;
use super::wire::{self, Chunk, Embeddings};
use crate::dialect::now;
use crate::dialect::{Answered, Ctx};
use crate::error::Error;

/// Reads a 2xx body for the request's endpoint.
pub(super) fn read(ctx: &Ctx<'_>, body: &[u8]) -> Result<Answered, Error> {
    match ctx.llm.body() {
        LlmBody::Chat(_) => chat(ctx, parse(ctx, body)?),
        LlmBody::Completion(_) => completion(ctx, parse(ctx, body)?),
        LlmBody::Embedding(r) => {
            let base64 = r.encoding_format.as_deref() == Some("base64");
            embeddings(ctx, body, base64)
        }
    }
}

/// A chat or generate answer; one that carries `error` despite its status is the provider's
/// failure.
fn parse(ctx: &Ctx<'_>, body: &[u8]) -> Result<Chunk, Error> {
    let chunk: Chunk = serde_json::from_slice(body)
        .map_err(|e| ctx.invalid(format!("the body is not Ollama's JSON answer: {e}")))?;
    if chunk.error_message().is_some() {
        return Err(super::error::from_response(
            ctx.dep.provider,
            ctx.dep.id.clone(),
            StatusCode::BAD_GATEWAY,
            &HeaderMap::new(),
            body,
        ));
    }
    Ok(chunk)
}

fn created(chunk: &Chunk) -> u64 {
    chunk
        .created_at
        .as_deref()
        .and_then(wire::unix_seconds)
        .unwrap_or_else(now)
}

fn model<'a>(ctx: &'a Ctx<'_>, chunk: &'a Chunk) -> &'a str {
    chunk.model.as_deref().unwrap_or(&ctx.dep.model)
}

fn answered(value: &Value, usage: Option<Usage>) -> Answered {
    Answered {
        json: Bytes::from(value.to_string()),
        usage,
    }
}

fn chat(ctx: &Ctx<'_>, chunk: Chunk) -> Result<Answered, Error> {
    let Some(message) = chunk.message.as_ref() else {
        return Err(ctx.invalid("the answer has no `message`"));
    };
    let calls = message.tool_calls.as_deref().unwrap_or_default();
    let text = message.content.as_deref().unwrap_or_default();
    let mut out = Map::new();
    out.insert("role".into(), json!("assistant"));
    out.insert(
        "content".into(),
        if text.is_empty() && !calls.is_empty() {
            Value::Null
        } else {
            json!(text)
        },
    );
    if !calls.is_empty() {
        let calls: Vec<_> = calls.iter().map(|c| wire::tool_call(c, None)).collect();
        out.insert("tool_calls".into(), json!(calls));
    }
    if let Some(thinking) = message.thinking.as_deref().filter(|t| !t.is_empty()) {
        out.insert("reasoning_content".into(), json!(thinking));
    }
    let usage = chunk.usage();
    let body = json!({
        "id": new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": created(&chunk),
        "model": model(ctx, &chunk),
        "choices": [{
            "index": 0,
            "message": out,
            "logprobs": null,
            "finish_reason": wire::finish_reason(chunk.done_reason.as_deref(), !calls.is_empty()),
        }],
        "usage": usage.clone().unwrap_or_default(),
    });
    Ok(answered(&body, usage))
}

fn completion(ctx: &Ctx<'_>, chunk: Chunk) -> Result<Answered, Error> {
    let Some(text) = chunk.response.as_deref() else {
        return Err(ctx.invalid("the answer has no `response`"));
    };
    let usage = chunk.usage();
    let body = json!({
        "id": new_id("cmpl-"),
        "object": "text_completion",
        "created": created(&chunk),
        "model": model(ctx, &chunk),
        "choices": [{
            "text": text,
            "index": 0,
            "logprobs": null,
            "finish_reason": wire::finish_reason(chunk.done_reason.as_deref(), false),
        }],
        "usage": usage.clone().unwrap_or_default(),
    });
    Ok(answered(&body, usage))
}

fn embeddings(ctx: &Ctx<'_>, body: &[u8], base64: bool) -> Result<Answered, Error> {
    let answer: Embeddings<'_> = serde_json::from_slice(body)
        .map_err(|e| ctx.invalid(format!("the body is not Ollama's embeddings answer: {e}")))?;
    let mut data = Vec::with_capacity(answer.embeddings.len());
    for (index, raw) in answer.embeddings.iter().enumerate() {
        let embedding = if base64 {
            let floats: Vec<f64> = serde_json::from_str(raw.get())
                .map_err(|e| ctx.invalid(format!("embedding {index} is not a vector: {e}")))?;
            Embedded::Base64(base64_f32(&floats))
        } else if raw.get().starts_with('[') {
            Embedded::Floats(raw)
        } else {
            return Err(ctx.invalid(format!("embedding {index} is not a vector")));
        };
        data.push(EmbeddingOut {
            object: "embedding",
            index,
            embedding,
        });
    }
    let prompt = answer.prompt_eval_count.unwrap_or(0);
    let list = EmbeddingList {
        object: "list",
        data,
        model: answer.model.as_deref().unwrap_or(&ctx.dep.model),
        usage: EmbeddingUsage {
            prompt_tokens: prompt,
            total_tokens: prompt,
        },
    };
    let json = serde_json::to_vec(&list)
        .map_err(|e| ctx.invalid(format!("the embeddings cannot be written: {e}")))?;
    Ok(Answered {
        json: Bytes::from(json),
        usage: Some(Usage {
            prompt_tokens: prompt,
            total_tokens: prompt,
            ..Usage::default()
        }),
    })
}

#[derive(Serialize)]
struct EmbeddingList<'a> {
    object: &'static str,
    data: Vec<EmbeddingOut<'a>>,
    model: &'a str,
    usage: EmbeddingUsage,
}

#[derive(Serialize)]
struct EmbeddingOut<'a> {
    object: &'static str,
    index: usize,
    embedding: Embedded<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Embedded<'a> {
    Floats(&'a RawValue),
    Base64(String),
}

#[derive(Serialize)]
struct EmbeddingUsage {
    prompt_tokens: u64,
    total_tokens: u64,
}

/// OpenAI's `base64` encoding of an embedding. Ollama's vectors are float32s, so narrowing
/// loses nothing.
fn base64_f32(v: &[f64]) -> String {
    let narrow: Vec<f32> = v.iter().map(|x| *x as f32).collect();
    crate::mock::base64_f32(&narrow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_of_floats() {
        // 1.0f32 = 00 00 80 3f; 2.0f32 = 00 00 00 40.
        assert_eq!(base64_f32(&[1.0]), "AACAPw==");
        assert_eq!(base64_f32(&[1.0, 2.0]), "AACAPwAAAEA=");
        assert_eq!(base64_f32(&[]), "");
    }
}
