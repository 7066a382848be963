//! LiteLLM's spend endpoints over the gateway's database. They sit behind the auth layer and
//! answer the master key only (a virtual key gets 403):
//!
//! - `GET /spend/logs?api_key=&key_alias=&user_id=&team_id=&request_id=&model=&status=&start_date=&end_date=&limit=&cursor=`:
//!   the request log, newest first (`limit` default [`DEFAULT_LOG_LIMIT`], at most
//!   [`MAX_LIMIT`]; `status` is `success` or `failure`; each row's `cursor` passed back as
//!   `cursor` answers the rows after it);
//! - `GET /global/spend/models?limit=&start_date=&end_date=`: `[{"model", "total_spend"}]`;
//! - `GET /global/spend/keys?limit=&start_date=&end_date=`:
//!   `[{"api_key", "key_alias", "total_spend"}]`;
//! - `GET /global/spend?start_date=&end_date=`: `{"spend", "max_budget"}`;
//! - `GET /global/spend/provider?start_date=&end_date=`: `[{"provider", "requests", "spend"}]`
//!   (LiteLLM's `provider` and `spend`, with the request count);
//! - `GET /global/spend/days?start_date=&end_date=`: llmgate's own, `[{"date", "requests",
//!   "spend"}]` per UTC day, newest first;
//! - `GET /global/overview?window=hour|day|30d`: llmgate's own, the request log summed over
//!   the last hour, day or 30 days in the database, for the UI's Overview ([`crate::overview`]).
//!
//! Dates are `YYYY-MM-DD` in UTC, both ends included, over each request's start time.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::Response;
use http::{Method, StatusCode};
use llmgate_core::{ApiError, ErrorType, Origin};

use crate::access::Access;
use llmgate_store::{
    ActivityFilter, Database, LogCursor, LogFilter, SpendGroup, SpendLog, SpendRange,
};
use serde_json::{json, Value};
use time::{Date, Month};

use crate::respond;
use crate::router::Apis;

/// `/spend/logs` rows answered without a `limit`.
pub(crate) const DEFAULT_LOG_LIMIT: u32 = 1000;
/// `/global/spend/models` and `/global/spend/keys` rows answered without a `limit`.
pub(crate) const DEFAULT_TOP_LIMIT: u32 = 10;
/// The largest `limit` any spend endpoint takes.
pub(crate) const MAX_LIMIT: u32 = 10_000;

const DAY_MS: i64 = 86_400_000;

/// What the spend endpoints read from.
#[derive(Clone, Debug)]
pub(crate) struct SpendApi {
    /// `None` without a database (no master key): the endpoints answer 400.
    pub(crate) db: Option<Database>,
    /// `litellm_settings.max_budget`, reported by `/global/spend`.
    pub(crate) max_budget: Option<f64>,
}

/// The spend endpoints' handler (every spend path, with or without a trailing `/`).
pub(crate) async fn handler(State(apis): State<Arc<Apis>>, req: Request) -> Response {
    respond(apis.spend.handle(req).await)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Logs,
    Models,
    Keys,
    Total,
    Providers,
    Days,
    Teams,
    Users,
    EndUsers,
    Report,
    Activity,
    Overview,
}

/// Whether `path` is a spend endpoint (`/spend/logs`, `/global/spend`, `/global/spend/models`,
/// `/global/spend/keys`, `/global/spend/provider`, `/global/spend/days`, with or without
/// trailing `/`).
pub fn is_spend_path(path: &str) -> bool {
    op(path).is_some()
}

fn op(path: &str) -> Option<Op> {
    Some(match path.trim_end_matches('/') {
        "/spend/logs" => Op::Logs,
        "/global/spend/models" => Op::Models,
        "/global/spend/keys" => Op::Keys,
        "/global/spend" => Op::Total,
        "/global/spend/provider" => Op::Providers,
        "/global/spend/days" => Op::Days,
        "/global/spend/teams" => Op::Teams,
        "/global/spend/users" => Op::Users,
        "/global/spend/end_users" => Op::EndUsers,
        "/global/spend/report" => Op::Report,
        "/user/daily/activity" => Op::Activity,
        crate::overview::PATH => Op::Overview,
        _ => return None,
    })
}

/// A request's query parameters.
struct Query(Vec<(String, String)>);

impl Query {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    fn limit(&self, default: u32) -> Result<u32, ApiError> {
        match self.get("limit") {
            None => Ok(default),
            Some(v) => match v.parse::<u32>() {
                Ok(n) if n >= 1 => Ok(n.min(MAX_LIMIT)),
                _ => Err(ApiError::bad_request(format!(
                    "limit must be a whole number from 1 to {MAX_LIMIT}, not {v:?}"
                ))),
            },
        }
    }

    /// `start_date` and `end_date`, both included.
    fn range(&self) -> Result<SpendRange, ApiError> {
        let day = |name: &str| -> Result<Option<i64>, ApiError> {
            self.get(name)
                .map(|v| {
                    day_start_ms(v).ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "{name} must be a date as YYYY-MM-DD (UTC), not {v:?}"
                        ))
                    })
                })
                .transpose()
        };
        let range = SpendRange {
            from_ms: day("start_date")?,
            until_ms: day("end_date")?.map(|d| d + DAY_MS),
        };
        if let (Some(from), Some(until)) = (range.from_ms, range.until_ms) {
            if until <= from {
                return Err(ApiError::bad_request(
                    "end_date must not be before start_date",
                ));
            }
        }
        Ok(range)
    }
}

impl SpendApi {
    async fn handle(&self, req: Request) -> Result<Value, ApiError> {
        let Some(op) = op(req.uri().path()) else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                Origin::Downstream,
                format!("no route for {}", req.uri().path()),
            )
            .with_type(ErrorType::NOT_FOUND)
            .with_code("not_found"));
        };
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                Origin::Downstream,
                format!("method {} is not allowed here; use GET", req.method()),
            )
            .with_code("method_not_allowed"));
        }
        let access = Access::of(req.extensions());
        let own = match (&access, &op) {
            // A virtual key reads its own daily activity: its user's, else its own key's.
            (Access::Key(k), Op::Activity) => Some(match &k.user_id {
                Some(user) => ActivityFilter {
                    user_id: Some(user.clone()),
                    ..ActivityFilter::default()
                },
                None => ActivityFilter {
                    key_token: Some(k.token.clone()),
                    ..ActivityFilter::default()
                },
            }),
            // An internal user reads their own activity and request log.
            (Access::Own { user_id, .. }, Op::Activity | Op::Logs) => Some(ActivityFilter {
                user_id: Some(user_id.clone()),
                ..ActivityFilter::default()
            }),
            _ => None,
        };
        if !access.sees_all() && own.is_none() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                Origin::Downstream,
                "only the master key, a proxy_admin or a proxy_admin_viewer may read this spend",
            )
            .with_type(ErrorType::PERMISSION)
            .with_code("master_key_required"));
        }
        let Some(db) = &self.db else {
            return Err(ApiError::bad_request(
                "spend is kept in the database, which the gateway opens with a master key: set general_settings.master_key (and database_url for PostgreSQL)",
            )
            .with_code("no_database"));
        };
        let mut query = Query(
            req.uri()
                .query()
                .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
                .unwrap_or_default(),
        );
        if let (Op::Logs, Some(user)) = (&op, own.as_ref().and_then(|o| o.user_id.clone())) {
            query.0.retain(|(k, _)| k != "user_id");
            query.0.push(("user_id".into(), user));
        }
        let range = query.range()?;
        if let Op::Activity = op {
            let mut filter = own.unwrap_or_default();
            if filter.key_token.is_none() && filter.user_id.is_none() {
                filter.key_token = query.get("api_key").map(crate::keys::token_of);
            }
            filter.model = query.get("model").map(str::to_owned);
            return crate::daily_activity::answer(db, range, filter).await;
        }
        answer(db, op, &query, range, self.max_budget).await
    }
}

/// Runs `op` on `db` over `range` with the query's other parameters.
async fn answer(
    db: &Database,
    op: Op,
    query: &Query,
    range: SpendRange,
    max_budget: Option<f64>,
) -> Result<Value, ApiError> {
    match op {
        Op::Logs => {
            let filter = log_filter(query, range)?;
            let logs = db
                .run(move |s| async move { s.spend_logs(&filter).await })
                .await
                .map_err(store_error)?;
            Ok(Value::Array(logs.iter().map(log_view).collect()))
        }
        Op::Models => {
            let limit = query.limit(DEFAULT_TOP_LIMIT)?;
            let rows = db
                .run(move |s| async move { s.spend_by_model(range, limit).await })
                .await
                .map_err(store_error)?;
            Ok(rows
                .into_iter()
                .map(|m| json!({"model": m.model, "total_spend": m.spend}))
                .collect())
        }
        Op::Keys => {
            let limit = query.limit(DEFAULT_TOP_LIMIT)?;
            let rows = db
                .run(move |s| async move { s.spend_by_key(range, limit).await })
                .await
                .map_err(store_error)?;
            Ok(rows
                .into_iter()
                .map(|k| json!({"api_key": k.token, "key_alias": k.key_alias, "total_spend": k.spend}))
                .collect())
        }
        Op::Total => {
            let spend = db
                .run(move |s| async move { s.spend_total(range).await })
                .await
                .map_err(store_error)?;
            Ok(json!({"spend": spend, "max_budget": max_budget}))
        }
        Op::Providers | Op::Days => {
            let days = matches!(op, Op::Days);
            let rows = db
                .run(move |s| async move {
                    if days {
                        s.spend_by_day(range).await
                    } else {
                        s.spend_by_provider(range).await
                    }
                })
                .await
                .map_err(store_error)?;
            let name = if days { "date" } else { "provider" };
            Ok(rows
                .into_iter()
                .map(|g| json!({name: g.name, "requests": g.requests, "spend": g.spend}))
                .collect())
        }
        Op::Teams | Op::Users | Op::EndUsers => {
            let group = match op {
                Op::Teams => SpendGroup::Team,
                Op::Users => SpendGroup::User,
                _ => SpendGroup::EndUser,
            };
            let rows = db
                .run(move |s| async move { s.spend_by(group, range).await })
                .await
                .map_err(store_error)?;
            Ok(grouped(group, rows))
        }
        Op::Report => crate::spend_report::answer(db, query.get("group_by"), range).await,
        Op::Activity => crate::daily_activity::answer(db, range, ActivityFilter::default()).await,
        Op::Overview => crate::overview::answer(db, query.get("window")).await,
    }
}

/// `/global/spend/teams` as LiteLLM answers it (`teams` and `total_spend_per_team`, with the
/// request count), and `/global/spend/users` as a list; spend without a team (or user) is
/// under `null`.
fn grouped(group: SpendGroup, rows: Vec<llmgate_store::GroupSpend>) -> Value {
    let name = |g: &llmgate_store::GroupSpend| {
        if g.name.is_empty() {
            Value::Null
        } else {
            Value::String(g.name.clone())
        }
    };
    if group == SpendGroup::Team {
        let per_team: Vec<Value> = rows
            .iter()
            .map(|g| json!({"team_id": name(g), "total_spend": g.spend, "requests": g.requests}))
            .collect();
        let teams: Vec<Value> = rows.iter().map(name).filter(|n| !n.is_null()).collect();
        return json!({"teams": teams, "total_spend_per_team": per_team});
    }
    if group == SpendGroup::EndUser {
        // LiteLLM's names: `end_user`, `total_spend`, `total_count`.
        return rows
            .iter()
            .map(
                |g| json!({"end_user": name(g), "total_spend": g.spend, "total_count": g.requests}),
            )
            .collect();
    }
    rows.iter()
        .map(|g| json!({"user_id": name(g), "total_spend": g.spend, "requests": g.requests}))
        .collect()
}

/// `/spend/logs`' filters: LiteLLM's (`api_key`, `request_id`, `user_id`, `team_id`,
/// `start_date`, `end_date`), then llmgate's (`key_alias`, `model`, `status`, `cursor`).
fn log_filter(query: &Query, range: SpendRange) -> Result<LogFilter, ApiError> {
    let text = |name: &str| query.get(name).map(str::to_owned);
    let success = match query.get("status") {
        None => None,
        Some("success") => Some(true),
        Some("failure") => Some(false),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "status must be success or failure, not {other:?}"
            )))
        }
    };
    let after = match query.get("cursor") {
        None => None,
        Some(c) => Some(LogCursor::parse(c).ok_or_else(|| {
            ApiError::bad_request(format!(
                "cursor must be a row's cursor from an earlier answer, not {c:?}"
            ))
        })?),
    };
    Ok(LogFilter {
        key_token: query.get("api_key").map(crate::keys::token_of),
        request_id: text("request_id"),
        range,
        key_alias: text("key_alias"),
        user_id: text("user_id"),
        team_id: text("team_id"),
        model: text("model"),
        success,
        after,
        limit: query.limit(DEFAULT_LOG_LIMIT)?,
    })
}

/// LiteLLM's spend-log names where it has them (`api_key` is the key's token, `spend` 0 when
/// the cost is unknown, `cache_hit` the strings `"True"`/`"False"`, `status` `success` only
/// for a request that succeeded to its end), then llmgate's own.
fn log_view(l: &SpendLog) -> Value {
    // Rows written before outcomes were recorded: read from the status.
    let outcome = l.outcome.as_deref().unwrap_or(match l.status {
        200..=399 => "success",
        499 => "client_closed",
        _ => "error",
    });
    let call_type = match l.endpoint.trim_start_matches("/v1") {
        "/chat/completions" | "/messages" => "acompletion",
        "/completions" => "atext_completion",
        "/embeddings" => "aembedding",
        _ => "",
    };
    json!({
        "request_id": l.request_id,
        "call_type": call_type,
        "api_key": l.key_token.clone().unwrap_or_default(),
        "spend": l.cost.unwrap_or(0.0),
        "total_tokens": l.total_tokens,
        "prompt_tokens": l.prompt_tokens,
        "completion_tokens": l.completion_tokens,
        "startTime": rfc3339_ms(l.start_time),
        "endTime": rfc3339_ms(l.end_time),
        "model": l.upstream_model.as_deref().unwrap_or(&l.requested_model),
        "model_id": l.deployment,
        "model_group": l.model_group.as_deref().unwrap_or(&l.requested_model),
        "custom_llm_provider": l.provider,
        "user": l.user_id.clone().unwrap_or_default(),
        "end_user": l.end_user.clone().unwrap_or_default(),
        "team_id": l.team_id,
        "metadata": {
            "user_api_key": l.key_token,
            "user_api_key_alias": l.key_alias,
            "user_api_key_team_id": l.team_id,
            "user_api_key_user_id": l.user_id,
            "status_code": l.status,
            // LiteLLM's place for a failure's detail.
            "error_information": l.error_class.as_ref().map(|class| json!({
                "error_code": l.status.to_string(),
                "error_class": class,
                "error_message": l.error_message,
            })),
        },
        "cache_hit": if l.cache_hit { "True" } else { "False" },
        "request_tags": l.tags,
        "status": if outcome == "success" { "success" } else { "failure" },
        // llmgate's own.
        "cost": l.cost,
        "requested_model": l.requested_model,
        "endpoint": l.endpoint,
        "key_alias": l.key_alias,
        "status_code": l.status,
        "outcome": outcome,
        "error_class": l.error_class,
        "usage_estimated": l.usage_estimated,
        "stream": l.stream,
        "cached_tokens": l.cached_tokens,
        "cache_creation_tokens": l.cache_creation_tokens,
        "reasoning_tokens": l.reasoning_tokens,
        "attempts": l.attempts,
        "fallbacks": l.fallbacks,
        "latency_ms": l.latency_ms,
        "time_to_first_token_ms": l.ttft_ms,
        "error_message": l.error_message,
        // LiteLLM's names; JSON when stored as JSON, else the text as kept.
        "messages": l.messages.as_deref().map(json_or_text),
        "response": l.response.as_deref().map(json_or_text),
        "cursor": LogCursor::of(l),
    })
}

/// Stored JSON as JSON; anything else (an answer cut at its bound, a stream's events) as text.
fn json_or_text(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

pub(crate) fn store_error(e: llmgate_auth::StoreError) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        Origin::Internal,
        format!("the spend database is unavailable: {e}"),
    )
    .with_type(ErrorType::SERVER)
    .with_code("store_unavailable")
}

/// `YYYY-MM-DD` (UTC) as Unix milliseconds at its midnight.
pub(crate) fn day_start_ms(text: &str) -> Option<i64> {
    let mut parts = text.trim().splitn(3, '-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u8 = parts.next()?.parse().ok()?;
    let day: u8 = parts.next()?.parse().ok()?;
    let date = Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp() * 1000)
}

/// Unix milliseconds as RFC 3339 in UTC, with milliseconds (`2026-03-10T12:00:00.250Z`).
pub(crate) fn rfc3339_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{millis:03}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::{day_start_ms, rfc3339_ms};

    #[test]
    fn dates_are_utc_midnights() {
        assert_eq!(day_start_ms("1970-01-01"), Some(0));
        assert_eq!(day_start_ms("2026-03-10"), Some(1_773_100_800_000));
        assert_eq!(day_start_ms("2026-02-30"), None);
        assert_eq!(day_start_ms("2026-03"), None);
        assert_eq!(day_start_ms("yesterday"), None);
    }

    #[test]
    fn times_print_as_rfc3339_with_millis() {
        assert_eq!(rfc3339_ms(1_773_144_000_250), "2026-03-10T12:00:00.250Z");
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
    }
}
