//! [`Alert`]: one alert, made from an event by [`Rules`], and its two payloads (Slack's
//! `{"text"}` as LiteLLM sends it; the webhook's JSON).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use llmgate_core::events::{Backend, BudgetOf, BudgetOwner, Event};
use serde_json::{json, Map, Value};

use crate::{AlertType, AlertingSettings, Level};

/// One alert. `event` and `subject` name what it is about: alerts with the same type, event
/// and subject are duplicates.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// The `alert_types` name it belongs to.
    pub alert_type: AlertType,
    /// How bad.
    pub level: Level,
    /// What happened: `deployment_cooled_down`, `budget_crossed`, ...
    pub event: &'static str,
    /// `proxy` for the gateway's own state, `key` for a key's budget (LiteLLM's `event_group`).
    pub event_group: &'static str,
    /// What it is about: a deployment id, a group, a key's token, a backend.
    pub subject: String,
    /// One line a person reads.
    pub message: String,
    /// The facts, for the webhook's JSON.
    pub fields: Map<String, Value>,
}

impl Alert {
    pub(crate) fn new(
        alert_type: AlertType,
        level: Level,
        event: &'static str,
        subject: impl Into<String>,
        message: String,
        fields: Value,
    ) -> Alert {
        Alert {
            alert_type,
            level,
            event,
            event_group: "proxy",
            subject: subject.into(),
            message,
            fields: match fields {
                Value::Object(m) => m,
                _ => Map::new(),
            },
        }
    }

    /// Its dedup key: type, event, subject.
    pub(crate) fn key(&self) -> (AlertType, &'static str, String) {
        (self.alert_type, self.event, self.subject.clone())
    }

    /// The event whose dedup entry this alert's sending clears: a recovery clears its outage's
    /// (the next outage is told at once), an outage its recovery's (the next recovery too).
    pub fn clears(&self) -> Option<&'static str> {
        match self.event {
            "deployment_recovered" => Some("deployment_cooled_down"),
            "outage_recovered" => Some("outage"),
            "backend_up" => Some("backend_down"),
            "deployment_cooled_down" => Some("deployment_recovered"),
            "outage" => Some("outage_recovered"),
            "backend_down" => Some("backend_up"),
            _ => None,
        }
    }

    /// Slack's payload, as LiteLLM formats it: `{"text": "Level: `High`\nTimestamp: ..."}`.
    pub fn slack(&self, timestamp: &str) -> Value {
        json!({
            "text": format!(
                "Level: `{}`\nTimestamp: `{}`\n\nAlert type: `{}`\n\nMessage: {}",
                self.level.as_str(),
                timestamp,
                self.alert_type.as_str(),
                self.message
            )
        })
    }

    /// The webhook's payload: LiteLLM's webhook event fields (`event`, `event_group`,
    /// `event_message`, and for budgets `spend`, `max_budget`, `token`, `key_alias`, `team_id`,
    /// `user_id`), plus `alert_type`, `level`, `timestamp` and the alert's facts.
    pub fn webhook(&self, timestamp: &str) -> Value {
        let mut m = self.fields.clone();
        m.insert("alert_type".into(), self.alert_type.as_str().into());
        m.insert("level".into(), self.level.as_str().into());
        m.insert("event".into(), self.event.into());
        m.insert("event_group".into(), self.event_group.into());
        m.insert("event_message".into(), self.message.clone().into());
        m.insert("timestamp".into(), timestamp.into());
        Value::Object(m)
    }
}

/// Counts in a fixed window per subject: how bursts of 429s and spikes of fallbacks are seen.
#[derive(Debug, Default)]
struct Windows {
    counts: HashMap<String, (Instant, u32)>,
}

/// Subjects counted at once before old windows are swept.
const MAX_WINDOWS: usize = 10_000;

impl Windows {
    /// Counts one for `subject` at `now`; true once the count within `window` has reached
    /// `threshold` (each later hit in the window too: dedup keeps them from being sent).
    fn hit(&mut self, subject: &str, now: Instant, window: Duration, threshold: u32) -> bool {
        if self.counts.len() >= MAX_WINDOWS {
            self.counts
                .retain(|_, (start, _)| now.duration_since(*start) < window);
        }
        let e = self.counts.entry(subject.to_owned()).or_insert((now, 0));
        if now.duration_since(e.0) >= window {
            *e = (now, 0);
        }
        e.1 = e.1.saturating_add(1);
        e.1 >= threshold.max(1)
    }
}

/// Turns events into alerts by the settings' thresholds and windows.
#[derive(Debug)]
pub struct Rules {
    settings: AlertingSettings,
    rate_limited: Windows,
    fallbacks: Windows,
}

fn owner_fields(o: &BudgetOwner) -> Value {
    json!({
        "token": o.token,
        "key_alias": o.key_alias,
        "team_id": o.team_id,
        "user_id": o.user_id,
        "customer_id": o.end_user,
        "user_email": null,
        "team_alias": null,
    })
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

fn who(o: &BudgetOwner) -> String {
    match (o.of, &o.key_alias) {
        (BudgetOf::Team, _) => format!("team {}", o.team_id.as_deref().unwrap_or_default()),
        (BudgetOf::EndUser, _) => {
            format!("end user {}", o.end_user.as_deref().unwrap_or_default())
        }
        (BudgetOf::Key, Some(alias)) => format!("key \"{alias}\""),
        (BudgetOf::Key, None) => format!("key {}…", o.token.get(..12).unwrap_or(&o.token)),
    }
}

/// The alert's `event_group`: whose budget it is.
fn group(o: &BudgetOwner) -> &'static str {
    match o.of {
        BudgetOf::Key => "key",
        BudgetOf::Team => "team",
        BudgetOf::EndUser => "customer",
    }
}

fn backend_type(b: Backend) -> AlertType {
    match b {
        Backend::SpendWriter => AlertType::FailedTrackingSpend,
        Backend::Database | Backend::Redis => AlertType::DbExceptions,
    }
}

impl Rules {
    /// Rules under `settings`.
    pub fn new(settings: AlertingSettings) -> Rules {
        Rules {
            settings,
            rate_limited: Windows::default(),
            fallbacks: Windows::default(),
        }
    }

    /// The alert `event` makes at `now`, if any (and if its type is sent).
    pub fn alert(&mut self, event: &Event, now: Instant) -> Option<Alert> {
        let a = self.make(event, now)?;
        self.settings.sends(a.alert_type).then_some(a)
    }

    fn make(&mut self, event: &Event, now: Instant) -> Option<Alert> {
        match event {
            Event::UpstreamRateLimited { .. } | Event::Fallback { .. } => self.windowed(event, now),
            Event::BudgetThreshold { .. }
            | Event::BudgetExhausted { .. }
            | Event::SoftBudgetCrossed { .. } => budget(event),
            Event::BackendDown { .. } | Event::BackendUp { .. } => backend(event),
            Event::DailyReport { .. } => crate::report::daily(event),
            _ => routing(event, &self.settings),
        }
    }

    /// Bursts of 429s and spikes of fallbacks: counted in windows.
    fn windowed(&mut self, event: &Event, now: Instant) -> Option<Alert> {
        use AlertType as T;
        let s = &self.settings;
        Some(match event {
            Event::UpstreamRateLimited { group, deployment } => {
                if !self
                    .rate_limited
                    .hit(deployment, now, s.burst_window, s.rate_limit_burst)
                {
                    return None;
                }
                Alert::new(
                    T::LlmExceptions,
                    Level::High,
                    "rate_limited",
                    &**deployment,
                    format!("Deployment {deployment} of model group {group} answered {} 429s (rate limited) within {}s", s.rate_limit_burst, s.burst_window.as_secs()),
                    json!({"model_group": group, "deployment": deployment, "count": s.rate_limit_burst, "window_seconds": s.burst_window.as_secs()}),
                )
            }
            Event::Fallback { from, to } => {
                if !self
                    .fallbacks
                    .hit(from, now, s.fallback_window, s.fallback_threshold)
                {
                    return None;
                }
                Alert::new(
                    T::FallbackReports,
                    Level::Medium,
                    "fallback_spike",
                    &**from,
                    format!("{} requests fell back from model group {from} within {}s (the last to {to})", s.fallback_threshold, s.fallback_window.as_secs()),
                    json!({"model_group": from, "fallback_group": to, "count": s.fallback_threshold, "window_seconds": s.fallback_window.as_secs()}),
                )
            }
            _ => return None,
        })
    }

    /// How long an alert like `a` is not repeated.
    pub fn dedup_ttl(&self, a: &Alert) -> Duration {
        match a.alert_type {
            AlertType::BudgetAlerts => self.settings.budget_alert_ttl,
            _ => self.settings.realert_interval,
        }
    }
}

/// Deployments and groups: cooldowns, outages, recoveries, slow answers, daily quotas.
fn routing(event: &Event, s: &AlertingSettings) -> Option<Alert> {
    use AlertType as T;
    Some(match event {
            Event::DeploymentCooledDown { group, deployment, reason, status, cooldown } => Alert::new(
                T::CooldownDeployment,
                Level::High,
                "deployment_cooled_down",
                &**deployment,
                format!("Deployment {deployment} of model group {group} is cooling down for {}s: {reason} (last status {status})", cooldown.as_secs()),
                json!({"model_group": group, "deployment": deployment, "reason": reason, "status": status, "cooldown_seconds": cooldown.as_secs_f64()}),
            ),
            Event::DeploymentRecovered { group, deployment } => Alert::new(
                T::CooldownDeployment,
                Level::Low,
                "deployment_recovered",
                &**deployment,
                format!("Deployment {deployment} of model group {group} answers again"),
                json!({"model_group": group, "deployment": deployment}),
            ),
            Event::GroupOutage { group, deployments } => Alert::new(
                T::OutageAlerts,
                Level::High,
                "outage",
                &**group,
                format!("Model group {group} has no healthy deployment (all {deployments} cooling down or at their limits)"),
                json!({"model_group": group, "deployments": deployments}),
            ),
            Event::GroupRecovered { group } => Alert::new(
                T::OutageAlerts,
                Level::Low,
                "outage_recovered",
                &**group,
                format!("Model group {group} answers again"),
                json!({"model_group": group}),
            ),
            Event::SlowResponse { group, deployment, latency } => Alert::new(
                T::LlmTooSlow,
                Level::Medium,
                "slow_response",
                &**deployment,
                format!("Deployment {deployment} of model group {group} took {:.1}s, over alerting_threshold ({}s)", latency.as_secs_f64(), s.slow_threshold.as_secs_f64()),
                json!({"model_group": group, "deployment": deployment, "latency_seconds": latency.as_secs_f64(), "alerting_threshold": s.slow_threshold.as_secs_f64()}),
            ),
            Event::DailyQuotaNearlyUsed { group, deployment, used, limit } => Alert::new(
                T::DailyQuotaAlerts,
                Level::Medium,
                "daily_quota_nearly_used",
                &**deployment,
                format!("Deployment {deployment} of model group {group} used {used} of its {limit} requests today (UTC)"),
                json!({"model_group": group, "deployment": deployment, "used": used, "rpd": limit}),
            ),
            Event::RequestHanging { group, deployment, key_alias, request_id, stream, elapsed, threshold } => Alert::new(
                T::LlmRequestsHanging,
                Level::Medium,
                "request_hanging",
                request_id.as_deref().map_or_else(|| format!("{deployment}@{}", elapsed.as_millis()), str::to_owned),
                format!(
                    "Requests are hanging - {}s+ request time: {} {} to deployment {deployment} of model group {group}{} has run {:.1}s",
                    threshold.as_secs_f64(),
                    if *stream { "stream" } else { "request" },
                    request_id.as_deref().unwrap_or("(no id)"),
                    key_alias.as_deref().map(|a| format!(" (key \"{a}\")")).unwrap_or_default(),
                    elapsed.as_secs_f64(),
                ),
                json!({"model_group": group, "deployment": deployment, "key_alias": key_alias, "request_id": request_id, "stream": stream, "elapsed_seconds": elapsed.as_secs_f64(), "alerting_threshold": threshold.as_secs_f64()}),
            ),
        _ => return None,
    })
}

/// A key's budget.
fn budget(event: &Event) -> Option<Alert> {
    use AlertType as T;
    Some(match event {
        Event::BudgetThreshold {
            owner,
            percent,
            spend,
            max,
        } => Alert {
            event_group: group(owner),
            ..Alert::new(
                T::BudgetAlerts,
                Level::Medium,
                "threshold_crossed",
                owner.token.clone(),
                format!(
                    "Budget of {} crossed {percent}%: spend ${spend:.4} of max_budget ${max:.4}",
                    who(owner)
                ),
                merge(
                    owner_fields(owner),
                    json!({"spend": spend, "max_budget": max, "percent": percent}),
                ),
            )
        },
        Event::SoftBudgetCrossed {
            owner,
            spend,
            soft_budget,
        } => Alert {
            event_group: group(owner),
            ..Alert::new(
                T::BudgetAlerts,
                Level::Low,
                "soft_budget_crossed",
                owner.token.clone(),
                format!(
                    "Soft budget of {} crossed: spend ${spend:.4} of soft_budget ${soft_budget:.4} (requests are still served)",
                    who(owner)
                ),
                merge(
                    owner_fields(owner),
                    json!({"spend": spend, "soft_budget": soft_budget}),
                ),
            )
        },
        Event::BudgetExhausted { owner, spend, max } => Alert {
            event_group: group(owner),
            ..Alert::new(
                T::BudgetAlerts,
                Level::High,
                "budget_crossed",
                owner.token.clone(),
                format!(
                    "Budget of {} is spent: spend ${spend:.4} of max_budget ${max:.4}",
                    who(owner)
                ),
                merge(
                    owner_fields(owner),
                    json!({"spend": spend, "max_budget": max}),
                ),
            )
        },
        _ => return None,
    })
}

/// The spend writer, the database, Redis.
fn backend(event: &Event) -> Option<Alert> {
    Some(match event {
        Event::BackendDown { backend, error } => Alert::new(
            backend_type(*backend),
            Level::High,
            "backend_down",
            backend.as_str(),
            format!("{} is failing: {error}", backend.as_str()),
            json!({"backend": backend.as_str(), "error": error}),
        ),
        Event::BackendUp { backend } => Alert::new(
            backend_type(*backend),
            Level::Low,
            "backend_up",
            backend.as_str(),
            format!("{} answers again", backend.as_str()),
            json!({"backend": backend.as_str()}),
        ),
        _ => return None,
    })
}
