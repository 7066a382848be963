//! LiteLLM rows (each a JSON object of its columns, times as Unix seconds) turned into
//! llmgate's objects. Pure: no I/O, so every rule is unit-tested here.

use std::collections::HashMap;

use llmgate_core::{
    BudgetObject, EndUser, KeyExtras, Team, TeamMember, User, UserRole, VirtualKey,
};
use serde_json::{Map, Value};

/// A key row that cannot be imported, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    /// What it is (`key sk-...abcd`).
    pub what: String,
    /// Why.
    pub why: String,
}

type Row = Map<String, Value>;

fn text(row: &Row, field: &str) -> Option<String> {
    row.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn float(row: &Row, field: &str) -> Option<f64> {
    row.get(field)
        .and_then(Value::as_f64)
        .filter(|f| f.is_finite())
}

fn count(row: &Row, field: &str) -> Option<u64> {
    let v = row.get(field)?;
    v.as_u64()
        .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
}

/// A time column (Unix seconds, fractional from `EXTRACT(EPOCH ...)`), as whole seconds.
fn time(row: &Row, field: &str) -> Option<i64> {
    float(row, field).map(|f| f.floor() as i64)
}

fn strings(row: &Row, field: &str) -> Vec<String> {
    row.get(field)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// A JSON column, `null` when empty (`{}`, LiteLLM's default) or absent.
fn json(row: &Row, field: &str) -> Value {
    match row.get(field) {
        Some(Value::Object(m)) if m.is_empty() => Value::Null,
        Some(v) => v.clone(),
        None => Value::Null,
    }
}

fn string_map(v: Option<&Value>) -> HashMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

fn count_map(v: Option<&Value>) -> HashMap<String, u64> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// `model_max_budget` as LiteLLM writes it: `{"m": 10.0}`, or (newer) `{"m": {"budget_limit":
/// 10.0, "time_period": "1d"}}`.
fn budget_map(v: Option<&Value>) -> HashMap<String, f64> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| {
                    let usd = v
                        .as_f64()
                        .or_else(|| v.get("budget_limit").and_then(Value::as_f64))
                        .or_else(|| v.get("max_budget").and_then(Value::as_f64))?;
                    Some((k.clone(), usd))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn float_map(v: Option<&Value>) -> HashMap<String, f64> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// The token llmgate keys the row by: LiteLLM's `token` is the SHA-256 hex of the secret, as
/// llmgate's; a row of an old LiteLLM that kept the secret itself (`sk-...`) is hashed.
fn token_of(raw: &str) -> Option<String> {
    if raw.len() == 64 && raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        Some(raw.to_ascii_lowercase())
    } else if raw.starts_with("sk-") {
        Some(llmgate_auth::hash_key(raw))
    } else {
        None
    }
}

/// The budget period: `budget_duration` parsed, and the next reset (LiteLLM's, else one period
/// from `now`).
fn period(row: &Row, now: i64) -> (Option<i64>, Option<i64>) {
    let duration =
        text(row, "budget_duration").and_then(|d| llmgate_core::seconds::parse_duration(&d));
    let reset = time(row, "budget_reset_at").or_else(|| duration.map(|d| now.saturating_add(d)));
    (duration, reset.filter(|_| duration.is_some()))
}

/// A row of `LiteLLM_BudgetTable` as a budget object.
pub fn budget(row: &Row, now: i64) -> BudgetObject {
    let (budget_duration, budget_reset_at) = period(row, now);
    let created_at = time(row, "created_at").unwrap_or(now);
    BudgetObject {
        budget_id: text(row, "budget_id").unwrap_or_default(),
        max_budget: float(row, "max_budget"),
        soft_budget: float(row, "soft_budget"),
        max_parallel_requests: count(row, "max_parallel_requests"),
        tpm_limit: count(row, "tpm_limit"),
        rpm_limit: count(row, "rpm_limit"),
        model_max_budget: json(row, "model_max_budget"),
        budget_duration,
        budget_reset_at,
        created_at,
        created_by: text(row, "created_by"),
        updated_at: time(row, "updated_at").unwrap_or(created_at),
        updated_by: text(row, "updated_by"),
    }
}

/// A row of `LiteLLM_VerificationToken` as a key. Its `budget_id` links it to its budget row,
/// imported as a budget object, whose limits it takes where it has none (as LiteLLM's auth
/// does).
pub fn key(row: &Row, now: i64) -> Result<VirtualKey, Refused> {
    let raw = text(row, "token").unwrap_or_default();
    let what = match text(row, "key_alias") {
        Some(alias) => format!("key {alias:?}"),
        None => format!(
            "key {}",
            text(row, "key_name").unwrap_or_else(|| "(unnamed)".into())
        ),
    };
    let token = token_of(&raw).ok_or_else(|| Refused {
        what: what.clone(),
        why: "its token is neither a SHA-256 hash nor an sk- secret".into(),
    })?;
    let metadata = json(row, "metadata");
    let meta = metadata.as_object();
    let mut models = strings(row, "models");
    // LiteLLM's "all-team-models": the team's list decides, which is what an empty list does
    // for a key in a team.
    if models.iter().any(|m| m == "all-team-models") {
        models.clear();
    }
    let (budget_duration, budget_reset_at) = period(row, now);
    let created_at = time(row, "created_at").unwrap_or(now);
    Ok(VirtualKey {
        token,
        key_name: text(row, "key_name").unwrap_or_default(),
        key_alias: text(row, "key_alias"),
        models,
        spend: float(row, "spend").unwrap_or(0.0),
        max_budget: float(row, "max_budget"),
        budget_duration,
        budget_reset_at,
        expires: time(row, "expires"),
        rpm_limit: count(row, "rpm_limit"),
        tpm_limit: count(row, "tpm_limit"),
        max_parallel_requests: count(row, "max_parallel_requests"),
        model_rpm_limit: count_map(meta.and_then(|m| m.get("model_rpm_limit"))),
        model_tpm_limit: count_map(meta.and_then(|m| m.get("model_tpm_limit"))),
        model_max_budget: budget_map(row.get("model_max_budget")),
        model_spend: float_map(row.get("model_spend")),
        team_id: text(row, "team_id"),
        user_id: text(row, "user_id"),
        tags: meta
            .and_then(|m| m.get("tags"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        blocked: row.get("blocked").and_then(Value::as_bool).unwrap_or(false),
        extras: extras(row, meta),
        metadata,
        created_at,
        updated_at: time(row, "updated_at").unwrap_or(created_at),
    })
}

fn extras(row: &Row, meta: Option<&Map<String, Value>>) -> KeyExtras {
    let meta_strings = |field: &str| -> Vec<String> {
        meta.and_then(|m| m.get(field))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    KeyExtras {
        aliases: string_map(row.get("aliases")),
        soft_budget: float(row, "soft_budget"),
        key_type: None,
        allowed_routes: strings(row, "allowed_routes"),
        enforced_params: meta_strings("enforced_params"),
        permissions: json(row, "permissions"),
        guardrails: meta_strings("guardrails"),
        config: json(row, "config"),
        budget_id: text(row, "budget_id"),
    }
}

/// A row of `LiteLLM_TeamTable` (with `model_aliases` from `LiteLLM_ModelTable`) as a team.
pub fn team(row: &Row, now: i64) -> Team {
    let (budget_duration, budget_reset_at) = period(row, now);
    let metadata = json(row, "metadata");
    let created_at = time(row, "created_at").unwrap_or(now);
    let members_with_roles = row
        .get("members_with_roles")
        .and_then(|v| serde_json::from_value::<Vec<TeamMember>>(v.clone()).ok())
        .unwrap_or_default();
    Team {
        team_id: text(row, "team_id").unwrap_or_default(),
        team_alias: text(row, "team_alias"),
        models: strings(row, "models"),
        spend: float(row, "spend").unwrap_or(0.0),
        max_budget: float(row, "max_budget"),
        budget_duration,
        budget_reset_at,
        rpm_limit: count(row, "rpm_limit"),
        tpm_limit: count(row, "tpm_limit"),
        max_parallel_requests: count(row, "max_parallel_requests"),
        model_aliases: string_map(row.get("model_aliases")),
        members_with_roles,
        tags: metadata
            .get("tags")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        metadata,
        organization_id: text(row, "organization_id"),
        blocked: row.get("blocked").and_then(Value::as_bool).unwrap_or(false),
        budget_id: text(row, "budget_id"),
        soft_budget: None,
        created_at,
        updated_at: time(row, "updated_at").unwrap_or(created_at),
    }
}

/// A row of `LiteLLM_EndUserTable` as an end user, linked by `budget_id` to its budget row
/// (imported as a budget object, which holds its budget and period; its next reset is the
/// budget row's, as LiteLLM resets end users with their budget row).
pub fn end_user(row: &Row, now: i64) -> EndUser {
    EndUser {
        user_id: text(row, "user_id").unwrap_or_default(),
        alias: text(row, "alias"),
        blocked: row.get("blocked").and_then(Value::as_bool).unwrap_or(false),
        max_budget: None,
        budget_duration: None,
        budget_reset_at: time(row, "budget_reset_at"),
        spend: float(row, "spend").unwrap_or(0.0),
        allowed_model_region: text(row, "allowed_model_region"),
        default_model: text(row, "default_model"),
        metadata: Value::Null,
        budget_id: text(row, "budget_id"),
        soft_budget: None,
        rpm_limit: None,
        tpm_limit: None,
        max_parallel_requests: None,
        created_at: now,
        updated_at: now,
    }
}

/// A row of `LiteLLM_UserTable` as an internal user (without the password: LiteLLM's is not
/// an Argon2 hash, and a user signs in to llmgate with one set here).
pub fn user(row: &Row, now: i64) -> User {
    let (budget_duration, budget_reset_at) = period(row, now);
    let created_at = time(row, "created_at").unwrap_or(now);
    User {
        user_id: text(row, "user_id").unwrap_or_default(),
        user_alias: text(row, "user_alias"),
        user_email: text(row, "user_email"),
        user_role: text(row, "user_role")
            .and_then(|r| UserRole::parse(&r))
            .unwrap_or_default(),
        teams: strings(row, "teams"),
        models: strings(row, "models"),
        spend: float(row, "spend").unwrap_or(0.0),
        max_budget: float(row, "max_budget"),
        budget_duration,
        budget_reset_at,
        rpm_limit: count(row, "rpm_limit"),
        tpm_limit: count(row, "tpm_limit"),
        max_parallel_requests: count(row, "max_parallel_requests"),
        metadata: json(row, "metadata"),
        password_hash: None,
        created_at,
        updated_at: time(row, "updated_at").unwrap_or(created_at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(v: Value) -> Row {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn a_key_row_keeps_its_token_limits_budget_and_extras() {
        let token = "A".repeat(64);
        let k = key(
            &row(json!({
                "token": token, "key_name": "sk-...abcd", "key_alias": "ci",
                "models": ["gpt-4o"], "spend": 0.5, "max_budget": 2.0,
                "budget_duration": "30d", "budget_reset_at": 1000.7, "expires": null,
                "rpm_limit": 10, "tpm_limit": 1000, "max_parallel_requests": 2,
                "metadata": {"model_rpm_limit": {"gpt-4o": 3}, "model_tpm_limit": {"gpt-4o": 30},
                             "tags": ["a"], "guardrails": ["g"]},
                "model_max_budget": {"gpt-4o": {"budget_limit": 1.0, "time_period": "1d"}, "o": 2.0},
                "model_spend": {"gpt-4o": 0.25},
                "aliases": {"my": "gpt-4o"}, "config": {}, "permissions": {"p": true},
                "allowed_routes": ["/chat/completions"], "blocked": null,
                "soft_budget": 1.5, "team_id": "t", "user_id": "u", "created_at": 5.0
            })),
            100,
        )
        .unwrap();
        assert_eq!(k.token, "a".repeat(64));
        assert_eq!((k.spend, k.max_budget), (0.5, Some(2.0)));
        assert_eq!(
            (k.budget_duration, k.budget_reset_at),
            (Some(30 * 86_400), Some(1000))
        );
        assert_eq!(
            (k.rpm_limit, k.tpm_limit, k.max_parallel_requests),
            (Some(10), Some(1000), Some(2))
        );
        assert_eq!(k.model_rpm_limit.get("gpt-4o"), Some(&3));
        assert_eq!(k.model_tpm_limit.get("gpt-4o"), Some(&30));
        assert_eq!(k.model_max_budget.get("gpt-4o"), Some(&1.0));
        assert_eq!(k.model_max_budget.get("o"), Some(&2.0));
        assert_eq!(k.model_spend.get("gpt-4o"), Some(&0.25));
        assert_eq!(
            k.extras.aliases.get("my").map(String::as_str),
            Some("gpt-4o")
        );
        assert_eq!(k.extras.soft_budget, Some(1.5));
        assert_eq!(k.extras.guardrails, ["g"]);
        assert!(k.extras.config.is_null());
        assert_eq!(k.extras.permissions, json!({"p": true}));
        assert_eq!(k.tags, ["a"]);
        assert!(!k.blocked);
        assert_eq!((k.created_at, k.updated_at), (5, 5));
    }

    #[test]
    fn a_budget_row_is_a_budget_and_a_key_keeps_its_link() {
        let b = budget(
            &row(
                json!({"budget_id": "tier", "max_budget": 3.0, "soft_budget": 1.0,
                        "rpm_limit": 1, "tpm_limit": 50, "max_parallel_requests": 2,
                        "model_max_budget": {"m": {"max_budget": 1.0}},
                        "budget_duration": "1d", "budget_reset_at": null,
                        "created_at": 5.0, "created_by": "admin", "updated_by": "admin"}),
            ),
            100,
        );
        assert_eq!(b.budget_id, "tier");
        assert_eq!((b.max_budget, b.soft_budget), (Some(3.0), Some(1.0)));
        assert_eq!((b.rpm_limit, b.tpm_limit), (Some(1), Some(50)));
        assert_eq!(
            (b.budget_duration, b.budget_reset_at),
            (Some(86_400), Some(86_500))
        );
        assert_eq!(b.model_budgets().get("m"), Some(&1.0));
        assert_eq!((b.created_at, b.updated_at), (5, 5));
        assert_eq!(b.created_by.as_deref(), Some("admin"));
        let k = key(
            &row(json!({"token": "c".repeat(64), "rpm_limit": 7, "budget_id": "tier"})),
            0,
        )
        .unwrap();
        assert_eq!(k.extras.budget_id.as_deref(), Some("tier"));
        assert_eq!(
            (k.rpm_limit, k.tpm_limit, k.max_budget),
            (Some(7), None, None),
            "the budget's limits come through the link, not copied"
        );
    }

    #[test]
    fn tokens_are_hashes_or_old_secrets() {
        let r = |t: &str| key(&row(json!({"token": t})), 0);
        assert_eq!(r("sk-old").unwrap().token, llmgate_auth::hash_key("sk-old"));
        assert!(r("not-a-token").is_err());
        assert!(r("").is_err());
    }

    #[test]
    fn all_team_models_defers_to_the_team_and_a_period_without_reset_starts_now() {
        let k = key(
            &row(
                json!({"token": "b".repeat(64), "models": ["all-team-models"],
                        "budget_duration": "1h"}),
            ),
            100,
        )
        .unwrap();
        assert!(k.models.is_empty());
        assert_eq!(k.budget_reset_at, Some(3_700));
    }

    #[test]
    fn team_and_end_user_rows() {
        let t = team(
            &row(
                json!({"team_id": "t1", "models": ["a"], "spend": 1.0, "rpm_limit": 5,
                        "members_with_roles": [{"role": "admin", "user_id": "u"}],
                        "model_aliases": {"x": "a"}, "metadata": {}, "blocked": false}),
            ),
            0,
        );
        assert_eq!(
            (t.team_id.as_str(), t.spend, t.rpm_limit),
            ("t1", 1.0, Some(5))
        );
        assert_eq!(t.members_with_roles.len(), 1);
        assert_eq!(t.model_aliases.get("x").map(String::as_str), Some("a"));
        let u = end_user(
            &row(
                json!({"user_id": "c", "spend": 0.1, "budget_id": "b", "blocked": true,
                        "budget_reset_at": 50.0}),
            ),
            0,
        );
        assert_eq!(u.budget_id.as_deref(), Some("b"));
        assert_eq!(u.budget_reset_at, Some(50), "its budget row's next reset");
        assert_eq!((u.spend, u.max_budget, u.blocked), (0.1, None, true));
    }
}
