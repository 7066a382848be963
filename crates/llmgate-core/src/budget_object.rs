//! Budgets as objects (LiteLLM's `/budget/*` and `LiteLLM_BudgetTable`): a named set of limits
//! that keys, teams and end users link to by `budget_id`.
//!
//! A budget is shared as a definition, never as one pool of money: each object linked to it is
//! held to its limits with its own spend. Where the object sets a limit itself, its own value
//! wins; where it sets none, the budget's applies ([`BudgetObject::apply_to_key`],
//! [`BudgetObject::apply_to_team`], [`BudgetObject::apply_to_end_user`]).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::{EndUser, Team, VirtualKey};

/// A budget's settings, as stored. Times are Unix seconds (UTC).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BudgetObject {
    /// Its id (LiteLLM's `budget_id`; a UUID when the creator gives none).
    pub budget_id: String,
    /// USD each linked object may spend per period.
    pub max_budget: Option<f64>,
    /// USD past which a linked object's owner is alerted (never refused).
    pub soft_budget: Option<f64>,
    /// Requests in flight at once, per linked key or team.
    pub max_parallel_requests: Option<u64>,
    /// Tokens per minute, per linked key or team.
    pub tpm_limit: Option<u64>,
    /// Requests per minute, per linked key or team.
    pub rpm_limit: Option<u64>,
    /// Per-model budgets as LiteLLM writes them: `{"gpt-4o": {"max_budget": 1.0}}` (or a bare
    /// number per model).
    pub model_max_budget: serde_json::Value,
    /// Budget period in seconds; `None` never resets.
    pub budget_duration: Option<i64>,
    /// When the budget's own period ends (shown; each linked object keeps its own period).
    pub budget_reset_at: Option<i64>,
    /// Created at.
    pub created_at: i64,
    /// Who created it.
    pub created_by: Option<String>,
    /// Last changed at.
    pub updated_at: i64,
    /// Who changed it last.
    pub updated_by: Option<String>,
}

impl BudgetObject {
    /// The per-model budgets in USD: each model's number, or its object's `max_budget` (or
    /// `budget_limit`, LiteLLM's older name).
    pub fn model_budgets(&self) -> HashMap<String, f64> {
        let Some(m) = self.model_max_budget.as_object() else {
            return HashMap::new();
        };
        m.iter()
            .filter_map(|(model, v)| {
                let usd = v.as_f64().or_else(|| {
                    let o = v.as_object()?;
                    o.get("max_budget")
                        .or_else(|| o.get("budget_limit"))
                        .and_then(|x| x.as_f64().or_else(|| x.as_str()?.parse().ok()))
                })?;
                usd.is_finite().then(|| (model.clone(), usd))
            })
            .collect()
    }

    /// `key` with the budget's limits where it sets none itself.
    pub fn apply_to_key(&self, key: &mut VirtualKey) {
        fill(&mut key.max_budget, self.max_budget);
        fill(&mut key.extras.soft_budget, self.soft_budget);
        fill(&mut key.budget_duration, self.budget_duration);
        fill(&mut key.rpm_limit, self.rpm_limit);
        fill(&mut key.tpm_limit, self.tpm_limit);
        fill(&mut key.max_parallel_requests, self.max_parallel_requests);
        if key.model_max_budget.is_empty() {
            key.model_max_budget = self.model_budgets();
        }
    }

    /// `team` with the budget's limits where it sets none itself.
    pub fn apply_to_team(&self, team: &mut Team) {
        fill(&mut team.max_budget, self.max_budget);
        fill(&mut team.soft_budget, self.soft_budget);
        fill(&mut team.budget_duration, self.budget_duration);
        fill(&mut team.rpm_limit, self.rpm_limit);
        fill(&mut team.tpm_limit, self.tpm_limit);
        fill(&mut team.max_parallel_requests, self.max_parallel_requests);
    }

    /// `user` with the budget's limits where it sets none itself.
    pub fn apply_to_end_user(&self, user: &mut EndUser) {
        fill(&mut user.max_budget, self.max_budget);
        fill(&mut user.soft_budget, self.soft_budget);
        fill(&mut user.budget_duration, self.budget_duration);
        fill(&mut user.rpm_limit, self.rpm_limit);
        fill(&mut user.tpm_limit, self.tpm_limit);
        fill(&mut user.max_parallel_requests, self.max_parallel_requests);
    }
}

fn fill<T: Copy>(own: &mut Option<T>, shared: Option<T>) {
    if own.is_none() {
        *own = shared;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_objects_own_value_wins_and_the_budget_fills_the_rest() {
        let b = BudgetObject {
            budget_id: "b".into(),
            max_budget: Some(5.0),
            soft_budget: Some(1.0),
            rpm_limit: Some(10),
            budget_duration: Some(86_400),
            model_max_budget: serde_json::json!({"a": {"max_budget": 0.5}, "b": 2, "c": "x"}),
            ..BudgetObject::default()
        };
        let mut key = VirtualKey {
            max_budget: Some(1.0),
            ..VirtualKey::default()
        };
        b.apply_to_key(&mut key);
        assert_eq!(key.max_budget, Some(1.0), "the key's own budget wins");
        assert_eq!(
            (key.extras.soft_budget, key.rpm_limit, key.budget_duration),
            (Some(1.0), Some(10), Some(86_400))
        );
        assert_eq!(key.model_max_budget.len(), 2);
        assert_eq!(key.model_max_budget.get("a"), Some(&0.5));
        let mut team = Team::default();
        b.apply_to_team(&mut team);
        assert_eq!((team.max_budget, team.rpm_limit), (Some(5.0), Some(10)));
        assert_eq!(team.soft_budget, Some(1.0));
        let mut user = EndUser {
            budget_duration: Some(60),
            ..EndUser::default()
        };
        b.apply_to_end_user(&mut user);
        assert_eq!(
            (user.max_budget, user.budget_duration),
            (Some(5.0), Some(60))
        );
    }

    /// `tpm_limit`, `max_parallel_requests` and `model_max_budget` reach a key, `tpm_limit` and
    /// `max_parallel_requests` a team and an end user, each where the object sets none; the
    /// object's own values win.
    #[test]
    fn tpm_parallel_and_model_budgets_reach_keys_teams_and_end_users() {
        let b = BudgetObject {
            budget_id: "b".into(),
            tpm_limit: Some(1_000),
            max_parallel_requests: Some(3),
            model_max_budget: serde_json::json!({"m": 2.0}),
            ..BudgetObject::default()
        };
        let mut key = VirtualKey::default();
        b.apply_to_key(&mut key);
        assert_eq!(
            (key.tpm_limit, key.max_parallel_requests),
            (Some(1_000), Some(3))
        );
        assert_eq!(key.model_max_budget, HashMap::from([("m".to_owned(), 2.0)]));
        let mut team = Team::default();
        b.apply_to_team(&mut team);
        assert_eq!(
            (team.tpm_limit, team.max_parallel_requests),
            (Some(1_000), Some(3))
        );
        let mut user = EndUser::default();
        b.apply_to_end_user(&mut user);
        assert_eq!(
            (user.tpm_limit, user.max_parallel_requests),
            (Some(1_000), Some(3))
        );

        let mut key = VirtualKey {
            tpm_limit: Some(7),
            max_parallel_requests: Some(1),
            model_max_budget: HashMap::from([("own".to_owned(), 0.1)]),
            ..VirtualKey::default()
        };
        b.apply_to_key(&mut key);
        assert_eq!(
            (key.tpm_limit, key.max_parallel_requests),
            (Some(7), Some(1))
        );
        assert_eq!(
            key.model_max_budget,
            HashMap::from([("own".to_owned(), 0.1)])
        );
        let mut team = Team {
            tpm_limit: Some(7),
            max_parallel_requests: Some(1),
            ..Team::default()
        };
        b.apply_to_team(&mut team);
        assert_eq!(
            (team.tpm_limit, team.max_parallel_requests),
            (Some(7), Some(1))
        );
        let mut user = EndUser {
            tpm_limit: Some(7),
            max_parallel_requests: Some(1),
            ..EndUser::default()
        };
        b.apply_to_end_user(&mut user);
        assert_eq!(
            (user.tpm_limit, user.max_parallel_requests),
            (Some(7), Some(1))
        );
    }
}
