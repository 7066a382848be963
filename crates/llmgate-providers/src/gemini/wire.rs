//! Gemini's answer, as much of it as the translation reads: a `GenerateContentResponse` (the
//! complete answer and each stream event) and a `batchEmbedContents` response.
//!
//! Every field is optional and unknown fields are ignored, so that a field Google adds or
//! leaves out never fails a good answer.

use serde::Deserialize;
use serde_json::Value;

/// `GenerateContentResponse`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Response {
    #[serde(default)]
    pub(super) candidates: Vec<Candidate>,
    #[serde(default)]
    pub(super) prompt_feedback: Option<PromptFeedback>,
    #[serde(default)]
    pub(super) usage_metadata: Option<UsageMetadata>,
    #[serde(default)]
    pub(super) model_version: Option<String>,
    #[serde(default)]
    pub(super) response_id: Option<String>,
    /// Set instead of the rest when a stream fails after it started.
    #[serde(default)]
    pub(super) error: Option<Value>,
}

impl Response {
    /// The reason the prompt was blocked, when it was.
    pub(super) fn block_reason(&self) -> Option<&str> {
        self.prompt_feedback
            .as_ref()
            .and_then(|f| f.block_reason.as_deref())
    }
}

/// One candidate answer.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Candidate {
    #[serde(default)]
    pub(super) content: Option<Content>,
    #[serde(default)]
    pub(super) finish_reason: Option<String>,
    #[serde(default)]
    pub(super) index: Option<u32>,
}

/// A candidate's content.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Content {
    #[serde(default)]
    pub(super) parts: Vec<Part>,
}

/// One part of a candidate's content. Parts this dialect does not translate (inline data,
/// executable code) deserialize with every field `None`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Part {
    #[serde(default)]
    pub(super) text: Option<String>,
    /// A thought summary, not answer text.
    #[serde(default)]
    pub(super) thought: Option<bool>,
    #[serde(default)]
    pub(super) function_call: Option<FunctionCall>,
    #[serde(default)]
    pub(super) thought_signature: Option<String>,
}

impl Part {
    pub(super) fn is_thought(&self) -> bool {
        self.thought == Some(true)
    }
}

/// A `functionCall` part.
#[derive(Debug, Default, Deserialize)]
pub(super) struct FunctionCall {
    #[serde(default)]
    pub(super) name: String,
    #[serde(default)]
    pub(super) args: Option<Value>,
}

/// `promptFeedback`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PromptFeedback {
    #[serde(default)]
    pub(super) block_reason: Option<String>,
}

/// `usageMetadata`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct UsageMetadata {
    #[serde(default)]
    pub(super) prompt_token_count: Option<u64>,
    #[serde(default)]
    pub(super) candidates_token_count: Option<u64>,
    #[serde(default)]
    pub(super) total_token_count: Option<u64>,
    #[serde(default)]
    pub(super) cached_content_token_count: Option<u64>,
    #[serde(default)]
    pub(super) thoughts_token_count: Option<u64>,
}

/// A `batchEmbedContents` response.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Embeddings {
    #[serde(default)]
    pub(super) embeddings: Option<Vec<Embedding>>,
    /// Reported by newer API versions; estimated when absent.
    #[serde(default)]
    pub(super) usage_metadata: Option<UsageMetadata>,
}

/// One `ContentEmbedding`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Embedding {
    #[serde(default)]
    pub(super) values: Vec<f64>,
}
