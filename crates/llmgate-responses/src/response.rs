//! A chat completion -> a response object.
//!
//! The first choice's `reasoning_content` becomes a `reasoning` item (its `reasoning_text`
//! content, or its `summary_text` summary when the request set `reasoning.summary`), its text (or refusal) a
//! `message` item with an `output_text` (or `refusal`) part, each tool call a `function_call`
//! item (in that order). `finish_reason` `length` makes the response `incomplete`
//! (`max_output_tokens`), `content_filter` `incomplete` (`content_filter`); usage becomes
//! `input_tokens` / `output_tokens` with their details.
//!
//! Errors keep the OpenAI shape the stack answered with (`{"error": {...}}`, status and
//! headers): the Responses API's errors are OpenAI's.

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use http::Response;
use llmgate_core::wire::chat::MessageContent;
use llmgate_core::wire::ChatCompletion;
use llmgate_core::{body, ApiError, BoxBody};
use serde_json::{json, Map, Value};

use crate::object::{self, End};

/// The output items and end of a chat completion's first choice; reasoning as a summary when
/// `summary`.
pub(crate) fn output(c: &ChatCompletion, summary: bool) -> (Vec<Value>, End) {
    let mut items = Vec::new();
    let Some(choice) = c.choices.first() else {
        return (items, End::Completed);
    };
    let m = &choice.message;
    if let Some(r) = m.extra.get("reasoning_content").and_then(Value::as_str) {
        if !r.is_empty() {
            items.push(object::reasoning_done(&object::new_id("rs"), r, summary));
        }
    }
    let text = m
        .content
        .as_ref()
        .map(MessageContent::text)
        .unwrap_or_default();
    let refusal = m.extra.get("refusal").and_then(Value::as_str).unwrap_or("");
    let part = if !text.is_empty() {
        Some(object::output_text(&text))
    } else if !refusal.is_empty() {
        Some(json!({"type": "refusal", "refusal": refusal}))
    } else {
        None
    };
    if let Some(part) = part {
        items.push(object::message_item(
            &object::new_id("msg"),
            "completed",
            vec![part],
        ));
    }
    for call in m.tool_calls.iter().flatten() {
        let (name, args) = call
            .function
            .as_ref()
            .map(|f| {
                (
                    f.name.as_deref().unwrap_or(""),
                    f.arguments.as_deref().unwrap_or(""),
                )
            })
            .unwrap_or(("", ""));
        let call_id = call.id.clone().unwrap_or_else(|| object::new_id("call"));
        items.push(object::function_call_item(
            &object::new_id("fc"),
            "completed",
            &call_id,
            name,
            args,
        ));
    }
    (items, End::of_finish(choice.finish_reason.as_deref()))
}

/// The response object for a complete chat answer `body`, over `base` (see
/// [`object::base`]); an answer that does not parse is a 502's error.
pub(crate) fn complete(base: Map<String, Value>, body: &[u8]) -> Result<Value, ApiError> {
    let completion: ChatCompletion = serde_json::from_slice(body).map_err(|e| {
        tracing::warn!(error = %e, "a chat completion that does not parse, for /v1/responses");
        ApiError::new(
            http::StatusCode::BAD_GATEWAY,
            llmgate_core::Origin::Upstream,
            format!("the provider's answer could not be read: {e}"),
        )
    })?;
    let (items, end) = output(&completion, object::wants_summary(&base));
    Ok(object::finish(base, &end, items, completion.usage.as_ref()))
}

/// A JSON response with the inner answer's head.
pub(crate) fn json_response(mut parts: http::response::Parts, v: &Value) -> Response<BoxBody> {
    parts.headers.remove(CONTENT_LENGTH);
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let bytes = serde_json::to_vec(v).unwrap_or_default();
    Response::from_parts(parts, body::full(Bytes::from(bytes)))
}

/// A 200 JSON response.
pub(crate) fn ok_json(v: &Value) -> Response<BoxBody> {
    let (parts, ()) = Response::new(()).into_parts();
    json_response(parts, v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request;

    fn base() -> Map<String, Value> {
        let parsed = request::parse(br#"{"model": "m", "input": "hi"}"#).unwrap();
        object::base(&parsed, "resp_1", 1)
    }

    #[test]
    fn text_reasoning_and_tool_calls() {
        let body = json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1,
            "model": "gpt-4o", "choices": [{"index": 0, "finish_reason": "tool_calls",
            "message": {"role": "assistant", "content": "Checking.", "reasoning_content": "hm",
                "tool_calls": [{"id": "call_1", "type": "function",
                    "function": {"name": "f", "arguments": "{\"a\":1}"}}]}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 7, "total_tokens": 17,
                "prompt_tokens_details": {"cached_tokens": 4},
                "completion_tokens_details": {"reasoning_tokens": 2}}});
        let v = complete(base(), body.to_string().as_bytes()).unwrap();
        assert_eq!(v["status"], "completed");
        assert!(v["completed_at"].is_i64());
        let out = v["output"].as_array().unwrap();
        assert_eq!(out.len(), 3);
        assert_eq!(out[0]["type"], "reasoning");
        assert_eq!(
            out[0]["content"][0],
            json!({"type": "reasoning_text", "text": "hm"})
        );
        assert_eq!(out[1]["type"], "message");
        assert_eq!(out[1]["content"][0], object::output_text("Checking."));
        assert!(out[1]["id"].as_str().unwrap().starts_with("msg_"));
        assert_eq!(out[2]["type"], "function_call");
        assert_eq!(out[2]["call_id"], "call_1");
        assert_eq!(out[2]["arguments"], "{\"a\":1}");
        assert_eq!(
            v["usage"],
            json!({"input_tokens": 10, "input_tokens_details": {"cached_tokens": 4},
                "output_tokens": 7, "output_tokens_details": {"reasoning_tokens": 2},
                "total_tokens": 17})
        );
    }

    #[test]
    fn reasoning_is_a_summary_when_asked() {
        let parsed = request::parse(
            br#"{"model": "m", "input": "hi", "reasoning": {"effort": "low", "summary": "detailed"}}"#,
        )
        .unwrap();
        let body = json!({"id": "c", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": "4", "reasoning_content": "2+2"}}]});
        let v = complete(
            object::base(&parsed, "resp_1", 1),
            body.to_string().as_bytes(),
        )
        .unwrap();
        assert_eq!(
            v["output"][0]["summary"],
            json!([{"type": "summary_text", "text": "2+2"}])
        );
        assert_eq!(v["output"][0]["content"], json!([]));
        assert_eq!(
            v["reasoning"],
            json!({"effort": "low", "summary": "detailed"})
        );
    }

    #[test]
    fn length_is_incomplete() {
        let body = json!({"id": "c", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "finish_reason": "length",
                "message": {"role": "assistant", "content": "trunc"}}]});
        let v = complete(base(), body.to_string().as_bytes()).unwrap();
        assert_eq!(v["status"], "incomplete");
        assert_eq!(
            v["incomplete_details"],
            json!({"reason": "max_output_tokens"})
        );
        assert_eq!(v["completed_at"], Value::Null);
        assert_eq!(v["usage"], Value::Null);
        assert!(complete(base(), b"{oops").is_err());
    }
}
