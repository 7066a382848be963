//! Entry points for the fuzz targets in `fuzz/` and for their regression test
//! (`tests/tests/it/fuzz_regressions.rs`). Not a stable API: hidden from the docs.
//!
//! Each function runs exactly the code the gateway runs on bytes it does not control, without
//! a network: the request translation out to each provider ([`build_upstream`]), the
//! OpenAI-compatible answer reader and stream relay ([`openai_answer`], [`openai_stream`]),
//! each native dialect's answer, error and stream translation ([`native_answer`],
//! [`native_stream`]), and the stream framings ([`ndjson`], [`aws_frames`]; SSE is
//! [`llmgate_core::sse::decode`], public). Upstream bodies arrive as a list of chunks, as the
//! reads of a real body would, so a decoder sees its input cut at every place.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use futures_util::{stream, Stream, StreamExt};
use http::{HeaderMap, StatusCode};
use http_body::Body;
use llmgate_core::{sse, Deployment, StreamCutoff, StreamFailure, UsageSlot};
use llmgate_core::{AwsParams, DeploymentSpec, Endpoint, LlmRequest, ProviderKind, Secret};

use crate::dialect::passthrough::{self, Relayed};
use crate::dialect::relay::{Broken, EventStreamBox, TranslatedRelay};
use crate::dialect::{ndjson::Lines, Ctx, Dialect, Framing, RawEvent, Streaming};
use crate::service::DEFAULT_MAX_RESPONSE_BYTES;
use crate::watch::StreamWatch;

/// The providers with a native dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Native {
    /// Anthropic's Messages API (SSE).
    Anthropic,
    /// Gemini's generateContent (SSE).
    Gemini,
    /// Ollama's native API (NDJSON).
    Ollama,
    /// Bedrock's Converse API (AWS event stream).
    Bedrock,
}

impl Native {
    /// Every native dialect.
    pub const ALL: [Native; 4] = [
        Native::Anthropic,
        Native::Gemini,
        Native::Ollama,
        Native::Bedrock,
    ];

    /// The dialect a fuzz input's selector byte names.
    pub fn from_byte(b: u8) -> Native {
        Native::ALL[usize::from(b) % Native::ALL.len()]
    }

    fn dialect(self) -> &'static dyn Dialect {
        match self {
            Native::Anthropic => &crate::anthropic::DIALECT,
            Native::Gemini => &crate::gemini::DIALECT,
            Native::Ollama => &crate::ollama::DIALECT,
            Native::Bedrock => &crate::bedrock::DIALECT,
        }
    }

    fn provider(self) -> ProviderKind {
        match self {
            Native::Anthropic => ProviderKind::Anthropic,
            Native::Gemini => ProviderKind::Gemini,
            Native::Ollama => ProviderKind::OllamaChat,
            Native::Bedrock => ProviderKind::Bedrock,
        }
    }
}

/// The client requests the answer and stream targets translate for: plain chat, a streamed
/// chat with tools and usage, JSON mode, a completion and embeddings (answers are read
/// differently for each).
const SAMPLES: [(Endpoint, &str); 6] = [
    (
        Endpoint::ChatCompletions,
        r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#,
    ),
    (
        Endpoint::ChatCompletions,
        r#"{"model":"m","stream":true,"stream_options":{"include_usage":true},
            "messages":[{"role":"system","content":"s"},{"role":"user","content":"hi"}],
            "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]}"#,
    ),
    (
        Endpoint::ChatCompletions,
        r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}],
            "response_format":{"type":"json_schema","json_schema":{"name":"x",
            "schema":{"type":"object","properties":{"a":{"type":"string"}}}}}}"#,
    ),
    (Endpoint::Completions, r#"{"model":"m","prompt":"hi"}"#),
    (Endpoint::Embeddings, r#"{"model":"m","input":["a","b"]}"#),
    (
        Endpoint::Embeddings,
        r#"{"model":"m","input":"a","encoding_format":"base64","dimensions":8}"#,
    ),
];

/// One of a few fixed client requests, chosen by a fuzz input's selector byte.
pub fn sample_request(b: u8) -> Option<LlmRequest> {
    let (endpoint, json) = SAMPLES[usize::from(b) % SAMPLES.len()];
    LlmRequest::parse(endpoint, json.as_bytes()).ok()
}

/// The deployment a native dialect is called on for `llm`: keys set, and for Bedrock a model
/// of the family the endpoint needs (`selector` picks between Titan and Cohere embeddings).
fn deployment(native: Native, llm: &LlmRequest, selector: u8) -> DeploymentSpec {
    let model = match (native, llm.endpoint()) {
        (Native::Bedrock, Endpoint::Embeddings) if selector.is_multiple_of(2) => {
            "amazon.titan-embed-text-v2:0"
        }
        (Native::Bedrock, Endpoint::Embeddings) => "cohere.embed-english-v3",
        (Native::Bedrock, _) => "anthropic.claude-3-5-sonnet-20240620-v1:0",
        (Native::Gemini, _) => "gemini-2.0-flash",
        (Native::Anthropic, _) => "claude-3-5-sonnet-latest",
        (Native::Ollama, _) => "llama3",
    };
    let mut dep = DeploymentSpec::new("fuzz-0", "fuzz", native.provider(), model);
    dep.api_key = Some(Secret::new("sk-fuzz"));
    if native == Native::Bedrock {
        dep.aws = Some(AwsParams {
            access_key_id: Some(Secret::new("AKIDFUZZ")),
            secret_access_key: Some(Secret::new("fuzz-secret")),
            session_token: None,
            region: Some("us-east-1".into()),
        });
    }
    dep
}

/// Cuts `body` into reads of `size` bytes (one read when `size` is 0).
pub fn chunks(body: &[u8], size: usize) -> Vec<Bytes> {
    if size == 0 || body.is_empty() {
        return vec![Bytes::copy_from_slice(body)];
    }
    body.chunks(size).map(Bytes::copy_from_slice).collect()
}

fn reads(chunks: Vec<Bytes>) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    stream::iter(chunks.into_iter().map(Ok))
}

/// Polls a stream whose items are all ready (the fuzz inputs are in memory) to its end.
pub fn drain<S: Stream + Unpin>(mut s: S) -> Vec<S::Item> {
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = Vec::new();
    while let Poll::Ready(Some(item)) = s.poll_next_unpin(&mut cx) {
        out.push(item);
    }
    out
}

/// Polls a body whose frames are all ready to its end; its bytes, and whether it failed.
fn collect<B: Body<Data = Bytes> + Unpin>(mut body: B) -> (Vec<u8>, bool) {
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = Vec::new();
    loop {
        match Pin::new(&mut body).poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    out.extend_from_slice(&data);
                }
            }
            Poll::Ready(Some(Err(_))) => return (out, true),
            Poll::Ready(None) | Poll::Pending => return (out, false),
        }
    }
}

/// The NDJSON framing (Ollama's streams): the lines, or the error that ended them.
pub fn ndjson(chunks: Vec<Bytes>) -> Vec<Result<Bytes, String>> {
    drain(Lines::new(reads(chunks), DEFAULT_MAX_RESPONSE_BYTES))
        .into_iter()
        .map(|item| match item {
            Ok(RawEvent::Line(line)) => Ok(line),
            Ok(other) => Err(format!("not a line: {other:?}")),
            Err(e) => Err(format!("{e:?}")),
        })
        .collect()
}

/// The AWS event-stream framing (Bedrock's ConverseStream): each message's event type and
/// payload, or the error that ended them.
pub fn aws_frames(chunks: Vec<Bytes>) -> Vec<Result<(String, Bytes), String>> {
    drain(crate::bedrock::frames(reads(chunks)))
        .into_iter()
        .map(|item| match item {
            Ok(RawEvent::Aws {
                event_type,
                payload,
                ..
            }) => Ok((event_type, payload)),
            Ok(other) => Err(format!("not an AWS message: {other:?}")),
            Err(e) => Err(format!("{e:?}")),
        })
        .collect()
}

/// Builds the upstream request for `llm` in every dialect: the OpenAI-compatible flavors and
/// each native one. Returns how many built (the others refused `llm` with an error).
pub fn build_upstream(llm: &LlmRequest) -> usize {
    let mut built = 0;
    for kind in [
        ProviderKind::OpenAi,
        ProviderKind::Mistral,
        ProviderKind::Azure,
    ] {
        let mut dep = DeploymentSpec::new("fuzz-0", "fuzz", kind, "gpt-4o");
        dep.api_key = Some(Secret::new("sk-fuzz"));
        dep.api_base = Some("https://example.invalid/v1".into());
        dep.api_version = Some("2024-10-21".into());
        let built_one = crate::dialect::of(kind)
            .is_some_and(|dialect| dialect.build(&Ctx::new(llm, &dep)).is_ok());
        built += usize::from(built_one);
    }
    for native in Native::ALL {
        for selector in 0..2 {
            let dep = deployment(native, llm, selector);
            let ctx = Ctx::new(llm, &dep);
            built += usize::from(native.dialect().build(&ctx).is_ok());
        }
    }
    built
}

/// Reads a complete OpenAI-compatible answer: whether it is a valid answer.
pub fn openai_answer(body: &[u8]) -> bool {
    matches!(
        crate::openai_compat::read_answer(body),
        crate::openai_compat::Answer::Ok(_)
    )
}

/// Relays an OpenAI-compatible stream as [`crate::dialect::passthrough`] does, event by event, until
/// `[DONE]`: the bytes the client would get.
pub fn openai_stream(chunks: Vec<Bytes>, strip_usage_chunk: bool) -> Vec<u8> {
    let slot = UsageSlot::new();
    let dep = DeploymentSpec::new("fuzz-0", "fuzz", ProviderKind::OpenAi, "gpt-4o");
    let mut out = BytesMut::new();
    for event in drain(sse::decode(reads(chunks))) {
        let Ok(event) = event else { break };
        if matches!(
            passthrough::relay(
                &event,
                &slot,
                &llmgate_core::TextCount::new(),
                strip_usage_chunk,
                &dep,
                &mut out
            ),
            Relayed::Done
        ) {
            break;
        }
    }
    out.to_vec()
}

/// Reads a complete answer of `native` for `llm` as a success, then the same body as an
/// error answer (400, 429 and 503): the OpenAI JSON on success, or the error's message.
pub fn native_answer(
    native: Native,
    llm: &LlmRequest,
    selector: u8,
    body: &[u8],
) -> Result<Vec<u8>, String> {
    let dep = deployment(native, llm, selector);
    let dialect = native.dialect();
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from_static("7"),
    );
    for status in [
        StatusCode::BAD_REQUEST,
        StatusCode::TOO_MANY_REQUESTS,
        StatusCode::SERVICE_UNAVAILABLE,
    ] {
        let _ = dialect.error(&dep, status, &headers, body).into_api();
    }
    let ctx = Ctx::new(llm, &dep);
    match dialect.read_answer(&ctx, Bytes::copy_from_slice(body)) {
        Ok(answered) => Ok(answered.json.to_vec()),
        Err(e) => Err(e.to_string()),
    }
}

/// Translates a stream of `native` for `llm` through the relay the gateway uses: the OpenAI
/// SSE the client would get.
pub fn native_stream(
    native: Native,
    llm: &LlmRequest,
    selector: u8,
    chunks: Vec<Bytes>,
) -> Vec<u8> {
    let dep = deployment(native, llm, selector);
    let Streaming::Translate {
        framing,
        translator,
    } = native.dialect().stream()
    else {
        return Vec::new();
    };
    let events: EventStreamBox = match framing {
        Framing::Sse => Box::pin(sse::decode(reads(chunks)).map(|e| {
            e.map(|e| RawEvent::Sse {
                event: e.event,
                data: e.data,
            })
            .map_err(|e| Broken::Cause(e.to_string()))
        })),
        Framing::Ndjson => Box::pin(Lines::new(reads(chunks), DEFAULT_MAX_RESPONSE_BYTES)),
        Framing::AwsEventStream => crate::bedrock::frames(reads(chunks)),
    };
    let ctx = Ctx::new(llm, &dep);
    let relay = TranslatedRelay::new(
        events,
        translator(&ctx),
        UsageSlot::new(),
        llm.include_usage(),
        StreamWatch::new(&dep, &StreamCutoff::new()),
        DEFAULT_MAX_RESPONSE_BYTES,
        Deployment(Arc::new(dep.clone())),
        StreamFailure::new(),
    );
    collect(relay).0
}
