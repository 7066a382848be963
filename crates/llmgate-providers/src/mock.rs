//! `mock_response`: answers built locally, without any network, in exactly OpenAI's shape.
//!
//! The request's `mock_response` (a body field) wins over the deployment's. A text answers as
//! OpenAI would: a `chat.completion` (a legacy `text_completion` on `/completions`, a list of
//! deterministic unit vectors on `/embeddings`) with plausible usage, or, for a stream, real
//! chunks: the role delta, the content in several deltas, the finish chunk, the usage chunk
//! when asked for, and `[DONE]`. A [`MockResponse::Error`] fails as the provider would, with
//! that status and the retry verdict the status implies.
//!
//! Usage is estimated at four characters per token (plus four per chat message), which is what
//! OpenAI's own rule of thumb gives for English text.

use bytes::Bytes;
use futures_util::stream;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::{Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use llmgate_core::wire::chat::MessageContent;
use llmgate_core::wire::{CompletionTokensDetails, PromptTokensDetails};
use llmgate_core::{
    body, sse, BoxBody, BoxError, Deployment, LlmBody, LlmRequest, MockResponse, Usage, UsageSlot,
};
use serde::Serialize;
use serde_json::Value;

use crate::dialect::now;
use crate::error::Error;

/// Components of a mock embedding when the request sets no `dimensions`.
const DEFAULT_DIMENSIONS: usize = 16;
/// The most components a mock embedding gets, whatever `dimensions` asks.
const MAX_DIMENSIONS: usize = 4096;

/// What to answer with, when a mock applies.
pub(crate) enum Mock<'a> {
    Text(&'a str),
    Error { status: u16, message: &'a str },
}

/// The mock for this request, if any: the request's `mock_response` wins.
pub(crate) fn pick<'a>(llm: &'a LlmRequest, dep: &'a Deployment) -> Option<Mock<'a>> {
    if let Some(text) = llm.gateway().mock_response.as_deref() {
        return Some(Mock::Text(text));
    }
    match dep.mock_response.as_ref()? {
        MockResponse::Text(t) => Some(Mock::Text(t)),
        MockResponse::Error { status, message } => Some(Mock::Error {
            status: *status,
            message,
        }),
    }
}

/// The mock answer.
pub(crate) fn respond(
    mock: Mock<'_>,
    llm: &LlmRequest,
    dep: &Deployment,
) -> Result<Response<BoxBody>, Error> {
    let text = match mock {
        Mock::Text(t) => t,
        Mock::Error { status, message } => {
            return Err(Error::Upstream {
                provider: dep.provider,
                deployment: dep.id.clone(),
                status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                message: message.to_owned(),
                error_type: None,
                code: None,
                param: None,
                retry_after: None,
            })
        }
    };
    let model = &*dep.model;
    let created = now();
    let (body, usage, stream) = match llm.body() {
        LlmBody::Chat(r) => {
            let prompt = r
                .messages
                .iter()
                .map(|m| 4 + m.content.as_ref().map_or(0, tokens_of))
                .sum();
            let usage = chat_usage(prompt, tokens(text));
            let id = id("chatcmpl-");
            let body = if llm.is_stream() {
                chat_stream(
                    &id,
                    created,
                    model,
                    text,
                    llm.include_usage().then_some(&usage),
                )
            } else {
                json(&ChatCompletion {
                    id: &id,
                    object: "chat.completion",
                    created,
                    model,
                    choices: [ChatChoice {
                        index: 0,
                        message: AssistantMessage {
                            role: "assistant",
                            content: text,
                            refusal: None,
                            annotations: [],
                        },
                        logprobs: None,
                        finish_reason: "stop",
                    }],
                    usage: &usage,
                    system_fingerprint: None,
                })
            };
            (body, usage, llm.is_stream())
        }
        LlmBody::Completion(r) => {
            let usage = plain_usage(value_tokens(&r.prompt).max(1), tokens(text));
            let id = id("cmpl-");
            let body = if llm.is_stream() {
                completion_stream(
                    &id,
                    created,
                    model,
                    text,
                    llm.include_usage().then_some(&usage),
                )
            } else {
                json(&TextCompletion {
                    id: &id,
                    object: "text_completion",
                    created,
                    model,
                    choices: &[TextChoice {
                        text,
                        index: 0,
                        logprobs: None,
                        finish_reason: Some("stop"),
                    }],
                    usage: Some(Some(&usage)),
                    system_fingerprint: None,
                })
            };
            (body, usage, llm.is_stream())
        }
        LlmBody::Embedding(r) => {
            let inputs = embedding_inputs(&r.input);
            let prompt = inputs
                .iter()
                .map(|t| t.len().div_ceil(4) as u64)
                .sum::<u64>()
                .max(1);
            let dims = r
                .dimensions
                .map_or(DEFAULT_DIMENSIONS, |d| d as usize)
                .clamp(1, MAX_DIMENSIONS);
            let base64 = r.encoding_format.as_deref() == Some("base64");
            let data: Vec<EmbeddingOut> = inputs
                .iter()
                .enumerate()
                .map(|(index, text)| {
                    let v = embed(text, dims);
                    EmbeddingOut {
                        object: "embedding",
                        index,
                        embedding: if base64 {
                            Embedded::Base64(base64_f32(&v))
                        } else {
                            Embedded::Floats(v)
                        },
                    }
                })
                .collect();
            let body = json(&EmbeddingList {
                object: "list",
                data,
                model,
                usage: EmbeddingUsage {
                    prompt_tokens: prompt,
                    total_tokens: prompt,
                },
            });
            let usage = Usage {
                prompt_tokens: prompt,
                total_tokens: prompt,
                ..Usage::default()
            };
            (body, usage, false)
        }
    };
    let slot = UsageSlot::new();
    slot.set(usage);
    let mut res = Response::new(body);
    let headers = res.headers_mut();
    if stream {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    } else {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    res.extensions_mut().insert(dep.clone());
    res.extensions_mut().insert(slot);
    Ok(res)
}

/// `prefix` and 29 random alphanumerics, as OpenAI's ids look.
fn id(prefix: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + 29);
    s.push_str(prefix);
    s.extend(std::iter::repeat_with(fastrand::alphanumeric).take(29));
    s
}

fn tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

fn tokens_of(content: &MessageContent) -> u64 {
    match content {
        MessageContent::Text(t) => tokens(t),
        MessageContent::Parts(parts) => parts
            .iter()
            .filter_map(|p| p.text.as_deref())
            .map(tokens)
            .sum(),
    }
}

fn value_tokens(v: &Value) -> u64 {
    match v {
        Value::String(s) => tokens(s),
        Value::Array(items) => items
            .iter()
            .map(|i| if i.is_number() { 1 } else { value_tokens(i) })
            .sum(),
        _ => 0,
    }
}

fn chat_usage(prompt: u64, completion: u64) -> Usage {
    Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt + completion,
        prompt_tokens_details: Some(PromptTokensDetails {
            cached_tokens: Some(0),
            ..PromptTokensDetails::default()
        }),
        completion_tokens_details: Some(CompletionTokensDetails {
            reasoning_tokens: Some(0),
            ..CompletionTokensDetails::default()
        }),
        ..Usage::default()
    }
}

fn plain_usage(prompt: u64, completion: u64) -> Usage {
    Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt + completion,
        ..Usage::default()
    }
}

fn json<T: Serialize>(v: &T) -> BoxBody {
    // Plain structs of strings and numbers: serialising into a Vec cannot fail.
    body::full(serde_json::to_vec(v).unwrap_or_default())
}

fn events(frames: Vec<Bytes>) -> BoxBody {
    let frames = frames
        .into_iter()
        .map(|b| Ok::<_, BoxError>(Frame::data(b)));
    StreamBody::new(stream::iter(frames)).boxed_unsync()
}

/// The content in pieces of a word each (with its trailing whitespace); they concatenate
/// back to `text`. An empty text is one empty piece.
fn pieces(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut prev_space = false;
    for (i, c) in text.char_indices() {
        if prev_space && !c.is_whitespace() {
            out.push(&text[start..i]);
            start = i;
        }
        prev_space = c.is_whitespace();
    }
    if start < text.len() || out.is_empty() {
        out.push(&text[start..]);
    }
    out
}

fn chat_stream(id: &str, created: u64, model: &str, text: &str, usage: Option<&Usage>) -> BoxBody {
    let frame = |delta: Delta<'_>, finish: Option<&str>| {
        let choices = [ChunkChoice {
            index: 0,
            delta,
            logprobs: None,
            finish_reason: finish,
        }];
        sse::data(&to_vec(&ChatChunk {
            id,
            object: "chat.completion.chunk",
            created,
            model,
            system_fingerprint: None,
            choices: &choices,
            // With include_usage OpenAI sends `"usage": null` in every chunk but the last.
            usage: usage.map(|_| None),
        }))
    };
    let mut frames = Vec::with_capacity(8);
    frames.push(frame(
        Delta {
            role: Some("assistant"),
            content: Some(""),
        },
        None,
    ));
    for piece in pieces(text) {
        frames.push(frame(
            Delta {
                role: None,
                content: Some(piece),
            },
            None,
        ));
    }
    frames.push(frame(
        Delta {
            role: None,
            content: None,
        },
        Some("stop"),
    ));
    if let Some(u) = usage {
        frames.push(sse::data(&to_vec(&ChatChunk {
            id,
            object: "chat.completion.chunk",
            created,
            model,
            system_fingerprint: None,
            choices: &[],
            usage: Some(Some(u)),
        })));
    }
    frames.push(Bytes::from_static(sse::DONE));
    events(frames)
}

fn completion_stream(
    id: &str,
    created: u64,
    model: &str,
    text: &str,
    usage: Option<&Usage>,
) -> BoxBody {
    let frame = |choices: &[TextChoice<'_>], usage: Option<Option<&Usage>>| {
        sse::data(&to_vec(&TextCompletion {
            id,
            object: "text_completion",
            created,
            model,
            choices,
            usage,
            system_fingerprint: None,
        }))
    };
    let nulls = usage.map(|_| None);
    let mut frames = Vec::with_capacity(8);
    for piece in pieces(text) {
        let choice = TextChoice {
            text: piece,
            index: 0,
            logprobs: None,
            finish_reason: None,
        };
        frames.push(frame(&[choice], nulls));
    }
    let fin = TextChoice {
        text: "",
        index: 0,
        logprobs: None,
        finish_reason: Some("stop"),
    };
    frames.push(frame(&[fin], nulls));
    if let Some(u) = usage {
        frames.push(frame(&[], Some(Some(u))));
    }
    frames.push(Bytes::from_static(sse::DONE));
    events(frames)
}

fn to_vec<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

#[derive(Serialize)]
struct ChatCompletion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [ChatChoice<'a>; 1],
    usage: &'a Usage,
    system_fingerprint: Option<&'a str>,
}

#[derive(Serialize)]
struct ChatChoice<'a> {
    index: u32,
    message: AssistantMessage<'a>,
    logprobs: Option<()>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct AssistantMessage<'a> {
    role: &'static str,
    content: &'a str,
    refusal: Option<()>,
    annotations: [(); 0],
}

#[derive(Serialize)]
struct ChatChunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    system_fingerprint: Option<&'a str>,
    choices: &'a [ChunkChoice<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<&'a Usage>>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'a str>,
}

#[derive(Serialize)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
}

#[derive(Serialize)]
struct TextCompletion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: &'a [TextChoice<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<&'a Usage>>,
    system_fingerprint: Option<&'a str>,
}

#[derive(Serialize)]
struct TextChoice<'a> {
    text: &'a str,
    index: u32,
    logprobs: Option<()>,
    finish_reason: Option<&'a str>,
}

#[derive(Serialize)]
struct EmbeddingList<'a> {
    object: &'static str,
    data: Vec<EmbeddingOut>,
    model: &'a str,
    usage: EmbeddingUsage,
}

#[derive(Serialize)]
struct EmbeddingOut {
    object: &'static str,
    index: usize,
    embedding: Embedded,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Embedded {
    Floats(Vec<f32>),
    Base64(String),
}

#[derive(Serialize)]
struct EmbeddingUsage {
    prompt_tokens: u64,
    total_tokens: u64,
}

/// The texts to embed: a string, strings, a token array, or token arrays (as numbers).
fn embedding_inputs(input: &Value) -> Vec<String> {
    match input {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) if items.iter().all(Value::is_number) => vec![input.to_string()],
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        other => vec![other.to_string()],
    }
}

/// A deterministic unit vector for a text (FNV-1a of the text and the component index).
fn embed(text: &str, dims: usize) -> Vec<f32> {
    let raw: Vec<f32> = (0..dims as u64)
        .map(|i| {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in text.bytes().chain(i.to_le_bytes()) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            (h % 2000) as f32 / 1000.0 - 1.0
        })
        .collect();
    let norm = raw.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        raw.into_iter().map(|x| x / norm).collect()
    } else {
        raw
    }
}

/// Little-endian f32s in standard padded base64, as OpenAI sends `encoding_format: base64`.
pub(crate) fn base64_f32(v: &[f32]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_concatenate_back() {
        assert_eq!(pieces("This is a  test"), ["This ", "is ", "a  ", "test"]);
        assert_eq!(pieces(""), [""]);
        assert_eq!(pieces("one").concat(), "one");
    }

    #[test]
    fn base64_of_floats() {
        assert_eq!(base64_f32(&[1.0]), "AACAPw==");
        assert_eq!(base64_f32(&[]), "");
    }

    #[test]
    fn embeddings_are_deterministic_unit_vectors() {
        let a = embed("hello", 8);
        assert_eq!(a, embed("hello", 8));
        assert_ne!(a, embed("world", 8));
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
    }
}
