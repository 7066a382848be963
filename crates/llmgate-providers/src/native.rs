//! The seam for providers that do not speak OpenAI's API (Anthropic, Gemini, Ollama's native
//! API, Bedrock): each is a [`NativeDialect`] that translates the request out and the answer
//! (and each stream event) back into OpenAI's shape.
//!
//! What a dialect writes: how to build its upstream request from an OpenAI request
//! ([`NativeDialect::build`]), how to turn a complete answer into OpenAI's JSON
//! ([`NativeDialect::read_answer`]), how its stream is framed ([`Framing`]), and a
//! [`Translator`] that turns each upstream event into OpenAI chunks. Everything else (mocks,
//! deadlines, the pooled client, error statuses, the relay that frames chunks as SSE, the final
//! usage chunk, `[DONE]`, the error event when a stream breaks) is shared and lives in
//! [`crate::service`] and [`relay`].
//!
//! Parameters a provider cannot take: with `drop_params` (request, deployment or
//! `litellm_settings`) a dialect drops them; without it, it fails the request with
//! [`Error::UnsupportedParam`] naming the parameter, before anything is sent.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Method, Request, StatusCode, Uri};
use http_body_util::Full;
use llmgate_core::wire::ChatCompletionChunk;
use llmgate_core::{DeploymentSpec, LlmRequest, Usage};

use crate::error::Error;

pub(crate) mod ndjson;
pub(crate) mod relay;
pub(crate) mod service;

/// What a dialect is given to build a request or read an answer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    /// The client's request.
    pub(crate) llm: &'a LlmRequest,
    /// The deployment being called.
    pub(crate) dep: &'a DeploymentSpec,
    /// Drop parameters the provider does not support instead of failing.
    pub(crate) drop_params: bool,
}

impl<'a> Ctx<'a> {
    /// The context for `llm` on `dep`: the request's `drop_params` wins over the deployment's.
    pub(crate) fn new(llm: &'a LlmRequest, dep: &'a DeploymentSpec) -> Self {
        Ctx {
            llm,
            dep,
            drop_params: llm.gateway().drop_params.unwrap_or(dep.drop_params),
        }
    }

    /// For a parameter the provider does not support: `Ok(())` when it may be dropped,
    /// else the error that names it.
    pub(crate) fn unsupported(&self, param: &'static str) -> Result<(), Error> {
        if self.drop_params {
            tracing::debug!(provider = %self.dep.provider, param, "dropping unsupported parameter");
            Ok(())
        } else {
            Err(Error::UnsupportedParam {
                provider: self.dep.provider,
                deployment: self.dep.id.clone(),
                param,
            })
        }
    }
}

/// How a dialect sends the deployment's `api_key`.
#[derive(Debug, Clone)]
pub(crate) enum KeyHeader {
    /// `Authorization: Bearer <key>`.
    Bearer,
    /// The key alone in this header (`x-api-key`, `x-goog-api-key`).
    Plain(HeaderName),
}

/// A JSON `POST` to `uri` with `extra` headers (such as `anthropic-version`), the deployment's
/// key as `key` says (when it has one), and the deployment's own headers, which win over ours
/// (the first occurrence of a name replaces, repeats append). The key's header is marked
/// sensitive so it is never logged.
pub(crate) fn json_post(
    dep: &DeploymentSpec,
    uri: Uri,
    body: Bytes,
    key: KeyHeader,
    extra: &[(HeaderName, HeaderValue)],
) -> Result<Request<Full<Bytes>>, Error> {
    let mut req = Request::new(Full::new(body));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = uri;
    let headers = req.headers_mut();
    headers.reserve(2 + extra.len() + dep.headers.len());
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in extra {
        headers.insert(name.clone(), value.clone());
    }
    if let Some(k) = dep
        .api_key
        .as_ref()
        .map(|k| k.expose())
        .filter(|k| !k.is_empty())
    {
        let (name, value) = match &key {
            KeyHeader::Bearer => (
                http::header::AUTHORIZATION,
                HeaderValue::from_str(&format!("Bearer {k}")),
            ),
            KeyHeader::Plain(name) => (name.clone(), HeaderValue::from_str(k)),
        };
        let mut value = value.map_err(|_| Error::Config {
            provider: dep.provider,
            deployment: dep.id.clone(),
            detail: "`api_key` contains characters that are not allowed in an HTTP header".into(),
        })?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    for (i, (name, value)) in dep.headers.iter().enumerate() {
        if dep.headers[..i].iter().any(|(n, _)| n == name) {
            headers.append(name.clone(), value.clone());
        } else {
            headers.insert(name.clone(), value.clone());
        }
    }
    Ok(req)
}

/// A complete answer in OpenAI's shape.
#[derive(Debug)]
pub(crate) struct Answered {
    /// The OpenAI JSON body (`chat.completion`, embeddings `list`, ...).
    pub(crate) json: Bytes,
    /// Its usage, when the provider reported one.
    pub(crate) usage: Option<Usage>,
}

/// How a provider frames its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// Server-sent events (Anthropic, Gemini with `alt=sse`).
    Sse,
    /// One JSON object per line (Ollama).
    Ndjson,
    /// AWS's binary event stream (Bedrock's ConverseStream); decoded by the dialect itself.
    AwsEventStream,
}

/// One upstream stream event, decoded from its framing.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RawEvent {
    /// An SSE event: its name (`message` when unnamed) and data.
    Sse {
        /// `event:`.
        event: String,
        /// `data:` (lines joined with `\n`).
        data: String,
    },
    /// One NDJSON line, without its newline.
    Line(Bytes),
    /// One AWS event-stream message.
    Aws {
        /// The `:event-type` header (`contentBlockDelta`, `messageStop`, `metadata`, ...), or
        /// the `:exception-type` for exceptions.
        event_type: String,
        /// The `:message-type` header (`event` or `exception`).
        message_type: String,
        /// The JSON payload.
        payload: Bytes,
    },
}

/// What the relay should do after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Keep reading.
    Continue,
    /// The provider's stream is complete: send the usage chunk (if asked for) and `[DONE]`.
    Done,
}

/// Turns one provider's stream events into OpenAI chat chunks, keeping whatever state it needs
/// (the message id, tool-call indexes, usage counted so far).
pub(crate) trait Translator: Send {
    /// Translates one event, pushing zero or more chunks to `out`. An `Err` (an error event,
    /// an event that does not parse) ends the stream with an OpenAI error event.
    fn event(&mut self, event: RawEvent, out: &mut Vec<ChatCompletionChunk>)
        -> Result<Flow, Error>;

    /// The usage known so far (final once the stream is done).
    fn usage(&self) -> Option<Usage>;

    /// The upstream body ended without [`Flow::Done`]. Return `true` when that is a clean end
    /// for this provider (Gemini's stream simply stops after its last candidate), pushing any
    /// final chunks; `false` (the default) makes it a broken stream.
    fn at_eof(&mut self, _out: &mut Vec<ChatCompletionChunk>) -> bool {
        false
    }
}

/// A provider's wire format. Implementations are unit structs in `static`s, one per module.
pub(crate) trait NativeDialect: Send + Sync + 'static {
    /// The upstream request (URL, auth headers, body) for `ctx.llm`. An endpoint the provider
    /// does not have is [`Error::UnsupportedEndpoint`].
    fn build(&self, ctx: &Ctx<'_>) -> Result<Request<Full<Bytes>>, Error>;

    /// A complete 2xx answer, in OpenAI's shape. A body that does not parse is
    /// [`Error::InvalidResponse`].
    fn read_answer(&self, ctx: &Ctx<'_>, body: &[u8]) -> Result<Answered, Error>;

    /// How the stream is framed.
    fn framing(&self) -> Framing;

    /// A fresh translator for one stream.
    fn translator(&self, ctx: &Ctx<'_>) -> Box<dyn Translator>;

    /// The error for a non-2xx answer. The default reads OpenAI-style and common error bodies;
    /// dialects override it for their own (Anthropic's `overloaded_error`, Gemini's `status`).
    fn error(
        &self,
        dep: &DeploymentSpec,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Error {
        crate::upstream_error::from_response(dep.provider, dep.id.clone(), status, headers, body)
    }

    /// Decodes an [`Framing::AwsEventStream`] body. Only Bedrock implements it.
    fn decode_aws(&self, _body: hyper::body::Incoming) -> Option<relay::EventStreamBox> {
        None
    }
}
