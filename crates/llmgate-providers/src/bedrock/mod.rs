//! Amazon Bedrock, through its Converse and ConverseStream APIs (`bedrock/<modelId>`).
//!
//! - **Requests** go to `POST {api_base}/model/{modelId}/converse` (or `/converse-stream`),
//!   with the model id percent-encoded (`anthropic.claude-3-5-sonnet-20240620-v1%3A0`), signed
//!   with AWS Signature Version 4 for the service `bedrock` ([`sign`]). The region comes from
//!   `aws_region_name`, else from an `api_base` of the form
//!   `https://bedrock-runtime.{region}.amazonaws.com`. Without AWS credentials, an `api_key` is
//!   sent as a Bedrock API key (`Authorization: Bearer`); with neither the request goes unsigned.
//!   A `converse/` route prefix on the model (`bedrock/converse/<modelId>`, LiteLLM's spelling)
//!   is dropped.
//! - **Bodies** are translated by [`request`]: system messages become `system`, the turns
//!   become `messages` with text, image, `toolUse` and `toolResult` blocks (tool results merged
//!   into one user turn), sampling parameters become `inferenceConfig`, tools `toolConfig`.
//!   Parameters Converse has no field for go through [`Ctx::unsupported`]; parameters that are
//!   not OpenAI's (such as `top_k` or `thinking`) go to `additionalModelRequestFields`, as
//!   LiteLLM sends them.
//! - **Answers** ([`answer`]) and **stream events** ([`stream`], framed as AWS's binary event
//!   stream and decoded by [`eventstream`]) come back in OpenAI's shape, with usage (cache
//!   reads as `prompt_tokens_details.cached_tokens`).
//! - **Errors** ([`error`]) are read from the `x-amzn-errortype` header and `{"message"}` body.
//! - **Embeddings** ([`embeddings`]) use `InvokeModel` for Amazon Titan and Cohere models.
//! - **Legacy completions** are served without streaming, as one user message.

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use llmgate_core::{DeploymentSpec, LlmBody};

use crate::dialect::relay::EventStreamBox;
use crate::dialect::{upstream_uri, Answered, Ctx, Dialect, Framing, Streaming};
use crate::error::Error;

mod answer;
mod embeddings;
pub(crate) mod error;
pub(crate) mod eventstream;
mod messages;
mod request;
pub(crate) mod sign;
mod stream;

/// The Bedrock dialect.
pub(crate) static DIALECT: Bedrock = Bedrock;

/// Amazon Bedrock's Converse API (see the module docs).
#[derive(Debug)]
pub(crate) struct Bedrock;

/// Which Bedrock operation a request calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Converse,
    ConverseStream,
    Invoke,
}

impl Operation {
    fn path(self) -> &'static str {
        match self {
            Operation::Converse => "converse",
            Operation::ConverseStream => "converse-stream",
            Operation::Invoke => "invoke",
        }
    }
}

impl Dialect for Bedrock {
    fn build(&self, ctx: &Ctx<'_>) -> Result<Request<Full<Bytes>>, Error> {
        let (operation, body) = match ctx.llm.body() {
            LlmBody::Chat(req) => {
                let op = if ctx.llm.is_stream() {
                    Operation::ConverseStream
                } else {
                    Operation::Converse
                };
                (op, request::converse(ctx, req)?)
            }
            // Streamed completions are refused before this (service::serve).
            LlmBody::Completion(req) => (Operation::Converse, request::converse_prompt(ctx, req)?),
            LlmBody::Embedding(req) => (Operation::Invoke, embeddings::build(ctx, req)?),
        };
        let uri = url(ctx.dep, operation)?;
        sign::request(ctx.dep, uri, operation == Operation::ConverseStream, body)
    }

    fn read_answer(&self, ctx: &Ctx<'_>, body: Bytes) -> Result<Answered, Error> {
        let body = &body[..];
        match ctx.llm.body() {
            LlmBody::Embedding(req) => embeddings::read(ctx, req, body),
            LlmBody::Completion(_) => answer::read_completion(ctx, body),
            LlmBody::Chat(_) => answer::read_chat(ctx, body),
        }
    }

    fn stream(&self) -> Streaming {
        Streaming::Translate {
            framing: Framing::AwsEventStream,
            translator: |ctx| Box::new(stream::ConverseStream::new(ctx.dep)),
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

    fn decode_aws(&self, body: Incoming) -> Option<EventStreamBox> {
        Some(eventstream::decode(body))
    }
}

/// The event-stream decoder over any stream of reads (the gateway feeds it a response body
/// through [`eventstream::decode`]; the fuzz targets feed it bytes from memory).
#[cfg(feature = "fuzzing")]
pub(crate) fn frames<S, E>(reads: S) -> EventStreamBox
where
    S: futures_util::Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: std::fmt::Display + 'static,
{
    use futures_util::StreamExt as _;
    Box::pin(
        eventstream::Frames::new(reads).map(|e| e.map_err(crate::dialect::relay::Broken::Cause)),
    )
}

/// The model id sent upstream: the deployment's model without LiteLLM's `converse/` route.
fn model_id(dep: &DeploymentSpec) -> &str {
    dep.model.strip_prefix("converse/").unwrap_or(&dep.model)
}

/// `{api_base}/model/{modelId}/{operation}`.
fn url(dep: &DeploymentSpec, operation: Operation) -> Result<Uri, Error> {
    let base = dep
        .api_base
        .as_deref()
        .ok_or_else(|| {
            Error::config(
                dep,
                "bedrock needs `aws_region_name` (or AWS_REGION) or `api_base`",
            )
        })?
        .trim_end_matches('/');
    let model = model_id(dep);
    let op = operation.path();
    let mut url = String::with_capacity(base.len() + model.len() * 3 + 24);
    url.push_str(base);
    url.push_str("/model/");
    percent_encode(model, &mut url);
    url.push('/');
    url.push_str(op);
    upstream_uri(dep, url)
}

/// Percent-encodes everything but RFC 3986's unreserved characters (so `:` and `/` in model
/// ids and ARNs stay inside one path segment).
pub(crate) fn percent_encode(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
}

/// A fresh OpenAI-style id, `{prefix}-` and 24 random alphanumerics (Bedrock's answers have
/// no id of their own).
pub(crate) fn new_id(prefix: &str) -> String {
    let mut id = String::with_capacity(prefix.len() + 25);
    id.push_str(prefix);
    id.push('-');
    for _ in 0..24 {
        id.push(fastrand::alphanumeric());
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmgate_core::ProviderKind;

    fn dep(model: &str, base: Option<&str>) -> DeploymentSpec {
        let mut d = DeploymentSpec::new("b-0", "m", ProviderKind::Bedrock, model);
        d.api_base = base.map(Into::into);
        d
    }

    #[test]
    fn urls_encode_the_model_id() {
        let d = dep(
            "anthropic.claude-3-5-sonnet-20240620-v1:0",
            Some("https://bedrock-runtime.us-east-1.amazonaws.com/"),
        );
        assert_eq!(
            url(&d, Operation::Converse).unwrap().to_string(),
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
        );
        let d = dep(
            "converse/arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-lite-v1:0",
            Some("http://127.0.0.1:9"),
        );
        assert_eq!(
            url(&d, Operation::ConverseStream).unwrap().path(),
            "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.amazon.nova-lite-v1%3A0/converse-stream"
        );
        assert!(matches!(
            url(&dep("m", None), Operation::Invoke),
            Err(Error::Config { .. })
        ));
        assert!(matches!(
            url(&dep("m", Some("bedrock.local")), Operation::Invoke),
            Err(Error::Config { .. })
        ));
    }

    #[test]
    fn ids() {
        let id = new_id("chatcmpl");
        assert!(id.starts_with("chatcmpl-") && id.len() == 33, "{id}");
    }
}
