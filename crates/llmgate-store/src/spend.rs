//! Spend: the spend log (`llmgate_spend_logs`) the metering writer fills in batches, the key
//! charges made in the same transaction, and the queries behind the spend endpoints.
//!
//! A batch is written by [`Store::write_spend`](crate::Store::write_spend) in one transaction:
//! a multi-row `INSERT ... ON CONFLICT (request_id) DO NOTHING` (made again with `RETURNING
//! request_id` when it did not insert every row: `spend/insert.rs`), then, for the rows
//! actually inserted, `spend = spend + cost` on their keys (`llmgate_keys`, and
//! `llmgate_key_model_spend` under the record's model group, else the model asked for). A
//! batch written twice (the writer retries after a commit whose answer was lost) inserts
//! nothing the second time and so charges nothing twice.
//!
//! Times are Unix milliseconds (UTC) in `BIGINT` columns: ranges are plain integer
//! comparisons on the `start_time` index, the same on both backends.

use std::collections::HashSet;
use std::time::{SystemTime, UNIX_EPOCH};

use llmgate_metering::SpendRecord;
use serde::Serialize;

mod insert;

pub(crate) use insert::{
    bind_record, chunk_args, insert_chunks, insert_chunks_returning, insert_logs_sql,
    insert_new_by_rollback, insert_new_by_savepoint, LOG_COLUMNS, PG_INSERT_CHUNK,
    SQLITE_INSERT_CHUNK,
};

/// Every column, for reading logs back: newest first, and within one millisecond by request
/// id, descending (the gateway's ids are UUIDv7, ordered by time). The filters are
/// [`LogFilter`]'s, bound in its order; a success is a row whose `outcome` is `success` (for
/// rows written before outcomes were recorded, whose status is 2xx or 3xx).
pub(crate) const SELECT_LOGS: &str = "SELECT request_id, key_token, key_alias, team_id, \
    user_id, requested_model, model_group, deployment, provider, upstream_model, endpoint, \
    prompt_tokens, completion_tokens, total_tokens, cached_tokens, cache_creation_tokens, \
    reasoning_tokens, cost, status, stream, cache_hit, attempts, fallbacks, start_time, \
    end_time, latency_ms, ttft_ms, tags, outcome, usage_estimated, error_class, \
    error_message, messages, response, end_user \
    FROM llmgate_spend_logs \
    WHERE ($1 IS NULL OR key_token = $1) AND ($2 IS NULL OR request_id = $2) \
    AND ($3 IS NULL OR start_time >= $3) AND ($4 IS NULL OR start_time < $4) \
    AND ($5 IS NULL OR key_alias = $5) AND ($6 IS NULL OR user_id = $6) \
    AND ($7 IS NULL OR team_id = $7) \
    AND ($8 IS NULL OR requested_model = $8 OR model_group = $8) \
    AND ($9 IS NULL OR ($9 = 'success') = (COALESCE(outcome, \
        CASE WHEN status >= 200 AND status < 400 THEN 'success' ELSE 'error' END) = 'success')) \
    AND ($10 IS NULL OR start_time < $10 OR (start_time = $10 AND request_id < $11)) \
    ORDER BY start_time DESC, request_id DESC LIMIT $12";

/// `$1`/`$2`: the range; unknown costs (NULL) add nothing.
pub(crate) const SPEND_BY_MODEL: &str = "SELECT COALESCE(model_group, requested_model) AS model, \
    COALESCE(SUM(cost), CAST(0 AS DOUBLE PRECISION)) AS total FROM llmgate_spend_logs \
    WHERE ($1 IS NULL OR start_time >= $1) AND ($2 IS NULL OR start_time < $2) \
    GROUP BY COALESCE(model_group, requested_model) ORDER BY total DESC, model ASC LIMIT $3";

/// The key's current alias when it still exists, else the one its logs carry.
pub(crate) const SPEND_BY_KEY: &str = "SELECT s.token AS token, \
    COALESCE(k.key_alias, s.alias) AS key_alias, s.total AS total FROM (\
    SELECT key_token AS token, MAX(key_alias) AS alias, \
    COALESCE(SUM(cost), CAST(0 AS DOUBLE PRECISION)) AS total FROM llmgate_spend_logs \
    WHERE key_token IS NOT NULL AND ($1 IS NULL OR start_time >= $1) \
    AND ($2 IS NULL OR start_time < $2) GROUP BY key_token) s \
    LEFT JOIN llmgate_keys k ON k.token = s.token ORDER BY s.total DESC, s.token ASC LIMIT $3";

pub(crate) const SPEND_TOTAL: &str = "SELECT COALESCE(SUM(cost), CAST(0 AS DOUBLE PRECISION)) \
    AS total FROM llmgate_spend_logs \
    WHERE ($1 IS NULL OR start_time >= $1) AND ($2 IS NULL OR start_time < $2)";

/// A time range over the logs' `start_time`, in Unix milliseconds: `from` inclusive, `until`
/// exclusive; `None` is open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpendRange {
    /// Earliest start time included.
    pub from_ms: Option<i64>,
    /// First start time no longer included.
    pub until_ms: Option<i64>,
}

/// Which logs [`Store::spend_logs`](crate::Store::spend_logs) answers; every filter given must
/// hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    /// The key's token (SHA-256 of its secret).
    pub key_token: Option<String>,
    /// One request.
    pub request_id: Option<String>,
    /// Requests started in this range.
    pub range: SpendRange,
    /// The key's alias.
    pub key_alias: Option<String>,
    /// The key's user.
    pub user_id: Option<String>,
    /// The key's team.
    pub team_id: Option<String>,
    /// The model asked for, or the group that served it.
    pub model: Option<String>,
    /// `Some(true)`: successes only; `Some(false)`: failures only.
    pub success: Option<bool>,
    /// Rows after this one in the order answered (newest first): the last row of the previous
    /// page.
    pub after: Option<LogCursor>,
    /// At most this many, newest first.
    pub limit: u32,
}

/// Where a page of the log starts: after the row with this start time and request id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogCursor {
    /// The row's start time, Unix milliseconds.
    pub start_time: i64,
    /// The row's request id.
    pub request_id: String,
}

impl LogCursor {
    /// The cursor of `log`: `<start_time>_<request_id>`.
    pub fn of(log: &SpendLog) -> String {
        format!("{}_{}", log.start_time, log.request_id)
    }

    /// Reads [`LogCursor::of`]'s text.
    pub fn parse(text: &str) -> Option<LogCursor> {
        let (time, id) = text.split_once('_')?;
        Some(LogCursor {
            start_time: time.parse().ok()?,
            request_id: id.to_owned(),
        })
    }
}

/// One row of the spend log, as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpendLog {
    /// The request's id.
    pub request_id: String,
    /// The key's token; `None` for the master key and an open gateway.
    pub key_token: Option<String>,
    /// The key's alias when the request was made.
    pub key_alias: Option<String>,
    /// The key's team.
    pub team_id: Option<String>,
    /// The key's user.
    pub user_id: Option<String>,
    /// The request's end user (its `user` field).
    pub end_user: Option<String>,
    /// The model the client asked for.
    pub requested_model: String,
    /// The model group that served it.
    pub model_group: Option<String>,
    /// The deployment id that answered.
    pub deployment: Option<String>,
    /// Its provider.
    pub provider: Option<String>,
    /// The model id sent upstream.
    pub upstream_model: Option<String>,
    /// The endpoint, such as `/v1/chat/completions`.
    pub endpoint: String,
    /// Input tokens.
    pub prompt_tokens: i64,
    /// Output tokens.
    pub completion_tokens: i64,
    /// Input and output tokens.
    pub total_tokens: i64,
    /// Input tokens read from the provider's cache.
    pub cached_tokens: i64,
    /// Input tokens written to the provider's cache.
    pub cache_creation_tokens: i64,
    /// Output tokens spent reasoning.
    pub reasoning_tokens: i64,
    /// USD; `None` is unknown.
    pub cost: Option<f64>,
    /// The HTTP status the client got.
    pub status: i32,
    /// How the request ended (`success`, `client_closed`, `upstream_error`,
    /// `gateway_shutdown`, `error`); `None` for rows written before llmgate recorded it.
    pub outcome: Option<String>,
    /// The tokens and cost are the gateway's estimate (the provider reported no usage).
    pub usage_estimated: bool,
    /// Why a failed request failed (`rate_limited`, `timeout`, `upstream_5xx`, `connect`,
    /// `no_deployment`, `client_closed`, ...); `None` for a success and for rows written
    /// before llmgate recorded it.
    pub error_class: Option<String>,
    /// Streamed.
    pub stream: bool,
    /// Served from the gateway's cache.
    pub cache_hit: bool,
    /// Attempts made.
    pub attempts: i32,
    /// Of those, on fallback groups.
    pub fallbacks: i32,
    /// Unix milliseconds.
    pub start_time: i64,
    /// Unix milliseconds.
    pub end_time: i64,
    /// Milliseconds.
    pub latency_ms: i64,
    /// A stream's time to first byte, milliseconds.
    pub ttft_ms: Option<i64>,
    /// The request's and the key's tags.
    pub tags: Vec<String>,
    /// A failed request's error message (credentials masked); `None` for a success and in rows
    /// written before it was recorded.
    pub error_message: Option<String>,
    /// The request's messages as JSON text, only with `store_prompts_in_spend_logs`.
    pub messages: Option<String>,
    /// The answer as relayed, only with `store_prompts_in_spend_logs`.
    pub response: Option<String>,
}

/// A model's total spend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSpend {
    /// The model group (the model asked for, when no group served it).
    pub model: String,
    /// USD, unknown costs left out.
    pub spend: f64,
}

/// A key's total spend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeySpend {
    /// The key's token.
    pub token: String,
    /// Its alias (as it is now, else as its logs recorded it).
    pub key_alias: Option<String>,
    /// USD, unknown costs left out.
    pub spend: f64,
}

/// What one batch charged a key: the sum of its records that were new.
#[derive(Debug, Clone, PartialEq)]
pub struct Charge {
    /// The key's token.
    pub token: String,
    /// The key's team, as the records name it (charged the same cost).
    pub team_id: Option<String>,
    /// The key's user, as the records name it (charged the same cost).
    pub user_id: Option<String>,
    /// USD.
    pub cost: f64,
    /// USD per model (group, else the model asked for).
    pub per_model: Vec<(String, f64)>,
}

/// The model a record's cost is charged under: its group, else the model asked for.
pub(crate) fn charge_model(r: &SpendRecord) -> &str {
    r.model_group.as_deref().unwrap_or(&r.requested_model)
}

/// Sums the charges of `records` per key and team (and per model), in the order keys first appear,
/// skipping records without a key or with nothing to charge. `new` says which records count:
/// the first record of each inserted request id.
pub(crate) fn charges<'a>(
    records: impl IntoIterator<Item = &'a SpendRecord>,
    mut new: impl FnMut(&SpendRecord) -> bool,
) -> Vec<Charge> {
    let mut out: Vec<Charge> = Vec::new();
    for r in records {
        if !new(r) {
            continue;
        }
        let (Some(token), cost) = (&r.key_token, r.charge()) else {
            continue;
        };
        if cost == 0.0 {
            continue;
        }
        let i = match out
            .iter()
            .position(|c| &c.token == token && c.team_id == r.team_id && c.user_id == r.user_id)
        {
            Some(i) => i,
            None => {
                out.push(Charge {
                    token: token.clone(),
                    team_id: r.team_id.clone(),
                    user_id: r.user_id.clone(),
                    cost: 0.0,
                    per_model: Vec::new(),
                });
                out.len() - 1
            }
        };
        let c = &mut out[i];
        c.cost += cost;
        let model = charge_model(r);
        match c.per_model.iter_mut().find(|(m, _)| m == model) {
            Some((_, m)) => *m += cost,
            None => c.per_model.push((model.to_owned(), cost)),
        }
    }
    out
}

/// Which records of `batch` were inserted, given the request ids the insert returned: the
/// first record of each such id (a batch naming one id twice stores and charges it once).
pub(crate) fn inserted_filter(returned: HashSet<String>) -> impl FnMut(&SpendRecord) -> bool {
    let mut left = returned;
    move |r| left.remove(r.request_id.as_ref())
}

pub(crate) fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub(crate) fn duration_ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn tags_json(tags: &[String]) -> String {
    serde_json::to_string(tags).unwrap_or_else(|_| "[]".to_string())
}

pub(crate) fn tags_of(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

/// The spend methods, written once for both backends, like
/// [`key_store_impl!`](crate::keys::key_store_impl). `$insert_new` names how a batch's logs go
/// in: [`insert_new_by_rollback`] (SQLite) or [`insert_new_by_savepoint`] (PostgreSQL).
macro_rules! spend_impl {
    ($store:ty, $db:ty, $insert_new:ident) => {
        impl $store {
            pub(crate) async fn write_spend(
                &self,
                batch: &[llmgate_metering::SpendRecord],
                keep_logs: bool,
            ) -> Result<Vec<$crate::spend::Charge>, llmgate_auth::StoreError> {
                use $crate::sql::unavailable;
                let mut tx = self.pool.begin().await.map_err(unavailable)?;
                let charges = if keep_logs {
                    let mut new = Vec::with_capacity(batch.len());
                    $crate::spend::$insert_new!(self.pool, tx, batch, new);
                    new
                } else {
                    batch.iter().collect()
                };
                for (user, cost) in $crate::end_users::end_user_charges(&charges) {
                    sqlx::query($crate::end_users::CHARGE_END_USER)
                        .bind(user)
                        .bind(cost)
                        .bind(llmgate_core::Clock::now(&llmgate_core::SystemClock))
                        .execute(&mut *tx)
                        .await
                        .map_err(unavailable)?;
                }
                let charges = $crate::spend::charges(charges, |_| true);
                let mut charged = Vec::with_capacity(charges.len());
                for c in charges {
                    let owners = [
                        (llmgate_auth::RecordKind::Team, &c.team_id),
                        (llmgate_auth::RecordKind::User, &c.user_id),
                    ];
                    for (kind, id) in owners {
                        let Some(id) = id else { continue };
                        // A team or user that is only a label (none stored) matches no row.
                        sqlx::query($crate::records::ADD_SPEND)
                            .bind(kind.as_str())
                            .bind(id)
                            .bind(c.cost)
                            .execute(&mut *tx)
                            .await
                            .map_err(unavailable)?;
                    }
                    let done = sqlx::query($crate::sql::ADD_SPEND)
                        .bind(&c.token)
                        .bind(c.cost)
                        .execute(&mut *tx)
                        .await
                        .map_err(unavailable)?;
                    if done.rows_affected() == 0 {
                        // The key was deleted since: its log rows stay, nothing to charge.
                        continue;
                    }
                    for (model, cost) in &c.per_model {
                        sqlx::query($crate::sql::ADD_MODEL_SPEND)
                            .bind(&c.token)
                            .bind(model)
                            .bind(*cost)
                            .execute(&mut *tx)
                            .await
                            .map_err(unavailable)?;
                    }
                    charged.push(c);
                }
                tx.commit().await.map_err(unavailable)?;
                Ok(charged)
            }

            pub(crate) async fn spend_logs(
                &self,
                filter: &$crate::spend::LogFilter,
            ) -> Result<Vec<$crate::spend::SpendLog>, llmgate_auth::StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query($crate::spend::SELECT_LOGS)
                    .bind(&filter.key_token)
                    .bind(&filter.request_id)
                    .bind(filter.range.from_ms)
                    .bind(filter.range.until_ms)
                    .bind(&filter.key_alias)
                    .bind(&filter.user_id)
                    .bind(&filter.team_id)
                    .bind(&filter.model)
                    .bind(
                        filter
                            .success
                            .map(|s| if s { "success" } else { "failure" }),
                    )
                    .bind(filter.after.as_ref().map(|c| c.start_time))
                    .bind(filter.after.as_ref().map(|c| c.request_id.as_str()))
                    .bind(i64::from(filter.limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err($crate::sql::unavailable)?;
                let read = |r: &<$db as sqlx::Database>::Row| -> Result<_, sqlx::Error> {
                    Ok($crate::spend::SpendLog {
                        request_id: r.try_get("request_id")?,
                        key_token: r.try_get("key_token")?,
                        key_alias: r.try_get("key_alias")?,
                        team_id: r.try_get("team_id")?,
                        user_id: r.try_get("user_id")?,
                        end_user: r.try_get("end_user")?,
                        requested_model: r.try_get("requested_model")?,
                        model_group: r.try_get("model_group")?,
                        deployment: r.try_get("deployment")?,
                        provider: r.try_get("provider")?,
                        upstream_model: r.try_get("upstream_model")?,
                        endpoint: r.try_get("endpoint")?,
                        prompt_tokens: r.try_get("prompt_tokens")?,
                        completion_tokens: r.try_get("completion_tokens")?,
                        total_tokens: r.try_get("total_tokens")?,
                        cached_tokens: r.try_get("cached_tokens")?,
                        cache_creation_tokens: r.try_get("cache_creation_tokens")?,
                        reasoning_tokens: r.try_get("reasoning_tokens")?,
                        cost: r.try_get("cost")?,
                        status: r.try_get("status")?,
                        stream: r.try_get("stream")?,
                        cache_hit: r.try_get("cache_hit")?,
                        attempts: r.try_get("attempts")?,
                        fallbacks: r.try_get("fallbacks")?,
                        start_time: r.try_get("start_time")?,
                        end_time: r.try_get("end_time")?,
                        latency_ms: r.try_get("latency_ms")?,
                        ttft_ms: r.try_get("ttft_ms")?,
                        tags: $crate::spend::tags_of(r.try_get::<&str, _>("tags")?),
                        outcome: r.try_get("outcome")?,
                        usage_estimated: r.try_get("usage_estimated")?,
                        error_class: r.try_get("error_class")?,
                        error_message: r.try_get("error_message")?,
                        messages: r.try_get("messages")?,
                        response: r.try_get("response")?,
                    })
                };
                rows.iter()
                    .map(read)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err($crate::sql::unavailable)
            }

            pub(crate) async fn spend_by_model(
                &self,
                range: $crate::spend::SpendRange,
                limit: u32,
            ) -> Result<Vec<$crate::spend::ModelSpend>, llmgate_auth::StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query($crate::spend::SPEND_BY_MODEL)
                    .bind(range.from_ms)
                    .bind(range.until_ms)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err($crate::sql::unavailable)?;
                rows.iter()
                    .map(|r| {
                        Ok($crate::spend::ModelSpend {
                            model: r.try_get("model")?,
                            spend: r.try_get("total")?,
                        })
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()
                    .map_err($crate::sql::unavailable)
            }

            pub(crate) async fn spend_by_key(
                &self,
                range: $crate::spend::SpendRange,
                limit: u32,
            ) -> Result<Vec<$crate::spend::KeySpend>, llmgate_auth::StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query($crate::spend::SPEND_BY_KEY)
                    .bind(range.from_ms)
                    .bind(range.until_ms)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err($crate::sql::unavailable)?;
                rows.iter()
                    .map(|r| {
                        Ok($crate::spend::KeySpend {
                            token: r.try_get("token")?,
                            key_alias: r.try_get("key_alias")?,
                            spend: r.try_get("total")?,
                        })
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()
                    .map_err($crate::sql::unavailable)
            }

            pub(crate) async fn spend_total(
                &self,
                range: $crate::spend::SpendRange,
            ) -> Result<f64, llmgate_auth::StoreError> {
                use sqlx::Row as _;
                let row = sqlx::query($crate::spend::SPEND_TOTAL)
                    .bind(range.from_ms)
                    .bind(range.until_ms)
                    .fetch_one(&self.pool)
                    .await
                    .map_err($crate::sql::unavailable)?;
                row.try_get("total").map_err($crate::sql::unavailable)
            }
        }
    };
}
pub(crate) use spend_impl;
