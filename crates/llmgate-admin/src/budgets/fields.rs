//! The fields of LiteLLM's `/budget/new` and `/budget/update` bodies, applied to a
//! [`BudgetObject`]; the budget as LiteLLM's `LiteLLM_BudgetTable` row shows it; and
//! `/budget/settings`' list. Values are checked as a key's are (`keys/fields.rs`).

use llmgate_core::{ApiError, BudgetObject};
use serde_json::{json, Map, Value};

use crate::keys::fields::{
    opt_count, opt_duration, opt_money, time, MAX_BUDGET_DURATION_SECS, MAX_BUDGET_USD, MAX_MODELS,
    MAX_NAME_BYTES,
};

/// Fields a body may set (besides `budget_id`, which names or chooses the budget).
const FIELDS: &str = "max_budget, soft_budget, max_parallel_requests, tpm_limit, rpm_limit, \
    model_max_budget, budget_duration, budget_reset_at";

/// Sets one field from its JSON value; `null` clears it. `now` anchors `budget_duration`.
fn apply(b: &mut BudgetObject, field: &str, v: &Value, now: i64) -> Result<(), String> {
    match field {
        "max_budget" => b.max_budget = opt_money(v, field)?,
        "soft_budget" => b.soft_budget = opt_money(v, field)?,
        "max_parallel_requests" => b.max_parallel_requests = opt_count(v, field)?,
        "tpm_limit" => b.tpm_limit = opt_count(v, field)?,
        "rpm_limit" => b.rpm_limit = opt_count(v, field)?,
        "model_max_budget" => b.model_max_budget = model_max_budget(v, field)?,
        "budget_duration" => {
            b.budget_duration = opt_duration(v, field, MAX_BUDGET_DURATION_SECS, "366 days")?;
            b.budget_reset_at = b.budget_duration.map(|d| now.saturating_add(d));
        }
        "budget_reset_at" => b.budget_reset_at = at(v, field)?,
        other => {
            return Err(format!(
                "{other} is not a budget field; the fields are budget_id, {FIELDS}"
            ))
        }
    }
    Ok(())
}

/// Applies every field of a body but `budget_id`; `budget_reset_at` last, so a body giving it
/// beside `budget_duration` keeps it. Every refusal is named; the first is the `param`.
pub(crate) fn apply_all(
    b: &mut BudgetObject,
    body: &Map<String, Value>,
    now: i64,
) -> Result<(), ApiError> {
    let mut ordered: Map<String, Value> = body
        .iter()
        .filter(|(k, _)| *k != "budget_id" && *k != "budget_reset_at")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(v) = body.get("budget_reset_at") {
        ordered.insert("budget_reset_at".into(), v.clone());
    }
    crate::keys::fields::apply_each(b, &ordered, &[], now, apply).map_err(|e| {
        ApiError::bad_request(e.message)
            .with_code("invalid_budget_request")
            .with_param(e.param)
    })
}

/// LiteLLM's `model_max_budget`: per model, a number of USD or an object whose `max_budget`
/// (or `budget_limit`) is one; other settings in the object are kept as given.
fn model_max_budget(v: &Value, field: &str) -> Result<Value, String> {
    let wrong = || {
        format!(
            "{field} must be an object of at most {MAX_MODELS} model names, each to a number of \
             USD or {{\"max_budget\": USD, \"budget_duration\": \"1d\"}}"
        )
    };
    let m = match v {
        Value::Null => return Ok(Value::Null),
        Value::Object(m) if m.len() <= MAX_MODELS => m,
        _ => return Err(wrong()),
    };
    for (model, per) in m {
        let usd = per.as_f64().or_else(|| {
            let o = per.as_object()?;
            o.get("max_budget")
                .or_else(|| o.get("budget_limit"))?
                .as_f64()
        });
        let ok = !model.is_empty()
            && model.len() <= MAX_NAME_BYTES
            && usd.is_some_and(|x| x.is_finite() && (0.0..=MAX_BUDGET_USD).contains(&x));
        if !ok {
            return Err(wrong());
        }
    }
    Ok(v.clone())
}

/// A time given as RFC 3339 (LiteLLM's datetimes) or Unix seconds.
fn at(v: &Value, field: &str) -> Result<Option<i64>, String> {
    use time::format_description::well_known::Rfc3339;
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_i64()
            .filter(|t| *t >= 0)
            .map(Some)
            .ok_or_else(|| format!("{field} must be a time")),
        Value::String(s) => time::OffsetDateTime::parse(s, &Rfc3339)
            .map(|t| Some(t.unix_timestamp()))
            .map_err(|_| format!("{field} must be an RFC 3339 time such as 2026-01-31T00:00:00Z")),
        _ => Err(format!("{field} must be a time")),
    }
}

/// The next reset of an object that links to `budget`: its own when it has a period of its own
/// (a `budget_duration`) or already a next reset; else, when the budget has a duration, one
/// budget period from `now`.
pub(crate) fn first_reset(
    own_duration: Option<i64>,
    reset_at: Option<i64>,
    budget: Option<&BudgetObject>,
    now: i64,
) -> Option<i64> {
    match (
        own_duration,
        reset_at,
        budget.and_then(|b| b.budget_duration),
    ) {
        (None, None, Some(d)) => Some(now.saturating_add(d)),
        _ => reset_at,
    }
}

/// The budget as LiteLLM's `LiteLLM_BudgetTable` row shows it.
pub(crate) fn view(b: &BudgetObject) -> Value {
    json!({
        "budget_id": b.budget_id,
        "max_budget": b.max_budget,
        "soft_budget": b.soft_budget,
        "max_parallel_requests": b.max_parallel_requests,
        "tpm_limit": b.tpm_limit,
        "rpm_limit": b.rpm_limit,
        "model_max_budget": b.model_max_budget,
        "budget_duration": b.budget_duration.map(duration_text),
        "budget_reset_at": time(b.budget_reset_at),
        "created_at": time(Some(b.created_at)),
        "created_by": b.created_by,
        "updated_at": time(Some(b.updated_at)),
        "updated_by": b.updated_by,
    })
}

/// Seconds as LiteLLM writes a duration: `30d`, `1h`, `10m`, else `90s`.
fn duration_text(secs: i64) -> String {
    match secs {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// `/budget/settings`: LiteLLM's `ConfigList` for each setting its UI edits.
pub(crate) fn settings(b: Option<&BudgetObject>) -> Value {
    let shown = b.map(view).unwrap_or_else(|| json!({}));
    let rows = [
        (
            "max_budget",
            "Float",
            "USD each linked key, team or end user may spend per period",
        ),
        (
            "soft_budget",
            "Float",
            "USD past which an alert is sent (requests are not refused)",
        ),
        (
            "max_parallel_requests",
            "Integer",
            "requests in flight at once, per linked key or team",
        ),
        (
            "tpm_limit",
            "Integer",
            "tokens per minute, per linked key or team",
        ),
        (
            "rpm_limit",
            "Integer",
            "requests per minute, per linked key or team",
        ),
        (
            "model_max_budget",
            "Object",
            "USD per model, per linked key",
        ),
        (
            "budget_duration",
            "String",
            "budget period (30s, 10m, 1h, 7d, 1mo); none never resets",
        ),
    ];
    Value::Array(
        rows.iter()
            .map(|(name, kind, description)| {
                json!({
                    "field_name": name,
                    "field_type": kind,
                    "field_description": description,
                    "field_value": shown.get(*name).cloned().unwrap_or(Value::Null),
                    "stored_in_db": true,
                    "field_default_value": null,
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_apply_refuse_and_show_as_litellm() {
        let mut b = BudgetObject::default();
        let body = json!({"max_budget": 5, "soft_budget": 4, "rpm_limit": 10,
            "budget_duration": "30d", "model_max_budget": {"gpt-4o": {"max_budget": 1.5}}});
        apply_all(&mut b, body.as_object().unwrap(), 100).unwrap();
        assert_eq!(b.budget_reset_at, Some(100 + 30 * 86_400));
        let v = view(&b);
        assert_eq!(v["budget_duration"], "30d");
        assert_eq!(v["model_max_budget"]["gpt-4o"]["max_budget"], 1.5);
        let given = json!({"budget_duration": "1h", "budget_reset_at": "1970-01-01T00:01:40Z"});
        apply_all(&mut b, given.as_object().unwrap(), 0).unwrap();
        assert_eq!(b.budget_reset_at, Some(100), "a given reset time wins");
        let bad = json!({"max_budget": -1, "colour": 1, "model_max_budget": {"m": "x"}});
        let err = apply_all(&mut b, bad.as_object().unwrap(), 0).unwrap_err();
        for f in ["max_budget", "colour", "model_max_budget"] {
            assert!(err.message().contains(f), "{}", err.message());
        }
        assert_eq!(duration_text(90), "90s");
        assert_eq!(first_reset(None, None, Some(&b), 10), Some(3_610));
        assert_eq!(first_reset(Some(5), None, Some(&b), 10), None);
        assert_eq!(settings(Some(&b))[0]["field_value"], json!(5.0));
        assert_eq!(settings(None)[0]["field_value"], json!(null));
    }
}
