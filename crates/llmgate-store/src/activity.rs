//! Activity: the request log summed over a time window in the database, for the UI's Overview
//! and `GET /global/activity/overview` (see `docs/ui.md`).
//!
//! Every figure is computed by the database over every row whose `start_time` is in the
//! window (the `start_time` index bounds the scan), never over a sample:
//! - per bucket (the window cut into equal spans from its start) and in all: requests, errors
//!   (a row whose outcome is not `success`, read from the status for rows written before
//!   outcomes were recorded, as the request log's `status` filter does), requests that fell
//!   back, spend (unknown costs add nothing);
//! - latency p50 and p95, exact, by nearest rank (PostgreSQL's `percentile_disc`): the
//!   `ceil(p * n)`-th smallest latency of the `n` rows, found with `ROW_NUMBER()` over the
//!   rows sorted by latency. The same SQL on SQLite and PostgreSQL; it sorts the window's
//!   latencies, so its cost grows with the requests in the window;
//! - the top model groups (else the model asked for), keys (by token, with the newest alias
//!   their rows carry) and deployments, by requests.

use serde::Serialize;

/// A failed row: the request log's definition (outcome, else status).
macro_rules! failed {
    () => {
        "COALESCE(outcome, CASE WHEN status >= 200 AND status < 400 THEN 'success' \
         ELSE 'error' END) <> 'success'"
    };
}

/// `$1`..`$2`: the window; `$3`: the bucket's width in milliseconds.
pub(crate) const ACTIVITY_BUCKETS: &str = concat!(
    "SELECT (start_time - $1) / $3 AS b, COUNT(*) AS requests, SUM(CASE WHEN ",
    failed!(),
    " THEN 1 ELSE 0 END) AS errors, SUM(CASE WHEN fallbacks > 0 THEN 1 ELSE 0 END) AS fallbacks, \
     COALESCE(SUM(cost), CAST(0 AS DOUBLE PRECISION)) AS spend FROM llmgate_spend_logs \
     WHERE start_time >= $1 AND start_time < $2 GROUP BY (start_time - $1) / $3"
);

/// Nearest-rank p50 and p95 of `latency_ms` per bucket (the arguments of
/// [`ACTIVITY_BUCKETS`]): rank `ceil(n / 2)` and `ceil(95 n / 100)`, in integers.
pub(crate) const ACTIVITY_PERCENTILES: &str = "SELECT b, \
    MAX(CASE WHEN rn = (n + 1) / 2 THEN latency_ms END) AS p50, \
    MAX(CASE WHEN rn = (95 * n + 99) / 100 THEN latency_ms END) AS p95 FROM (\
    SELECT (start_time - $1) / $3 AS b, latency_ms, \
    ROW_NUMBER() OVER (PARTITION BY (start_time - $1) / $3 ORDER BY latency_ms) AS rn, \
    COUNT(*) OVER (PARTITION BY (start_time - $1) / $3) AS n \
    FROM llmgate_spend_logs WHERE start_time >= $1 AND start_time < $2) w GROUP BY b";

/// The top rows grouped by `{}` (a column expression of ours, never input): `$1`..`$2` the
/// window, `$3` how many.
const ACTIVITY_TOP: &str = concat!(
    "SELECT {} AS name, MAX(key_alias) AS alias, COUNT(*) AS requests, SUM(CASE WHEN ",
    failed!(),
    " THEN 1 ELSE 0 END) AS errors, COALESCE(SUM(cost), CAST(0 AS DOUBLE PRECISION)) AS spend \
     FROM llmgate_spend_logs WHERE start_time >= $1 AND start_time < $2 GROUP BY {} \
     ORDER BY requests DESC, spend DESC LIMIT $3"
);

/// What the top tables group by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TopBy {
    Model,
    Key,
    Deployment,
}

impl TopBy {
    pub(crate) const ALL: [TopBy; 3] = [TopBy::Model, TopBy::Key, TopBy::Deployment];

    /// The query grouping by this.
    pub(crate) fn sql(self) -> String {
        let column = match self {
            TopBy::Model => "COALESCE(model_group, requested_model)",
            TopBy::Key => "key_token",
            TopBy::Deployment => "deployment",
        };
        ACTIVITY_TOP.replace("{}", column)
    }
}

/// Which window [`Store::activity`](crate::Store::activity) sums, and how finely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivityQuery {
    /// The window's start, Unix milliseconds, included.
    pub from_ms: i64,
    /// Its end, excluded.
    pub until_ms: i64,
    /// One bucket's width, milliseconds (at least 1); the last bucket may be cut short.
    pub bucket_ms: i64,
    /// Rows in each top table.
    pub top: u32,
}

impl ActivityQuery {
    /// How many buckets the window has.
    pub fn buckets(&self) -> usize {
        let width = self.until_ms.saturating_sub(self.from_ms).max(0);
        let bucket = self.bucket_ms.max(1);
        usize::try_from((width + bucket - 1) / bucket).unwrap_or(0)
    }
}

/// The figures of one span of time.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ActivityTotals {
    /// The span's start, Unix milliseconds.
    pub start_ms: i64,
    /// Requests started in it.
    pub requests: i64,
    /// Of those, failed.
    pub errors: i64,
    /// Of those, answered after falling back.
    pub fallbacks: i64,
    /// USD, unknown costs left out.
    pub spend: f64,
    /// Median latency, milliseconds (`None` without requests).
    pub latency_p50_ms: Option<i64>,
    /// 95th percentile latency, milliseconds.
    pub latency_p95_ms: Option<i64>,
}

/// One row of a top table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActivityTop {
    /// The model group, key token or deployment id; `None` for requests without one (a key:
    /// the master key).
    pub name: Option<String>,
    /// For a key, the newest alias its rows carry.
    pub key_alias: Option<String>,
    /// Requests.
    pub requests: i64,
    /// Of those, failed.
    pub errors: i64,
    /// USD.
    pub spend: f64,
}

/// The window summed: [`Store::activity`](crate::Store::activity)'s answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Activity {
    /// The whole window.
    pub total: ActivityTotals,
    /// Each bucket, oldest first, empty ones included.
    pub buckets: Vec<ActivityTotals>,
    /// The most requested model groups.
    pub top_models: Vec<ActivityTop>,
    /// The keys that made the most requests.
    pub top_keys: Vec<ActivityTop>,
    /// The deployments that served the most requests.
    pub top_deployments: Vec<ActivityTop>,
}

impl Activity {
    /// Empty buckets for `q`, to be filled.
    pub(crate) fn empty(q: &ActivityQuery) -> Activity {
        let bucket = q.bucket_ms.max(1);
        Activity {
            total: ActivityTotals {
                start_ms: q.from_ms,
                ..ActivityTotals::default()
            },
            buckets: (0..q.buckets())
                .map(|i| ActivityTotals {
                    start_ms: q.from_ms + i64::try_from(i).unwrap_or(0) * bucket,
                    ..ActivityTotals::default()
                })
                .collect(),
            ..Activity::default()
        }
    }

    /// Adds a bucket's sums (and to the total).
    pub(crate) fn add(&mut self, b: i64, requests: i64, errors: i64, fallbacks: i64, spend: f64) {
        let add = |t: &mut ActivityTotals| {
            t.requests += requests;
            t.errors += errors;
            t.fallbacks += fallbacks;
            t.spend += spend;
        };
        if let Some(t) = self.bucket(b) {
            add(t);
        }
        add(&mut self.total);
    }

    pub(crate) fn bucket(&mut self, b: i64) -> Option<&mut ActivityTotals> {
        usize::try_from(b)
            .ok()
            .and_then(|i| self.buckets.get_mut(i))
    }
}

/// The activity query, written once for both backends like
/// [`spend_impl!`](crate::spend::spend_impl).
macro_rules! activity_impl {
    ($store:ty) => {
        impl $store {
            pub(crate) async fn activity(
                &self,
                q: $crate::activity::ActivityQuery,
            ) -> Result<$crate::activity::Activity, llmgate_auth::StoreError> {
                use sqlx::Row as _;
                use $crate::activity::{Activity, ActivityTop, TopBy};
                use $crate::sql::unavailable;
                let bucket = q.bucket_ms.max(1);
                let mut out = Activity::empty(&q);
                let rows = sqlx::query($crate::activity::ACTIVITY_BUCKETS)
                    .bind(q.from_ms)
                    .bind(q.until_ms)
                    .bind(bucket)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(unavailable)?;
                for r in &rows {
                    out.add(
                        r.try_get("b").map_err(unavailable)?,
                        r.try_get("requests").map_err(unavailable)?,
                        r.try_get("errors").map_err(unavailable)?,
                        r.try_get("fallbacks").map_err(unavailable)?,
                        r.try_get("spend").map_err(unavailable)?,
                    );
                }
                // Per bucket, then the whole window as one bucket.
                let whole = q.until_ms.saturating_sub(q.from_ms).max(1);
                for (width, per_bucket) in [(bucket, true), (whole, false)] {
                    let rows = sqlx::query($crate::activity::ACTIVITY_PERCENTILES)
                        .bind(q.from_ms)
                        .bind(q.until_ms)
                        .bind(width)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(unavailable)?;
                    for r in &rows {
                        let b: i64 = r.try_get("b").map_err(unavailable)?;
                        let target = if per_bucket {
                            out.bucket(b)
                        } else {
                            Some(&mut out.total)
                        };
                        if let Some(t) = target {
                            t.latency_p50_ms = r.try_get("p50").map_err(unavailable)?;
                            t.latency_p95_ms = r.try_get("p95").map_err(unavailable)?;
                        }
                    }
                }
                for by in TopBy::ALL {
                    let rows = sqlx::query(&by.sql())
                        .bind(q.from_ms)
                        .bind(q.until_ms)
                        .bind(i64::from(q.top))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(unavailable)?;
                    let top = rows
                        .iter()
                        .map(|r| {
                            Ok(ActivityTop {
                                name: r.try_get("name")?,
                                key_alias: if by == TopBy::Key {
                                    r.try_get("alias")?
                                } else {
                                    None
                                },
                                requests: r.try_get("requests")?,
                                errors: r.try_get("errors")?,
                                spend: r.try_get("spend")?,
                            })
                        })
                        .collect::<Result<Vec<_>, sqlx::Error>>()
                        .map_err(unavailable)?;
                    match by {
                        TopBy::Model => out.top_models = top,
                        TopBy::Key => out.top_keys = top,
                        TopBy::Deployment => out.top_deployments = top,
                    }
                }
                Ok(out)
            }
        }
    };
}
pub(crate) use activity_impl;
