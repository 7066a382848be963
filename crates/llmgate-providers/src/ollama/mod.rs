//! Ollama's native API (`ollama/` and `ollama_chat/`), translated both ways.
//!
//! | OpenAI endpoint | Ollama endpoint | notes |
//! |---|---|---|
//! | `/v1/chat/completions` | `POST {api_base}/api/chat` | stream as NDJSON, translated chunk by chunk |
//! | `/v1/completions` | `POST {api_base}/api/generate` | one string prompt, not streamed |
//! | `/v1/embeddings` | `POST {api_base}/api/embed` | strings; `float` or `base64` |
//!
//! `api_base` defaults to `http://localhost:11434`; a trailing `/v1` (the base of Ollama's
//! OpenAI-compatible API, which earlier releases called) is ignored. No auth header unless the
//! deployment has an `api_key`, sent as `Authorization: Bearer` (Ollama behind a proxy, Ollama's
//! cloud). The deployment's `headers` are added last and win.
//!
//! # The request
//!
//! - `stream` is always sent (Ollama streams unless told `false`).
//! - `temperature`, `top_p`, `seed`, `presence_penalty`, `frequency_penalty` go to `options`
//!   under the same names, `stop` to `options.stop` (always a list), `max_completion_tokens` /
//!   `max_tokens` to `options.num_predict`.
//! - `response_format`: `json_object` becomes `format: "json"`, `json_schema` becomes
//!   `format: <the schema>`, `text` nothing.
//! - `tools` pass as they are (Ollama takes OpenAI's shape); `tool_choice: "auto"` is Ollama's
//!   behaviour already, `"none"` sends no tools; other choices are unsupported.
//! - `reasoning_effort` becomes `think` (`"low"`/`"medium"`/`"high"` for `gpt-oss` models,
//!   else `true`; `"none"`/`"minimal"` become `false`).
//! - Ollama's own keys pass through at the top level: `keep_alive`, `think`, `format`, an
//!   `options` object (its entries win), and for `/v1/completions` `raw`, `suffix`, `system`,
//!   `template`, `context`, `images`; for embeddings `truncate`.
//! - Any other key that OpenAI does not define goes into `options` (`top_k`, `min_p`,
//!   `num_ctx`, `repeat_penalty`, ...), as LiteLLM does.
//! - OpenAI parameters Ollama cannot honour (`n` > 1, `user`, `logit_bias`, `logprobs`,
//!   `parallel_tool_calls: false`, `tool_choice: "required"`, ...) are unsupported: dropped
//!   with `drop_params`, else a 400 naming them.
//! - The deployment's `default_params` fill what the client did not set, by the same rules.
//!
//! Messages: `developer` becomes `system`; content parts are joined into one text, `data:`
//! image URLs become `images` (their base64 payload); remote image URLs, audio and files are
//! unsupported. Assistant `tool_calls` carry their arguments as a JSON object (OpenAI sends a
//! string); `reasoning_content` becomes `thinking`. A `tool` message carries `tool_name`,
//! looked up from the call it answers. Not sent: a message's `name`, `refusal`,
//! `annotations`, `cache_control` (Ollama has no such fields).
//!
//! # The answer
//!
//! A `chat.completion` with a generated `chatcmpl-` id, `created` from Ollama's `created_at`,
//! the model Ollama names, `finish_reason` `tool_calls` when the model called tools, else
//! `length` for `done_reason: "length"`, else `stop`; tool-call arguments as a JSON string and
//! ids generated where Ollama sends none; `thinking` as `reasoning_content`; usage from
//! `prompt_eval_count` and `eval_count` (Ollama reports no cached or reasoning tokens).
//!
//! Each stream line becomes chunks as it arrives: the first carries `role: "assistant"`, text
//! as `content`, each tool call as one fragment with its id and name and one with its
//! arguments, and the line with `"done": true` ends the stream with the `finish_reason` chunk.
//! A line with `error` ends it with an error event.
//!
//! Errors: Ollama answers `{"error": "..."}` (404 for a model it has not pulled, 400 for a bad
//! request, 500, 503 when its queue is full); the message is kept and the status decides
//! whether another attempt may succeed.
//!
//! Ollama's health probe is `GET {api_base}/api/tags` (the list of local models).

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::Full;
use llmgate_core::DeploymentSpec;

use crate::dialect::{Answered, Ctx, Dialect, Framing, Streaming};
use crate::error::Error;

mod answer;
mod error;
mod messages;
mod params;
mod request;
mod stream;
mod wire;

/// Ollama's native API.
#[derive(Debug)]
pub(crate) struct Ollama;

/// The dialect `ollama/` and `ollama_chat/` deployments speak.
pub(crate) static DIALECT: Ollama = Ollama;

impl Dialect for Ollama {
    fn build(&self, ctx: &Ctx<'_>) -> Result<Request<Full<Bytes>>, Error> {
        request::build(ctx)
    }

    fn read_answer(&self, ctx: &Ctx<'_>, body: Bytes) -> Result<Answered, Error> {
        let body = &body[..];
        answer::read(ctx, body)
    }

    fn stream(&self) -> Streaming {
        Streaming::Translate {
            framing: Framing::Ndjson,
            translator: |ctx| Box::new(stream::ChatStream::new(ctx)),
        }
    }

    /// `GET {api_base}/api/tags`: Ollama's model list, its cheapest health probe (no key, no
    /// body).
    fn probe(&self, dep: &DeploymentSpec) -> Option<Result<Request<Full<Bytes>>, Error>> {
        Some(request::url(dep, "/api/tags").map(|uri| {
            let mut req = Request::new(Full::new(Bytes::new()));
            *req.method_mut() = http::Method::GET;
            *req.uri_mut() = uri;
            req
        }))
    }

    fn error(
        &self,
        dep: &DeploymentSpec,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Error {
        error::from_response(dep.provider, dep.id.clone(), status, headers, body)
    }
}

/// `prefix` and 29 random alphanumerics, as OpenAI's ids look.
fn new_id(prefix: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + 29);
    s.push_str(prefix);
    s.extend(std::iter::repeat_with(fastrand::alphanumeric).take(29));
    s
}
