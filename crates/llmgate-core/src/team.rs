//! Teams, as LiteLLM's `/team/*` API makes them: a group of keys (and members) with models, a
//! budget and limits of its own.
//!
//! A key with a `team_id` naming a stored team is held to both: the auth layer puts the team in
//! the request's extensions (as `Arc<Team>`) beside the key, so a model must be on both lists
//! ([`crate::ModelAccess::and`]), the request counts against the key's limits and the team's
//! (counted for the whole team), and its cost against both budgets. The tighter of each limit
//! therefore decides.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// A team's settings and state, as stored. Times are Unix seconds (UTC).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Team {
    /// The team's id (LiteLLM's `team_id`; a UUID when the creator gives none).
    pub team_id: String,
    /// A human name for the team.
    pub team_alias: Option<String>,
    /// Model groups (or aliases) the team's keys may call; empty means every model.
    pub models: Vec<String>,
    /// USD spent in the current budget period.
    pub spend: f64,
    /// USD the team may spend per budget period; `None` is unlimited.
    pub max_budget: Option<f64>,
    /// Budget period in seconds (`budget_duration: 30d`); `None` never resets.
    pub budget_duration: Option<i64>,
    /// When spend next resets to zero.
    pub budget_reset_at: Option<i64>,
    /// Requests per minute, for all the team's keys together.
    pub rpm_limit: Option<u64>,
    /// Tokens per minute, for all the team's keys together.
    pub tpm_limit: Option<u64>,
    /// Requests in flight at once, for all the team's keys together.
    pub max_parallel_requests: Option<u64>,
    /// Names the team's keys may use for model groups (`{"gpt-4": "gpt-4o-team"}`).
    pub model_aliases: HashMap<String, String>,
    /// The team's members and their roles (`admin` or `user`).
    pub members_with_roles: Vec<TeamMember>,
    /// Free-form JSON the caller attached.
    pub metadata: serde_json::Value,
    /// Tags recorded with the team's spend.
    pub tags: Vec<String>,
    /// The organization the team belongs to (stored and reported).
    pub organization_id: Option<String>,
    /// A blocked team's keys are refused.
    pub blocked: bool,
    /// The budget object (`/budget/new`) whose limits the team takes where it sets none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_id: Option<String>,
    /// USD past which an alert is sent, never refused (from the team's budget object).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub soft_budget: Option<f64>,
    /// Created at.
    pub created_at: i64,
    /// Last changed at.
    pub updated_at: i64,
}

/// A member of a team.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TeamMember {
    /// The user's id.
    pub user_id: Option<String>,
    /// The user's e-mail address.
    pub user_email: Option<String>,
    /// `admin` or `user`.
    pub role: String,
}

impl Team {
    /// Whether the team's keys may call `model` (a group name or alias as the client sent it).
    pub fn allows_model(&self, model: &str) -> bool {
        self.models.is_empty()
            || self
                .models
                .iter()
                .any(|m| m == model || m == "*" || m == "all-proxy-models")
    }

    /// Whether the budget period has ended at `now`, so spend is due to reset.
    pub fn budget_due(&self, now: i64) -> bool {
        self.budget_reset_at.is_some_and(|r| r <= now)
    }

    /// The next reset after `now` (whole idle periods skipped), as for keys.
    pub fn next_budget_reset(&self, now: i64) -> Option<i64> {
        crate::key::next_reset(self.budget_duration, self.budget_reset_at, now)
    }
}

impl crate::ModelPermission for Team {
    fn allows(&self, model: &str) -> bool {
        self.allows_model(model)
    }

    fn describe(&self) -> String {
        format!(
            "This team ({}) can only access models={:?}",
            self.team_id, self.models
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ModelAccess, VirtualKey};
    use std::sync::Arc;

    /// The inheritance rule for models, as a table: a key in a team may call a model only when
    /// both lists allow it (an empty list allows everything).
    #[test]
    fn a_key_in_a_team_gets_the_intersection_of_models() {
        let cases: &[(&[&str], &[&str], &str, bool)] = &[
            (&[], &[], "a", true),
            (&["a"], &[], "a", true),
            (&[], &["a"], "a", true),
            (&[], &["a"], "b", false),
            (&["a", "b"], &["b", "c"], "b", true),
            (&["a", "b"], &["b", "c"], "a", false),
            (&["a", "b"], &["b", "c"], "c", false),
            (&["all-proxy-models"], &["c"], "c", true),
            (&["c"], &["*"], "c", true),
        ];
        for (key_models, team_models, model, want) in cases {
            let key = VirtualKey {
                models: key_models.iter().map(|m| (*m).to_owned()).collect(),
                ..VirtualKey::default()
            };
            let team = Team {
                models: team_models.iter().map(|m| (*m).to_owned()).collect(),
                ..Team::default()
            };
            let access = ModelAccess::new(Arc::new(key)).and(Arc::new(team));
            assert_eq!(
                access.permits(model, model),
                *want,
                "key {key_models:?}, team {team_models:?}, model {model}"
            );
        }
    }

    #[test]
    fn budget_periods_as_keys() {
        let t = Team {
            budget_duration: Some(100),
            budget_reset_at: Some(1_000),
            ..Team::default()
        };
        assert!(!t.budget_due(999) && t.budget_due(1_000));
        assert_eq!(t.next_budget_reset(1_350), Some(1_400));
    }
}
