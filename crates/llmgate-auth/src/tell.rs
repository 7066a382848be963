//! Budget events ([`Keys::with_events`](crate::Keys::with_events)): when spend charged through
//! this instance takes a key past a share of its `max_budget` (80 % by default), an
//! [`Event::BudgetThreshold`]; when it reaches the budget, an [`Event::BudgetExhausted`]. A
//! request refused for a spent budget tells [`Event::BudgetExhausted`] too (the spend may have
//! been charged by another instance); alerting deduplicates.

use llmgate_core::events::{BudgetOf, BudgetOwner, Event, Events};
use llmgate_core::VirtualKey;

/// The share of a budget told as a threshold when no other is set, in percent.
pub const DEFAULT_BUDGET_ALERT_PERCENT: u8 = 80;

/// Where budget events go, and the threshold.
#[derive(Debug, Clone)]
pub(crate) struct BudgetEvents {
    pub(crate) events: Events,
    pub(crate) percent: u8,
}

impl Default for BudgetEvents {
    fn default() -> Self {
        BudgetEvents {
            events: Events::none(),
            percent: DEFAULT_BUDGET_ALERT_PERCENT,
        }
    }
}

fn owner(key: &VirtualKey) -> BudgetOwner {
    BudgetOwner {
        token: key.token.clone(),
        key_alias: key.key_alias.clone(),
        team_id: key.team_id.clone(),
        user_id: key.user_id.clone(),
        ..BudgetOwner::default()
    }
}

/// The owner of a team's budget.
pub(crate) fn team_owner(team_id: &str) -> BudgetOwner {
    BudgetOwner {
        token: format!("{}{team_id}", crate::TEAM_INVALIDATION_PREFIX),
        team_id: Some(team_id.to_owned()),
        of: BudgetOf::Team,
        ..BudgetOwner::default()
    }
}

/// The owner of an end user's budget.
pub(crate) fn end_user_owner(id: &str) -> BudgetOwner {
    BudgetOwner {
        token: format!("{}{id}", crate::END_USER_INVALIDATION_PREFIX),
        end_user: Some(id.to_owned()),
        of: BudgetOf::EndUser,
        ..BudgetOwner::default()
    }
}

impl BudgetEvents {
    /// Spend went from `before` to `after`: told once when it crosses `soft` (a key's, team's
    /// or end user's soft budget, its own or its budget object's).
    pub(crate) fn soft(
        &self,
        soft: Option<f64>,
        before: f64,
        after: f64,
        owner: impl FnOnce() -> BudgetOwner,
    ) {
        if let Some(soft) = soft.filter(|s| *s > 0.0) {
            if before < soft && after >= soft {
                self.events.emit(|| Event::SoftBudgetCrossed {
                    owner: owner(),
                    spend: after,
                    soft_budget: soft,
                });
            }
        }
    }

    /// `key`'s spend went from `before` to `after`.
    pub(crate) fn charged(&self, key: &VirtualKey, before: f64, after: f64) {
        self.soft(key.extras.soft_budget, before, after, || owner(key));
        let Some(max) = key.max_budget.filter(|m| *m > 0.0) else {
            return;
        };
        if before < max && after >= max {
            self.exhausted(key, after);
            return;
        }
        let line = max * f64::from(self.percent) / 100.0;
        if before < line && after >= line && after < max {
            self.events.emit(|| Event::BudgetThreshold {
                owner: owner(key),
                percent: self.percent,
                spend: after,
                max,
            });
        }
    }

    /// `key`'s budget is spent: `spend` of its `max_budget`.
    pub(crate) fn exhausted(&self, key: &VirtualKey, spend: f64) {
        if let Some(max) = key.max_budget {
            self.events.emit(|| Event::BudgetExhausted {
                owner: owner(key),
                spend,
                max,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn crossing_80_and_100_percent_is_told_once_each() {
        let events = Events::new();
        let mut sub = events.subscribe().unwrap();
        let b = BudgetEvents {
            events: events.clone(),
            percent: 80,
        };
        let key = VirtualKey {
            token: "t".into(),
            key_alias: Some("app".into()),
            max_budget: Some(1.0),
            ..VirtualKey::default()
        };
        b.charged(&key, 0.5, 0.7);
        b.charged(&key, 0.7, 0.85);
        b.charged(&key, 0.85, 0.9);
        b.charged(&key, 0.9, 1.2);
        b.charged(&key, 1.2, 1.3);
        drop((b, events));
        let mut told = Vec::new();
        while let Some(e) = sub.recv().await {
            told.push((*e).clone());
        }
        assert!(
            matches!(
                &told[..],
                [
                    Event::BudgetThreshold { percent: 80, spend: s1, .. },
                    Event::BudgetExhausted { spend: s2, max: m, .. },
                ] if *s1 == 0.85 && *s2 == 1.2 && *m == 1.0
            ),
            "{told:?}"
        );
    }

    #[tokio::test]
    async fn crossing_the_soft_budget_is_told_once_without_a_max_budget() {
        let events = Events::new();
        let mut sub = events.subscribe().unwrap();
        let b = BudgetEvents {
            events: events.clone(),
            percent: 80,
        };
        let mut key = VirtualKey {
            token: "t".into(),
            ..VirtualKey::default()
        };
        key.extras.soft_budget = Some(0.5);
        b.charged(&key, 0.1, 0.4);
        b.charged(&key, 0.4, 0.6);
        b.charged(&key, 0.6, 0.9);
        drop((b, events));
        let mut told = Vec::new();
        while let Some(e) = sub.recv().await {
            told.push((*e).clone());
        }
        assert!(
            matches!(
                &told[..],
                [Event::SoftBudgetCrossed { spend, soft_budget, .. }] if *spend == 0.6 && *soft_budget == 0.5
            ),
            "{told:?}"
        );
    }
}
