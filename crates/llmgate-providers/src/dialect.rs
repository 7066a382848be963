//! The seam between the service and the wire formats providers speak: each provider is served
//! through one [`Dialect`], found by [`of`]. The OpenAI-compatible providers (OpenAI, Azure,
//! OpenRouter, Groq, Mistral, ...) are one dialect in three flavors whose answers pass through
//! untranslated; Anthropic, Gemini, Vertex AI, Ollama's native API and Bedrock each translate the request
//! out and the answer (and each stream event) back into OpenAI's shape.
//!
//! # When each hook runs
//!
//! ```text
//! serve(llm, dep)                                     (crate::service, the one serving path)
//!   mock_response?          -> answered locally; no dialect, no network
//!   NativeResponses + serves_responses(dep)
//!                           -> crate::responses: the Responses call as it is, no dialect
//!   NativeResponses::untranslatable -> refused (only a native deployment can serve it)
//!   of(provider)            -> None: 501 unsupported
//!   credentials(dep)        -> Some: an access token (cached; a failed exchange is the error)
//!   stream()                   stream requests: Translate + /v1/completions is a 400 here
//!   build(ctx)              -> the upstream request; errors here mean nothing was sent
//!   follows()               -> true: the answer is a job (Replicate): each complete 2xx body
//!                              goes to follow(): Done -> read_answer, Poll -> send again after
//!                              a wait, Stream -> its answer is the stream (all under the deadline)
//!   upstream::call             under the attempt's deadline
//!     non-2xx               -> error(dep, status, headers, first 64 KiB)    -> redacted, Err
//!     2xx, complete         -> upstream::collect (size-capped) -> read_answer(ctx, body)
//!     2xx, stream           -> stream(): PassThrough -> passthrough::Relay
//!                                        Translate   -> framing (or decode_aws) -> relay
//!   upstream::answer / upstream::stream: headers, UsageSlot, StreamFailure, Deployment
//!
//! ProviderService::probe(dep)                         (health checks, never a request's path)
//!   probe(dep)              -> None: the caller sends a one-token request instead
//! ```
//!
//! # What a dialect writes, and what it gets
//!
//! A dialect holds its mapping tables and its URL rule, nothing else: [`Dialect::build`] (the
//! upstream request), [`Dialect::read_answer`] (a complete answer as OpenAI's JSON),
//! [`Dialect::stream`] (relayed as it is, or decoded by its [`Framing`] and turned into OpenAI
//! chunks by a [`Translator`]), and, only when its error bodies are its own,
//! [`Dialect::error`]. What it needs comes with its [`Ctx`]: the errors that name the provider
//! and deployment ([`Ctx::config`], [`Ctx::invalid`], [`Ctx::unsupported_endpoint`]), the
//! parameter view ([`Ctx::params`]: typed field, else the client's other fields, else the
//! deployment's `default_params`; [`Params::refuse`] honours `drop_params`), the `api_base`
//! rule ([`api_base`], [`upstream_uri`]), the JSON request ([`json_post`]) and [`now`].
//!
//! Everything else is shared: [`crate::service`] (the order above), [`crate::upstream`]
//! (deadlines, the pooled client, error bodies, the size limit, the response's headers and
//! extensions), [`relay`] (translated chunks framed as SSE, the final usage chunk, `[DONE]`,
//! the error event when a stream breaks, the idle timeout and the stop cutoff) and
//! [`passthrough`] (the same for an OpenAI stream relayed as it is).
//!
//! Parameters a provider cannot take: with `drop_params` (request, deployment or
//! `litellm_settings`) a dialect drops them; without it, it fails the request with
//! [`Error::UnsupportedParam`] naming the parameter, before anything is sent.
//!
//! # Adding a provider
//!
//! One folder, `src/<name>/`, whose `mod.rs` documents the mapping and holds a `static DIALECT`
//! implementing [`Dialect`]; then `mod <name>;` in `lib.rs` and its `ProviderKind`s in [`of`].
//! A provider that speaks OpenAI's API needs no folder: add its kind to [`of`]'s standard arm
//! (or a [`Flavor`](crate::openai_compat::Flavor) when its URL or auth differs).

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::Full;
use llmgate_core::wire::ChatCompletionChunk;
use llmgate_core::{DeploymentSpec, ProviderKind, Usage};

use crate::error::Error;

mod ctx;
pub(crate) mod ndjson;
mod params;
pub(crate) mod passthrough;
pub(crate) mod relay;

pub(crate) use ctx::{api_base, json_post, now, upstream_uri, Ctx, KeyHeader};
pub(crate) use params::Params;

/// The dialect `kind` speaks in this release, if any (every provider has one).
pub(crate) fn of(kind: ProviderKind) -> Option<&'static dyn Dialect> {
    use crate::openai_compat::{AZURE, MISTRAL, STANDARD};
    Some(match kind {
        ProviderKind::OpenAi
        | ProviderKind::HostedVllm
        | ProviderKind::OpenRouter
        | ProviderKind::Groq
        | ProviderKind::NvidiaNim
        | ProviderKind::DeepSeek
        | ProviderKind::TogetherAi
        | ProviderKind::FireworksAi
        | ProviderKind::Xai
        | ProviderKind::LmStudio
        | ProviderKind::HuggingFace => &STANDARD,
        ProviderKind::Mistral => &MISTRAL,
        ProviderKind::Compatible(id) => match id.info().quirk {
            llmgate_core::provider::Quirk::Mistral => &MISTRAL,
            _ => &STANDARD,
        },
        ProviderKind::Azure => &AZURE,
        ProviderKind::Ollama | ProviderKind::OllamaChat => &crate::ollama::DIALECT,
        ProviderKind::Anthropic => &crate::anthropic::DIALECT,
        ProviderKind::Bedrock => &crate::bedrock::DIALECT,
        ProviderKind::Gemini => &crate::gemini::DIALECT,
        ProviderKind::VertexAi => &crate::vertex::DIALECT,
        ProviderKind::Watsonx => &crate::watsonx::DIALECT,
        ProviderKind::Sagemaker => &crate::sagemaker::TGI,
        ProviderKind::SagemakerChat => &crate::sagemaker::CHAT,
        ProviderKind::Replicate => &crate::replicate::DIALECT,
        _ => return None,
    })
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

/// How a dialect's stream reaches the client.
#[derive(Clone, Copy)]
pub(crate) enum Streaming {
    /// The upstream speaks OpenAI's SSE: each event is relayed as it is (checked, never
    /// parsed beyond its usage; see [`passthrough`]). Serves chat and legacy completions.
    PassThrough,
    /// The upstream's own events, decoded by `framing` and turned into OpenAI chat chunks by a
    /// fresh `translator` per stream (see [`relay`]). Serves chat only: a streamed
    /// `/v1/completions` is refused before anything is sent.
    Translate {
        /// How the events are framed.
        framing: Framing,
        /// Makes the translator for one stream, once its head has arrived.
        translator: fn(&Ctx<'_>) -> Box<dyn Translator>,
    },
}

impl std::fmt::Debug for Streaming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Streaming::PassThrough => f.write_str("PassThrough"),
            Streaming::Translate { framing, .. } => f
                .debug_struct("Translate")
                .field("framing", framing)
                .finish_non_exhaustive(),
        }
    }
}

/// What comes after a complete 2xx answer of a provider whose requests start a job (see
/// [`Dialect::follow`]).
#[derive(Debug)]
pub(crate) enum Follow {
    /// The body is the answer: [`Dialect::read_answer`] reads it.
    Done,
    /// Not finished yet: send `req` once `after` has passed and follow its answer.
    Poll {
        /// The request that asks again.
        req: Request<Full<Bytes>>,
        /// How long to wait first.
        after: std::time::Duration,
    },
    /// A stream: its events are read from `req`'s answer as [`Dialect::stream`] says.
    Stream(Request<Full<Bytes>>),
}

/// A provider's wire format: the hooks [`crate::service`]'s `serve` calls, in this order.
/// Implementations are `static`s, one per dialect folder, registered in [`of`].
pub(crate) trait Dialect: Send + Sync + 'static {
    /// Called first for a stream request, before anything is sent (to refuse what it cannot
    /// stream) and once the 2xx head has arrived: how the stream reaches the client. No
    /// default.
    fn stream(&self) -> Streaming;

    /// Called before anything is sent: the upstream request (URL, auth headers, body)
    /// for `ctx.llm`. An endpoint the provider does not have is
    /// [`Error::UnsupportedEndpoint`]; a parameter it cannot take goes through
    /// [`Ctx::unsupported`]. No default.
    fn build(&self, ctx: &Ctx<'_>) -> Result<Request<Full<Bytes>>, Error>;

    /// Called for a non-2xx answer, with up to the first 64 KiB of its body: the error the
    /// client gets (redacted of the deployment's secrets afterwards). The default reads
    /// OpenAI-style and common error bodies and keeps the status and `Retry-After`; dialects
    /// override it for their own (Anthropic's `overloaded_error`, Gemini's `status`).
    fn error(
        &self,
        dep: &DeploymentSpec,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Error {
        crate::upstream::openai_error(dep, status, headers, body)
    }

    /// Called for a complete 2xx answer, with its whole body (at most the size limit): the
    /// OpenAI JSON the client gets, and its usage. Returning `body` itself passes it through
    /// without a copy. A body that does not parse is [`Error::InvalidResponse`]. No default.
    fn read_answer(&self, ctx: &Ctx<'_>, body: Bytes) -> Result<Answered, Error>;

    /// Called by [`crate::ProviderService::probe`] (health checks), never on the request path:
    /// a request cheaper than a completion whose 2xx answer says the deployment is up (Ollama's
    /// `GET /api/tags`: a one-token chat would load the model into memory). Any other answer
    /// is read as an OpenAI-style error. The default (`None`) leaves the caller to check with a
    /// one-token request.
    fn probe(&self, _dep: &DeploymentSpec) -> Option<Result<Request<Full<Bytes>>, Error>> {
        None
    }

    /// Called before [`Dialect::build`]: the credentials to exchange for an access token,
    /// which the service gets (cached, see [`crate::tokens`]) and hands to `build` as
    /// [`Ctx::token`]. A failed exchange fails the request before anything is sent to the
    /// provider. The default (`None`): the dialect sends the deployment's `api_key` itself.
    /// Called once per attempt: keep it cheap (a clone of a few `Arc`s).
    fn credentials(&self, _dep: &DeploymentSpec) -> Option<crate::tokens::TokenKey> {
        None
    }

    /// Whether a request starts a job whose first answer is read whole (stream requests
    /// included) and handed to [`Dialect::follow`]. The default (`false`): the answer is the
    /// answer, or the stream.
    fn follows(&self) -> bool {
        false
    }

    /// Called, when [`Dialect::follows`], with each complete 2xx body (the job's creation,
    /// then each poll's, `polls` counting them) before anything reaches the client: what
    /// comes next. The whole exchange runs under the attempt's deadline. The default:
    /// [`Follow::Done`].
    fn follow(&self, _ctx: &Ctx<'_>, _body: &Bytes, _polls: u32) -> Result<Follow, Error> {
        Ok(Follow::Done)
    }

    /// Called for [`Framing::AwsEventStream`] only, with the 2xx body: its decoded events.
    /// The default (`None`) fails the request with an invalid-response error; only Bedrock
    /// implements it.
    fn decode_aws(&self, _body: hyper::body::Incoming) -> Option<relay::EventStreamBox> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmgate_core::provider::{ALL_PROVIDERS, COMPATIBLE};

    #[test]
    fn every_provider_is_served() {
        let served: Vec<_> = ProviderKind::all()
            .filter(|p| of(*p).is_some())
            .map(|p| p.as_str())
            .collect();
        assert_eq!(
            served.len(),
            ALL_PROVIDERS.len() + COMPATIBLE.len(),
            "{served:?}"
        );
        assert!(served.contains(&"vertex_ai"));
        assert!(served.contains(&"anthropic"));
        assert!(served.contains(&"gemini"));
        assert!(served.contains(&"bedrock"));
    }
}
