//! [`SpendRecord`]: what one request cost, and who and what it was for.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use llmgate_core::FailureClass;
use serde::{Deserialize, Serialize};

use crate::cost::Tokens;

/// One request's spend record, built when its response (for a stream, its body) ends.
///
/// A store writes these in batches ([`crate::SpendSink`]); the same batch charges each key's
/// spend: the records carry the key's token (its hash) and the cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpendRecord {
    /// The request's id (`x-llmgate-request-id`).
    pub request_id: Arc<str>,
    /// The virtual key's token (SHA-256 of the secret, lowercase hex); `None` for the master
    /// key and an open gateway.
    pub key_token: Option<String>,
    /// The key's alias.
    pub key_alias: Option<String>,
    /// The key's team.
    pub team_id: Option<String>,
    /// The key's user.
    pub user_id: Option<String>,
    /// The request's end user (its `user` field): LiteLLM's customer.
    pub end_user: Option<String>,
    /// The model the client asked for.
    pub requested_model: String,
    /// The model group that served it (`None` when the request failed before routing).
    pub model_group: Option<Arc<str>>,
    /// The deployment id that answered; for a failed request, the deployment its last attempt
    /// reached (`None` when none did).
    pub deployment: Option<Arc<str>>,
    /// Its provider (`openai`, `anthropic`, ...).
    pub provider: Option<String>,
    /// The model id sent upstream.
    pub upstream_model: Option<Arc<str>>,
    /// The endpoint, such as `/v1/chat/completions`.
    pub endpoint: &'static str,
    /// Token counts (zero when the provider reported none).
    pub tokens: Tokens,
    /// Cost in USD. `None`: unknown (no price for the model, or no usage reported); a failed
    /// request and a cache hit cost 0.
    pub cost: Option<f64>,
    /// The HTTP status the client got (200 for a stream that started, even if it broke later:
    /// [`SpendRecord::outcome`] says how it ended).
    pub status: u16,
    /// How the request ended: a success, or which way it did not.
    pub outcome: Outcome,
    /// Why it failed (`None` for a success): the error's class, a broken stream's, or
    /// `client_closed` ([`FailureClass`]).
    pub error_class: Option<FailureClass>,
    /// The token counts (and so the cost) are the gateway's estimate: the provider reported no
    /// usage (a stream that ended before its usage event, a server that omits `usage`).
    pub usage_estimated: bool,
    /// Whether the answer was streamed.
    pub stream: bool,
    /// Served from the gateway's cache.
    pub cache_hit: bool,
    /// Attempts made (1 when the first succeeded; 0 when none reached a provider).
    pub attempts: u32,
    /// Of those, on fallback groups.
    pub fallbacks: u32,
    /// When the request reached metering.
    pub start_time: SystemTime,
    /// When its response (for a stream, the body) ended.
    pub end_time: SystemTime,
    /// `end_time - start_time`, measured on a monotonic clock.
    pub latency: Duration,
    /// A stream's time to its first byte.
    pub time_to_first_token: Option<Duration>,
    /// The request's `metadata.tags` and `tags`, then the key's tags.
    pub tags: Vec<String>,
    /// Why a failed request failed, in words: the upstream's (or the gateway's) error message,
    /// credentials masked and cut to 1 KiB ([`llmgate_core::redact::scrub`]); `None` for a
    /// success.
    pub error_message: Option<String>,
    /// The request's messages (a chat's `messages`, a completion's `prompt`, an embedding's
    /// `input`) as JSON, only with `store_prompts_in_spend_logs`; bounded, credentials masked.
    pub messages: Option<String>,
    /// The answer as relayed (a JSON answer, or a stream's events), only with
    /// `store_prompts_in_spend_logs`; bounded, credentials masked.
    pub response: Option<String>,
}

impl SpendRecord {
    /// The cost to charge: unknown counts as 0 (and is recorded as unknown).
    pub fn charge(&self) -> f64 {
        self.cost.unwrap_or(0.0)
    }

    /// Whether the request succeeded: a success status and, for a stream, a complete one.
    pub fn succeeded(&self) -> bool {
        self.outcome.is_success()
    }
}

/// How a metered request ended. The spend log keeps LiteLLM's `status` (`success` when this
/// is [`Outcome::Success`], else `failure`) and this as its detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// Answered with a success status; a stream ran to its end.
    Success,
    /// The client went away: before the answer's head (status 499), or while a stream (or an
    /// answer's body) was being sent.
    ClientClosed,
    /// A stream that started failed: the upstream broke off, and the client got an error event
    /// (or the body failed).
    UpstreamError,
    /// A stream cut when the gateway stopped (the `gateway_shutting_down` error event).
    GatewayShutdown,
    /// Answered with an error status.
    Error,
}

impl Outcome {
    /// `success`, `client_closed`, `upstream_error`, `gateway_shutdown` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::ClientClosed => "client_closed",
            Outcome::UpstreamError => "upstream_error",
            Outcome::GatewayShutdown => "gateway_shutdown",
            Outcome::Error => "error",
        }
    }

    /// Whether this is [`Outcome::Success`].
    pub fn is_success(self) -> bool {
        self == Outcome::Success
    }
}
