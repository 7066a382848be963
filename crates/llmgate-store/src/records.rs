//! The [`RecordStore`](llmgate_auth::RecordStore) implementation (teams), written once for both
//! backends, in the table `llmgate_records` (migration 9).

use llmgate_auth::{Record, RecordKind, RecordPage, RecordStore, StoreError};

pub(crate) const INSERT: &str = "INSERT INTO llmgate_records \
    (kind, id, doc, spend, budget_reset_at, created_at, updated_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7)";
pub(crate) const SELECT: &str = "SELECT id, doc, spend, budget_reset_at, created_at, updated_at \
    FROM llmgate_records WHERE kind = $1 AND id = $2";
pub(crate) const UPDATE: &str = "UPDATE llmgate_records \
    SET doc = $3, budget_reset_at = $4, updated_at = $5 WHERE kind = $1 AND id = $2";
pub(crate) const DELETE: &str = "DELETE FROM llmgate_records WHERE kind = $1 AND id = $2";
pub(crate) const LIST: &str = "SELECT id, doc, spend, budget_reset_at, created_at, updated_at \
    FROM llmgate_records WHERE kind = $1 ORDER BY created_at ASC, id ASC LIMIT $2 OFFSET $3";
pub(crate) const COUNT: &str = "SELECT COUNT(*) AS n FROM llmgate_records WHERE kind = $1";
pub(crate) const ADD_SPEND: &str =
    "UPDATE llmgate_records SET spend = spend + $3 WHERE kind = $1 AND id = $2";
pub(crate) const RESET: &str = "UPDATE llmgate_records SET spend = 0, budget_reset_at = $4 \
    WHERE kind = $1 AND id = $2 AND budget_reset_at IS NOT NULL AND budget_reset_at <= $3";

/// The `doc` column's text as JSON.
pub(crate) fn doc_of(text: &str, id: &str) -> Result<serde_json::Value, llmgate_auth::StoreError> {
    serde_json::from_str(text).map_err(|e| {
        llmgate_auth::StoreError::Unavailable(format!(
            "llmgate_records {id:?}: doc is not JSON: {e}"
        ))
    })
}

/// A unique violation on insert is a conflict on the id.
pub(crate) fn conflict(
    e: sqlx::Error,
    kind: llmgate_auth::RecordKind,
    id: &str,
) -> llmgate_auth::StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            llmgate_auth::StoreError::Conflict(format!(
                "a {} with id {id:?} exists already",
                kind.as_str()
            ))
        }
        _ => crate::sql::unavailable(e),
    }
}

/// Implements `RecordStore` for `$store`, a struct with a `pool: sqlx::Pool<$db>` field.
macro_rules! record_store_impl {
    ($store:ty, $db:ty) => {
        impl $store {
            fn read_record(
                r: &<$db as sqlx::Database>::Row,
            ) -> Result<llmgate_auth::Record, llmgate_auth::StoreError> {
                use sqlx::Row as _;
                let get = || -> Result<_, sqlx::Error> {
                    Ok((
                        r.try_get::<String, _>("id")?,
                        r.try_get::<String, _>("doc")?,
                        r.try_get::<f64, _>("spend")?,
                        r.try_get::<Option<i64>, _>("budget_reset_at")?,
                        r.try_get::<i64, _>("created_at")?,
                        r.try_get::<i64, _>("updated_at")?,
                    ))
                };
                let (id, doc, spend, budget_reset_at, created_at, updated_at) =
                    get().map_err($crate::sql::unavailable)?;
                Ok(llmgate_auth::Record {
                    doc: $crate::records::doc_of(&doc, &id)?,
                    id,
                    spend,
                    budget_reset_at,
                    created_at,
                    updated_at,
                })
            }
        }

        #[async_trait::async_trait]
        impl llmgate_auth::RecordStore for $store {
            async fn insert_record(
                &self,
                kind: llmgate_auth::RecordKind,
                r: &llmgate_auth::Record,
            ) -> Result<(), llmgate_auth::StoreError> {
                sqlx::query($crate::records::INSERT)
                    .bind(kind.as_str())
                    .bind(&r.id)
                    .bind(r.doc.to_string())
                    .bind(r.spend)
                    .bind(r.budget_reset_at)
                    .bind(r.created_at)
                    .bind(r.updated_at)
                    .execute(&self.pool)
                    .await
                    .map(drop)
                    .map_err(|e| $crate::records::conflict(e, kind, &r.id))
            }

            async fn get_record(
                &self,
                kind: llmgate_auth::RecordKind,
                id: &str,
            ) -> Result<Option<llmgate_auth::Record>, llmgate_auth::StoreError> {
                let row = sqlx::query($crate::records::SELECT)
                    .bind(kind.as_str())
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err($crate::sql::unavailable)?;
                row.as_ref().map(Self::read_record).transpose()
            }

            async fn update_record(
                &self,
                kind: llmgate_auth::RecordKind,
                r: &llmgate_auth::Record,
            ) -> Result<bool, llmgate_auth::StoreError> {
                let done = sqlx::query($crate::records::UPDATE)
                    .bind(kind.as_str())
                    .bind(&r.id)
                    .bind(r.doc.to_string())
                    .bind(r.budget_reset_at)
                    .bind(r.updated_at)
                    .execute(&self.pool)
                    .await
                    .map_err($crate::sql::unavailable)?;
                Ok(done.rows_affected() > 0)
            }

            async fn delete_record(
                &self,
                kind: llmgate_auth::RecordKind,
                id: &str,
            ) -> Result<bool, llmgate_auth::StoreError> {
                let done = sqlx::query($crate::records::DELETE)
                    .bind(kind.as_str())
                    .bind(id)
                    .execute(&self.pool)
                    .await
                    .map_err($crate::sql::unavailable)?;
                Ok(done.rows_affected() > 0)
            }

            async fn list_records(
                &self,
                kind: llmgate_auth::RecordKind,
                page: u32,
                size: u32,
            ) -> Result<llmgate_auth::RecordPage, llmgate_auth::StoreError> {
                use sqlx::Row as _;
                use $crate::sql::unavailable;
                let size = i64::from(size.max(1));
                let offset = (i64::from(page.max(1)) - 1) * size;
                let rows = sqlx::query($crate::records::LIST)
                    .bind(kind.as_str())
                    .bind(size)
                    .bind(offset)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(unavailable)?;
                let total: i64 = sqlx::query($crate::records::COUNT)
                    .bind(kind.as_str())
                    .fetch_one(&self.pool)
                    .await
                    .and_then(|r| r.try_get("n"))
                    .map_err(unavailable)?;
                Ok(llmgate_auth::RecordPage {
                    records: rows
                        .iter()
                        .map(Self::read_record)
                        .collect::<Result<_, _>>()?,
                    total: u64::try_from(total).unwrap_or(0),
                })
            }

            async fn add_record_spend(
                &self,
                kind: llmgate_auth::RecordKind,
                id: &str,
                cost: f64,
            ) -> Result<(), llmgate_auth::StoreError> {
                sqlx::query($crate::records::ADD_SPEND)
                    .bind(kind.as_str())
                    .bind(id)
                    .bind(cost)
                    .execute(&self.pool)
                    .await
                    .map(drop)
                    .map_err($crate::sql::unavailable)
            }

            async fn reset_record_budget(
                &self,
                kind: llmgate_auth::RecordKind,
                id: &str,
                now: i64,
                next: i64,
            ) -> Result<bool, llmgate_auth::StoreError> {
                let done = sqlx::query($crate::records::RESET)
                    .bind(kind.as_str())
                    .bind(id)
                    .bind(now)
                    .bind(next)
                    .execute(&self.pool)
                    .await
                    .map_err($crate::sql::unavailable)?;
                Ok(done.rows_affected() > 0)
            }
        }
    };
}
pub(crate) use record_store_impl;

/// Runs `$e` with `$s` bound to the store's backend.
macro_rules! on {
    ($self:ident, $s:ident => $e:expr) => {
        match &$self.0 {
            crate::Backend::Sqlite($s) => $e,
            crate::Backend::Postgres($s) => $e,
        }
    };
}

#[async_trait::async_trait]
impl RecordStore for crate::Store {
    async fn insert_record(&self, kind: RecordKind, r: &Record) -> Result<(), StoreError> {
        on!(self, s => s.insert_record(kind, r).await)
    }
    async fn get_record(&self, kind: RecordKind, id: &str) -> Result<Option<Record>, StoreError> {
        on!(self, s => s.get_record(kind, id).await)
    }
    async fn update_record(&self, kind: RecordKind, r: &Record) -> Result<bool, StoreError> {
        on!(self, s => s.update_record(kind, r).await)
    }
    async fn delete_record(&self, kind: RecordKind, id: &str) -> Result<bool, StoreError> {
        on!(self, s => s.delete_record(kind, id).await)
    }
    async fn list_records(
        &self,
        kind: RecordKind,
        page: u32,
        size: u32,
    ) -> Result<RecordPage, StoreError> {
        on!(self, s => s.list_records(kind, page, size).await)
    }
    async fn add_record_spend(
        &self,
        kind: RecordKind,
        id: &str,
        cost: f64,
    ) -> Result<(), StoreError> {
        on!(self, s => s.add_record_spend(kind, id, cost).await)
    }
    async fn reset_record_budget(
        &self,
        kind: RecordKind,
        id: &str,
        now: i64,
        next: i64,
    ) -> Result<bool, StoreError> {
        on!(self, s => s.reset_record_budget(kind, id, now, next).await)
    }
}

/// The records of a [`crate::Database`], each call a task on its runtime.
#[derive(Debug)]
pub(crate) struct RecordsOnRuntime(pub(crate) crate::Database);

#[async_trait::async_trait]
impl RecordStore for RecordsOnRuntime {
    async fn insert_record(&self, kind: RecordKind, r: &Record) -> Result<(), StoreError> {
        let r = r.clone();
        self.0
            .run(move |s| async move { s.insert_record(kind, &r).await })
            .await
    }
    async fn get_record(&self, kind: RecordKind, id: &str) -> Result<Option<Record>, StoreError> {
        let id = id.to_owned();
        self.0
            .run(move |s| async move { s.get_record(kind, &id).await })
            .await
    }
    async fn update_record(&self, kind: RecordKind, r: &Record) -> Result<bool, StoreError> {
        let r = r.clone();
        self.0
            .run(move |s| async move { s.update_record(kind, &r).await })
            .await
    }
    async fn delete_record(&self, kind: RecordKind, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.0
            .run(move |s| async move { s.delete_record(kind, &id).await })
            .await
    }
    async fn list_records(
        &self,
        kind: RecordKind,
        page: u32,
        size: u32,
    ) -> Result<RecordPage, StoreError> {
        self.0
            .run(move |s| async move { s.list_records(kind, page, size).await })
            .await
    }
    async fn add_record_spend(
        &self,
        kind: RecordKind,
        id: &str,
        cost: f64,
    ) -> Result<(), StoreError> {
        let id = id.to_owned();
        self.0
            .run(move |s| async move { s.add_record_spend(kind, &id, cost).await })
            .await
    }
    async fn reset_record_budget(
        &self,
        kind: RecordKind,
        id: &str,
        now: i64,
        next: i64,
    ) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.0
            .run(move |s| async move { s.reset_record_budget(kind, &id, now, next).await })
            .await
    }
}
