//! What the router tells the events bus ([`ModelTable::with_events`]): each fact where the
//! router learns it, built only when someone listens, never waiting.
//!
//! - A provider's 429: [`Event::UpstreamRateLimited`], every time (alerting counts them).
//! - A cooldown after the deployment's own failures: [`Event::DeploymentCooledDown`]; its next
//!   answer: [`Event::DeploymentRecovered`].
//! - A group with no deployment to pick (not for a prompt too long for every one):
//!   [`Event::GroupOutage`], at most once until the group answers again, then
//!   [`Event::GroupRecovered`].
//! - An answer slower than the threshold (a stream: until its end): [`Event::SlowResponse`].
//! - A deployment past [`DAILY_QUOTA_PERCENT`] of its `rpd`: [`Event::DailyQuotaNearlyUsed`],
//!   once per UTC day.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use llmgate_core::events::Event;

use crate::state::CooldownReason;
use crate::table::{Group, Member, ModelTable};

/// The share of a deployment's `rpd` at which it is told as nearly used.
pub const DAILY_QUOTA_PERCENT: u64 = 90;

impl ModelTable {
    /// A provider answered 429.
    pub(crate) fn tell_rate_limited(&self, group: &Arc<str>, m: &Member) {
        self.events.emit(|| Event::UpstreamRateLimited {
            group: group.clone(),
            deployment: m.spec.id.clone(),
        });
    }

    /// `m` was cooled down for `for_` after a failure with `status`.
    pub(crate) fn tell_cooldown(
        &self,
        group: &Arc<str>,
        m: &Member,
        reason: CooldownReason,
        status: u16,
        for_: Duration,
    ) {
        m.state.down.store(true, Relaxed);
        self.events.emit(|| Event::DeploymentCooledDown {
            group: group.clone(),
            deployment: m.spec.id.clone(),
            reason: reason.as_str(),
            status,
            cooldown: for_,
        });
    }

    /// `m` answered after `latency`: a recovery if it or its group was down, slow if over the
    /// threshold.
    pub(crate) fn tell_answered(&self, group: &Arc<str>, m: &Member, latency: Duration) {
        if m.state.down.load(Relaxed) && m.state.down.swap(false, Relaxed) {
            self.events.emit(|| Event::DeploymentRecovered {
                group: group.clone(),
                deployment: m.spec.id.clone(),
            });
        }
        if m.group_out.load(Relaxed) && m.group_out.swap(false, Relaxed) {
            self.events.emit(|| Event::GroupRecovered {
                group: group.clone(),
            });
        }
        if self.slow_after.is_some_and(|t| latency > t) {
            self.events.emit(|| Event::SlowResponse {
                group: group.clone(),
                deployment: m.spec.id.clone(),
                latency,
            });
        }
    }

    /// Group `g` had no deployment to pick.
    pub(crate) fn tell_outage(&self, g: &Group) {
        if g.out.load(Relaxed) || g.out.swap(true, Relaxed) {
            return;
        }
        let Some(first) = g.members.first() else {
            return;
        };
        self.events.emit(|| Event::GroupOutage {
            group: first.spec.model_name.clone(),
            deployments: g.members.len(),
        });
    }

    /// One request was taken from `m`'s `rpd` on UTC day `day`.
    pub(crate) fn tell_daily(&self, m: &Member, day: u64) {
        let Some(limit) = m.spec.rpd else { return };
        let used = m.state.usage.daily_count(day);
        if used.saturating_mul(100) < limit.saturating_mul(DAILY_QUOTA_PERCENT) {
            return;
        }
        // Day 0 is 1970-01-01: "never" needs no other marker.
        if m.state.quota_told_day.swap(day, Relaxed) == day {
            return;
        }
        self.events.emit(|| Event::DailyQuotaNearlyUsed {
            group: m.spec.model_name.clone(),
            deployment: m.spec.id.clone(),
            used,
            limit,
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use http::StatusCode;
    use llmgate_core::events::{Event, Events};
    use llmgate_core::{ApiError, Origin};
    use tower::{Service, ServiceExt};

    use crate::tests::{d, req, stub};
    use crate::{ModelTable, Router};

    #[tokio::test]
    async fn a_429_cooldown_outage_and_recovery_are_each_told_once() {
        let events = Events::new();
        let mut sub = events.subscribe().unwrap();
        let table = Arc::new(
            ModelTable::new([Arc::new(d("a", "g"))], [])
                .with_events(events.clone(), Some(Duration::from_secs(60))),
        );
        let failing = Arc::new(AtomicBool::new(true));
        let f = failing.clone();
        let mut svc = Router::new(
            stub(move |_| {
                f.load(Ordering::Relaxed).then(|| {
                    ApiError::new(StatusCode::TOO_MANY_REQUESTS, Origin::Upstream, "slow down")
                })
            }),
            table.clone(),
        );
        // The 429 cools `a` down; the next two find nothing: one outage.
        for _ in 0..3 {
            assert!(svc.ready().await.unwrap().call(req("g")).await.is_err());
        }
        failing.store(false, Ordering::Relaxed);
        // End the cooldown by hand, as its time passing would.
        table.groups["g"].members[0].state.clear_cooldown();
        for _ in 0..2 {
            assert!(svc.ready().await.unwrap().call(req("g")).await.is_ok());
        }
        drop((svc, table, events));
        let mut told = Vec::new();
        while let Some(e) = sub.recv().await {
            told.push((*e).clone());
        }
        let names: Vec<&str> = told
            .iter()
            .map(|e| match e {
                Event::UpstreamRateLimited { .. } => "429",
                Event::DeploymentCooledDown { .. } => "cooled",
                Event::GroupOutage { .. } => "outage",
                Event::DeploymentRecovered { .. } => "recovered",
                Event::GroupRecovered { .. } => "group recovered",
                _ => "other",
            })
            .collect();
        assert_eq!(
            names,
            ["429", "cooled", "outage", "recovered", "group recovered"],
            "{told:?}"
        );
    }
}
