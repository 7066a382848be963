//! Google AI Studio's Gemini API (`gemini/`), translated both ways.
//!
//! | OpenAI endpoint | Gemini method | notes |
//! |---|---|---|
//! | `/v1/chat/completions` | `POST {api_base}/v1beta/models/{model}:generateContent` | |
//! | ... with `stream: true` | `...:streamGenerateContent?alt=sse` | SSE, translated event by event |
//! | `/v1/completions` | `...:generateContent` | one string prompt as one user message; not streamed |
//! | `/v1/embeddings` | `...:batchEmbedContents` | strings; `float` or `base64` |
//!
//! `api_base` defaults to `https://generativelanguage.googleapis.com`; a base that already ends
//! in `/v1beta` or `/v1` is used as it is. A model id may be given as `models/...` or
//! `tunedModels/...`. The key goes in the `x-goog-api-key` header (never in the URL, so it
//! stays out of logs); the deployment's `headers` are added last and win.
//!
//! # The request
//!
//! - `system` and `developer` messages become `systemInstruction` (their text); `user` stays
//!   `user`, `assistant` becomes `model`. Consecutive messages of the same role are merged into
//!   one content, and so are consecutive tool answers (Gemini wants the answers to parallel
//!   calls in one turn); a user message after tool answers starts a new content.
//! - Content parts: `text`; `image_url` (`data:` URLs as `inlineData`, `http(s)://` and `gs://`
//!   as `fileData` with a MIME type guessed from the extension, else `image/jpeg`);
//!   `input_audio` as `inlineData` (`audio/<format>`); `file` (`file_data` as `inlineData`, a
//!   `file_id` URI as `fileData`). Other part types are unsupported. Empty text is not sent.
//! - Assistant `tool_calls` become `functionCall` parts (arguments parsed to an object); a call
//!   id that carries a thought signature (`call_..__thought__<sig>`, as this dialect and
//!   LiteLLM write them) sends it back as `thoughtSignature`, which Gemini 3 requires.
//! - `tool` messages become `functionResponse` parts, named after the call they answer (looked
//!   up by `tool_call_id`, else the message's `name`); the response is the content parsed as a
//!   JSON object, else `{"content": <the value or text>}`.
//! - `tools` become one `functionDeclarations` tool; parameter schemas are cleaned of what
//!   Gemini rejects (see [`schema`]). OpenAI's `{"type": "web_search"}` is Gemini's
//!   `googleSearch`; Gemini's own tools pass when named by the one key besides `type`, as in
//!   `{"type": "code_execution", "codeExecution": {}}` (`googleSearch`, `codeExecution`,
//!   `urlContext`, snake case too).
//! - `tool_choice`: `auto`/`none`/`required` become `toolConfig.functionCallingConfig.mode`
//!   `AUTO`/`NONE`/`ANY`; a named function is `ANY` with `allowedFunctionNames`.
//! - `generationConfig`: `temperature`, `top_p` (`topP`), `top_k` (`topK`), `max_tokens` /
//!   `max_completion_tokens` (`maxOutputTokens`, the latter wins), `stop` (`stopSequences`),
//!   `seed`, `n` (`candidateCount`), `presence_penalty`, `frequency_penalty`;
//!   `response_format` `json_object` is `responseMimeType: application/json`, `json_schema`
//!   adds `responseSchema` (cleaned, see [`schema`]); `reasoning_effort` becomes
//!   `thinkingConfig` (`thinkingLevel` for Gemini 3, a `thinkingBudget` before, as LiteLLM).
//! - Gemini's own keys pass: `safety_settings`/`safetySettings` and
//!   `cached_content`/`cachedContent` at the top level; `thinkingConfig`,
//!   `responseModalities`, `mediaResolution`, `responseMimeType`, `responseSchema` and
//!   `responseJsonSchema` into `generationConfig`.
//! - Everything else (`logit_bias`, `logprobs`, `user`, `parallel_tool_calls: false` with
//!   several tools, unknown keys, ...) is unsupported: dropped with `drop_params`, else a 400
//!   naming it. The deployment's `default_params` fill what the client did not set.
//!
//! Not sent: a message's `name`, an assistant's `reasoning_content` and `refusal`, an image's
//! `detail`, a part's `cache_control` (Gemini has no such fields; its caching is
//! `cachedContent`). Legacy completions take one prompt string; several prompts or token ids
//! are unsupported.
//!
//! # The answer
//!
//! Each candidate is a choice: its text parts joined as `content` (thought parts as
//! `reasoning_content`), `functionCall` parts as `tool_calls` with generated `call_...` ids
//! (carrying the part's thought signature, see above). `finish_reason`: `tool_calls` when the
//! candidate called functions, else `STOP` is `stop`, `MAX_TOKENS` is `length`, `SAFETY`,
//! `RECITATION`, `BLOCKLIST`, `PROHIBITED_CONTENT`, `SPII` (and the image ones) are
//! `content_filter`, anything else `stop`. A prompt blocked by `promptFeedback.blockReason`
//! (no candidates) is one choice with `content: null` and `finish_reason: content_filter`.
//! The id is Gemini's `responseId` (else a generated `chatcmpl-...`), the model its
//! `modelVersion` (else the deployment's model). Usage comes from `usageMetadata`; see
//! [`answer::usage`] for how thoughts count. Not translated yet: image, audio and
//! code-execution parts, grounding and citation metadata, logprobs.
//!
//! The stream sends each event's candidates as deltas when they arrive: the first chunk of a
//! choice carries `role: "assistant"`, text is `content`, each function call is one fragment
//! with its id and name and one with its arguments, and a candidate's `finishReason` is its
//! final chunk. Gemini's stream has no end event: it ends after the last candidate finishes,
//! which [`Translator::at_eof`](crate::dialect::Translator::at_eof) accepts. Usage is the last
//! event's `usageMetadata`. An event with an `error` ends the stream with an error event.
//!
//! Errors are Google's `{"error": {"code", "message", "status", "details"}}`: the HTTP status is
//! kept, the `status` (`INVALID_ARGUMENT`, `RESOURCE_EXHAUSTED`, ...) becomes the error's
//! `code` and picks its `type`, and a `RetryInfo.retryDelay` detail serves as `Retry-After`
//! when no header says otherwise (see [`error`]).

use bytes::Bytes;
use http::header::HeaderName;
use http::{HeaderMap, Request, StatusCode, Uri};
use http_body_util::Full;
use llmgate_core::{DeploymentSpec, LlmBody};

use crate::dialect::{
    api_base, upstream_uri, Answered, Ctx, Dialect, Framing, KeyHeader, Streaming,
};
use crate::error::Error;

mod answer;
mod embeddings;
mod error;
pub(crate) mod params;
mod request;
mod schema;
mod stream;
mod tools;
mod wire;

/// Google AI Studio's Gemini API.
#[derive(Debug)]
pub(crate) struct Gemini;

/// The dialect `gemini/` deployments speak.
pub(crate) static DIALECT: Gemini = Gemini;

/// Google's API key header.
const API_KEY: HeaderName = HeaderName::from_static("x-goog-api-key");

impl Dialect for Gemini {
    fn build(&self, ctx: &Ctx<'_>) -> Result<Request<Full<Bytes>>, Error> {
        let (call, body) = body(ctx)?;
        let uri = url(ctx.dep, call)?;
        crate::dialect::json_post(ctx.dep, uri, body, KeyHeader::Plain(API_KEY), &[])
    }

    fn read_answer(&self, ctx: &Ctx<'_>, body: Bytes) -> Result<Answered, Error> {
        let body = &body[..];
        match ctx.llm.body() {
            LlmBody::Chat(_) => answer::chat(ctx, body),
            LlmBody::Completion(_) => answer::completion(ctx, body),
            LlmBody::Embedding(r) => embeddings::read(ctx, r, body),
        }
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

/// The Gemini method a request calls and its body (Vertex AI's Gemini takes the same).
pub(crate) fn body(ctx: &Ctx<'_>) -> Result<(Call, Bytes), Error> {
    Ok(match ctx.llm.body() {
        LlmBody::Chat(r) => {
            let call = if ctx.llm.is_stream() {
                Call::Stream
            } else {
                Call::Generate
            };
            (call, request::chat(ctx, r)?)
        }
        // Streamed completions are refused before this (service::serve).
        LlmBody::Completion(r) => (Call::Generate, request::completion(ctx, r)?),
        LlmBody::Embedding(r) => (Call::BatchEmbed, embeddings::body(ctx, r)?),
    })
}

/// A fresh translator of one Gemini stream into OpenAI chunks.
pub(crate) fn translator(ctx: &Ctx<'_>) -> Box<dyn crate::dialect::Translator> {
    Box::new(stream::ChatStream::new(ctx))
}

/// Which Gemini method a request calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    /// `generateContent`.
    Generate,
    /// `streamGenerateContent?alt=sse`.
    Stream,
    /// `batchEmbedContents` (Google AI Studio only).
    BatchEmbed,
}

/// `{api_base}/v1beta/{models/model}:{method}`.
fn url(dep: &DeploymentSpec, call: Call) -> Result<Uri, Error> {
    let base = api_base(dep).ok_or_else(|| Error::config(dep, "`api_base` is required"))?;
    let model = model_path(&dep.model);
    let method = match call {
        Call::Generate => ":generateContent",
        Call::Stream => ":streamGenerateContent?alt=sse",
        Call::BatchEmbed => ":batchEmbedContents",
    };
    let mut url = String::with_capacity(base.len() + model.len() + 48);
    url.push_str(base);
    if !(base.ends_with("/v1beta") || base.ends_with("/v1")) {
        url.push_str("/v1beta");
    }
    url.push('/');
    url.push_str(&model);
    url.push_str(method);
    upstream_uri(dep, url)
}

/// The model's resource name: `models/{id}` unless it already names one.
fn model_path(model: &str) -> String {
    if model.starts_with("models/") || model.starts_with("tunedModels/") {
        model.to_owned()
    } else {
        format!("models/{model}")
    }
}

/// `prefix` and 29 random alphanumerics, as OpenAI's ids look.
fn new_id(prefix: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + 29);
    s.push_str(prefix);
    s.extend(std::iter::repeat_with(fastrand::alphanumeric).take(29));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmgate_core::ProviderKind;

    fn dep(base: Option<&str>, model: &str) -> DeploymentSpec {
        let mut d = DeploymentSpec::new("g-0", "group", ProviderKind::Gemini, model);
        d.api_base = base.map(Into::into);
        d
    }

    #[test]
    fn urls() {
        let d = dep(None, "gemini-2.0-flash");
        assert_eq!(
            url(&d, Call::Generate).unwrap(),
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent"
        );
        assert_eq!(
            url(&d, Call::Stream).unwrap(),
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash\
             :streamGenerateContent?alt=sse"
        );
        let d = dep(
            Some("http://127.0.0.1:9/v1beta/"),
            "models/text-embedding-004",
        );
        assert_eq!(
            url(&d, Call::BatchEmbed).unwrap(),
            "http://127.0.0.1:9/v1beta/models/text-embedding-004:batchEmbedContents"
        );
        let d = dep(Some("https://proxy.test/google"), "tunedModels/mine");
        assert_eq!(
            url(&d, Call::Generate).unwrap(),
            "https://proxy.test/google/v1beta/tunedModels/mine:generateContent"
        );
        let d = dep(Some("proxy.test"), "m");
        assert!(url(&d, Call::Generate).is_err());
    }
}
