//! OpenAI's wire format: what clients send and what they get back.

pub mod anthropic;
pub mod chat;
pub mod completions;
pub mod embeddings;
pub mod models;
mod usage_de;

use serde::Serialize;
use serde_json::{Map, Value};

pub use chat::{ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, Message};
pub use completions::{Completion, CompletionRequest};
pub use embeddings::{EmbeddingRequest, EmbeddingResponse};
pub use models::{ModelList, ModelObject};

/// Token usage, as OpenAI reports it; also the [`crate::ext`] value metering reads.
///
/// Deserialised by hand (`usage_de`): serde's `flatten` buffers every key of the object in an
/// intermediate map first, which made reading one usage chunk cost ~17,000 instructions.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Usage {
    /// Input tokens.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Output tokens.
    #[serde(default)]
    pub completion_tokens: u64,
    /// Their sum.
    #[serde(default)]
    pub total_tokens: u64,
    /// Cached input tokens and other input details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
    /// Reasoning tokens and other output details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens_details: Option<CompletionTokensDetails>,
    /// Other fields providers add.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `usage.prompt_tokens_details`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PromptTokensDetails {
    /// Input tokens read from the provider's prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<u64>,
    /// Other details.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `usage.completion_tokens_details`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CompletionTokensDetails {
    /// Output tokens spent on reasoning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
    /// Other details.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
