//! A complete `generateContent` answer in OpenAI's shape (`chat.completion`, or
//! `text_completion` for the legacy endpoint), and what the stream shares with it: usage,
//! finish reasons, tool-call ids.

use bytes::Bytes;
use llmgate_core::wire::{CompletionTokensDetails, PromptTokensDetails, Usage};
use serde_json::{json, Map, Value};

use super::new_id;
use super::request::THOUGHT_SIGNATURE_SEPARATOR;
use super::wire::{Candidate, Part, Response, UsageMetadata};
use crate::dialect::now;
use crate::dialect::{Answered, Ctx};
use crate::error::Error;

/// Parses a `generateContent` body; an `error` object in a 2xx answer is the provider failing
/// after all.
fn parse(ctx: &Ctx<'_>, body: &[u8]) -> Result<Response, Error> {
    let r: Response = serde_json::from_slice(body)
        .map_err(|e| ctx.invalid(format!("not a GenerateContentResponse: {e}")))?;
    if let Some(error) = &r.error {
        return Err(super::error::from_value(
            ctx.dep.provider,
            ctx.dep.id.clone(),
            None,
            error,
        ));
    }
    Ok(r)
}

/// A `chat.completion`.
pub(super) fn chat(ctx: &Ctx<'_>, body: &[u8]) -> Result<Answered, Error> {
    let r = parse(ctx, body)?;
    let choices: Vec<Value> = if r.candidates.is_empty() {
        if r.block_reason().is_none() {
            return Err(
                ctx.invalid("the answer has no candidates and no promptFeedback.blockReason")
            );
        }
        // The prompt itself was blocked.
        vec![json!({
            "index": 0,
            "message": {"role": "assistant", "content": null},
            "finish_reason": "content_filter",
        })]
    } else {
        r.candidates
            .iter()
            .enumerate()
            .map(|(i, c)| chat_choice(c, i))
            .collect()
    };
    let usage = r.usage_metadata.as_ref().map(usage);
    let mut out = Map::new();
    out.insert("id".to_owned(), json!(id(&r, "chatcmpl-")));
    out.insert("object".to_owned(), json!("chat.completion"));
    out.insert("created".to_owned(), json!(now()));
    out.insert("model".to_owned(), json!(model(ctx, &r)));
    out.insert("choices".to_owned(), Value::Array(choices));
    if let Some(u) = &usage {
        out.insert("usage".to_owned(), json!(u));
    }
    encode(ctx, &out, usage)
}

/// A legacy `text_completion`.
pub(super) fn completion(ctx: &Ctx<'_>, body: &[u8]) -> Result<Answered, Error> {
    let r = parse(ctx, body)?;
    let choices: Vec<Value> = if r.candidates.is_empty() {
        if r.block_reason().is_none() {
            return Err(ctx.invalid("the answer has no candidates"));
        }
        vec![json!({"text": "", "index": 0, "logprobs": null, "finish_reason": "content_filter"})]
    } else {
        r.candidates
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let read = Read::of(c.content.as_ref().map_or(&[][..], |c| &c.parts));
                json!({
                    "text": read.text.unwrap_or_default(),
                    "index": c.index.unwrap_or(index(i)),
                    "logprobs": null,
                    "finish_reason": finish_reason(c.finish_reason.as_deref(), false),
                })
            })
            .collect()
    };
    let usage = r.usage_metadata.as_ref().map(usage);
    let mut out = Map::new();
    out.insert("id".to_owned(), json!(id(&r, "cmpl-")));
    out.insert("object".to_owned(), json!("text_completion"));
    out.insert("created".to_owned(), json!(now()));
    out.insert("model".to_owned(), json!(model(ctx, &r)));
    out.insert("choices".to_owned(), Value::Array(choices));
    if let Some(u) = &usage {
        out.insert("usage".to_owned(), json!(u));
    }
    encode(ctx, &out, usage)
}

fn encode(
    ctx: &Ctx<'_>,
    out: &Map<String, Value>,
    usage: Option<Usage>,
) -> Result<Answered, Error> {
    let json = serde_json::to_vec(out)
        .map_err(|e| ctx.invalid(format!("could not serialise the answer: {e}")))?;
    Ok(Answered {
        json: Bytes::from(json),
        usage,
    })
}

fn chat_choice(c: &Candidate, position: usize) -> Value {
    let read = Read::of(c.content.as_ref().map_or(&[][..], |c| &c.parts));
    let mut message = Map::new();
    message.insert("role".to_owned(), json!("assistant"));
    message.insert("content".to_owned(), json!(read.text));
    if !read.calls.is_empty() {
        let calls: Vec<Value> = read
            .calls
            .iter()
            .map(|call| {
                json!({
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                })
            })
            .collect();
        message.insert("tool_calls".to_owned(), Value::Array(calls));
    }
    if let Some(reasoning) = read.reasoning {
        message.insert("reasoning_content".to_owned(), json!(reasoning));
    }
    json!({
        "index": c.index.unwrap_or(index(position)),
        "message": message,
        "finish_reason": finish_reason(c.finish_reason.as_deref(), !read.calls.is_empty()),
    })
}

/// The answer's id: Gemini's `responseId`, else a generated one.
pub(super) fn id(r: &Response, prefix: &str) -> String {
    match r.response_id.as_deref().filter(|id| !id.is_empty()) {
        Some(id) => id.to_owned(),
        None => new_id(prefix),
    }
}

/// The model that answered: Gemini's `modelVersion`, else the deployment's model.
pub(super) fn model(ctx: &Ctx<'_>, r: &Response) -> String {
    r.model_version
        .as_deref()
        .filter(|m| !m.is_empty())
        .unwrap_or(&ctx.dep.model)
        .to_owned()
}

pub(super) fn index(position: usize) -> u32 {
    u32::try_from(position).unwrap_or(u32::MAX)
}

/// What a candidate's parts say, read once.
#[derive(Debug, Default)]
pub(super) struct Read {
    /// The answer's text parts, joined; `None` when there are none.
    pub(super) text: Option<String>,
    /// The thought parts' text, joined.
    pub(super) reasoning: Option<String>,
    /// Function calls, with their new ids.
    pub(super) calls: Vec<Call>,
}

/// A function call, in OpenAI's terms.
#[derive(Debug)]
pub(super) struct Call {
    pub(super) id: String,
    pub(super) name: String,
    /// The arguments as JSON text.
    pub(super) arguments: String,
}

impl Read {
    pub(super) fn of(parts: &[Part]) -> Read {
        let mut read = Read::default();
        for part in parts {
            if let Some(call) = &part.function_call {
                read.calls.push(Call {
                    id: call_id(part.thought_signature.as_deref()),
                    name: call.name.clone(),
                    arguments: call
                        .args
                        .as_ref()
                        .map_or_else(|| "{}".to_owned(), Value::to_string),
                });
            } else if let Some(text) = &part.text {
                let slot = if part.is_thought() {
                    &mut read.reasoning
                } else {
                    &mut read.text
                };
                slot.get_or_insert_with(String::new).push_str(text);
            }
        }
        read
    }
}

/// A new tool-call id, `call_` and 24 hex digits, carrying the part's thought signature (see
/// [`THOUGHT_SIGNATURE_SEPARATOR`]) so it comes back with the call.
pub(super) fn call_id(signature: Option<&str>) -> String {
    let mut id = String::with_capacity(29 + signature.map_or(0, |s| s.len() + 11));
    id.push_str("call_");
    id.extend(
        std::iter::repeat_with(|| char::from_digit(fastrand::u32(0..16), 16).unwrap_or('0'))
            .take(24),
    );
    if let Some(sig) = signature.filter(|s| !s.is_empty()) {
        id.push_str(THOUGHT_SIGNATURE_SEPARATOR);
        id.push_str(sig);
    }
    id
}

/// OpenAI's `finish_reason` for Gemini's; `tool_calls` when the candidate called functions
/// (as LiteLLM does, whatever Gemini's reason).
pub(super) fn finish_reason(reason: Option<&str>, called: bool) -> &'static str {
    if called {
        return "tool_calls";
    }
    match reason {
        Some("MAX_TOKENS") => "length",
        Some(
            "SAFETY"
            | "RECITATION"
            | "BLOCKLIST"
            | "PROHIBITED_CONTENT"
            | "SPII"
            | "IMAGE_SAFETY"
            | "IMAGE_PROHIBITED_CONTENT"
            | "IMAGE_RECITATION",
        ) => "content_filter",
        // STOP, and the rest (OTHER, LANGUAGE, MALFORMED_FUNCTION_CALL, ...): the model stopped.
        _ => "stop",
    }
}

/// OpenAI's usage for `usageMetadata`.
///
/// `prompt_tokens` is `promptTokenCount` (cached tokens included, as OpenAI counts them;
/// `cachedContentTokenCount` is also `prompt_tokens_details.cached_tokens`). Thinking tokens
/// (`thoughtsTokenCount`, also `completion_tokens_details.reasoning_tokens`) are billed as
/// output, so `completion_tokens` is `candidatesTokenCount + thoughtsTokenCount`; as LiteLLM
/// checks, when `promptTokenCount + candidatesTokenCount` already equals `totalTokenCount`,
/// the candidates count includes the thoughts and is used alone. `total_tokens` is
/// `totalTokenCount` (it also counts tool-use prompt tokens), else the sum.
pub(super) fn usage(m: &UsageMetadata) -> Usage {
    let prompt = m.prompt_token_count.unwrap_or(0);
    let candidates = m.candidates_token_count.unwrap_or(0);
    let thoughts = m.thoughts_token_count.unwrap_or(0);
    let inclusive = m.total_token_count == Some(prompt + candidates);
    let completion = if inclusive {
        candidates
    } else {
        candidates + thoughts
    };
    Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: m.total_token_count.unwrap_or(prompt + completion),
        prompt_tokens_details: m
            .cached_content_token_count
            .map(|cached| PromptTokensDetails {
                cached_tokens: Some(cached),
                extra: Map::new(),
            }),
        completion_tokens_details: m.thoughts_token_count.map(|t| CompletionTokensDetails {
            reasoning_tokens: Some(t),
            extra: Map::new(),
        }),
        extra: Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmgate_core::{DeploymentSpec, Endpoint, LlmRequest, ProviderKind};

    fn read(body: Value) -> Result<(Value, Option<Usage>), Error> {
        let llm = LlmRequest::parse(
            Endpoint::ChatCompletions,
            br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#,
        )
        .unwrap();
        let dep = DeploymentSpec::new("g-0", "group", ProviderKind::Gemini, "gemini-2.0-flash");
        let ctx = Ctx::new(&llm, &dep);
        chat(&ctx, body.to_string().as_bytes())
            .map(|a| (serde_json::from_slice(&a.json).unwrap(), a.usage))
    }

    #[test]
    fn text_thoughts_and_usage() {
        let (v, u) = read(json!({
            "candidates": [{"content": {"role": "model", "parts": [
                {"text": "Let me think", "thought": true},
                {"text": "Hello"}, {"text": " world"}]},
                "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 2,
                "totalTokenCount": 17, "thoughtsTokenCount": 5, "cachedContentTokenCount": 4},
            "modelVersion": "gemini-2.0-flash-001",
            "responseId": "resp-1"
        }))
        .unwrap();
        assert_eq!(v["id"], "resp-1");
        assert_eq!(v["model"], "gemini-2.0-flash-001");
        assert_eq!(
            v["choices"],
            json!([{"index": 0, "message": {"role": "assistant", "content": "Hello world",
                     "reasoning_content": "Let me think"}, "finish_reason": "stop"}])
        );
        assert_eq!(
            v["usage"],
            json!({"prompt_tokens": 10, "completion_tokens": 7, "total_tokens": 17,
                   "prompt_tokens_details": {"cached_tokens": 4},
                   "completion_tokens_details": {"reasoning_tokens": 5}})
        );
        assert_eq!(u.unwrap().completion_tokens, 7);
    }

    #[test]
    fn inclusive_candidates_count() {
        let u = usage(&UsageMetadata {
            prompt_token_count: Some(10),
            candidates_token_count: Some(7),
            total_token_count: Some(17),
            thoughts_token_count: Some(5),
            ..UsageMetadata::default()
        });
        assert_eq!((u.completion_tokens, u.total_tokens), (7, 17));
    }

    #[test]
    fn function_calls() {
        let (v, _) = read(json!({
            "candidates": [{"content": {"role": "model", "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                 "thoughtSignature": "c2ln"},
                {"functionCall": {"name": "noop"}}]},
                "finishReason": "STOP"}]
        }))
        .unwrap();
        let msg = &v["choices"][0]["message"];
        assert_eq!(msg["content"], Value::Null);
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
        let calls = msg["tool_calls"].as_array().unwrap();
        assert_eq!(calls.len(), 2);
        let id = calls[0]["id"].as_str().unwrap();
        assert!(
            id.starts_with("call_") && id.ends_with("__thought__c2ln"),
            "{id}"
        );
        assert_eq!(calls[0]["function"]["arguments"], "{\"city\":\"Paris\"}");
        assert_eq!(
            calls[1]["function"],
            json!({"name": "noop", "arguments": "{}"})
        );
        assert_eq!(calls[1]["id"].as_str().unwrap().len(), 29);
        assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    }

    #[test]
    fn finish_reasons_and_blocks() {
        assert_eq!(finish_reason(Some("MAX_TOKENS"), false), "length");
        assert_eq!(finish_reason(Some("SPII"), false), "content_filter");
        assert_eq!(finish_reason(Some("OTHER"), false), "stop");
        let (v, _) = read(json!({
            "candidates": [{"finishReason": "SAFETY", "index": 0}],
        }))
        .unwrap();
        assert_eq!(
            v["choices"],
            json!([{"index": 0, "message": {"role": "assistant", "content": null},
                    "finish_reason": "content_filter"}])
        );
        let (v, u) = read(json!({
            "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
            "usageMetadata": {"promptTokenCount": 3, "totalTokenCount": 3}
        }))
        .unwrap();
        assert_eq!(v["choices"][0]["finish_reason"], "content_filter");
        assert_eq!(v["choices"][0]["message"]["content"], Value::Null);
        assert_eq!(u.unwrap().total_tokens, 3);
    }

    #[test]
    fn bad_bodies() {
        let e = read(json!({"candidates": []})).unwrap_err();
        assert!(matches!(e, Error::InvalidResponse { .. }), "{e}");
        let e = read(json!({"error": {"code": 500, "message": "boom", "status": "INTERNAL"}}))
            .unwrap_err();
        assert!(e.to_string().contains("boom"), "{e}");
        let e = read(json!("nope")).unwrap_err();
        assert!(matches!(e, Error::InvalidResponse { .. }), "{e}");
    }
}
