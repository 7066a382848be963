//! The periodic report (`daily_reports`, see `docs/alerting.md`): every
//! `alerting_args.daily_report_frequency` (LiteLLM's default: 12 h), the five slowest
//! deployments and the five failing most over the period, from the router's counts
//! ([`llmgate_router::DeploymentState::totals`]), told on the events bus.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use llmgate_config::Config;
use llmgate_core::events::{Event, Events, ReportRow};
use llmgate_router::DeploymentTotals;

use crate::live::Live;

/// LiteLLM's default `daily_report_frequency`: 12 hours.
pub(crate) const DEFAULT_FREQUENCY: Duration = Duration::from_secs(43_200);

/// Deployments in each list.
const TOP: usize = 5;

/// `alerting_args.daily_report_frequency`, else 12 h.
pub(crate) fn frequency(config: &Config) -> Duration {
    config
        .general_settings
        .alerting
        .args
        .get("daily_report_frequency")
        .and_then(|n| llmgate_core::seconds::seconds(*n))
        .filter(|d| !d.is_zero())
        .unwrap_or(DEFAULT_FREQUENCY)
}

/// Every `every`, tells `events` the report on the deployments of the live table over the
/// period since the last one. Runs until the runtime stops.
pub(crate) async fn run(live: Arc<Live>, events: Events, every: Duration) {
    let mut last: HashMap<Arc<str>, DeploymentTotals> = HashMap::new();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq = 0;
    loop {
        tick.tick().await;
        let now: Vec<_> = live
            .table()
            .all()
            .into_iter()
            .map(|(spec, state)| (spec, state.totals()))
            .collect();
        let rows = now
            .iter()
            .map(|(spec, t)| period_row(spec, *t, last.get(&spec.id).copied().unwrap_or_default()))
            .collect();
        last = now.into_iter().map(|(s, t)| (s.id.clone(), t)).collect();
        seq += 1;
        let (slowest, failing) = rank(rows);
        events.emit(|| Event::DailyReport {
            period: every,
            slowest,
            failing,
            seq,
        });
    }
}

fn period_row(
    spec: &llmgate_core::DeploymentSpec,
    t: DeploymentTotals,
    was: DeploymentTotals,
) -> ReportRow {
    let answers = t.answers.saturating_sub(was.answers);
    let latency_us = t.latency_us.saturating_sub(was.latency_us);
    ReportRow {
        group: spec.model_name.clone(),
        deployment: spec.id.clone(),
        requests: t.attempts.saturating_sub(was.attempts),
        failures: t.failures.saturating_sub(was.failures),
        avg_latency: (answers > 0).then(|| Duration::from_micros(latency_us / answers)),
    }
}

/// The slowest (by mean latency) and the most failing (by failure rate, then count), five
/// each; deployments with no answer, or no failure, are left out of the list.
fn rank(rows: Vec<ReportRow>) -> (Vec<ReportRow>, Vec<ReportRow>) {
    let mut slowest: Vec<_> = rows
        .iter()
        .filter(|r| r.avg_latency.is_some())
        .cloned()
        .collect();
    slowest.sort_by_key(|r| std::cmp::Reverse(r.avg_latency));
    slowest.truncate(TOP);
    let rate = |r: &ReportRow| r.failures as f64 / r.requests.max(1) as f64;
    let mut failing: Vec<_> = rows.into_iter().filter(|r| r.failures > 0).collect();
    failing.sort_by(|a, b| {
        rate(b)
            .total_cmp(&rate(a))
            .then(b.failures.cmp(&a.failures))
    });
    failing.truncate(TOP);
    (slowest, failing)
}
