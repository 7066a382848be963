//! The request's log line: one per metered request, when its response ends (a stream's last
//! byte), at INFO under the target `llmgate::request`, so it can be filtered on its own
//! (`RUST_LOG=warn,llmgate::request=info`). Its fields are the spend record's (see
//! `docs/logging.md`); a failure adds `error_class` and the error message, credentials masked.
//!
//! Nothing is built when the target is disabled: [`request_line`] asks `tracing` first. When it
//! is enabled, the subscriber formats the one line from borrowed fields. The message is a
//! plain `message` field (a `&str`, written first, as `tracing`'s own `"{message}"` would be):
//! a subscriber reads it without going through `fmt::Arguments`.

use std::time::Duration;

use llmgate_core::redact;
use llmgate_core::{Deployment, LlmRequest, Secret};

use crate::record::SpendRecord;

/// The target of the request's log line. A subscriber that formats this one line itself (the
/// `llmgate` binary does, for speed) finds it by this target.
pub const TARGET: &str = "llmgate::request";

/// How much of a request's messages, or of its answer, a spend record keeps.
pub(crate) const CAPTURE_LIMIT: usize = 64 * 1024;

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Logs `r`'s line, if anyone listens.
pub(crate) fn request_line(r: &SpendRecord) {
    if !tracing::enabled!(target: TARGET, tracing::Level::INFO) {
        return;
    }
    let t = &r.tokens;
    let class = r.error_class.map(|c| c.as_str());
    let message = if r.outcome.is_success() {
        "request succeeded"
    } else {
        "request failed"
    };
    tracing::info!(
        target: TARGET,
        message,
        request_id = &*r.request_id,
        key_alias = r.key_alias.as_deref(),
        team = r.team_id.as_deref(),
        user = r.user_id.as_deref(),
        model = r.requested_model.as_str(),
        model_group = r.model_group.as_deref(),
        deployment = r.deployment.as_deref(),
        provider = r.provider.as_deref(),
        endpoint = r.endpoint,
        status = r.status,
        outcome = r.outcome.as_str(),
        latency_ms = millis(r.latency),
        ttft_ms = r.time_to_first_token.map(millis),
        prompt_tokens = t.prompt,
        completion_tokens = t.completion,
        cost = r.cost,
        usage_estimated = r.usage_estimated,
        attempts = r.attempts,
        fallbacks = r.fallbacks,
        stream = r.stream,
        cache_hit = r.cache_hit,
        error_class = class,
        error = r.error_message.as_deref(),
    );
}

/// The secret an error from `deployment` may echo: its `api_key`.
pub(crate) fn known_secret(deployment: Option<&Deployment>) -> Option<&str> {
    deployment
        .and_then(|d| d.api_key.as_ref())
        .map(Secret::expose)
}

/// A failure's message for logs and the spend log: credentials masked, at most 1 KiB.
pub(crate) fn error_message(message: &str, deployment: Option<&Deployment>) -> String {
    let known: Vec<&str> = known_secret(deployment).into_iter().collect();
    redact::scrub(message, &known).into_owned()
}

/// The request's messages as JSON, bounded, credentials masked (`store_prompts_in_spend_logs`).
pub(crate) fn messages(llm: &LlmRequest) -> Option<String> {
    let json = match llm.body() {
        llmgate_core::LlmBody::Chat(c) => serde_json::to_string(&c.messages),
        llmgate_core::LlmBody::Completion(c) => serde_json::to_string(&c.prompt),
        llmgate_core::LlmBody::Embedding(e) => serde_json::to_string(&e.input),
    }
    .ok()?;
    Some(bounded(&json))
}

/// `text` with credentials masked, cut to [`CAPTURE_LIMIT`].
pub(crate) fn bounded(text: &str) -> String {
    redact::scrub_within(text, &[], CAPTURE_LIMIT).into_owned()
}
