//! `GET /global/spend/report?start_date=&end_date=&group_by=team|customer|api_key`: LiteLLM's
//! spend report, per UTC day, then per team (end user, key), with each model's spend and
//! tokens, summed in the database.

use llmgate_core::ApiError;
use llmgate_store::{Database, ReportGroup, ReportRow, SpendRange};
use serde_json::{json, Value};

/// The report, newest day first: `[{"group_by_day", "teams" | "customers" | "api_keys": [
/// {"team_name" | "customer" | "api_key", "total_spend", "total_requests", "metadata": [{"model",
/// "spend", "total_tokens", "requests"}]}]}]`.
pub(crate) async fn answer(
    db: &Database,
    group_by: Option<&str>,
    range: SpendRange,
) -> Result<Value, ApiError> {
    let group = match group_by.unwrap_or("team") {
        "team" => ReportGroup::Team,
        "customer" => ReportGroup::Customer,
        "api_key" => ReportGroup::ApiKey,
        other => {
            return Err(ApiError::bad_request(format!(
                "group_by must be team, customer or api_key, not {other:?}"
            ))
            .with_param("group_by"))
        }
    };
    let rows = db
        .run(move |s| async move { s.spend_report(group, range).await })
        .await
        .map_err(crate::spend::store_error)?;
    Ok(fold(group, &rows))
}

/// Folds rows (ordered by day, then name) into LiteLLM's nesting.
fn fold(group: ReportGroup, rows: &[ReportRow]) -> Value {
    let (list, name) = match group {
        ReportGroup::Team => ("teams", "team_name"),
        ReportGroup::Customer => ("customers", "customer"),
        ReportGroup::ApiKey => ("api_keys", "api_key"),
    };
    let mut days: Vec<Value> = Vec::new();
    for r in rows {
        if days
            .last()
            .is_none_or(|d| d["group_by_day"] != r.day.as_str())
        {
            days.push(json!({"group_by_day": r.day, list: []}));
        }
        let Some(groups) = days.last_mut().and_then(|d| d[list].as_array_mut()) else {
            continue;
        };
        let who = (!r.name.is_empty()).then_some(r.name.as_str());
        if groups.last().is_none_or(|g| g[name] != json!(who)) {
            groups
                .push(json!({name: who, "total_spend": 0.0, "total_requests": 0, "metadata": []}));
        }
        if let Some(g) = groups.last_mut() {
            g["total_spend"] = json!(g["total_spend"].as_f64().unwrap_or(0.0) + r.spend);
            g["total_requests"] = json!(g["total_requests"].as_i64().unwrap_or(0) + r.requests);
            if let Some(models) = g["metadata"].as_array_mut() {
                models.push(json!({"model": r.model, "spend": r.spend,
                    "total_tokens": r.tokens, "requests": r.requests}));
            }
        }
    }
    Value::Array(days)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(day: &str, name: &str, model: &str, spend: f64) -> ReportRow {
        ReportRow {
            day: day.into(),
            name: name.into(),
            model: model.into(),
            requests: 1,
            tokens: 10,
            spend,
        }
    }

    #[test]
    fn rows_fold_into_days_groups_and_models() {
        let rows = [
            row("2026-12-02", "", "gpt", 1.0),
            row("2026-12-02", "search", "claude", 2.0),
            row("2026-12-02", "search", "gpt", 0.5),
            row("2026-12-01", "search", "gpt", 4.0),
        ];
        let v = fold(ReportGroup::Team, &rows);
        assert_eq!(v.as_array().unwrap().len(), 2);
        let teams = &v[0]["teams"];
        assert_eq!(teams[0]["team_name"], Value::Null);
        assert_eq!(teams[1]["team_name"], "search");
        assert_eq!(teams[1]["total_spend"], 2.5);
        assert_eq!(teams[1]["metadata"].as_array().unwrap().len(), 2);
        assert_eq!(v[1]["group_by_day"], "2026-12-01");
    }
}
