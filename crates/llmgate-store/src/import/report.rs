//! What an import shows: the plan (the dry run), and the outcome of writing it.

use std::fmt;

use llmgate_auth::StoreError;

use super::source::Rows;
use super::Plan;

/// Rows of a kind llmgate has no object for yet, and what becomes of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotImported {
    /// The LiteLLM table.
    pub table: &'static str,
    /// Its rows.
    pub rows: u64,
    /// What llmgate does instead.
    pub why: &'static str,
}

pub(super) fn not_imported(rows: &Rows) -> Vec<NotImported> {
    vec![
        NotImported {
            table: "LiteLLM_OrganizationTable",
            rows: rows.organizations,
            why: "organizations: llmgate has none yet; teams keep their organization_id as a label",
        },
        NotImported {
            table: "LiteLLM_TeamMembership",
            rows: rows.memberships,
            why: "a user's spend and budget within a team: llmgate has no per-member budgets yet",
        },
    ]
}

fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

pub(super) fn write_plan(plan: &Plan, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(
        f,
        "to import: {}, {}, {}, {}, {}",
        plural(plan.keys.len(), "key"),
        plural(plan.teams.len(), "team"),
        plural(plan.users.len(), "user"),
        plural(plan.end_users.len(), "end user"),
        plural(plan.budgets.len(), "budget")
    )?;
    for b in &plan.budgets {
        let max = b.max_budget.map_or_else(
            || "no max_budget".to_owned(),
            |m| format!("max_budget {m} USD"),
        );
        writeln!(f, "  budget {}: {max}", b.budget_id)?;
    }
    for k in &plan.keys {
        let name = k.key_alias.as_deref().unwrap_or(&k.key_name);
        let budget = k.max_budget.map_or_else(
            || "no budget".to_owned(),
            |b| format!("{:.6} of {b} USD left", (b - k.spend).max(0.0)),
        );
        let state = if k.blocked { ", blocked" } else { "" };
        let team = k
            .team_id
            .as_deref()
            .map(|t| format!(", team {t}"))
            .unwrap_or_default();
        writeln!(f, "  key {name}: {budget}{team}{state}")?;
    }
    for t in &plan.teams {
        writeln!(f, "  team {}: spend {} USD", t.team_id, t.spend)?;
    }
    for u in &plan.users {
        let role = u.user_role.as_str();
        writeln!(f, "  user {} ({role}): spend {} USD", u.user_id, u.spend)?;
    }
    for u in &plan.end_users {
        writeln!(f, "  end user {}: spend {} USD", u.user_id, u.spend)?;
    }
    for r in &plan.refused {
        writeln!(f, "cannot import {}: {}", r.what, r.why)?;
    }
    for n in &plan.notes {
        writeln!(f, "note: {n}")?;
    }
    for n in plan.not_imported.iter().filter(|n| n.rows > 0) {
        writeln!(
            f,
            "not imported: {} rows of {} ({})",
            n.rows, n.table, n.why
        )?;
    }
    Ok(())
}

/// What [`Plan::apply`] did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcome {
    /// Created, as `kind name` lines.
    pub created: Vec<String>,
    /// Already present and left unchanged.
    pub skipped: Vec<String>,
    /// Could not be written, with the store's reason.
    pub failed: Vec<String>,
}

impl Outcome {
    pub(super) fn count(&mut self, kind: &str, name: &str, result: Result<bool, StoreError>) {
        match result {
            Ok(true) => self.created.push(format!("{kind} {name}")),
            Ok(false) => self.skipped.push(format!("{kind} {name}")),
            Err(e) => self.failed.push(format!("{kind} {name}: {e}")),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "imported {}, skipped {} (already present, left unchanged), failed {}",
            self.created.len(),
            self.skipped.len(),
            self.failed.len()
        )?;
        for s in &self.skipped {
            writeln!(f, "  skipped {s}")?;
        }
        for s in &self.failed {
            writeln!(f, "  failed {s}")?;
        }
        Ok(())
    }
}
