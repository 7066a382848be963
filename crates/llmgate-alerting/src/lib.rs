//! Alerting for llmgate: the events the layers emit on the bus ([`llmgate_core::events`])
//! turned into LiteLLM's alert types (`general_settings.alert_types`) and sent to Slack
//! (`SLACK_WEBHOOK_URL`) and generic webhooks (`WEBHOOK_URL`) in the background.
//!
//! - [`Rules`]: which event makes which alert; bursts of 429s and spikes of fallbacks counted
//!   in windows (`alerting_args`).
//! - [`Dispatcher`]: dedup per (type, event, subject) with a re-alert interval, a rate limit,
//!   a bounded queue, retries with backoff; never in a request's way.
//! - [`Alerting`]: the counts (`llmgate_alerts_total`) and recent alerts (`GET
//!   /alerting/recent`).
//!
//! ```no_run
//! # async fn run() -> Result<(), String> {
//! use llmgate_alerting::{Alerting, AlertingSettings, Channel, ChannelKind};
//! use llmgate_core::events::Events;
//!
//! let events = Events::new();
//! let settings = AlertingSettings {
//!     channels: vec![Channel { kind: ChannelKind::Slack, url: "https://hooks.slack.com/services/x".into() }],
//!     ..AlertingSettings::default()
//! };
//! let (alerting, dispatcher) = Alerting::new(settings)?;
//! let subscription = events.subscribe().ok_or("no bus")?;
//! tokio::spawn(dispatcher.run(subscription));
//! // ... hand `events` to the layers; read `alerting.counts()` when scraped.
//! # let _ = alerting; Ok(()) }
//! ```

mod alert;
mod dispatch;
mod kind;
mod report;
mod send;
mod settings;
mod shared;
#[cfg(test)]
mod tests;

pub use alert::{Alert, Rules};
pub use dispatch::{Alerting, Dispatcher, Outcome};
pub use kind::{AlertType, Level};
pub use settings::{AlertingSettings, Channel, ChannelKind};
pub use shared::{DedupFuture, SharedDedup, CLAIM_TIMEOUT};
