//! The fields of LiteLLM's `/key/generate` and `/key/update` bodies, applied to a
//! [`VirtualKey`], and the key as `/key/info` shows it.

use std::collections::HashMap;

use llmgate_core::VirtualKey;
use serde_json::{json, Map, Value};

/// Fields a body may set (besides `key`, which names or chooses the secret).
pub(crate) const FIELDS: &[&str] = &[
    "models",
    "max_budget",
    "budget_duration",
    "duration",
    "rpm_limit",
    "tpm_limit",
    "max_parallel_requests",
    "metadata",
    "key_alias",
    "team_id",
    "user_id",
    "tags",
    "model_max_budget",
    "model_rpm_limit",
    "model_tpm_limit",
    "blocked",
    "aliases",
    "soft_budget",
    "key_type",
    "allowed_routes",
    "enforced_params",
    "permissions",
    "guardrails",
    "config",
    "budget_id",
];

/// Fields kept and shown by `/key/info` but not acted on: a notice says so when a body sets one.
pub(crate) const STORED_ONLY: &[&str] = &["permissions", "guardrails", "config"];

/// LiteLLM's key types.
pub(crate) const KEY_TYPES: &[&str] = &["llm_api", "management", "read_only", "default"];

/// The longest `duration` (key lifetime): 100 years, the gateway's bound on any seconds value.
pub(crate) const MAX_DURATION_SECS: i64 = 3_155_760_000;
/// The longest `budget_duration`: 366 days (a yearly budget; longer never resets in practice).
pub(crate) const MAX_BUDGET_DURATION_SECS: i64 = 366 * 86_400;
/// The largest `rpm_limit`, `tpm_limit`, `max_parallel_requests` and per-model limit.
pub(crate) const MAX_LIMIT: u64 = 1_000_000_000_000;
/// The largest `max_budget` and per-model budget, in USD.
pub(crate) const MAX_BUDGET_USD: f64 = 1e12;
/// The most bytes `metadata` may take serialized as JSON.
pub(crate) const MAX_METADATA_BYTES: usize = 16 * 1024;
/// The longest `key_alias`, `team_id`, `user_id`, model name, tag or map key, in bytes.
pub(crate) const MAX_NAME_BYTES: usize = 256;
/// The most `models` (and entries in a per-model map).
pub(crate) const MAX_MODELS: usize = 1_000;
/// The most `tags`.
pub(crate) const MAX_TAGS: usize = 100;

/// A field's value refused: the field (OpenAI's `param`) and the message naming it.
#[derive(Debug)]
pub(crate) struct Invalid {
    /// The first field refused.
    pub(crate) param: String,
    /// Every refusal, joined.
    pub(crate) message: String,
}

/// Sets one field from its JSON value; `null` clears it. `now` anchors `duration` (expiry) and
/// `budget_duration` (the first reset).
pub(crate) fn apply(key: &mut VirtualKey, field: &str, v: &Value, now: i64) -> Result<(), String> {
    match field {
        "models" => key.models = strings(v, field, MAX_MODELS)?,
        "tags" => key.tags = strings(v, field, MAX_TAGS)?,
        "max_budget" => key.max_budget = opt_money(v, field)?,
        "budget_duration" => {
            key.budget_duration = opt_duration(v, field, MAX_BUDGET_DURATION_SECS, "366 days")?;
            key.budget_reset_at = key.budget_duration.map(|d| now.saturating_add(d));
        }
        "duration" => {
            key.expires = opt_duration(v, field, MAX_DURATION_SECS, "100 years")?
                .map(|d| now.saturating_add(d));
        }
        "rpm_limit" => key.rpm_limit = opt_count(v, field)?,
        "tpm_limit" => key.tpm_limit = opt_count(v, field)?,
        "max_parallel_requests" => key.max_parallel_requests = opt_count(v, field)?,
        "metadata" => key.metadata = metadata(v, field)?,
        "key_alias" => key.key_alias = opt_string(v, field)?,
        "team_id" => key.team_id = opt_string(v, field)?,
        "user_id" => key.user_id = opt_string(v, field)?,
        "model_max_budget" => {
            key.model_max_budget = map(v, field, |x| money(x).ok_or(MONEY))?;
        }
        "model_rpm_limit" => key.model_rpm_limit = map(v, field, |x| count(x).ok_or(COUNT))?,
        "model_tpm_limit" => key.model_tpm_limit = map(v, field, |x| count(x).ok_or(COUNT))?,
        "blocked" => {
            key.blocked = match v {
                Value::Null => false,
                Value::Bool(b) => *b,
                _ => return Err(format!("{field} must be true or false")),
            }
        }
        "aliases" | "soft_budget" | "key_type" | "allowed_routes" | "enforced_params"
        | "permissions" | "guardrails" | "config" | "budget_id" => {
            extra(&mut key.extras, field, v)?;
        }
        _ => {
            return Err(format!(
                "unknown field \"{field}\"; llmgate's key API takes key, {}",
                FIELDS.join(", ")
            ))
        }
    }
    Ok(())
}

/// The fields kept in [`llmgate_core::KeyExtras`].
fn extra(x: &mut llmgate_core::KeyExtras, field: &str, v: &Value) -> Result<(), String> {
    match field {
        "aliases" => {
            x.aliases = map(v, field, |t| {
                t.as_str().map(str::to_owned).ok_or("a model group name")
            })?;
        }
        "soft_budget" => x.soft_budget = opt_money(v, field)?,
        "key_type" => {
            x.key_type = match v {
                Value::Null => None,
                Value::String(t) if KEY_TYPES.contains(&t.as_str()) => Some(t.clone()),
                _ => return Err(format!("{field} must be one of {}", KEY_TYPES.join(", "))),
            }
        }
        "allowed_routes" => x.allowed_routes = strings(v, field, MAX_MODELS)?,
        "enforced_params" => x.enforced_params = strings(v, field, MAX_TAGS)?,
        "guardrails" => x.guardrails = strings(v, field, MAX_TAGS)?,
        "permissions" => x.permissions = metadata(v, field)?,
        "budget_id" => x.budget_id = opt_string(v, field)?,
        _ => x.config = metadata(v, field)?,
    }
    Ok(())
}

/// Applies every field of a request body but `skip` (the fields that name the key).
pub(crate) fn apply_all(
    key: &mut VirtualKey,
    body: &Map<String, Value>,
    skip: &[&str],
    now: i64,
) -> Result<(), Invalid> {
    apply_each(key, body, skip, now, apply)
}

/// Applies every field of `body` but `skip` to `target` with `apply`, gathering every refusal
/// (the first refused field is the `param`). Keys and teams share it.
pub(crate) fn apply_each<T>(
    target: &mut T,
    body: &Map<String, Value>,
    skip: &[&str],
    now: i64,
    apply: impl Fn(&mut T, &str, &Value, i64) -> Result<(), String>,
) -> Result<(), Invalid> {
    let mut problems = Vec::new();
    let mut param = None;
    for (field, v) in body.iter().filter(|(f, _)| !skip.contains(&f.as_str())) {
        if let Err(e) = apply(target, field, v, now) {
            param.get_or_insert_with(|| field.clone());
            problems.push(e);
        }
    }
    match param {
        None => Ok(()),
        Some(param) => Err(Invalid {
            param,
            message: problems.join("; "),
        }),
    }
}

/// What a budget must be.
const MONEY: &str = "a number of USD from 0 to 1000000000000";
/// What a limit must be.
const COUNT: &str = "a whole number from 0 to 1000000000000";

fn name_ok(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_NAME_BYTES
}

pub(crate) fn strings(v: &Value, field: &str, max: usize) -> Result<Vec<String>, String> {
    let wrong = || {
        format!("{field} must be a list of at most {max} strings of 1 to {MAX_NAME_BYTES} bytes")
    };
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) if items.len() <= max => items
            .iter()
            .map(|i| i.as_str().filter(|s| name_ok(s)).map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(wrong),
        _ => Err(wrong()),
    }
}

pub(crate) fn opt_string(v: &Value, field: &str) -> Result<Option<String>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if name_ok(s) => Ok(Some(s.clone())),
        _ => Err(format!(
            "{field} must be a non-empty string of at most {MAX_NAME_BYTES} bytes, or null"
        )),
    }
}

pub(crate) fn metadata(v: &Value, field: &str) -> Result<Value, String> {
    match v {
        Value::Null => Ok(Value::Null),
        Value::Object(_) => {
            let size = serde_json::to_vec(v).map_or(usize::MAX, |b| b.len());
            if size > MAX_METADATA_BYTES {
                return Err(format!(
                    "{field} is {size} bytes as JSON; at most {MAX_METADATA_BYTES} are kept"
                ));
            }
            Ok(v.clone())
        }
        _ => Err(format!("{field} must be a JSON object")),
    }
}

fn money(v: &Value) -> Option<f64> {
    v.as_f64()
        .filter(|x| x.is_finite() && (0.0..=MAX_BUDGET_USD).contains(x))
}

pub(crate) fn opt_money(v: &Value, field: &str) -> Result<Option<f64>, String> {
    match v {
        Value::Null => Ok(None),
        _ => money(v)
            .map(Some)
            .ok_or_else(|| format!("{field} must be {MONEY}, or null")),
    }
}

/// A whole number from 0 to [`MAX_LIMIT`] (`5` and `5.0` alike; never clamped).
fn count(v: &Value) -> Option<u64> {
    let n = match v.as_u64() {
        Some(n) => n,
        None => {
            let f = v.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0)?;
            // Exact: MAX_LIMIT is below 2^53, so any f64 within it is a whole u64.
            if f > MAX_LIMIT as f64 {
                return None;
            }
            f as u64
        }
    };
    (n <= MAX_LIMIT).then_some(n)
}

pub(crate) fn opt_count(v: &Value, field: &str) -> Result<Option<u64>, String> {
    match v {
        Value::Null => Ok(None),
        _ => count(v)
            .map(Some)
            .ok_or_else(|| format!("{field} must be {COUNT}, or null")),
    }
}

pub(crate) fn opt_duration(
    v: &Value,
    field: &str,
    max: i64,
    max_text: &str,
) -> Result<Option<i64>, String> {
    let secs = match v {
        Value::Null => return Ok(None),
        Value::Number(n) => n.as_i64().filter(|s| *s > 0).ok_or_else(|| {
            format!("{field} must be a positive number of seconds, at most {max} ({max_text})")
        })?,
        Value::String(s) => llmgate_core::seconds::parse_duration(s).ok_or_else(|| {
            format!("{field} \"{s}\" is not a duration: use e.g. 30s, 10m, 1h, 7d, 2w or 1mo")
        })?,
        _ => return Err(format!("{field} must be a duration such as \"30d\"")),
    };
    if secs > max {
        return Err(format!(
            "{field} is too long: at most {max} seconds ({max_text})"
        ));
    }
    Ok(Some(secs))
}

pub(crate) fn map<T>(
    v: &Value,
    field: &str,
    each: impl Fn(&Value) -> Result<T, &'static str>,
) -> Result<HashMap<String, T>, String> {
    match v {
        Value::Null => Ok(HashMap::new()),
        Value::Object(m) if m.len() <= MAX_MODELS => m
            .iter()
            .map(|(k, x)| {
                if !name_ok(k) {
                    return Err(format!(
                        "{field}: a model name must have 1 to {MAX_NAME_BYTES} bytes"
                    ));
                }
                each(x)
                    .map(|t| (k.clone(), t))
                    .map_err(|what| format!("{field}.{k} must be {what}"))
            })
            .collect(),
        _ => Err(format!(
            "{field} must be an object of at most {MAX_MODELS} model names to values"
        )),
    }
}

/// Unix seconds as RFC 3339, the way LiteLLM's API shows times.
pub(crate) fn time(t: Option<i64>) -> Value {
    use time::format_description::well_known::Rfc3339;
    t.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .map_or(Value::Null, Value::String)
}

/// The key's settings and state, as `/key/info` and `/key/generate` show them. Never the secret.
pub(crate) fn view(k: &VirtualKey) -> Value {
    json!({
        "token": k.token,
        "key_name": k.key_name,
        "key_alias": k.key_alias,
        "spend": k.spend,
        "max_budget": k.max_budget,
        "budget_duration": k.budget_duration.map(|d| format!("{d}s")),
        "budget_reset_at": time(k.budget_reset_at),
        "expires": time(k.expires),
        "models": k.models,
        "rpm_limit": k.rpm_limit,
        "tpm_limit": k.tpm_limit,
        "max_parallel_requests": k.max_parallel_requests,
        "model_rpm_limit": k.model_rpm_limit,
        "model_tpm_limit": k.model_tpm_limit,
        "model_max_budget": k.model_max_budget,
        "model_spend": k.model_spend,
        "metadata": if k.metadata.is_null() { json!({}) } else { k.metadata.clone() },
        "team_id": k.team_id,
        "user_id": k.user_id,
        "tags": k.tags,
        "blocked": k.blocked,
        "aliases": k.extras.aliases,
        "soft_budget": k.extras.soft_budget,
        "key_type": k.extras.key_type.as_deref().unwrap_or("default"),
        "allowed_routes": k.extras.allowed_routes,
        "enforced_params": k.extras.enforced_params,
        "permissions": if k.extras.permissions.is_null() { json!({}) } else { k.extras.permissions.clone() },
        "guardrails": k.extras.guardrails,
        "config": if k.extras.config.is_null() { json!({}) } else { k.extras.config.clone() },
        "budget_id": k.extras.budget_id,
        "created_at": time(Some(k.created_at)),
        "updated_at": time(Some(k.updated_at)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(llmgate_core::seconds::parse_duration("30s"), Some(30));
        assert_eq!(llmgate_core::seconds::parse_duration("1h"), Some(3600));
        assert_eq!(
            llmgate_core::seconds::parse_duration("30d"),
            Some(30 * 86_400)
        );
        assert_eq!(
            llmgate_core::seconds::parse_duration("1mo"),
            Some(30 * 86_400)
        );
        assert_eq!(llmgate_core::seconds::parse_duration("90"), Some(90));
        for bad in ["", "d", "0d", "-1d", "3y", "1.5h"] {
            assert_eq!(llmgate_core::seconds::parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn fields_apply_and_clear() {
        let mut k = VirtualKey::default();
        let body = json!({"models": ["a"], "max_budget": 5, "duration": "1h",
            "budget_duration": "1d", "model_rpm_limit": {"a": 3}, "key_alias": "ci"});
        apply_all(&mut k, body.as_object().unwrap(), &[], 100).unwrap();
        assert_eq!(k.models, vec!["a"]);
        assert_eq!(
            (k.max_budget, k.expires, k.budget_reset_at),
            (Some(5.0), Some(3_700), Some(86_500))
        );
        assert_eq!(k.model_rpm_limit.get("a"), Some(&3));
        apply(&mut k, "max_budget", &Value::Null, 100).unwrap();
        assert_eq!(k.max_budget, None);
        let bad = json!({"max_budget": -1, "soft_budget": -3, "rpm_limit": "x"});
        let err = apply_all(&mut k, bad.as_object().unwrap(), &[], 100)
            .unwrap_err()
            .message;
        assert!(
            err.contains("max_budget") && err.contains("soft_budget") && err.contains("rpm_limit"),
            "{err}"
        );
        assert_eq!(time(Some(0)), json!("1970-01-01T00:00:00Z"));
    }
}
