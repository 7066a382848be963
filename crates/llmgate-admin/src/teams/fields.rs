//! The fields of LiteLLM's `/team/new` and `/team/update` bodies, applied to a [`Team`], and the
//! team as `/team/info` shows it. Values are checked as a key's are (`keys/fields.rs`).

use llmgate_core::{Team, TeamMember};
use serde_json::{json, Map, Value};

use crate::keys::fields::{
    map, metadata, opt_count, opt_duration, opt_money, opt_string, strings, time, Invalid,
    MAX_BUDGET_DURATION_SECS, MAX_MODELS, MAX_TAGS,
};

/// Fields a body may set (besides `team_id`, which names or chooses the team).
pub(crate) const FIELDS: &[&str] = &[
    "team_alias",
    "models",
    "max_budget",
    "budget_duration",
    "rpm_limit",
    "tpm_limit",
    "max_parallel_requests",
    "model_aliases",
    "members_with_roles",
    "metadata",
    "tags",
    "organization_id",
    "blocked",
    "budget_id",
];

/// The most members a team holds.
pub(crate) const MAX_MEMBERS: usize = 10_000;

/// Sets one field from its JSON value; `null` clears it. `now` anchors `budget_duration`.
pub(crate) fn apply(team: &mut Team, field: &str, v: &Value, now: i64) -> Result<(), String> {
    match field {
        "team_alias" => team.team_alias = opt_string(v, field)?,
        "models" => team.models = strings(v, field, MAX_MODELS)?,
        "tags" => team.tags = strings(v, field, MAX_TAGS)?,
        "max_budget" => team.max_budget = opt_money(v, field)?,
        "budget_duration" => {
            team.budget_duration = opt_duration(v, field, MAX_BUDGET_DURATION_SECS, "366 days")?;
            team.budget_reset_at = team.budget_duration.map(|d| now.saturating_add(d));
        }
        "rpm_limit" => team.rpm_limit = opt_count(v, field)?,
        "tpm_limit" => team.tpm_limit = opt_count(v, field)?,
        "max_parallel_requests" => team.max_parallel_requests = opt_count(v, field)?,
        "model_aliases" => {
            team.model_aliases = map(v, field, |x| {
                x.as_str().map(str::to_owned).ok_or("a model group name")
            })?;
        }
        "members_with_roles" => team.members_with_roles = members(v, field)?,
        "metadata" => team.metadata = metadata(v, field)?,
        "organization_id" => team.organization_id = opt_string(v, field)?,
        "budget_id" => team.budget_id = opt_string(v, field)?,
        "blocked" => {
            team.blocked = match v {
                Value::Null => false,
                Value::Bool(b) => *b,
                _ => return Err(format!("{field} must be true or false")),
            }
        }
        other => {
            return Err(format!(
                "{other} is not a team field llmgate keeps; the fields are team_id, {}",
                FIELDS.join(", ")
            ))
        }
    }
    Ok(())
}

/// Applies every field of a request body but `skip` (the fields that name the team).
pub(crate) fn apply_all(
    team: &mut Team,
    body: &Map<String, Value>,
    skip: &[&str],
    now: i64,
) -> Result<(), Invalid> {
    crate::keys::fields::apply_each(team, body, skip, now, apply)
}

/// One member (`{"role": "user", "user_id": "..."}`; `user_email` instead of or beside the
/// id), or a list of them.
pub(crate) fn members(v: &Value, field: &str) -> Result<Vec<TeamMember>, String> {
    let list = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) if items.len() <= MAX_MEMBERS => items.as_slice(),
        Value::Object(_) => std::slice::from_ref(v),
        _ => {
            return Err(format!(
                "{field} must be a member or a list of at most {MAX_MEMBERS} members"
            ))
        }
    };
    list.iter().map(|m| member(m, field)).collect()
}

fn member(v: &Value, field: &str) -> Result<TeamMember, String> {
    let wrong = || {
        format!("{field}: a member is {{\"role\": \"admin\" or \"user\", \"user_id\": \"...\" and/or \"user_email\": \"...\"}}")
    };
    let m = v.as_object().ok_or_else(wrong)?;
    let text = |k: &str| opt_string(m.get(k).unwrap_or(&Value::Null), k);
    let member = TeamMember {
        user_id: text("user_id")?,
        user_email: text("user_email")?,
        role: match m.get("role").and_then(Value::as_str).unwrap_or("user") {
            r @ ("admin" | "user") => r.to_owned(),
            _ => return Err(wrong()),
        },
    };
    if member.user_id.is_none() && member.user_email.is_none() {
        return Err(wrong());
    }
    Ok(member)
}

/// The team's settings and state, as `/team/info` and `/team/new` show them (LiteLLM's names).
pub(crate) fn view(t: &Team) -> Value {
    json!({
        "team_id": t.team_id,
        "team_alias": t.team_alias,
        "organization_id": t.organization_id,
        "models": t.models,
        "spend": t.spend,
        "max_budget": t.max_budget,
        "budget_duration": t.budget_duration.map(|d| format!("{d}s")),
        "budget_reset_at": time(t.budget_reset_at),
        "rpm_limit": t.rpm_limit,
        "tpm_limit": t.tpm_limit,
        "max_parallel_requests": t.max_parallel_requests,
        "model_aliases": t.model_aliases,
        "members_with_roles": t.members_with_roles,
        "admins": t.members_with_roles.iter().filter(|m| m.role == "admin")
            .filter_map(|m| m.user_id.clone()).collect::<Vec<_>>(),
        "members": t.members_with_roles.iter().filter(|m| m.role == "user")
            .filter_map(|m| m.user_id.clone()).collect::<Vec<_>>(),
        "metadata": if t.metadata.is_null() { json!({}) } else { t.metadata.clone() },
        "tags": t.tags,
        "blocked": t.blocked,
        "budget_id": t.budget_id,
        "created_at": time(Some(t.created_at)),
        "updated_at": time(Some(t.updated_at)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_apply_refuse_and_clear() {
        let mut t = Team::default();
        let body = json!({"team_alias": "search", "models": ["a"], "max_budget": 5,
            "budget_duration": "1d", "rpm_limit": 10, "model_aliases": {"gpt-4": "a"},
            "members_with_roles": [{"role": "admin", "user_id": "u1"}, {"user_email": "b@x"}]});
        apply_all(&mut t, body.as_object().unwrap(), &[], 100).unwrap();
        assert_eq!(
            (t.max_budget, t.budget_reset_at, t.rpm_limit),
            (Some(5.0), Some(86_500), Some(10))
        );
        assert_eq!(t.members_with_roles.len(), 2);
        assert_eq!(t.members_with_roles[1].role, "user");
        let v = view(&t);
        assert_eq!(v["admins"], json!(["u1"]));
        apply(&mut t, "max_budget", &Value::Null, 100).unwrap();
        assert_eq!(t.max_budget, None);
        let bad = json!({"rpm_limit": -1, "colour": "red", "members_with_roles": [{"role": "owner", "user_id": "x"}]});
        let err = apply_all(&mut t, bad.as_object().unwrap(), &[], 100)
            .unwrap_err()
            .message;
        assert!(
            err.contains("rpm_limit")
                && err.contains("colour")
                && err.contains("members_with_roles"),
            "{err}"
        );
    }
}
