//! Entry points for the fuzz targets in `fuzz/` and for their regression test
//! (`tests/tests/it/fuzz_regressions.rs`). Not a stable API: hidden from the docs.
//!
//! `/v1/messages` in both directions: the Anthropic request translated into an OpenAI one
//! ([`messages_request`]), and an OpenAI answer or stream translated back into Anthropic's
//! shape ([`messages_answer`], [`messages_stream`]), by the same functions the layer calls;
//! `/v1/responses` the same way ([`responses_request`], [`responses_answer`],
//! [`responses_stream`]).
//! The provider side is [`llmgate_providers::fuzzing`].
//!
//! [`run`] is what every target runs, by name: the fuzz targets call it with libFuzzer's
//! input, and the regression test with each committed corpus and crash file, so both
//! exercise the same code. Inputs that carry an upstream stream start with a selector byte
//! (which sample request, which Bedrock embedding family) and a read size (the stream is cut
//! into reads of that many bytes, 0 for one read), then the bytes.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures_util::stream;
use http::Response;
use http_body::{Body, Frame};
use http_body_util::{BodyExt, StreamBody};
use llmgate_core::{ApiError, BoxBody, Endpoint, LlmRequest};

pub use llmgate_providers::fuzzing::*;

/// Every target, by the name of its directory under `fuzz/corpus/`.
pub const TARGETS: [&str; 20] = [
    "config_yaml",
    "request_chat",
    "request_completions",
    "request_embeddings",
    "request_messages",
    "request_responses",
    "sse_decode",
    "json_object_text",
    "ndjson_decode",
    "bedrock_eventstream",
    "openai_answer",
    "openai_stream",
    "anthropic_answer",
    "anthropic_stream",
    "gemini_answer",
    "gemini_stream",
    "ollama_answer",
    "ollama_stream",
    "bedrock_answer",
    "bedrock_stream",
];

/// Runs the target named `target` on one input. `false` for a name that is not a target.
pub fn run(target: &str, data: &[u8]) -> bool {
    match target {
        "config_yaml" => config_yaml(data),
        "request_chat" => request(Endpoint::ChatCompletions, data),
        "request_completions" => request(Endpoint::Completions, data),
        "request_embeddings" => request(Endpoint::Embeddings, data),
        "request_messages" => {
            if let Ok(llm) = messages_request(data) {
                build_upstream(&llm);
            }
        }
        "request_responses" => {
            if let Ok(llm) = responses_request(data) {
                build_upstream(&llm);
            }
        }
        "sse_decode" => sse_decode(data),
        "json_object_text" => {
            // The stream relay's check and text count of an event, against the serde_json
            // walk it replaced.
            let data = String::from_utf8_lossy(data);
            assert_eq!(
                llmgate_core::text::json_object_text(&data),
                llmgate_core::text::reference::json_object_text(&data),
                "{data:?}"
            );
        }
        "ndjson_decode" => {
            let (size, body) = read_size(data);
            let lines = ndjson(chunks(body, size));
            for line in lines.iter().flatten() {
                assert!(!line.contains(&b'\n'), "a line with a newline: {line:?}");
            }
            assert_eq!(lines, ndjson(chunks(body, 0)), "lines depend on the reads");
        }
        "bedrock_eventstream" => {
            let (size, body) = read_size(data);
            aws_frames(chunks(body, size));
        }
        "openai_answer" => {
            openai_answer(data);
            messages_answer(data);
            let _ = responses_answer(data);
        }
        "openai_stream" => {
            let (size, body) = read_size(data);
            let strip = data.first().is_some_and(|b| b & 0x80 != 0);
            openai_stream(chunks(body, size), strip);
            messages_stream(chunks(body, size));
            responses_stream(chunks(body, size));
        }
        _ => return native(target, data),
    }
    true
}

/// `anthropic_answer`, `gemini_stream`, ...: one native dialect's answer or stream.
fn native(target: &str, data: &[u8]) -> bool {
    let Some((dialect, kind)) = target.split_once('_') else {
        return false;
    };
    let native = match dialect {
        "anthropic" => Native::Anthropic,
        "gemini" => Native::Gemini,
        "ollama" => Native::Ollama,
        "bedrock" => Native::Bedrock,
        _ => return false,
    };
    let selector = data.first().copied().unwrap_or(0);
    let Some(llm) = sample_request(selector & 0x0f) else {
        return false;
    };
    let family = selector >> 4;
    match kind {
        "answer" => {
            let _ = native_answer(native, &llm, family, data.get(1..).unwrap_or_default());
        }
        "stream" => {
            let (size, body) = read_size(data.get(1..).unwrap_or_default());
            native_stream(native, &llm, family, chunks(body, size));
        }
        _ => return false,
    }
    true
}

/// The read size a stream input starts with, and the rest.
fn read_size(data: &[u8]) -> (usize, &[u8]) {
    match data.split_first() {
        Some((size, rest)) => (usize::from(*size & 0x7f), rest),
        None => (0, data),
    }
}

/// Loads a config from YAML text (invalid UTF-8 replaced), with no `.env` or include files
/// and an empty environment.
fn config_yaml(data: &[u8]) {
    let yaml = String::from_utf8_lossy(data);
    let env = std::collections::HashMap::<String, String>::new();
    let _ = llmgate_config::from_yaml(
        &yaml,
        std::path::Path::new("/nonexistent/llmgate-fuzz"),
        &env,
    );
}

/// Parses a client request body and, when it parses, builds it for every provider.
fn request(endpoint: Endpoint, data: &[u8]) {
    if let Ok(llm) = LlmRequest::parse(endpoint, data) {
        build_upstream(&llm);
    }
}

/// Decodes an SSE stream: an event's data never carries a CR, and the events do not depend on
/// how the stream was cut into reads.
fn sse_decode(data: &[u8]) {
    let (size, body) = read_size(data);
    let events = sse_events(chunks(body, size));
    for event in events.iter().flatten() {
        assert!(
            !event.data.contains('\r'),
            "data with a CR: {:?}",
            event.data
        );
    }
    assert_eq!(
        events,
        sse_events(chunks(body, 0)),
        "events depend on the reads"
    );
}

fn sse_events(reads_: Vec<Bytes>) -> Vec<Result<llmgate_core::sse::Event, String>> {
    drain(llmgate_core::sse::decode(reads(reads_)))
        .into_iter()
        .map(|e| e.map_err(|e| e.to_string()))
        .collect()
}

fn reads(chunks: Vec<Bytes>) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> {
    stream::iter(chunks.into_iter().map(Ok))
}

/// Parses and translates a `/v1/messages` request body, as the layer does.
pub fn messages_request(body: &[u8]) -> Result<LlmRequest, ApiError> {
    crate::messages::fuzzing::to_llm(body)
}

/// A complete OpenAI answer as the Anthropic message the client gets: status and body.
pub fn messages_answer(body: &[u8]) -> (u16, Vec<u8>) {
    let (parts, ()) = Response::new(()).into_parts();
    let res = crate::messages::fuzzing::complete(parts, body);
    let status = res.status().as_u16();
    (status, collect(res.into_body()))
}

/// An OpenAI stream, in reads, as the Anthropic events the client gets.
pub fn messages_stream(reads: Vec<Bytes>) -> Vec<u8> {
    let frames = stream::iter(
        reads
            .into_iter()
            .map(|b| Ok::<_, Infallible>(Frame::data(b))),
    );
    let body = BoxBody::new(StreamBody::new(frames).map_err(|e| match e {}));
    let res = crate::messages::fuzzing::translate(Response::new(body));
    collect(res.into_body())
}

/// Parses and translates a `/v1/responses` request body, as the layer does (no history).
pub fn responses_request(body: &[u8]) -> Result<LlmRequest, ApiError> {
    crate::responses::fuzzing::to_llm(body)
}

/// A complete OpenAI answer as the response object the client gets.
pub fn responses_answer(body: &[u8]) -> Result<serde_json::Value, ApiError> {
    crate::responses::fuzzing::complete(body)
}

/// An OpenAI stream, in reads, as the Responses events the client gets.
pub fn responses_stream(reads: Vec<Bytes>) -> Vec<u8> {
    let frames = stream::iter(
        reads
            .into_iter()
            .map(|b| Ok::<_, Infallible>(Frame::data(b))),
    );
    let body = BoxBody::new(StreamBody::new(frames).map_err(|e| match e {}));
    let res = crate::responses::fuzzing::translate(Response::new(body));
    collect(res.into_body())
}

/// Polls a body whose frames are all ready to its end.
fn collect(mut body: BoxBody) -> Vec<u8> {
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = Vec::new();
    while let Poll::Ready(Some(Ok(frame))) = Pin::new(&mut body).poll_frame(&mut cx) {
        if let Ok(data) = frame.into_data() {
            out.extend_from_slice(&data);
        }
    }
    out
}
