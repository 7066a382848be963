//! The terminal service of the llmgate stack: calls the chosen provider and answers in
//! OpenAI's shape.
//!
//! [`ProviderService`] is a `tower::Service<http::Request<B>>` that reads two extensions the
//! layers above it put on the request, [`llmgate_core::LlmRequest`] (the parsed body) and
//! [`llmgate_core::Deployment`] (the router's choice for this attempt), sends the request to
//! the deployment's provider over one pooled [`UpstreamClient`], and answers:
//!
//! - **non-stream**: the provider's JSON body, unchanged, with status 200 and
//!   `content-type: application/json`;
//! - **stream**: `text/event-stream`, each upstream event forwarded as it arrives (never
//!   buffered), ending with `data: [DONE]`; a stream that breaks after its first byte ends
//!   with one OpenAI-shaped error event instead;
//! - **mock** (`mock_response` on the deployment or in the body): an answer built locally in
//!   exactly OpenAI's shape, streamed or not, without any network.
//!
//! On every response it sets the [`llmgate_core::Deployment`] that answered and a
//! [`llmgate_core::UsageSlot`] (filled at once for a complete body, when the usage event passes
//! for a stream). Failures are `Err(`[`llmgate_core::ApiError`]`)` boxed as
//! [`llmgate_core::BoxError`]: the provider's status is kept (a 429 stays a 429), with its
//! `Retry-After`, and whether another attempt may succeed.
//!
//! # The Responses API
//!
//! A request carrying [`llmgate_core::NativeResponses`] (put there by the Responses layer) on a
//! deployment that serves the Responses API itself ([`serves_responses`]) is sent upstream as
//! that call, and its answer (or stream) comes back untranslated, marked
//! [`llmgate_core::NativeAnswer`]; on any other deployment the chat request is served, or the
//! call's [`llmgate_core::NativeResponses::untranslatable`] error is the answer.
//!
//! # Dialects
//!
//! OpenAI's API as it is for OpenAI, Azure OpenAI, OpenRouter, Groq, Mistral, NVIDIA NIM,
//! DeepSeek, Together, Fireworks, xAI, LM Studio, Hugging Face and hosted vLLM; native dialects,
//! translated both ways, for Anthropic (Messages API), Gemini (generateContent), Ollama
//! (`/api/chat`, `/api/generate`, `/api/embed`), Bedrock (Converse, SigV4), Vertex AI (Gemini
//! and Anthropic's models, with Google service-account, user or metadata-server tokens), IBM
//! watsonx.ai (its chat and embeddings APIs, with IAM tokens), SageMaker endpoints (TGI's
//! text generation or messages API, SigV4) and Replicate (predictions, polled or streamed).
//! [`supports`] says which providers this build serves.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use llmgate_core::{Deployment, DeploymentSpec, Endpoint, LlmRequest, ProviderKind};
//! use llmgate_providers::{ProviderService, UpstreamClient, UpstreamClientConfig};
//! use tower::ServiceExt;
//!
//! # async fn run() -> Result<(), llmgate_core::BoxError> {
//! let service = ProviderService::new(UpstreamClient::new(UpstreamClientConfig::default())?);
//!
//! let mut spec = DeploymentSpec::new("gpt-4o-0", "gpt-4o", ProviderKind::OpenAi, "gpt-4o");
//! spec.api_key = Some(llmgate_core::Secret::new("sk-..."));
//! let body = br#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#;
//!
//! let mut req = http::Request::new(());
//! req.extensions_mut().insert(LlmRequest::parse(Endpoint::ChatCompletions, body)?);
//! req.extensions_mut().insert(Deployment(Arc::new(spec)));
//! let res = service.oneshot(req).await?;
//! assert_eq!(res.status(), 200);
//! # Ok(())
//! # }
//! ```

mod anthropic;
mod bedrock;
mod client;
mod dialect;
mod error;
/// Entry points for the fuzz targets (`fuzz/`) and their regression test; not a stable API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod gemini;
mod mock;
mod ollama;
mod openai_compat;
mod prompt;
mod redact;
mod replicate;
mod responses;
mod sagemaker;
mod service;
mod text_stream;
mod tokens;
mod upstream;
mod upstream_error;
mod vertex;
mod watch;
mod watsonx;

pub use client::{UpstreamClient, UpstreamClientConfig};
pub use error::{Error, REQUEST_TIMEOUT};
pub use responses::serves_responses;
pub use service::{ProviderService, ResponseFuture, DEFAULT_MAX_RESPONSE_BYTES};
pub use watch::DEFAULT_STREAM_IDLE_TIMEOUT;

use llmgate_core::ProviderKind;

/// Whether this build can call `kind` (every provider it knows). Deployments of other
/// providers still answer a `mock_response`; a real call fails with a 501.
///
/// Config validation should reject deployments for which this is false, naming the entry.
pub fn supports(kind: ProviderKind) -> bool {
    dialect::of(kind).is_some()
}

/// The Azure OpenAI `api-version` used when a deployment sets no `api_version`: the most recent
/// generally available (non-preview) data-plane inference version.
pub const AZURE_DEFAULT_API_VERSION: &str = "2024-10-21";
