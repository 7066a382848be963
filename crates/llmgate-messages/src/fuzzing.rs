//! The translations [`MessagesLayer`](crate::MessagesLayer) runs, without the layer: entry
//! points for the fuzz targets (`fuzz/`, through `llmgate::fuzzing`) and their regression test.

use http::Response;
use llmgate_core::{ApiError, BoxBody, LlmRequest};

/// Parses and translates an Anthropic request body into the OpenAI one (errors are 400s).
pub fn to_llm(body: &[u8]) -> Result<LlmRequest, ApiError> {
    crate::request::to_llm(body)
}

/// A complete OpenAI answer (its head and body) as the Anthropic message the client gets.
pub fn complete(parts: http::response::Parts, body: &[u8]) -> Response<BoxBody> {
    crate::response::complete(parts, body)
}

/// An OpenAI event stream as Anthropic's events, translated as each chunk arrives.
pub fn translate(res: Response<BoxBody>) -> Response<BoxBody> {
    crate::stream::translate(res, None)
}
