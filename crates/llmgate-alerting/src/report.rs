//! The periodic report ([`Event::DailyReport`], LiteLLM's `daily_reports`): the slowest
//! deployments and those failing most, as Slack text LiteLLM-like and as webhook JSON.

use std::fmt::Write;

use llmgate_core::events::{Event, ReportRow};
use serde_json::{json, Value};

use crate::{Alert, AlertType, Level};

fn row(r: &ReportRow) -> Value {
    json!({
        "model_group": r.group,
        "deployment": r.deployment,
        "requests": r.requests,
        "failures": r.failures,
        "failure_rate": if r.requests == 0 { 0.0 } else { r.failures as f64 / r.requests as f64 },
        "avg_latency_seconds": r.avg_latency.map(|d| d.as_secs_f64()),
    })
}

/// The report's alert; `None` for any other event.
pub(crate) fn daily(event: &Event) -> Option<Alert> {
    let Event::DailyReport {
        period,
        slowest,
        failing,
        seq,
    } = event
    else {
        return None;
    };
    let mut text = format!(
        "Daily Report (the last {:.0}s)\n\nTop 5 Slowest Deployments:\n",
        period.as_secs_f64()
    );
    if slowest.is_empty() {
        text.push_str("none answered\n");
    }
    for (i, r) in slowest.iter().enumerate() {
        let avg = r.avg_latency.map_or(0.0, |d| d.as_secs_f64());
        let _ = writeln!(
            text,
            "{}. Deployment: `{}` (model group `{}`), Avg Latency: `{avg:.3}s`",
            i + 1,
            r.deployment,
            r.group
        );
    }
    text.push_str("\nTop 5 Deployments with Most Failed Requests:\n");
    if failing.is_empty() {
        text.push_str("none failed\n");
    }
    for (i, r) in failing.iter().enumerate() {
        let _ = writeln!(
            text,
            "{}. Deployment: `{}` (model group `{}`), Failed Requests: `{}` of {}",
            i + 1,
            r.deployment,
            r.group,
            r.failures,
            r.requests
        );
    }
    let mut alert = Alert::new(
        AlertType::DailyReports,
        Level::Low,
        "daily_report",
        format!("report-{seq}"),
        text.trim_end().to_owned(),
        json!({
            "period_seconds": period.as_secs_f64(),
            "slowest_deployments": slowest.iter().map(row).collect::<Vec<_>>(),
            "failing_deployments": failing.iter().map(row).collect::<Vec<_>>(),
        }),
    );
    alert.event_group = "proxy";
    Some(alert)
}
