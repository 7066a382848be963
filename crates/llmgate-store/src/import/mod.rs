//! Bringing a LiteLLM proxy's keys, teams, internal users, end users and budgets into llmgate's
//! store
//! (`llmgate import litellm`).
//!
//! [`Plan::read_litellm`] reads a LiteLLM database (PostgreSQL, LiteLLM's Prisma schema:
//! `LiteLLM_VerificationToken`, `LiteLLM_TeamTable`, `LiteLLM_EndUserTable`,
//! `LiteLLM_BudgetTable`, `LiteLLM_UserTable`, and `LiteLLM_ModelTable` for team aliases) with
//! `SELECT`s only, and turns its rows into llmgate's objects. LiteLLM's `token` is the SHA-256
//! hex of the secret, as llmgate's [`VirtualKey::token`], so every secret keeps working, with
//! its models, limits, budget and the spend of the current period (so the remaining budget is
//! the same). [`Plan::apply`] writes the plan into a [`KeyStore`] and a [`RecordStore`]:
//! anything already there (a key with the same token, a team, user, end user or budget with the
//! same id) is left as it is and reported as skipped, so running the import twice changes
//! nothing.
//!
//! Budget rows (`LiteLLM_BudgetTable`) become budget objects (`/budget/*`), and the keys',
//! teams' and end users' `budget_id` links are kept, so each takes its budget's limits as in
//! LiteLLM and a later `/budget/update` reaches all of them. What llmgate has no object for
//! yet (organizations) is counted in [`Plan::not_imported`], never dropped silently: a team
//! keeps its `organization_id` as a label. Users come without their passwords (a note says
//! so): they get one with `/user/update`.
//!
//! ```no_run
//! # async fn run(keys: &dyn llmgate_auth::KeyStore, records: &dyn llmgate_auth::RecordStore)
//! # -> Result<(), llmgate_store::import::ImportError> {
//! use llmgate_store::import::Plan;
//!
//! let plan = Plan::read_litellm("postgres://litellm@db/litellm", 1_700_000_000).await?;
//! print!("{plan}"); // what a dry run shows
//! let outcome = plan.apply(keys, records).await;
//! print!("{outcome}");
//! # Ok(()) }
//! ```

use std::fmt;

use llmgate_auth::{KeyStore, Record, RecordKind, RecordStore, StoreError};
use llmgate_core::{BudgetObject, EndUser, Team, User, VirtualKey};
use serde_json::Value;

mod convert;
mod report;
mod source;

pub use convert::Refused;
pub use report::{NotImported, Outcome};

/// Why a LiteLLM database could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The database could not be reached (the target never names a password).
    #[error("cannot connect to the LiteLLM database at {target}: {reason}")]
    Connect {
        /// `postgres://host:port/db`.
        target: String,
        /// The driver's reason.
        reason: String,
    },
    /// The database has no `LiteLLM_VerificationToken` table.
    #[error("not a LiteLLM database: it has no \"LiteLLM_VerificationToken\" table")]
    NotLiteLlm,
    /// A query failed.
    #[error("reading the LiteLLM database failed: {0}")]
    Read(String),
}

/// What an import would write, and what it cannot import.
#[derive(Debug, Default)]
pub struct Plan {
    /// Keys to create.
    pub keys: Vec<VirtualKey>,
    /// Teams to create.
    pub teams: Vec<Team>,
    /// End users to create.
    pub end_users: Vec<EndUser>,
    /// Budget objects to create (LiteLLM's budget rows).
    pub budgets: Vec<BudgetObject>,
    /// Internal users to create.
    pub users: Vec<User>,
    /// Rows that cannot be imported, with the reason.
    pub refused: Vec<Refused>,
    /// What llmgate has no object for, counted.
    pub not_imported: Vec<NotImported>,
    /// Settings carried only in part (e.g. a team's soft budget), one line each.
    pub notes: Vec<String>,
}

impl Plan {
    /// Reads the LiteLLM database at `url` (read-only) and plans the import; `now` (Unix
    /// seconds) starts the budget period of a row that has a duration but no next reset.
    pub async fn read_litellm(url: &str, now: i64) -> Result<Plan, ImportError> {
        let rows = source::read(url).await?;
        Ok(Plan::of_rows(&rows, now))
    }

    fn of_rows(rows: &source::Rows, now: i64) -> Plan {
        let mut plan = Plan {
            budgets: rows
                .budgets
                .iter()
                .map(|r| convert::budget(r, now))
                .collect(),
            ..Plan::default()
        };
        for row in &rows.keys {
            match convert::key(row, now) {
                Ok(mut k) => {
                    let b = plan.budget(k.extras.budget_id.as_deref());
                    k.budget_reset_at = first_reset(k.budget_duration, k.budget_reset_at, b, now);
                    plan.keys.push(k);
                }
                Err(refused) => plan.refused.push(refused),
            }
        }
        for row in &rows.teams {
            let mut team = convert::team(row, now);
            let b = plan.budget(team.budget_id.as_deref());
            team.budget_reset_at = first_reset(team.budget_duration, team.budget_reset_at, b, now);
            if row.get("soft_budget").and_then(|v| v.as_f64()).is_some() {
                plan.notes.push(format!(
                    "team {:?}: soft_budget not carried (llmgate teams have no soft budget yet)",
                    team.team_id
                ));
            }
            let per_model = row.get("model_max_budget").and_then(|v| v.as_object());
            if per_model.is_some_and(|m| !m.is_empty()) {
                plan.notes.push(format!(
                    "team {:?}: model_max_budget not carried (llmgate teams have no per-model \
                     budgets yet)",
                    team.team_id
                ));
            }
            plan.teams.push(team);
        }
        for row in &rows.end_users {
            let mut user = convert::end_user(row, now);
            let b = plan.budget(user.budget_id.as_deref());
            user.budget_reset_at = first_reset(user.budget_duration, user.budget_reset_at, b, now);
            plan.end_users.push(user);
        }
        for row in &rows.users {
            let user = convert::user(row, now);
            let carried_not = [
                ("password", "password"),
                ("model_max_budget", "per-model budgets"),
            ]
            .iter()
            .filter(|(f, _)| {
                row.get(*f)
                    .is_some_and(|v| !v.is_null() && v != &Value::Object(Default::default()))
            })
            .map(|(_, what)| *what)
            .collect::<Vec<_>>();
            if !carried_not.is_empty() {
                plan.notes.push(format!(
                    "user {:?}: {} not carried (set a password with /user/update)",
                    user.user_id,
                    carried_not.join(" and ")
                ));
            }
            plan.users.push(user);
        }
        plan.not_imported = report::not_imported(rows);
        plan
    }

    /// The budget object `id` names in the plan.
    fn budget(&self, id: Option<&str>) -> Option<&BudgetObject> {
        let id = id?;
        self.budgets.iter().find(|b| b.budget_id == id)
    }

    /// Writes the plan: each budget, key, team and end user not already in the stores is
    /// created with its spend; one already there is left unchanged and reported as skipped.
    pub async fn apply(&self, keys: &dyn KeyStore, records: &dyn RecordStore) -> Outcome {
        let mut out = Outcome::default();
        for b in &self.budgets {
            let result = put_record(records, RecordKind::Budget, Record::of_budget(b)).await;
            out.count("budget", &b.budget_id, result);
        }
        for team in &self.teams {
            let result = put_record(records, RecordKind::Team, Record::of_team(team)).await;
            out.count("team", &team.team_id, result);
        }
        for user in &self.end_users {
            let result = put_record(records, RecordKind::EndUser, Record::of_end_user(user)).await;
            out.count("end user", &user.user_id, result);
        }
        for user in &self.users {
            let result = put_record(records, RecordKind::User, Record::of_user(user)).await;
            out.count("user", &user.user_id, result);
        }
        for key in &self.keys {
            let name = key
                .key_alias
                .clone()
                .unwrap_or_else(|| key.key_name.clone());
            out.count("key", &name, put_key(keys, key).await);
        }
        out
    }
}

/// The next reset of an object linked to `budget` with no period of its own: its own next
/// reset (for an end user, its budget row's), else one budget period from `now`.
fn first_reset(
    own_duration: Option<i64>,
    reset_at: Option<i64>,
    budget: Option<&BudgetObject>,
    now: i64,
) -> Option<i64> {
    match (own_duration, budget.and_then(|b| b.budget_duration)) {
        (None, Some(d)) => reset_at.or(Some(now.saturating_add(d))),
        _ => reset_at,
    }
}

/// `Ok(true)`: created; `Ok(false)`: already there.
async fn put_record(
    records: &dyn RecordStore,
    kind: RecordKind,
    record: Record,
) -> Result<bool, StoreError> {
    if records.get_record(kind, &record.id).await?.is_some() {
        return Ok(false);
    }
    records.insert_record(kind, &record).await?;
    Ok(true)
}

/// Creates the key with its spend; the per-model spend is added on top of the rest of it, so
/// the total stays LiteLLM's.
async fn put_key(keys: &dyn KeyStore, key: &VirtualKey) -> Result<bool, StoreError> {
    if keys.get(&key.token).await?.is_some() {
        return Ok(false);
    }
    let by_model: f64 = key.model_spend.values().sum();
    let mut first = key.clone();
    first.spend = (key.spend - by_model).max(0.0);
    first.model_spend.clear();
    keys.insert(&first).await?;
    for (model, spend) in &key.model_spend {
        keys.add_spend(&key.token, model, *spend).await?;
    }
    Ok(true)
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        report::write_plan(self, f)
    }
}

#[cfg(test)]
mod tests;
