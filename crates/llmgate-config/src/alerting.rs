//! `general_settings.alerting`, `alert_types`, `alerting_threshold`, `alerting_args` and
//! `alert_to_webhook_url`, as LiteLLM writes them; the channels' URLs come from the
//! environment (`SLACK_WEBHOOK_URL`, `WEBHOOK_URL`), read at load. See `docs/alerting.md`.

use std::collections::BTreeMap;
use std::time::Duration;

use llmgate_core::Secret;

use crate::node::Node;
use crate::problems::Report;
use crate::schema::GeneralSettings;
use crate::walk::Walk;

/// LiteLLM's alert type names llmgate knows (it sends some; see `docs/alerting.md`).
pub const ALERT_TYPES: [&str; 22] = [
    "llm_exceptions",
    "llm_too_slow",
    "llm_requests_hanging",
    "budget_alerts",
    "spend_reports",
    "failed_tracking_spend",
    "db_exceptions",
    "daily_reports",
    "cooldown_deployment",
    "new_model_added",
    "model_deprecation_warnings",
    "outage_alerts",
    "region_outage_alerts",
    "fallback_reports",
    "new_virtual_key_created",
    "virtual_key_updated",
    "virtual_key_deleted",
    "new_team_created",
    "team_updated",
    "team_deleted",
    "new_internal_user_created",
    "daily_quota_alerts",
];

/// The `alerting_args` llmgate reads, all numbers of seconds or counts.
pub const ALERTING_ARGS: [&str; 9] = [
    "budget_alert_ttl",
    "daily_report_frequency",
    "outage_alert_ttl",
    "minor_outage_alert_threshold",
    "llmgate_fallback_alert_threshold",
    "llmgate_fallback_alert_window",
    "llmgate_realert_interval",
    "llmgate_max_alerts_per_minute",
    "llmgate_budget_alert_percent",
];

/// LiteLLM's other `alerting_args`, accepted and not used.
const LITELLM_ONLY_ARGS: [&str; 6] = [
    "report_check_interval",
    "region_outage_alert_ttl",
    "major_outage_alert_threshold",
    "max_outage_alert_list_size",
    "log_to_console",
    "digest",
];

/// The alerting settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertingConfig {
    /// `alerting`: `slack`, `webhook` (others are reported).
    pub channels: Vec<String>,
    /// `alert_types` (empty: all).
    pub alert_types: Vec<String>,
    /// `alerting_threshold`: seconds after which an answer is too slow.
    pub alerting_threshold: Option<Duration>,
    /// `alerting_args` llmgate reads ([`ALERTING_ARGS`]), by name.
    pub args: BTreeMap<String, f64>,
    /// `alert_to_webhook_url`: a Slack URL per alert type.
    pub alert_to_webhook_url: BTreeMap<String, Secret>,
    /// `SLACK_WEBHOOK_URL` from the environment.
    pub slack_webhook_url: Option<Secret>,
    /// `WEBHOOK_URL` from the environment.
    pub webhook_url: Option<Secret>,
}

pub(crate) fn alerting(w: &mut Walk<'_>, out: &mut GeneralSettings, v: &Node, p: &str) {
    let channels = w.string_list(v, p);
    for c in &channels {
        if c != "slack" && c != "webhook" {
            w.report.warning(
                p,
                format!("alerting channel \"{c}\" is not supported by llmgate (slack and webhook are); it is ignored"),
            );
        }
    }
    out.alerting.channels = channels;
}

pub(crate) fn alert_types(w: &mut Walk<'_>, out: &mut GeneralSettings, v: &Node, p: &str) {
    let types = w.string_list(v, p);
    for t in &types {
        if !ALERT_TYPES.contains(&t.as_str()) {
            w.report
                .warning(p, format!("unknown alert type \"{t}\"; it is ignored"));
        }
    }
    out.alerting.alert_types = types;
}

pub(crate) fn alerting_threshold(w: &mut Walk<'_>, out: &mut GeneralSettings, v: &Node, p: &str) {
    out.alerting.alerting_threshold = w.seconds(v, p);
}

pub(crate) fn alerting_args(w: &mut Walk<'_>, out: &mut GeneralSettings, v: &Node, p: &str) {
    for (name, value) in w.entries(v, p) {
        let path = format!("{p}.{name}");
        if ALERTING_ARGS.contains(&name) {
            if let Some(n) = w.number(value, &path, "a number").filter(|n| *n >= 0.0) {
                out.alerting.args.insert(name.to_owned(), n);
            }
        } else if !LITELLM_ONLY_ARGS.contains(&name) {
            w.report
                .warning(&path, "unknown alerting_args key; it is ignored");
        }
    }
}

pub(crate) fn alert_to_webhook_url(w: &mut Walk<'_>, out: &mut GeneralSettings, v: &Node, p: &str) {
    for (name, value) in w.entries(v, p) {
        let path = format!("{p}.{name}");
        if !ALERT_TYPES.contains(&name) {
            w.report.warning(
                &path,
                format!("unknown alert type \"{name}\"; it is ignored"),
            );
        }
        // LiteLLM accepts a list of URLs too: the first is used.
        let url = match value {
            Node::Seq(_) => w.string_list(value, &path).into_iter().next(),
            _ => w.string(value, &path),
        };
        if let Some(url) = url {
            out.alerting
                .alert_to_webhook_url
                .insert(name.to_owned(), Secret::new(url));
        }
    }
}

/// A channel without its URL is an error: alerts the operator asked for would go nowhere.
pub(crate) fn check_urls(a: &AlertingConfig, report: &mut Report) {
    let has = |c: &str| a.channels.iter().any(|x| x == c);
    if has("slack") && a.slack_webhook_url.is_none() && a.alert_to_webhook_url.is_empty() {
        report.error(
            "general_settings.alerting",
            "\"slack\" needs SLACK_WEBHOOK_URL in the environment (or alert_to_webhook_url)",
        );
    }
    if has("webhook") && a.webhook_url.is_none() {
        report.error(
            "general_settings.alerting",
            "\"webhook\" needs WEBHOOK_URL in the environment",
        );
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;

    fn load(general: &str, env: &[(&str, &str)]) -> Result<crate::Loaded, crate::Problems> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        crate::from_yaml(
            &format!("model_list: []\ngeneral_settings:\n{general}"),
            Path::new("/nonexistent"),
            &env,
        )
    }

    #[test]
    fn litellms_keys_are_read_with_urls_from_the_environment() {
        let loaded = load(
            "  alerting: [\"slack\", \"webhook\"]\n  alert_types: [\"budget_alerts\", \"outage_alerts\"]\n  alerting_threshold: 120\n  alerting_args:\n    budget_alert_ttl: 3600\n    daily_report_frequency: 43200\n    report_check_interval: 3600\n  alert_to_webhook_url:\n    budget_alerts: os.environ/BUDGET_HOOK\n",
            &[
                ("SLACK_WEBHOOK_URL", "https://hooks.slack.test/a"),
                ("WEBHOOK_URL", "http://127.0.0.1:9/w"),
                ("BUDGET_HOOK", "https://hooks.slack.test/budget"),
            ],
        )
        .unwrap();
        let a = &loaded.config.general_settings.alerting;
        assert_eq!(a.channels, ["slack", "webhook"]);
        assert_eq!(a.alert_types, ["budget_alerts", "outage_alerts"]);
        assert_eq!(
            a.alerting_threshold,
            Some(std::time::Duration::from_secs(120))
        );
        assert_eq!(a.args.get("budget_alert_ttl"), Some(&3600.0));
        assert_eq!(a.args.get("daily_report_frequency"), Some(&43200.0));
        // LiteLLM's, accepted and unused.
        assert!(!a.args.contains_key("report_check_interval"));
        assert_eq!(
            a.alert_to_webhook_url["budget_alerts"].expose(),
            "https://hooks.slack.test/budget"
        );
        assert_eq!(
            a.slack_webhook_url.as_ref().map(|s| s.expose()),
            Some("https://hooks.slack.test/a")
        );
        let about_alerts = loaded.notices.iter().filter(|p| p.path.contains("alert"));
        assert_eq!(about_alerts.count(), 0, "{:?}", loaded.notices);
    }

    #[test]
    fn a_channel_without_its_url_is_refused_and_unknown_names_warned() {
        let err = load("  alerting: [\"slack\", \"webhook\"]\n", &[]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("SLACK_WEBHOOK_URL"), "{text}");
        assert!(text.contains("WEBHOOK_URL in the environment"), "{text}");
        let loaded = load(
            "  alerting: [\"webhook\", \"email\"]\n  alert_types: [\"llm_exeptions\"]\n",
            &[("WEBHOOK_URL", "http://127.0.0.1:9/w")],
        )
        .unwrap();
        let notes: Vec<_> = loaded.notices.iter().map(|p| p.message.as_str()).collect();
        assert!(notes.iter().any(|m| m.contains("\"email\"")), "{notes:?}");
        assert!(
            notes.iter().any(|m| m.contains("\"llm_exeptions\"")),
            "{notes:?}"
        );
    }
}
