//! End users (LiteLLM's customers): the `user` a request names, with an optional budget of its
//! own and a block switch (`/customer/*`, `/end_user/*`).
//!
//! The auth layer reads the request's `user` field; a blocked end user is refused, and an end
//! user's budget (its own `max_budget`, else `litellm_settings.max_end_user_budget`) holds its
//! requests as a key's budget does. Spend is recorded per end user with the spend log, and an
//! end user seen for the first time is created by that record (as LiteLLM does).

use serde::{Deserialize, Serialize};

/// An end user's settings and state, as stored. Times are Unix seconds (UTC).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndUser {
    /// The id requests name in their `user` field.
    pub user_id: String,
    /// A human name.
    pub alias: Option<String>,
    /// A blocked end user's requests are refused.
    pub blocked: bool,
    /// USD the end user may spend per budget period; `None`: the gateway's
    /// `max_end_user_budget`, if any.
    pub max_budget: Option<f64>,
    /// Budget period in seconds; `None` never resets.
    pub budget_duration: Option<i64>,
    /// When spend next resets to zero.
    pub budget_reset_at: Option<i64>,
    /// USD spent in the current budget period.
    pub spend: f64,
    /// Requests per minute for this end user, whoever calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpm_limit: Option<u64>,
    /// Tokens per minute for this end user, whoever calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tpm_limit: Option<u64>,
    /// Requests in flight at once for this end user, whoever calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_parallel_requests: Option<u64>,
    /// Stored and shown (LiteLLM's `allowed_model_region`), not acted on.
    pub allowed_model_region: Option<String>,
    /// Stored and shown (LiteLLM's `default_model`), not acted on.
    pub default_model: Option<String>,
    /// Free-form JSON.
    pub metadata: serde_json::Value,
    /// The budget object (`/budget/new`) whose budget the end user takes where it sets none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_id: Option<String>,
    /// USD past which an alert is sent, never refused (from the end user's budget object).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub soft_budget: Option<f64>,
    /// Created at.
    pub created_at: i64,
    /// Last changed at.
    pub updated_at: i64,
}

impl EndUser {
    /// Whether it has an rpm, tpm or parallel limit.
    pub fn has_limits(&self) -> bool {
        self.rpm_limit.is_some() || self.tpm_limit.is_some() || self.max_parallel_requests.is_some()
    }

    /// Whether the budget period has ended at `now`.
    pub fn budget_due(&self, now: i64) -> bool {
        self.budget_reset_at.is_some_and(|r| r <= now)
    }

    /// The next reset after `now` (whole idle periods skipped), as for keys.
    pub fn next_budget_reset(&self, now: i64) -> Option<i64> {
        crate::key::next_reset(self.budget_duration, self.budget_reset_at, now)
    }
}
