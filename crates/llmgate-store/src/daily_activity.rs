//! LiteLLM's `/user/daily/activity`: spend, tokens and requests per UTC day, with each day broken
//! down by model, key and provider, summed in the database.

use serde::Serialize;

/// One day, model, key, provider and outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActivityRow {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// The model group (else the model asked for).
    pub model: String,
    /// The key's token (`""`: the master key or no key).
    pub key: String,
    /// The provider (`unknown`: reached none).
    pub provider: String,
    /// Whether these requests succeeded.
    pub success: bool,
    /// Requests.
    pub requests: i64,
    /// USD.
    pub spend: f64,
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Completion tokens.
    pub completion_tokens: i64,
    /// Prompt tokens read from a provider's cache.
    pub cache_read_tokens: i64,
    /// Prompt tokens written to a provider's cache.
    pub cache_creation_tokens: i64,
}

/// Which rows: `$1`/`$2` the range, `$3` a key token, `$4` a user id, `$5` a model.
pub(crate) const DAILY_ACTIVITY: &str = "SELECT start_time / 86400000 AS day, \
    COALESCE(model_group, requested_model) AS model, COALESCE(key_token, '') AS key, \
    COALESCE(provider, 'unknown') AS provider, \
    CASE WHEN COALESCE(outcome, CASE WHEN status >= 200 AND status < 400 THEN 'success' \
        ELSE 'error' END) = 'success' THEN 1 ELSE 0 END AS ok, \
    COUNT(*) AS requests, COALESCE(SUM(cost), CAST(0 AS DOUBLE PRECISION)) AS total, \
    CAST(COALESCE(SUM(prompt_tokens), 0) AS BIGINT) AS prompt, \
    CAST(COALESCE(SUM(completion_tokens), 0) AS BIGINT) AS completion, \
    CAST(COALESCE(SUM(cached_tokens), 0) AS BIGINT) AS cache_read, \
    CAST(COALESCE(SUM(cache_creation_tokens), 0) AS BIGINT) AS cache_creation \
    FROM llmgate_spend_logs \
    WHERE ($1 IS NULL OR start_time >= $1) AND ($2 IS NULL OR start_time < $2) \
    AND ($3 IS NULL OR key_token = $3) AND ($4 IS NULL OR user_id = $4) \
    AND ($5 IS NULL OR requested_model = $5 OR model_group = $5) \
    GROUP BY 1, 2, 3, 4, 5 ORDER BY day DESC";

/// Whose activity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityFilter {
    /// One key (its token).
    pub key_token: Option<String>,
    /// One internal user's keys.
    pub user_id: Option<String>,
    /// One model (asked for, or the group that served it).
    pub model: Option<String>,
}

/// The query, written once for both backends.
macro_rules! daily_activity_impl {
    ($store:ty) => {
        impl $store {
            pub(crate) async fn daily_activity(
                &self,
                range: $crate::spend::SpendRange,
                filter: &$crate::daily_activity::ActivityFilter,
            ) -> Result<Vec<$crate::daily_activity::ActivityRow>, llmgate_auth::StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query($crate::daily_activity::DAILY_ACTIVITY)
                    .bind(range.from_ms)
                    .bind(range.until_ms)
                    .bind(&filter.key_token)
                    .bind(&filter.user_id)
                    .bind(&filter.model)
                    .fetch_all(&self.pool)
                    .await
                    .map_err($crate::sql::unavailable)?;
                rows.iter()
                    .map(|r| {
                        Ok($crate::daily_activity::ActivityRow {
                            day: $crate::spend_groups::day_name(r.try_get("day")?),
                            model: r.try_get("model")?,
                            key: r.try_get("key")?,
                            provider: r.try_get("provider")?,
                            success: r.try_get::<i32, _>("ok")? == 1,
                            requests: r.try_get("requests")?,
                            spend: r.try_get("total")?,
                            prompt_tokens: r.try_get("prompt")?,
                            completion_tokens: r.try_get("completion")?,
                            cache_read_tokens: r.try_get("cache_read")?,
                            cache_creation_tokens: r.try_get("cache_creation")?,
                        })
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()
                    .map_err($crate::sql::unavailable)
            }
        }
    };
}
pub(crate) use daily_activity_impl;
