//! The Anthropic dialect: OpenAI chat completions to Anthropic's Messages API and back.
//!
//! - **Request** ([`request`], [`conversation`]): `POST {api_base}/v1/messages` with `x-api-key`,
//!   `anthropic-version: 2023-06-01` and the deployment's extra headers (which win). System
//!   and developer messages become `system`; tool calls and tool results become `tool_use` and
//!   `tool_result` blocks; consecutive turns of one role are merged; images become `base64` or
//!   `url` sources; `max_tokens` defaults to [`DEFAULT_MAX_TOKENS`] as LiteLLM's does;
//!   `response_format` is served with a forced tool named [`JSON_TOOL`], as LiteLLM does.
//! - **Answer** ([`answer`]): text blocks joined into `content`, `tool_use` blocks into
//!   `tool_calls`, thinking into `reasoning_content` and `thinking_blocks` (LiteLLM's names),
//!   the stop reason mapped, usage with `prompt_tokens` counting cache reads and writes.
//! - **Stream** ([`stream`]): each Anthropic event becomes zero or more OpenAI chunks as it
//!   arrives.
//! - **Errors** ([`error`]): Anthropic's `{"type": "error", "error": {...}}` with its status;
//!   `overloaded_error` is a retryable 529.
//!
//! Anthropic has no embeddings and no legacy completions: both are
//! [`Error::UnsupportedEndpoint`].

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Request, StatusCode, Uri};
use http_body_util::Full;
use llmgate_core::wire::anthropic::API_VERSION;
use llmgate_core::{DeploymentSpec, Endpoint, LlmBody};

use crate::dialect::{
    api_base, upstream_uri, Answered, Ctx, Dialect, Framing, KeyHeader, Streaming,
};
use crate::error::Error;

mod answer;
mod conversation;
mod error;
mod request;
mod stream;

/// The `max_tokens` sent when neither the client nor the deployment sets one. Anthropic
/// requires the field; LiteLLM sends 4096 ("Anthropic API fails requests when `max_tokens`
/// are not passed. Due to this litellm passes `max_tokens=4096`"), and so do we.
pub(crate) const DEFAULT_MAX_TOKENS: u64 = 4096;

/// The tool that carries a `response_format` answer (LiteLLM's name for it).
pub(crate) const JSON_TOOL: &str = "json_tool_call";

const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
const ANTHROPIC_VERSION: HeaderName = HeaderName::from_static("anthropic-version");

/// Anthropic's Messages API.
#[derive(Debug)]
pub(crate) struct Anthropic;

/// The dialect, registered in [`crate::dialect::of`].
pub(crate) static DIALECT: Anthropic = Anthropic;

impl Dialect for Anthropic {
    fn build(&self, ctx: &Ctx<'_>) -> Result<Request<Full<Bytes>>, Error> {
        let body = messages_body(ctx)?;
        let json = serde_json::to_vec(&body)
            .map_err(|e| ctx.config(format!("could not serialise the request body: {e}")))?;

        crate::dialect::json_post(
            ctx.dep,
            url(ctx.dep)?,
            Bytes::from(json),
            KeyHeader::Plain(X_API_KEY),
            &[(ANTHROPIC_VERSION, HeaderValue::from_static(API_VERSION))],
        )
    }

    fn read_answer(&self, ctx: &Ctx<'_>, body: Bytes) -> Result<Answered, Error> {
        let body = &body[..];
        answer::read(ctx, body)
    }

    fn stream(&self) -> Streaming {
        Streaming::Translate {
            framing: Framing::Sse,
            translator,
        }
    }

    fn error(
        &self,
        dep: &DeploymentSpec,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Error {
        error::from_response(dep, status, headers, body)
    }
}

/// The Messages API body for a chat request (the other endpoints are unsupported).
pub(crate) fn messages_body(
    ctx: &Ctx<'_>,
) -> Result<llmgate_core::wire::anthropic::MessagesRequest, Error> {
    match (ctx.llm.endpoint(), ctx.llm.body()) {
        (Endpoint::ChatCompletions, LlmBody::Chat(chat)) => request::body(ctx, chat),
        (Endpoint::Completions, _) => Err(ctx.unsupported_endpoint("/v1/completions")),
        (Endpoint::Embeddings, _) => Err(ctx.unsupported_endpoint("/v1/embeddings")),
        (Endpoint::ChatCompletions, _) => Err(ctx.unsupported_endpoint("/v1/chat/completions")),
    }
}

/// A fresh translator of one Messages stream into OpenAI chunks.
pub(crate) fn translator(ctx: &Ctx<'_>) -> Box<dyn crate::dialect::Translator> {
    Box::new(stream::MessagesTranslator::new(ctx))
}

/// `{api_base}/v1/messages`. A base that already ends in `/v1` gets `/messages`; one that
/// already ends in `/v1/messages` is used as it is.
pub(crate) fn url(dep: &DeploymentSpec) -> Result<Uri, Error> {
    let base = api_base(dep).ok_or_else(|| Error::config(dep, "`api_base` is required"))?;
    let url = if base.ends_with("/v1/messages") {
        base.to_owned()
    } else if base.ends_with("/v1") {
        format!("{base}/messages")
    } else {
        format!("{base}/v1/messages")
    };
    upstream_uri(dep, url)
}

/// Whether the request asked for `response_format` JSON, answered through [`JSON_TOOL`].
pub(crate) fn json_mode(ctx: &Ctx<'_>) -> bool {
    match ctx.llm.body() {
        LlmBody::Chat(c) => c
            .response_format
            .as_ref()
            .is_some_and(|f| matches!(f.format_type.as_str(), "json_object" | "json_schema")),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmgate_core::ProviderKind;

    #[test]
    fn urls() {
        let mut d = DeploymentSpec::new("a", "g", ProviderKind::Anthropic, "claude");
        assert_eq!(url(&d).unwrap(), "https://api.anthropic.com/v1/messages");
        for (base, want) in [
            ("http://127.0.0.1:9/", "http://127.0.0.1:9/v1/messages"),
            ("http://h/api", "http://h/api/v1/messages"),
            ("http://h/v1", "http://h/v1/messages"),
            ("http://h/v1/messages", "http://h/v1/messages"),
        ] {
            d.api_base = Some(base.into());
            assert_eq!(url(&d).unwrap(), want, "{base}");
        }
        d.api_base = Some("h:80".into());
        assert!(url(&d).is_err());
    }
}
