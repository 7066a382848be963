//! `sagemaker/`: Hugging Face TGI's text generation on a SageMaker endpoint, as LiteLLM sends
//! it.
//!
//! - **Request**: `{"inputs": <prompt>, "parameters": {...}}` (and `"stream": true` for
//!   `invocations-response-stream`). The prompt is built from the messages by
//!   [`crate::prompt`]. Parameters: `max_tokens` (or `max_completion_tokens`) as
//!   `max_new_tokens` (at least 1: TGI refuses 0), `temperature` (0 sent as 0.01, as TGI
//!   wants it strictly positive, unless the deployment sets `aws_sagemaker_allow_zero_temp`),
//!   `top_p`, `stop`, `seed`, `n` as `best_of` with `do_sample: true`; the client's other
//!   fields (`top_k`, `repetition_penalty`, `details`, ...) and the deployment's defaults as
//!   they are.
//! - **Answer**: `[{"generated_text": ...}]` (or one object, or JumpStart's `generation`)
//!   becomes one assistant message; a text that repeats the prompt first (`return_full_text`)
//!   has the prompt cut off. `details.finish_reason` `length` is OpenAI's `length`, anything
//!   else `stop`.
//! - **Usage**: TGI reports none. The prompt's tokens are estimated (one per 4 bytes,
//!   [`llmgate_core::tokens::estimate`]); the completion's are `details.generated_tokens` when
//!   the answer has details, else estimated the same way.

use bytes::Bytes;
use llmgate_core::wire::ChatCompletionRequest;
use serde_json::{json, Value};

use crate::dialect::{now, Answered, Ctx};
use crate::error::Error;
use crate::prompt;

/// The TGI body for a chat request.
pub(super) fn chat_body(ctx: &Ctx<'_>, r: &ChatCompletionRequest) -> Result<Bytes, Error> {
    let s = prompt::sampling(ctx, r)?;
    let mut parameters = s.other;
    if let Some(max) = s.max_tokens {
        parameters.insert("max_new_tokens".into(), json!(max.max(1)));
    }
    if let Some(t) = s.temperature {
        let zero_ok = ctx
            .dep
            .default_params
            .get("aws_sagemaker_allow_zero_temp")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let t = if t == 0.0 && !zero_ok { 0.01 } else { t };
        parameters.insert("temperature".into(), json!(t));
    }
    if let Some(p) = s.top_p {
        parameters.insert("top_p".into(), json!(p));
    }
    if let Some(stop) = s.stop {
        parameters.insert("stop".into(), json!(stop));
    }
    if let Some(seed) = s.seed {
        parameters.insert("seed".into(), json!(seed));
    }
    if let Some(n) = s.n.filter(|n| *n > 1) {
        parameters.insert("best_of".into(), json!(n));
        parameters.insert("do_sample".into(), json!(true));
    }
    let mut body = json!({
        "inputs": prompt::build(ctx.dep, &r.messages),
        "parameters": parameters,
    });
    if ctx.llm.is_stream() {
        body["stream"] = json!(true);
    }
    serde_json::to_vec(&body)
        .map(Bytes::from)
        .map_err(|e| ctx.config(format!("could not serialise the request body: {e}")))
}

/// The prompt a chat request was sent with (for cutting it off and estimating its tokens).
pub(super) fn prompt_of(ctx: &Ctx<'_>, r: &ChatCompletionRequest) -> String {
    prompt::build(ctx.dep, &r.messages)
}

/// TGI's answer as a `chat.completion`.
pub(super) fn read(
    ctx: &Ctx<'_>,
    r: &ChatCompletionRequest,
    body: &[u8],
) -> Result<Answered, Error> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ctx.invalid(format!("not a text-generation answer: {e}")))?;
    let first = match &v {
        Value::Array(items) => items.first(),
        other => Some(other),
    }
    .ok_or_else(|| ctx.invalid("the answer is an empty list"))?;
    let text = first
        .get("generated_text")
        .or_else(|| first.get("generation"))
        .and_then(Value::as_str)
        .ok_or_else(|| ctx.invalid("the answer has no `generated_text`"))?;
    let prompt = prompt_of(ctx, r);
    let text = text.strip_prefix(prompt.as_str()).unwrap_or(text);
    let details = first.get("details");
    let finish = match details.and_then(|d| d["finish_reason"].as_str()) {
        Some("length") => "length",
        _ => "stop",
    };
    let completion = details
        .and_then(|d| d["generated_tokens"].as_u64())
        .unwrap_or_else(|| llmgate_core::tokens::estimate(text));
    let usage = crate::text_stream::usage(llmgate_core::tokens::estimate(&prompt), completion);
    let out = json!({
        "id": crate::bedrock::new_id("chatcmpl"),
        "object": "chat.completion",
        "created": now(),
        "model": &*ctx.dep.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": finish}],
        "usage": usage,
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

    fn chat(body: &str) -> LlmRequest {
        LlmRequest::parse(Endpoint::ChatCompletions, body.as_bytes()).unwrap()
    }

    fn req(llm: &LlmRequest) -> &ChatCompletionRequest {
        match llm.body() {
            LlmBody::Chat(r) => r,
            _ => unreachable!(),
        }
    }

    #[test]
    fn bodies_map_openai_parameters() {
        let mut dep = DeploymentSpec::new("s", "g", ProviderKind::Sagemaker, "my-endpoint");
        dep.default_params = json!({"top_k": 5, "model_id": "ic-1"})
            .as_object()
            .cloned()
            .unwrap();
        let llm = chat(
            r#"{"model":"g","messages":[{"role":"user","content":"hi"}],"max_tokens":0,
                "temperature":0,"stop":"x","n":2,"repetition_penalty":1.1,"stream":true}"#,
        );
        let ctx = Ctx::new(&llm, &dep);
        let v: Value = serde_json::from_slice(&chat_body(&ctx, req(&llm)).unwrap()).unwrap();
        assert_eq!(
            v,
            json!({"inputs": "hi", "stream": true, "parameters": {
                "max_new_tokens": 1, "temperature": 0.01, "stop": ["x"], "best_of": 2,
                "do_sample": true, "repetition_penalty": 1.1, "top_k": 5}})
        );
        let llm = chat(
            r#"{"model":"g","messages":[],"tools":[{"type":"function","function":{"name":"f"}}]}"#,
        );
        assert!(chat_body(&Ctx::new(&llm, &dep), req(&llm)).is_err());
    }

    #[test]
    fn answers() {
        let dep = DeploymentSpec::new("s", "g", ProviderKind::Sagemaker, "my-endpoint");
        let llm = chat(r#"{"model":"g","messages":[{"role":"user","content":"say hi"}]}"#);
        let ctx = Ctx::new(&llm, &dep);
        let a = read(&ctx, req(&llm), br#"[{"generated_text": "say hi there"}]"#).unwrap();
        let v: Value = serde_json::from_slice(&a.json).unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], " there");
        assert_eq!(
            v["usage"],
            json!({"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4})
        );
        let a = read(
            &ctx,
            req(&llm),
            br#"{"generated_text": "ok", "details": {"finish_reason": "length", "generated_tokens": 7}}"#,
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&a.json).unwrap();
        assert_eq!(v["choices"][0]["finish_reason"], "length");
        assert_eq!(a.usage.unwrap().completion_tokens, 7);
        assert!(read(&ctx, req(&llm), b"[]").is_err());
    }
}
