//! LiteLLM's `/global/spend/report`: spend per UTC day, per team, end user or key, and per
//! model within each, summed in the database over a range.

use serde::Serialize;

/// What the report groups by (LiteLLM's `group_by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportGroup {
    /// `team`: the key's team.
    Team,
    /// `customer`: the request's end user.
    Customer,
    /// `api_key`: the key (its token).
    ApiKey,
}

impl ReportGroup {
    pub(crate) fn sql(self) -> &'static str {
        match self {
            ReportGroup::Team => BY_TEAM,
            ReportGroup::Customer => BY_CUSTOMER,
            ReportGroup::ApiKey => BY_KEY,
        }
    }
}

macro_rules! report_sql {
    ($col:literal) => {
        concat!(
            "SELECT start_time / 86400000 AS day, COALESCE(",
            $col,
            ", '') AS name, COALESCE(model_group, requested_model) AS model, \
             COUNT(*) AS requests, CAST(COALESCE(SUM(total_tokens), 0) AS BIGINT) AS tokens, \
             COALESCE(SUM(cost), CAST(0 AS DOUBLE PRECISION)) AS total \
             FROM llmgate_spend_logs \
             WHERE ($1 IS NULL OR start_time >= $1) AND ($2 IS NULL OR start_time < $2) \
             GROUP BY start_time / 86400000, COALESCE(",
            $col,
            ", ''), COALESCE(model_group, requested_model) \
             ORDER BY day DESC, name ASC, total DESC"
        )
    };
}

const BY_TEAM: &str = report_sql!("team_id");
const BY_CUSTOMER: &str = report_sql!("end_user");
const BY_KEY: &str = report_sql!("key_token");

/// One day, one group, one model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportRow {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// The team, end user or key token (`""`: none).
    pub name: String,
    /// The model group (else the model asked for).
    pub model: String,
    /// Requests.
    pub requests: i64,
    /// Prompt and completion tokens.
    pub tokens: i64,
    /// USD, unknown costs left out.
    pub spend: f64,
}

/// The query, written once for both backends.
macro_rules! spend_report_impl {
    ($store:ty) => {
        impl $store {
            pub(crate) async fn spend_report(
                &self,
                group: $crate::spend_report::ReportGroup,
                range: $crate::spend::SpendRange,
            ) -> Result<Vec<$crate::spend_report::ReportRow>, llmgate_auth::StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query(group.sql())
                    .bind(range.from_ms)
                    .bind(range.until_ms)
                    .fetch_all(&self.pool)
                    .await
                    .map_err($crate::sql::unavailable)?;
                rows.iter()
                    .map(|r| {
                        Ok($crate::spend_report::ReportRow {
                            day: $crate::spend_groups::day_name(r.try_get("day")?),
                            name: r.try_get("name")?,
                            model: r.try_get("model")?,
                            requests: r.try_get("requests")?,
                            tokens: r.try_get("tokens")?,
                            spend: r.try_get("total")?,
                        })
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()
                    .map_err($crate::sql::unavailable)
            }
        }
    };
}
pub(crate) use spend_report_impl;
