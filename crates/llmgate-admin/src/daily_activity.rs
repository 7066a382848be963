//! `GET /user/daily/activity?start_date=&end_date=&model=&api_key=`: LiteLLM's daily activity
//! (what its UI's usage page reads): per UTC day, its metrics and a breakdown by model, key and
//! provider, with totals in `metadata`. The master key sees every request; a virtual key sees
//! its own user's (else its own key's).

use std::collections::BTreeMap;

use llmgate_core::ApiError;
use llmgate_store::{ActivityFilter, ActivityRow, Database, SpendRange};
use serde_json::{json, Map, Value};

/// The answer for `filter` over `range`.
pub(crate) async fn answer(
    db: &Database,
    range: SpendRange,
    filter: ActivityFilter,
) -> Result<Value, ApiError> {
    let rows = db
        .run(move |s| async move { s.daily_activity(range, &filter).await })
        .await
        .map_err(crate::spend::store_error)?;
    Ok(fold(&rows))
}

/// LiteLLM's metric names for a sum of rows.
#[derive(Default, Clone, Copy)]
struct Metrics {
    spend: f64,
    prompt: i64,
    completion: i64,
    cache_read: i64,
    cache_creation: i64,
    requests: i64,
    ok: i64,
}

impl Metrics {
    fn add(&mut self, r: &ActivityRow) {
        self.spend += r.spend;
        self.prompt += r.prompt_tokens;
        self.completion += r.completion_tokens;
        self.cache_read += r.cache_read_tokens;
        self.cache_creation += r.cache_creation_tokens;
        self.requests += r.requests;
        if r.success {
            self.ok += r.requests;
        }
    }

    fn json(&self) -> Value {
        json!({
            "spend": self.spend,
            "prompt_tokens": self.prompt,
            "completion_tokens": self.completion,
            "total_tokens": self.prompt + self.completion,
            "cache_read_input_tokens": self.cache_read,
            "cache_creation_input_tokens": self.cache_creation,
            "api_requests": self.requests,
            "successful_requests": self.ok,
            "failed_requests": self.requests - self.ok,
        })
    }
}

type Breakdown = BTreeMap<String, Metrics>;

fn breakdown(b: &Breakdown) -> Value {
    let m: Map<String, Value> = b
        .iter()
        .map(|(k, v)| (k.clone(), json!({"metrics": v.json()})))
        .collect();
    Value::Object(m)
}

/// Rows (newest day first) into LiteLLM's `{"results": [...], "metadata": {...}}`.
fn fold(rows: &[ActivityRow]) -> Value {
    let mut days: Vec<(String, Metrics, [Breakdown; 3])> = Vec::new();
    let mut total = Metrics::default();
    for r in rows {
        if days.last().is_none_or(|d| d.0 != r.day) {
            days.push((r.day.clone(), Metrics::default(), Default::default()));
        }
        let Some((_, day, [models, keys, providers])) = days.last_mut() else {
            continue;
        };
        day.add(r);
        total.add(r);
        models.entry(r.model.clone()).or_default().add(r);
        keys.entry(r.key.clone()).or_default().add(r);
        providers.entry(r.provider.clone()).or_default().add(r);
    }
    let results: Vec<Value> = days
        .iter()
        .map(|(date, m, [models, keys, providers])| {
            json!({"date": date, "metrics": m.json(), "breakdown": {
                "models": breakdown(models), "api_keys": breakdown(keys),
                "providers": breakdown(providers)}})
        })
        .collect();
    json!({"results": results, "metadata": {
        "total_spend": total.spend,
        "total_prompt_tokens": total.prompt,
        "total_completion_tokens": total.completion,
        "total_tokens": total.prompt + total.completion,
        "total_api_requests": total.requests,
        "total_successful_requests": total.ok,
        "total_failed_requests": total.requests - total.ok,
        "page": 1, "total_pages": 1, "has_more": false,
    }})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(day: &str, model: &str, success: bool, spend: f64) -> ActivityRow {
        ActivityRow {
            day: day.into(),
            model: model.into(),
            key: "k".into(),
            provider: "openai".into(),
            success,
            requests: 2,
            spend,
            prompt_tokens: 3,
            completion_tokens: 4,
            cache_read_tokens: 0,
            cache_creation_tokens: 0,
        }
    }

    #[test]
    fn days_metrics_and_breakdowns_add_up() {
        let v = fold(&[
            row("2026-12-02", "gpt", true, 1.0),
            row("2026-12-02", "gpt", false, 0.0),
            row("2026-12-01", "claude", true, 2.0),
        ]);
        let first = &v["results"][0];
        assert_eq!(first["date"], "2026-12-02");
        assert_eq!(first["metrics"]["api_requests"], 4);
        assert_eq!(first["metrics"]["failed_requests"], 2);
        assert_eq!(
            first["breakdown"]["models"]["gpt"]["metrics"]["total_tokens"],
            14
        );
        assert_eq!(v["metadata"]["total_spend"], 3.0);
        assert_eq!(v["metadata"]["total_successful_requests"], 4);
    }
}
