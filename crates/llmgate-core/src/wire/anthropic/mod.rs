//! Anthropic's Messages API (`POST /v1/messages`): request, response, stream events and error
//! body.
//!
//! Shared by the Anthropic dialect in `llmgate-providers` (which speaks it to Anthropic) and the
//! facade's `/v1/messages` endpoint (which accepts it from Anthropic-format clients such as
//! Claude Code and the Anthropic SDKs). Fields llmgate reads are typed; other fields are kept
//! in `extra` where a struct has one. Content blocks and stream events of types llmgate does
//! not know deserialize as `Unknown`, so a new block type in an answer is skipped rather than
//! failing the whole answer.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The `anthropic-version` header value llmgate sends.
pub const API_VERSION: &str = "2023-06-01";

/// A Messages API request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagesRequest {
    /// The model.
    pub model: String,
    /// The conversation: alternating `user` and `assistant` turns.
    pub messages: Vec<InputMessage>,
    /// Output token limit (required by Anthropic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// The system prompt: text or text blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<Content>,
    /// Custom stop sequences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
    /// Stream the answer as server-sent events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Top-k sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u64>,
    /// Tools the model may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// How the model may use the tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// `{"user_id": ...}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// Extended thinking: `{"type": "enabled", "budget_tokens": N}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Value>,
    /// Every other field, passed through.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputMessage {
    /// `user` or `assistant`.
    pub role: String,
    /// Text or content blocks.
    pub content: Content,
}

/// A message's (or the system prompt's) content: a string or a list of blocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Content blocks.
    Blocks(Vec<ContentBlock>),
}

/// A content block, in requests and answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    /// Text.
    Text {
        /// The text.
        text: String,
        /// A prompt-cache breakpoint.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<Value>,
        /// Citations (answers).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        citations: Option<Value>,
    },
    /// An image.
    Image {
        /// Where the image is.
        source: Source,
        /// A prompt-cache breakpoint.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<Value>,
    },
    /// A document (PDF or text).
    Document {
        /// Where the document is.
        source: Source,
        /// A prompt-cache breakpoint.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<Value>,
        /// `title`, `context`, `citations`.
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    /// A tool call made by the assistant.
    ToolUse {
        /// Call id, `toolu_...`.
        id: String,
        /// Tool name.
        name: String,
        /// The arguments, a JSON object.
        input: Value,
        /// A prompt-cache breakpoint.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<Value>,
    },
    /// The result of a tool call, in a user turn.
    ToolResult {
        /// The call answered.
        tool_use_id: String,
        /// The result: text or text and image blocks.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<Content>,
        /// The tool failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        is_error: Option<bool>,
        /// A prompt-cache breakpoint.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<Value>,
    },
    /// Extended thinking.
    Thinking {
        /// The thinking text.
        thinking: String,
        /// Its signature, which must be sent back unchanged.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
    },
    /// Thinking the safety systems redacted (encrypted).
    RedactedThinking {
        /// The encrypted thinking.
        data: String,
    },
    /// A block type llmgate does not know (server tool results, ...).
    #[serde(other)]
    Unknown,
}

/// Where an image or document is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Source {
    /// Inline bytes.
    Base64 {
        /// `image/png`, `application/pdf`, ...
        media_type: String,
        /// Base64 data.
        data: String,
    },
    /// A URL Anthropic fetches.
    Url {
        /// The URL.
        url: String,
    },
    /// Inline plain text (documents).
    Text {
        /// `text/plain`.
        media_type: String,
        /// The text.
        data: String,
    },
    /// Another source type (Files API, content blocks).
    #[serde(other)]
    Unknown,
}

/// A tool declaration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    /// Name.
    pub name: String,
    /// Absent or `custom` for client tools; a versioned name (`web_search_20250305`, ...)
    /// for Anthropic's server and built-in tools.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub tool_type: Option<String>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the input (client tools).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Value>,
    /// A prompt-cache breakpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<Value>,
    /// Other fields (server tools' settings), passed through.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `tool_choice`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides.
    Auto {
        /// At most one tool call.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    /// The model must use some tool.
    Any {
        /// Exactly one tool call.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    /// The model must use this tool.
    Tool {
        /// The tool.
        name: String,
        /// Exactly one tool call.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    /// No tools.
    None,
}

/// A complete answer (`type: "message"`); also the `message` of a `message_start` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Id, `msg_...`.
    pub id: String,
    /// `message`.
    #[serde(rename = "type", default = "message_type")]
    pub message_type: String,
    /// `assistant`.
    #[serde(default = "assistant")]
    pub role: String,
    /// The model that answered.
    #[serde(default)]
    pub model: String,
    /// The answer's blocks.
    #[serde(default)]
    pub content: Vec<ContentBlock>,
    /// `end_turn`, `max_tokens`, `stop_sequence`, `tool_use`, `pause_turn`, `refusal`.
    #[serde(default)]
    pub stop_reason: Option<String>,
    /// The stop sequence that matched.
    #[serde(default)]
    pub stop_sequence: Option<String>,
    /// Token usage.
    #[serde(default)]
    pub usage: Usage,
}

fn message_type() -> String {
    "message".to_owned()
}

fn assistant() -> String {
    "assistant".to_owned()
}

/// Token usage. In `message_delta` events every field may be absent (Anthropic sends the
/// counts that changed); in a complete answer the two counts are always there.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Input tokens not read from or written to the prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    /// Output tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    /// Input tokens written to the prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    /// Input tokens read from the prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    /// Other fields (`service_tier`, `server_tool_use`, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Usage {
    /// Overwrites the counts `newer` reports (a `message_delta` after `message_start`).
    pub fn update(&mut self, newer: &Usage) {
        let fields = [
            (&mut self.input_tokens, newer.input_tokens),
            (&mut self.output_tokens, newer.output_tokens),
            (
                &mut self.cache_creation_input_tokens,
                newer.cache_creation_input_tokens,
            ),
            (
                &mut self.cache_read_input_tokens,
                newer.cache_read_input_tokens,
            ),
        ];
        for (slot, value) in fields {
            if value.is_some() {
                *slot = value;
            }
        }
    }
}

/// One event of a streamed answer; its SSE event name is its `type` ([`StreamEvent::name`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    /// The message, with empty content and the input usage.
    MessageStart {
        /// The message so far.
        message: Message,
    },
    /// A block begins.
    ContentBlockStart {
        /// The block's index in the message.
        index: u32,
        /// The block, empty (`text: ""`, `input: {}`).
        content_block: ContentBlock,
    },
    /// More of a block.
    ContentBlockDelta {
        /// The block's index.
        index: u32,
        /// What is new.
        delta: BlockDelta,
    },
    /// A block ends.
    ContentBlockStop {
        /// The block's index.
        index: u32,
    },
    /// The message's stop reason and final usage.
    MessageDelta {
        /// `stop_reason`, `stop_sequence`.
        delta: MessageDelta,
        /// Usage (cumulative).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<Usage>,
    },
    /// The end of the stream.
    MessageStop,
    /// Keep-alive.
    Ping,
    /// An error after the stream started.
    Error {
        /// The error.
        error: ErrorObject,
    },
    /// An event type llmgate does not know.
    #[serde(other)]
    Unknown,
}

impl StreamEvent {
    /// The SSE event name (the same as its `type`).
    pub fn name(&self) -> &'static str {
        match self {
            StreamEvent::MessageStart { .. } => "message_start",
            StreamEvent::ContentBlockStart { .. } => "content_block_start",
            StreamEvent::ContentBlockDelta { .. } => "content_block_delta",
            StreamEvent::ContentBlockStop { .. } => "content_block_stop",
            StreamEvent::MessageDelta { .. } => "message_delta",
            StreamEvent::MessageStop => "message_stop",
            StreamEvent::Ping => "ping",
            StreamEvent::Error { .. } => "error",
            StreamEvent::Unknown => "unknown",
        }
    }
}

/// The delta of a `content_block_delta` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BlockDelta {
    /// More text.
    TextDelta {
        /// The text.
        text: String,
    },
    /// More of a tool call's input JSON.
    InputJsonDelta {
        /// A fragment of JSON text.
        partial_json: String,
    },
    /// More thinking.
    ThinkingDelta {
        /// The thinking text.
        thinking: String,
    },
    /// The thinking block's signature.
    SignatureDelta {
        /// The signature.
        signature: String,
    },
    /// Another delta type (citations, ...).
    #[serde(other)]
    Unknown,
}

/// The `delta` of a `message_delta` event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MessageDelta {
    /// Why the message ended.
    #[serde(default)]
    pub stop_reason: Option<String>,
    /// The stop sequence that matched.
    #[serde(default)]
    pub stop_sequence: Option<String>,
}

/// Anthropic's error body: `{"type": "error", "error": {"type": ..., "message": ...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// `error`.
    #[serde(rename = "type")]
    pub body_type: String,
    /// The error.
    pub error: ErrorObject,
}

impl ErrorBody {
    /// An error body of this type and message.
    pub fn new(error_type: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorBody {
            body_type: "error".to_owned(),
            error: ErrorObject {
                error_type: error_type.into(),
                message: message.into(),
            },
        }
    }
}

/// The `error` of an [`ErrorBody`] or a stream `error` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorObject {
    /// `invalid_request_error`, `authentication_error`, `permission_error`, `not_found_error`,
    /// `request_too_large`, `rate_limit_error`, `api_error`, `overloaded_error`.
    #[serde(rename = "type", default)]
    pub error_type: String,
    /// Human-readable message.
    #[serde(default)]
    pub message: String,
}

/// Anthropic's error `type` for an HTTP status.
pub fn error_type_for_status(status: u16) -> &'static str {
    match status {
        400 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        405..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

/// The HTTP status Anthropic answers with for an error `type` (for errors that arrive inside a
/// stream, where there is no status); `None` for a type it does not document.
pub fn status_for_error_type(error_type: &str) -> Option<u16> {
    Some(match error_type {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "api_error" => 500,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
