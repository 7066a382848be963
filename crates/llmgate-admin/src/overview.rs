//! `GET /global/overview?window=hour|day|30d` (llmgate's own; LiteLLM's `/global/activity`
//! answers daily requests and tokens only): the request log of the last hour (5-minute
//! buckets), day (hourly) or 30 days (daily) summed in the database
//! ([`Store::activity`](llmgate_store::Store::activity)), for the UI's Overview:
//!
//! ```json
//! {"window": "day", "start_time": "...", "end_time": "...", "bucket_seconds": 3600,
//!  "requests": 3, "errors": 1, "fallbacks": 0, "spend": 0.002, "latency_p50_ms": 120,
//!  "latency_p95_ms": 900,
//!  "buckets": [{"start_time": "...", "requests", "errors", "fallbacks", "spend",
//!               "latency_p50_ms", "latency_p95_ms"}],
//!  "top_models": [{"model_group", "requests", "errors", "spend"}],
//!  "top_keys": [{"api_key", "key_alias", "requests", "errors", "spend"}],
//!  "top_deployments": [{"model_id", "requests", "errors", "spend"}]}
//! ```
//!
//! The window ends now; its buckets start at its start. Behind the master key like every
//! spend endpoint.

use std::time::{SystemTime, UNIX_EPOCH};

use llmgate_core::ApiError;
use llmgate_store::{ActivityQuery, ActivityTop, ActivityTotals, Database};
use serde_json::{json, Value};

use crate::spend::{rfc3339_ms, store_error};

/// The endpoint's path.
pub(crate) const PATH: &str = "/global/overview";

/// Rows in each top table.
const TOP: u32 = 5;

/// `(name, window, bucket)` in milliseconds.
const WINDOWS: [(&str, i64, i64); 3] = [
    ("hour", 3_600_000, 300_000),
    ("day", 86_400_000, 3_600_000),
    ("30d", 30 * 86_400_000, 86_400_000),
];

/// Answers `window` (default `day`) ending now.
pub(crate) async fn answer(db: &Database, window: Option<&str>) -> Result<Value, ApiError> {
    let name = window.unwrap_or("day");
    let Some(&(name, width, bucket)) = WINDOWS.iter().find(|(n, _, _)| *n == name) else {
        return Err(ApiError::bad_request(format!(
            "window must be hour, day or 30d, not {name:?}"
        ))
        .with_param("window"));
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let q = ActivityQuery {
        from_ms: now - width,
        until_ms: now,
        bucket_ms: bucket,
        top: TOP,
    };
    let a = db
        .run(move |s| async move { s.activity(q).await })
        .await
        .map_err(store_error)?;
    let mut out = totals(&a.total);
    out.remove("start_time");
    out.insert("window".into(), name.into());
    out.insert("start_time".into(), rfc3339_ms(q.from_ms).into());
    out.insert("end_time".into(), rfc3339_ms(q.until_ms).into());
    out.insert("bucket_seconds".into(), (bucket / 1000).into());
    out.insert(
        "buckets".into(),
        a.buckets.iter().map(|b| Value::Object(totals(b))).collect(),
    );
    out.insert("top_models".into(), top(&a.top_models, "model_group"));
    out.insert("top_keys".into(), top(&a.top_keys, "api_key"));
    out.insert(
        "top_deployments".into(),
        top(&a.top_deployments, "model_id"),
    );
    Ok(Value::Object(out))
}

fn totals(t: &ActivityTotals) -> serde_json::Map<String, Value> {
    let v = json!({
        "start_time": rfc3339_ms(t.start_ms),
        "requests": t.requests,
        "errors": t.errors,
        "fallbacks": t.fallbacks,
        "spend": t.spend,
        "latency_p50_ms": t.latency_p50_ms,
        "latency_p95_ms": t.latency_p95_ms,
    });
    match v {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

/// A top table, its name under `field` (LiteLLM's name for it in the request log).
fn top(rows: &[ActivityTop], field: &str) -> Value {
    rows.iter()
        .map(|t| {
            let mut v = json!({"requests": t.requests, "errors": t.errors, "spend": t.spend});
            v[field] = t.name.clone().into();
            if field == "api_key" {
                v["key_alias"] = t.key_alias.clone().into();
            }
            v
        })
        .collect()
}
