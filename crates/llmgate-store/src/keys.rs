//! The [`KeyStore`](llmgate_auth::KeyStore) implementation, written once for both backends.

/// Implements `KeyStore` for `$store`, a struct with a `pool: sqlx::Pool<$db>` field and the
/// inherent `BACKEND`, `notify(&self, token)` and `listen(&self)` its backend provides.
macro_rules! key_store_impl {
    ($store:ty, $db:ty) => {
        impl $store {
            fn read_row(
                r: &<$db as sqlx::Database>::Row,
            ) -> Result<($crate::sql::Row, Option<String>, Option<f64>), sqlx::Error> {
                use sqlx::Row as _;
                let row = $crate::sql::Row {
                    token: r.try_get("token")?,
                    key_name: r.try_get("key_name")?,
                    key_alias: r.try_get("key_alias")?,
                    models: r.try_get("models")?,
                    spend: r.try_get("spend")?,
                    max_budget: r.try_get("max_budget")?,
                    budget_duration: r.try_get("budget_duration")?,
                    budget_reset_at: r.try_get("budget_reset_at")?,
                    expires: r.try_get("expires")?,
                    rpm_limit: r.try_get("rpm_limit")?,
                    tpm_limit: r.try_get("tpm_limit")?,
                    max_parallel_requests: r.try_get("max_parallel_requests")?,
                    model_rpm_limit: r.try_get("model_rpm_limit")?,
                    model_tpm_limit: r.try_get("model_tpm_limit")?,
                    model_max_budget: r.try_get("model_max_budget")?,
                    metadata: r.try_get("metadata")?,
                    team_id: r.try_get("team_id")?,
                    user_id: r.try_get("user_id")?,
                    tags: r.try_get("tags")?,
                    blocked: r.try_get("blocked")?,
                    created_at: r.try_get("created_at")?,
                    updated_at: r.try_get("updated_at")?,
                    extras: r.try_get("extras")?,
                };
                Ok((row, r.try_get("ms_model")?, r.try_get("ms_spend")?))
            }

            fn read_keys(
                rows: Vec<<$db as sqlx::Database>::Row>,
            ) -> Result<Vec<llmgate_core::VirtualKey>, llmgate_auth::StoreError> {
                let rows = rows
                    .iter()
                    .map(Self::read_row)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err($crate::sql::unavailable)?;
                $crate::sql::fold_keys(rows)
            }

            async fn one_key(
                &self,
                sql: &'static str,
                arg: &str,
            ) -> Result<Option<llmgate_core::VirtualKey>, llmgate_auth::StoreError> {
                let rows = sqlx::query(sql)
                    .bind(arg)
                    .fetch_all(&self.pool)
                    .await
                    .map_err($crate::sql::unavailable)?;
                Ok(Self::read_keys(rows)?.into_iter().next())
            }
        }

        #[async_trait::async_trait]
        impl llmgate_auth::KeyStore for $store {
            async fn insert(
                &self,
                key: &llmgate_core::VirtualKey,
            ) -> Result<(), llmgate_auth::StoreError> {
                use $crate::sql::{conflict_or_unavailable, unavailable};
                let c = $crate::sql::Columns::of(key);
                let mut tx = self.pool.begin().await.map_err(unavailable)?;
                sqlx::query($crate::sql::INSERT_KEY)
                    .bind(&key.token)
                    .bind(&key.key_name)
                    .bind(&key.key_alias)
                    .bind(&c.models)
                    .bind(key.spend)
                    .bind(key.max_budget)
                    .bind(key.budget_duration)
                    .bind(key.budget_reset_at)
                    .bind(key.expires)
                    .bind(c.rpm_limit)
                    .bind(c.tpm_limit)
                    .bind(c.max_parallel_requests)
                    .bind(&c.model_rpm_limit)
                    .bind(&c.model_tpm_limit)
                    .bind(&c.model_max_budget)
                    .bind(&c.metadata)
                    .bind(&key.team_id)
                    .bind(&key.user_id)
                    .bind(&c.tags)
                    .bind(key.blocked)
                    .bind(key.created_at)
                    .bind(key.updated_at)
                    .bind(&c.extras)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| conflict_or_unavailable(e, key))?;
                for (model, spend) in &key.model_spend {
                    sqlx::query($crate::sql::INSERT_MODEL_SPEND)
                        .bind(&key.token)
                        .bind(model)
                        .bind(*spend)
                        .execute(&mut *tx)
                        .await
                        .map_err(unavailable)?;
                }
                tx.commit().await.map_err(unavailable)
            }

            async fn get(
                &self,
                token: &str,
            ) -> Result<Option<llmgate_core::VirtualKey>, llmgate_auth::StoreError> {
                self.one_key(
                    $crate::sql::select_keys!("llmgate_keys", "WHERE k.token = $1"),
                    token,
                )
                .await
            }

            async fn get_by_alias(
                &self,
                alias: &str,
            ) -> Result<Option<llmgate_core::VirtualKey>, llmgate_auth::StoreError> {
                self.one_key(
                    $crate::sql::select_keys!("llmgate_keys", "WHERE k.key_alias = $1"),
                    alias,
                )
                .await
            }

            async fn update(
                &self,
                key: &llmgate_core::VirtualKey,
            ) -> Result<bool, llmgate_auth::StoreError> {
                let c = $crate::sql::Columns::of(key);
                let done = sqlx::query($crate::sql::UPDATE_KEY)
                    .bind(&key.token)
                    .bind(&key.key_name)
                    .bind(&key.key_alias)
                    .bind(&c.models)
                    .bind(key.max_budget)
                    .bind(key.budget_duration)
                    .bind(key.budget_reset_at)
                    .bind(key.expires)
                    .bind(c.rpm_limit)
                    .bind(c.tpm_limit)
                    .bind(c.max_parallel_requests)
                    .bind(&c.model_rpm_limit)
                    .bind(&c.model_tpm_limit)
                    .bind(&c.model_max_budget)
                    .bind(&c.metadata)
                    .bind(&key.team_id)
                    .bind(&key.user_id)
                    .bind(&c.tags)
                    .bind(key.blocked)
                    .bind(key.updated_at)
                    .bind(&c.extras)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| $crate::sql::conflict_or_unavailable(e, key))?;
                Ok(done.rows_affected() > 0)
            }

            async fn delete(
                &self,
                tokens: &[String],
            ) -> Result<Vec<String>, llmgate_auth::StoreError> {
                use $crate::sql::unavailable;
                let mut tx = self.pool.begin().await.map_err(unavailable)?;
                let mut deleted = Vec::new();
                for token in tokens {
                    let done = sqlx::query($crate::sql::DELETE_KEY)
                        .bind(token)
                        .execute(&mut *tx)
                        .await
                        .map_err(unavailable)?;
                    sqlx::query($crate::sql::DELETE_MODEL_SPEND)
                        .bind(token)
                        .execute(&mut *tx)
                        .await
                        .map_err(unavailable)?;
                    if done.rows_affected() > 0 {
                        deleted.push(token.clone());
                    }
                }
                tx.commit().await.map_err(unavailable)?;
                Ok(deleted)
            }

            async fn list(
                &self,
                filter: &llmgate_auth::KeyFilter,
            ) -> Result<Vec<llmgate_core::VirtualKey>, llmgate_auth::StoreError> {
                const SQL: &str = $crate::sql::select_keys!(
                    "(SELECT * FROM llmgate_keys WHERE ($1 IS NULL OR user_id = $1) \
                     AND ($2 IS NULL OR team_id = $2) AND ($3 IS NULL OR key_alias = $3) \
                     ORDER BY created_at DESC, token ASC LIMIT $4 OFFSET $5)",
                    "ORDER BY k.created_at DESC, k.token ASC"
                );
                let size = i64::from(filter.size.max(1));
                let offset = (i64::from(filter.page.max(1)) - 1) * size;
                let rows = sqlx::query(SQL)
                    .bind(&filter.user_id)
                    .bind(&filter.team_id)
                    .bind(&filter.key_alias)
                    .bind(size)
                    .bind(offset)
                    .fetch_all(&self.pool)
                    .await
                    .map_err($crate::sql::unavailable)?;
                Self::read_keys(rows)
            }

            async fn count(
                &self,
                filter: &llmgate_auth::KeyFilter,
            ) -> Result<u64, llmgate_auth::StoreError> {
                use sqlx::Row as _;
                const SQL: &str = "SELECT COUNT(*) AS n FROM llmgate_keys WHERE \
                    ($1 IS NULL OR user_id = $1) AND ($2 IS NULL OR team_id = $2) \
                    AND ($3 IS NULL OR key_alias = $3)";
                let n: i64 = sqlx::query(SQL)
                    .bind(&filter.user_id)
                    .bind(&filter.team_id)
                    .bind(&filter.key_alias)
                    .fetch_one(&self.pool)
                    .await
                    .and_then(|r| r.try_get("n"))
                    .map_err($crate::sql::unavailable)?;
                Ok(u64::try_from(n).unwrap_or(0))
            }

            async fn rotate(
                &self,
                old: &str,
                new_token: &str,
                new_name: &str,
                now: i64,
            ) -> Result<bool, llmgate_auth::StoreError> {
                use $crate::sql::unavailable;
                let mut tx = self.pool.begin().await.map_err(unavailable)?;
                let done = sqlx::query($crate::sql::ROTATE_KEY)
                    .bind(old)
                    .bind(new_token)
                    .bind(new_name)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::sql::token_conflict_or_unavailable)?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                sqlx::query($crate::sql::ROTATE_MODEL_SPEND)
                    .bind(old)
                    .bind(new_token)
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                tx.commit().await.map_err(unavailable)?;
                Ok(true)
            }

            async fn add_spend(
                &self,
                token: &str,
                model: &str,
                cost: f64,
            ) -> Result<(), llmgate_auth::StoreError> {
                use $crate::sql::unavailable;
                let mut tx = self.pool.begin().await.map_err(unavailable)?;
                let done = sqlx::query($crate::sql::ADD_SPEND)
                    .bind(token)
                    .bind(cost)
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                if done.rows_affected() == 0 {
                    // The key was deleted mid-request: nothing to charge.
                    return Ok(());
                }
                sqlx::query($crate::sql::ADD_MODEL_SPEND)
                    .bind(token)
                    .bind(model)
                    .bind(cost)
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                tx.commit().await.map_err(unavailable)
            }

            async fn reset_budget(
                &self,
                token: &str,
                now: i64,
                next: i64,
            ) -> Result<bool, llmgate_auth::StoreError> {
                use $crate::sql::unavailable;
                let mut tx = self.pool.begin().await.map_err(unavailable)?;
                let done = sqlx::query($crate::sql::RESET_BUDGET)
                    .bind(token)
                    .bind(now)
                    .bind(next)
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                sqlx::query($crate::sql::DELETE_MODEL_SPEND)
                    .bind(token)
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                tx.commit().await.map_err(unavailable)?;
                Ok(true)
            }

            async fn ping(&self) -> Result<(), llmgate_auth::StoreError> {
                sqlx::query("SELECT 1")
                    .execute(&self.pool)
                    .await
                    .map(drop)
                    .map_err($crate::sql::unavailable)
            }

            async fn publish(&self, token: &str) -> Result<(), llmgate_auth::StoreError> {
                self.notify(token).await
            }

            fn subscribe(&self) -> Option<llmgate_auth::Invalidations> {
                self.listen()
            }

            fn backend(&self) -> &'static str {
                Self::BACKEND
            }
        }
    };
}
pub(crate) use key_store_impl;
