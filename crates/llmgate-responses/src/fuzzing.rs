//! The translations [`ResponsesLayer`](crate::ResponsesLayer) runs, without the layer or a
//! store: entry points for the fuzz targets (`fuzz/`, through `llmgate::fuzzing`) and their
//! regression test.

use http::Response;
use llmgate_core::{ApiError, BoxBody, Endpoint, LlmBody, LlmRequest};
use serde_json::Value;

/// Parses a Responses request body and translates it into the chat request (errors are 400s).
pub fn to_llm(body: &[u8]) -> Result<LlmRequest, ApiError> {
    let parsed = crate::request::parse(body)?;
    let chat = crate::request::to_chat(&parsed, &[])?;
    Ok(LlmRequest::from_parts(
        Endpoint::ChatCompletions,
        LlmBody::Chat(chat),
        parsed.gateway,
    ))
}

/// A complete chat answer as the response object the client gets (for a fixed request).
pub fn complete(body: &[u8]) -> Result<Value, ApiError> {
    crate::response::complete(base(), body)
}

/// A chat event stream as the Responses API's events, translated as each chunk arrives.
pub fn translate(res: Response<BoxBody>) -> Response<BoxBody> {
    crate::stream::translate(res, base(), None)
}

fn base() -> serde_json::Map<String, Value> {
    let parsed = crate::request::parse(br#"{"model": "m", "input": "hi"}"#);
    parsed
        .map(|p| crate::object::base(&p, "resp_fuzz", 0))
        .unwrap_or_default()
}
