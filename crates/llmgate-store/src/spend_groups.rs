//! Spend summed by provider and by UTC day over a range, in the database (for
//! `/global/spend/provider` and `/global/spend/days`, and the admin UI's Spend page), so the
//! answer covers every request in the range, not a page of the request log.

use serde::Serialize;

/// Spend per provider: LiteLLM's `custom_llm_provider` (`openai`, `anthropic`, ...), `unknown`
/// for requests that reached none.
pub(crate) const SPEND_BY_PROVIDER: &str = "SELECT COALESCE(provider, 'unknown') AS name, \
    COUNT(*) AS requests, COALESCE(SUM(cost), CAST(0 AS DOUBLE PRECISION)) AS total \
    FROM llmgate_spend_logs \
    WHERE ($1 IS NULL OR start_time >= $1) AND ($2 IS NULL OR start_time < $2) \
    GROUP BY COALESCE(provider, 'unknown') ORDER BY total DESC, name ASC";

/// Spend per UTC day (`start_time` in Unix milliseconds; whole-number division in both
/// databases), newest first.
pub(crate) const SPEND_BY_DAY: &str = "SELECT start_time / 86400000 AS day, \
    COUNT(*) AS requests, COALESCE(SUM(cost), CAST(0 AS DOUBLE PRECISION)) AS total \
    FROM llmgate_spend_logs \
    WHERE ($1 IS NULL OR start_time >= $1) AND ($2 IS NULL OR start_time < $2) \
    GROUP BY start_time / 86400000 ORDER BY day DESC";

/// Spend per team (the key's `team_id`; `''` for requests without one).
pub(crate) const SPEND_BY_TEAM: &str = "SELECT COALESCE(team_id, '') AS name, \
    COUNT(*) AS requests, COALESCE(SUM(cost), CAST(0 AS DOUBLE PRECISION)) AS total \
    FROM llmgate_spend_logs \
    WHERE ($1 IS NULL OR start_time >= $1) AND ($2 IS NULL OR start_time < $2) \
    GROUP BY COALESCE(team_id, '') ORDER BY total DESC, name ASC";

/// Spend per internal user (the key's `user_id`; `''` for requests without one).
pub(crate) const SPEND_BY_USER: &str = "SELECT COALESCE(user_id, '') AS name, \
    COUNT(*) AS requests, COALESCE(SUM(cost), CAST(0 AS DOUBLE PRECISION)) AS total \
    FROM llmgate_spend_logs \
    WHERE ($1 IS NULL OR start_time >= $1) AND ($2 IS NULL OR start_time < $2) \
    GROUP BY COALESCE(user_id, '') ORDER BY total DESC, name ASC";

/// Spend per end user (the request's `user`; `''` for requests without one).
pub(crate) const SPEND_BY_END_USER: &str = "SELECT COALESCE(end_user, '') AS name, \
    COUNT(*) AS requests, COALESCE(SUM(cost), CAST(0 AS DOUBLE PRECISION)) AS total \
    FROM llmgate_spend_logs \
    WHERE ($1 IS NULL OR start_time >= $1) AND ($2 IS NULL OR start_time < $2) \
    GROUP BY COALESCE(end_user, '') ORDER BY total DESC, name ASC";

/// What spend is summed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpendGroup {
    /// The provider (`/global/spend/provider`).
    Provider,
    /// The UTC day (`/global/spend/days`).
    Day,
    /// The key's team (`/global/spend/teams`).
    Team,
    /// The key's user (`/global/spend/users`).
    User,
    /// The request's end user (`/global/spend/end_users`).
    EndUser,
}

impl SpendGroup {
    pub(crate) fn sql(self) -> &'static str {
        match self {
            SpendGroup::Provider => SPEND_BY_PROVIDER,
            SpendGroup::Day => SPEND_BY_DAY,
            SpendGroup::Team => SPEND_BY_TEAM,
            SpendGroup::User => SPEND_BY_USER,
            SpendGroup::EndUser => SPEND_BY_END_USER,
        }
    }
}

/// Requests and spend of one provider, day, team or user.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupSpend {
    /// The provider, the day as `YYYY-MM-DD` (UTC), the team or the user (`''`: none).
    pub name: String,
    /// Requests recorded, failures included.
    pub requests: i64,
    /// USD, unknown costs left out.
    pub spend: f64,
}

/// `YYYY-MM-DD` of a day counted from the Unix epoch.
pub(crate) fn day_name(day: i64) -> String {
    let (y, m, d) = llmgate_core::seconds::civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The two queries, written once for both backends like
/// [`spend_impl!`](crate::spend::spend_impl).
macro_rules! spend_groups_impl {
    ($store:ty) => {
        impl $store {
            pub(crate) async fn spend_by(
                &self,
                group: $crate::spend_groups::SpendGroup,
                range: $crate::spend::SpendRange,
            ) -> Result<Vec<$crate::spend_groups::GroupSpend>, llmgate_auth::StoreError> {
                use sqlx::Row as _;
                use $crate::spend_groups::{day_name, GroupSpend, SpendGroup};
                let by_day = group == SpendGroup::Day;
                let rows = sqlx::query(group.sql())
                    .bind(range.from_ms)
                    .bind(range.until_ms)
                    .fetch_all(&self.pool)
                    .await
                    .map_err($crate::sql::unavailable)?;
                rows.iter()
                    .map(|r| {
                        Ok(GroupSpend {
                            name: if by_day {
                                day_name(r.try_get("day")?)
                            } else {
                                r.try_get("name")?
                            },
                            requests: r.try_get("requests")?,
                            spend: r.try_get("total")?,
                        })
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()
                    .map_err($crate::sql::unavailable)
            }
        }
    };
}
pub(crate) use spend_groups_impl;

#[cfg(test)]
mod tests {
    use super::day_name;

    #[test]
    fn days_are_named_in_utc() {
        assert_eq!(day_name(0), "1970-01-01");
        assert_eq!(day_name(19_782), "2024-02-29");
        assert_eq!(day_name(20_789), "2026-12-02");
    }
}
