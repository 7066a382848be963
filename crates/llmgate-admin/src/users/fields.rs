//! The fields of LiteLLM's `/user/new` and `/user/update` bodies, applied to a [`User`], and the
//! user as `/user/info` shows it (never the password's hash).

use llmgate_core::{User, UserRole};
use serde_json::{json, Map, Value};

use crate::keys::fields::{
    metadata, opt_count, opt_duration, opt_money, opt_string, strings, time, Invalid,
    MAX_BUDGET_DURATION_SECS, MAX_MODELS,
};

/// Fields a body may set (besides `user_id`, which names or chooses the user, and the
/// `/user/new` switches `auto_create_key` and `send_invite_email`).
pub(crate) const FIELDS: &[&str] = &[
    "user_alias",
    "user_email",
    "user_role",
    "teams",
    "models",
    "max_budget",
    "budget_duration",
    "rpm_limit",
    "tpm_limit",
    "max_parallel_requests",
    "metadata",
    "password",
];

/// The most teams a user lists.
const MAX_TEAMS: usize = 1_000;
/// The shortest password a user may sign in with.
pub(crate) const MIN_PASSWORD: usize = 8;
/// The longest password hashed (Argon2 takes any length; a bound keeps a request cheap).
const MAX_PASSWORD: usize = 1_024;

/// Sets one field from its JSON value; `null` clears it. `now` anchors `budget_duration`.
pub(crate) fn apply(user: &mut User, field: &str, v: &Value, now: i64) -> Result<(), String> {
    match field {
        "user_alias" => user.user_alias = opt_string(v, field)?,
        "user_email" => user.user_email = opt_string(v, field)?,
        "user_role" => {
            user.user_role = match v {
                Value::Null => UserRole::default(),
                Value::String(s) => UserRole::parse(s).ok_or_else(|| {
                    format!(
                        "user_role must be one of {}",
                        UserRole::ALL.map(UserRole::as_str).join(", ")
                    )
                })?,
                _ => return Err(format!("{field} must be a string")),
            }
        }
        "teams" => user.teams = strings(v, field, MAX_TEAMS)?,
        "models" => user.models = strings(v, field, MAX_MODELS)?,
        "max_budget" => user.max_budget = opt_money(v, field)?,
        "budget_duration" => {
            user.budget_duration = opt_duration(v, field, MAX_BUDGET_DURATION_SECS, "366 days")?;
            user.budget_reset_at = user.budget_duration.map(|d| now.saturating_add(d));
        }
        "rpm_limit" => user.rpm_limit = opt_count(v, field)?,
        "tpm_limit" => user.tpm_limit = opt_count(v, field)?,
        "max_parallel_requests" => user.max_parallel_requests = opt_count(v, field)?,
        "metadata" => user.metadata = metadata(v, field)?,
        "password" => user.password_hash = password(v)?,
        other => {
            return Err(format!(
                "{other} is not a user field llmgate keeps; the fields are user_id, {}",
                FIELDS.join(", ")
            ))
        }
    }
    Ok(())
}

/// Applies every field of a request body but `skip` (the fields that name the user).
pub(crate) fn apply_all(
    user: &mut User,
    body: &Map<String, Value>,
    skip: &[&str],
    now: i64,
) -> Result<(), Invalid> {
    crate::keys::fields::apply_each(user, body, skip, now, apply)
}

/// The PHC string of a new password (`null` removes it: the user can no longer sign in).
fn password(v: &Value) -> Result<Option<String>, String> {
    let p = match v {
        Value::Null => return Ok(None),
        Value::String(p) => p,
        _ => return Err("password must be a string".into()),
    };
    if p.chars().count() < MIN_PASSWORD || p.len() > MAX_PASSWORD {
        return Err(format!(
            "password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters"
        ));
    }
    super::password::hash(p).map(Some)
}

/// The user's settings and state, as `/user/info` and `/user/new` show them (LiteLLM's names).
pub(crate) fn view(u: &User) -> Value {
    json!({
        "user_id": u.user_id,
        "user_alias": u.user_alias,
        "user_email": u.user_email,
        "user_role": u.user_role.as_str(),
        "teams": u.teams,
        "models": u.models,
        "spend": u.spend,
        "max_budget": u.max_budget,
        "budget_duration": u.budget_duration.map(|d| format!("{d}s")),
        "budget_reset_at": time(u.budget_reset_at),
        "rpm_limit": u.rpm_limit,
        "tpm_limit": u.tpm_limit,
        "max_parallel_requests": u.max_parallel_requests,
        "metadata": if u.metadata.is_null() { json!({}) } else { u.metadata.clone() },
        "has_password": u.password_hash.is_some(),
        "created_at": time(Some(u.created_at)),
        "updated_at": time(Some(u.updated_at)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_apply_refuse_and_never_show_the_password() {
        let mut u = User::default();
        let body = json!({"user_email": "ana@example.com", "user_role": "proxy_admin_viewer",
            "max_budget": 5, "budget_duration": "1d", "rpm_limit": 10, "models": ["a"],
            "password": "correct horse"});
        apply_all(&mut u, body.as_object().unwrap(), &[], 100).unwrap();
        assert_eq!(u.user_role, UserRole::ProxyAdminViewer);
        assert_eq!((u.max_budget, u.budget_reset_at), (Some(5.0), Some(86_500)));
        let hash = u.password_hash.clone().unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        let shown = view(&u).to_string();
        assert!(!shown.contains("argon2") && !shown.contains("correct horse"));
        let bad = json!({"user_role": "root", "password": "short", "colour": "red"});
        let err = apply_all(&mut u, bad.as_object().unwrap(), &[], 100)
            .unwrap_err()
            .message;
        assert!(
            err.contains("user_role") && err.contains("password") && err.contains("colour"),
            "{err}"
        );
    }
}
