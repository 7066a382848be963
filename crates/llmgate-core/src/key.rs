//! Virtual keys as the layers see them, and the clock they are judged by.
//!
//! A [`VirtualKey`] is what `POST /key/generate` creates: who may call, which models, how much
//! they may spend and how fast. The auth layer puts it in the request's extensions as
//! [`Principal::Key`](crate::Principal::Key); the rate limiter reads its limits, metering its
//! token and alias. The secret itself is never kept: [`VirtualKey::token`] is its SHA-256.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A virtual key's settings and state, as stored. Times are Unix seconds (UTC).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VirtualKey {
    /// SHA-256 of the secret, lowercase hex: the key's id everywhere (store, spend, limits).
    pub token: String,
    /// `sk-...abcd`: enough of the secret for a person to recognise it, never enough to use it.
    pub key_name: String,
    /// A human name for the key.
    pub key_alias: Option<String>,
    /// Model groups (or aliases) the key may call; empty means every model.
    pub models: Vec<String>,
    /// USD spent in the current budget period.
    pub spend: f64,
    /// USD the key may spend per budget period; `None` is unlimited.
    pub max_budget: Option<f64>,
    /// Budget period in seconds (`budget_duration: 30d`); `None` never resets.
    pub budget_duration: Option<i64>,
    /// When spend next resets to zero.
    pub budget_reset_at: Option<i64>,
    /// When the key stops working; `None` never.
    pub expires: Option<i64>,
    /// Requests per minute.
    pub rpm_limit: Option<u64>,
    /// Tokens per minute.
    pub tpm_limit: Option<u64>,
    /// Requests in flight at once.
    pub max_parallel_requests: Option<u64>,
    /// Requests per minute, per model group.
    pub model_rpm_limit: HashMap<String, u64>,
    /// Tokens per minute, per model group.
    pub model_tpm_limit: HashMap<String, u64>,
    /// USD per budget period, per model group.
    pub model_max_budget: HashMap<String, f64>,
    /// USD spent in the current budget period, per model group.
    pub model_spend: HashMap<String, f64>,
    /// Free-form JSON the caller attached.
    pub metadata: serde_json::Value,
    /// Team the key belongs to.
    pub team_id: Option<String>,
    /// User the key belongs to.
    pub user_id: Option<String>,
    /// Tags recorded with the key's spend.
    pub tags: Vec<String>,
    /// A blocked key is refused like a deleted one, but keeps its record.
    pub blocked: bool,
    /// LiteLLM's other key settings (`aliases`, `soft_budget`, `key_type`, ...).
    pub extras: KeyExtras,
    /// Created at.
    pub created_at: i64,
    /// Last changed at.
    pub updated_at: i64,
}

/// LiteLLM's key settings beyond budgets and limits, stored together (one JSON column).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KeyExtras {
    /// Model names this key may use for model groups (`{"my-gpt": "gpt-4o"}`): a request for
    /// the alias goes to the group.
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub aliases: HashMap<String, String>,
    /// USD past which an alert is sent (the request is not refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub soft_budget: Option<f64>,
    /// `llm_api`, `management`, `read_only` or `default`: the routes the key may call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_type: Option<String>,
    /// Routes (paths, or LiteLLM's groups `llm_api_routes`, `info_routes`,
    /// `management_routes`) the key may call; empty means every route its type allows.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_routes: Vec<String>,
    /// Request fields the key's requests must carry (`user`, `metadata.generation_name`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub enforced_params: Vec<String>,
    /// LiteLLM's `permissions` (stored and reported, not acted on).
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub permissions: serde_json::Value,
    /// LiteLLM's `guardrails` (stored and reported, not acted on).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub guardrails: Vec<String>,
    /// LiteLLM's per-key `config` (stored and reported, not acted on).
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub config: serde_json::Value,
    /// The budget object (`/budget/new`) whose limits the key takes where it sets none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_id: Option<String>,
}

impl VirtualKey {
    /// Whether the key may call `model` (a group name or alias as the client sent it).
    pub fn allows_model(&self, model: &str) -> bool {
        self.models.is_empty()
            || self
                .models
                .iter()
                .any(|m| m == model || m == "*" || m == "all-proxy-models")
    }

    /// Whether the key has expired at `now`.
    pub fn expired(&self, now: i64) -> bool {
        self.expires.is_some_and(|e| e <= now)
    }

    /// Whether the budget period has ended at `now`, so spend is due to reset.
    pub fn budget_due(&self, now: i64) -> bool {
        self.budget_reset_at.is_some_and(|r| r <= now)
    }

    /// The next reset after `now`, for a key whose period has ended: whole periods are skipped,
    /// so a key idle for three periods resets once, to the period that contains `now`.
    pub fn next_budget_reset(&self, now: i64) -> Option<i64> {
        next_reset(self.budget_duration, self.budget_reset_at, now)
    }
}

/// The next budget reset after `now` for a period of `duration` seconds last due at `reset_at`:
/// whole idle periods are skipped. `None` without a period.
pub(crate) fn next_reset(duration: Option<i64>, reset_at: Option<i64>, now: i64) -> Option<i64> {
    let period = duration.filter(|d| *d > 0)?;
    let mut at = reset_at.unwrap_or(now);
    if at <= now {
        at += ((now - at) / period + 1) * period;
    }
    Some(at)
}

/// The time the layers judge expiry, budget periods and spend by. Injected so tests can move it.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// Unix seconds, UTC.
    fn now(&self) -> i64;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// A clock that moves only when told to: for tests, and for library users who test their own
/// budget handling.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock stopped at `now` (Unix seconds).
    pub fn at(now: i64) -> Self {
        ManualClock(Arc::new(AtomicI64::new(now)))
    }

    /// Moves the clock forward by `secs`.
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A shared clock.
pub type SharedClock = Arc<dyn Clock>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_and_expiry() {
        let mut k = VirtualKey::default();
        assert!(k.allows_model("anything"));
        k.models = vec!["gpt-4o".into()];
        assert!(k.allows_model("gpt-4o") && !k.allows_model("claude"));
        assert!(!k.expired(10));
        k.expires = Some(10);
        assert!(k.expired(10) && !k.expired(9));
    }

    #[test]
    fn budget_resets_skip_whole_idle_periods() {
        let k = VirtualKey {
            budget_duration: Some(100),
            budget_reset_at: Some(1_000),
            ..VirtualKey::default()
        };
        assert!(!k.budget_due(999) && k.budget_due(1_000));
        assert_eq!(k.next_budget_reset(1_000), Some(1_100));
        assert_eq!(k.next_budget_reset(1_350), Some(1_400));
        assert_eq!(VirtualKey::default().next_budget_reset(5), None);
    }
}
