//! The OpenAI-compatible dialect: OpenAI, Azure OpenAI, OpenRouter, Groq, Mistral, NVIDIA NIM,
//! DeepSeek, Together, Fireworks, xAI, LM Studio, Hugging Face and hosted vLLM.
//!
//! - **Request** ([`request`]): `POST {api_base}{path}` (Azure:
//!   `{api_base}/openai/deployments/{model}{path}?api-version=..`), the key as
//!   `Authorization: Bearer` (Azure: `api-key`), the deployment's headers last (they win); the
//!   body written straight from the client's typed request with the deployment's model and
//!   `default_params`.
//! - **Answer** ([`answer`]): passed through byte for byte, without a copy; it is only checked
//!   to be JSON and read for its usage. A 200 carrying an `error` object is the provider's
//!   error after all (a 502 with its message).
//! - **Stream**: [`Streaming::PassThrough`]: each event forwarded as it came (see
//!   [`crate::dialect::passthrough`]).
//! - **Errors**: the default reading of OpenAI-style error bodies.

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::Full;

use crate::dialect::{Answered, Ctx, Dialect, Streaming};
use crate::error::Error;
use crate::redact;

mod answer;
pub(crate) mod request;

pub(crate) use answer::{read_answer, Answer};

/// The OpenAI-compatible providers' differences: where the endpoint lives and how the key is
/// sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// `{api_base}{path}`, `Authorization: Bearer`.
    Standard,
    /// Mistral: as standard, but its API rejects `stream_options` (422 `extra_forbidden`) and
    /// sends usage in the last chunk of every stream unasked.
    Mistral,
    /// `{api_base}/openai/deployments/{model}{path}?api-version=..`, `api-key` header.
    Azure,
}

/// OpenAI's API, in one [`Flavor`].
#[derive(Debug)]
pub(crate) struct OpenAiCompat(Flavor);

/// OpenAI's API as OpenAI (and most compatible providers) serve it.
pub(crate) static STANDARD: OpenAiCompat = OpenAiCompat(Flavor::Standard);
/// Mistral's.
pub(crate) static MISTRAL: OpenAiCompat = OpenAiCompat(Flavor::Mistral);
/// Azure OpenAI's.
pub(crate) static AZURE: OpenAiCompat = OpenAiCompat(Flavor::Azure);

impl Dialect for OpenAiCompat {
    fn build(&self, ctx: &Ctx<'_>) -> Result<Request<Full<Bytes>>, Error> {
        request::build(self.0, ctx.dep, ctx.llm)
    }

    fn read_answer(&self, ctx: &Ctx<'_>, body: Bytes) -> Result<Answered, Error> {
        match read_answer(&body) {
            Answer::Ok(usage) => Ok(Answered { json: body, usage }),
            Answer::Error => {
                // A 200 carrying an error object: the provider failed after all.
                let e = crate::upstream::openai_error(
                    ctx.dep,
                    StatusCode::BAD_GATEWAY,
                    &HeaderMap::new(),
                    &body,
                );
                Err(redact::error(e, ctx.dep))
            }
            Answer::Invalid(detail) => Err(ctx.invalid(detail)),
        }
    }

    fn stream(&self) -> Streaming {
        Streaming::PassThrough
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmgate_core::{DeploymentSpec, Endpoint, LlmRequest, ProviderKind};

    #[test]
    fn a_complete_answer_passes_through_without_a_copy() {
        let dep = DeploymentSpec::new("d", "g", ProviderKind::OpenAi, "m");
        let llm = LlmRequest::parse(Endpoint::ChatCompletions, br#"{"model":"g","messages":[]}"#)
            .unwrap();
        let body = Bytes::from_static(
            br#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#,
        );
        let ptr = body.as_ptr();
        let answered = STANDARD
            .read_answer(&Ctx::new(&llm, &dep), body.clone())
            .unwrap();
        assert_eq!(answered.json.as_ptr(), ptr, "the same bytes, not a copy");
        assert_eq!(answered.json, body);
        assert_eq!(answered.usage.unwrap().total_tokens, 3);
        let e = STANDARD
            .read_answer(
                &Ctx::new(&llm, &dep),
                Bytes::from_static(br#"{"error":{"message":"sk-abcdefghijklmnop1234 broke"}}"#),
            )
            .unwrap_err();
        assert!(e.to_string().contains("[REDACTED] broke"), "{e}");
        assert_eq!(llmgate_core::ErrorContract::status(&e), 502);
    }
}
