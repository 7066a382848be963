//! [`AlertingSettings`]: where alerts go and when they fire, as the facade reads them from
//! `general_settings` (`alerting`, `alert_types`, `alerting_threshold`, `alerting_args`,
//! `alert_to_webhook_url`). Every default is LiteLLM's where LiteLLM has the setting.

use std::collections::HashMap;
use std::time::Duration;

use crate::AlertType;

/// A channel an alert is sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChannelKind {
    /// A Slack incoming webhook (`SLACK_WEBHOOK_URL`): `{"text": ...}`.
    Slack,
    /// A generic webhook (`WEBHOOK_URL`): the alert as JSON (see `docs/alerting.md`).
    Webhook,
}

impl ChannelKind {
    /// `slack`, `webhook` (the `channel` label of `llmgate_alerts_total`).
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Slack => "slack",
            ChannelKind::Webhook => "webhook",
        }
    }
}

/// One channel: its kind and URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    /// Slack or webhook.
    pub kind: ChannelKind,
    /// Where alerts are POSTed.
    pub url: String,
}

/// See the module docs; [`AlertingSettings::default`] has LiteLLM's defaults and no channel.
#[derive(Debug, Clone)]
pub struct AlertingSettings {
    /// `alerting`: the channels.
    pub channels: Vec<Channel>,
    /// `alert_types`: the types sent (empty: every type).
    pub alert_types: Vec<AlertType>,
    /// `alert_to_webhook_url`: a Slack URL per type, instead of the channel's.
    pub slack_url_by_type: HashMap<AlertType, String>,
    /// `alerting_threshold`: an answer slower than this is `llm_too_slow` (LiteLLM: 300 s).
    pub slow_threshold: Duration,
    /// `alerting_args.minor_outage_alert_threshold`: 429s from one deployment within
    /// [`AlertingSettings::burst_window`] that make a burst (LiteLLM: 5).
    pub rate_limit_burst: u32,
    /// `alerting_args.outage_alert_ttl`: the window 429s are counted in (LiteLLM: 60 s).
    pub burst_window: Duration,
    /// `alerting_args.llmgate_fallback_alert_threshold`: fallbacks away from one group within
    /// [`AlertingSettings::fallback_window`] that make a spike (10).
    pub fallback_threshold: u32,
    /// `alerting_args.llmgate_fallback_alert_window`: seconds (60).
    pub fallback_window: Duration,
    /// `alerting_args.budget_alert_ttl`: a budget alert is not repeated within it (LiteLLM:
    /// 24 h).
    pub budget_alert_ttl: Duration,
    /// `alerting_args.llmgate_realert_interval`: any other alert about the same thing is not
    /// repeated within it, unless it recovered meanwhile (300 s).
    pub realert_interval: Duration,
    /// `alerting_args.llmgate_max_alerts_per_minute`: alerts queued per minute, in all; more
    /// are dropped and counted (60).
    pub max_per_minute: u32,
    /// Alerts waiting to be sent; more are dropped and counted (256).
    pub queue_capacity: usize,
    /// Tries per alert and channel after the first, on a timeout, a connection error, 429 or
    /// 5xx (3).
    pub retries: u32,
    /// The first wait between tries, doubling (500 ms).
    pub backoff: Duration,
    /// How long one POST may take (5 s).
    pub timeout: Duration,
    /// Recent alerts kept for `GET /alerting/recent` (100).
    pub recent: usize,
}

impl Default for AlertingSettings {
    fn default() -> Self {
        AlertingSettings {
            channels: Vec::new(),
            alert_types: Vec::new(),
            slack_url_by_type: HashMap::new(),
            slow_threshold: Duration::from_secs(300),
            rate_limit_burst: 5,
            burst_window: Duration::from_secs(60),
            fallback_threshold: 10,
            fallback_window: Duration::from_secs(60),
            budget_alert_ttl: Duration::from_secs(86_400),
            realert_interval: Duration::from_secs(300),
            max_per_minute: 60,
            queue_capacity: 256,
            retries: 3,
            backoff: Duration::from_millis(500),
            timeout: Duration::from_secs(5),
            recent: 100,
        }
    }
}

impl AlertingSettings {
    /// Whether alerts of type `t` are sent.
    pub fn sends(&self, t: AlertType) -> bool {
        self.alert_types.is_empty() || self.alert_types.contains(&t)
    }
}
