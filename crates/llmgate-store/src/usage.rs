//! Requests per deployment per UTC day (table `llmgate_deployment_usage`): the router's `rpd`
//! counts, kept so a provider's daily quota survives restarts (see `docs/routing.md`).

/// Days of usage kept.
pub(crate) const KEEP_DAYS: i64 = 7;

pub(crate) const ADD: &str = "INSERT INTO llmgate_deployment_usage (deployment, day, requests) \
    VALUES ($1, $2, $3) ON CONFLICT (deployment, day) DO UPDATE SET \
    requests = llmgate_deployment_usage.requests + excluded.requests";
pub(crate) const SELECT_DAY: &str =
    "SELECT deployment, requests FROM llmgate_deployment_usage WHERE day = $1";
pub(crate) const FORGET: &str = "DELETE FROM llmgate_deployment_usage WHERE day < $1";

/// The usage methods, written once for both backends.
macro_rules! usage_impl {
    ($store:ty) => {
        impl $store {
            pub(crate) async fn sync_deployment_usage(
                &self,
                day: i64,
                sent: &[(String, u64)],
            ) -> Result<Vec<(String, u64)>, llmgate_auth::StoreError> {
                use $crate::sql::unavailable;
                let mut tx = self.pool.begin().await.map_err(unavailable)?;
                for (deployment, n) in sent.iter().filter(|(_, n)| *n > 0) {
                    sqlx::query($crate::usage::ADD)
                        .bind(deployment)
                        .bind(day)
                        .bind(i64::try_from(*n).unwrap_or(i64::MAX))
                        .execute(&mut *tx)
                        .await
                        .map_err(unavailable)?;
                }
                // Writes before the read: a SQLite transaction that reads first and then writes
                // cannot wait for another process's write lock (it fails at once with
                // "database is locked"); one that writes first waits its busy timeout.
                sqlx::query($crate::usage::FORGET)
                    .bind(day - $crate::usage::KEEP_DAYS)
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                let rows: Vec<(String, i64)> = sqlx::query_as($crate::usage::SELECT_DAY)
                    .bind(day)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                tx.commit().await.map_err(unavailable)?;
                Ok(rows
                    .into_iter()
                    .map(|(d, n)| (d, u64::try_from(n).unwrap_or(0)))
                    .collect())
            }
        }
    };
}
pub(crate) use usage_impl;
