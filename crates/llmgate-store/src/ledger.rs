//! [`PgLedger`]: budgets in PostgreSQL (table `llmgate_budget_ledger`), for instances that share
//! PostgreSQL without Redis. A reservation is one transaction: each budget's row is upserted
//! (its spend raised to what the key's record shows), which locks it until commit, so
//! concurrent reservations for a key, from any instance, queue behind each other.

use llmgate_auth::{Admission, Budget, BudgetLedger, StoreError};
use sqlx::postgres::PgPool;

use crate::sql::unavailable;

/// Budgets in PostgreSQL; see the module docs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PgLedger {
    pool: PgPool,
}

impl PgLedger {
    pub(crate) fn new(pool: PgPool) -> Self {
        PgLedger { pool }
    }

    /// Deletes rows whose period ended more than a day ago. Returns how many.
    pub async fn sweep(&self, now: i64) -> Result<u64, StoreError> {
        sqlx::query("DELETE FROM llmgate_budget_ledger WHERE expires_at < $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected())
            .map_err(unavailable)
    }
}

#[async_trait::async_trait]
impl BudgetLedger for PgLedger {
    async fn reserve(&self, budgets: &[Budget], estimate: f64) -> Result<Admission, StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        for (index, b) in budgets.iter().enumerate() {
            let (spent, reserved): (f64, f64) = sqlx::query_as(
                "INSERT INTO llmgate_budget_ledger AS l (id, spent, reserved, expires_at) \
                 VALUES ($1, $2, 0, $3) \
                 ON CONFLICT (id) DO UPDATE SET spent = GREATEST(l.spent, EXCLUDED.spent), \
                 expires_at = GREATEST(l.expires_at, EXCLUDED.expires_at) \
                 RETURNING spent, reserved",
            )
            .bind(&b.id)
            .bind(b.known)
            .bind(b.expires_at)
            .fetch_one(&mut *tx)
            .await
            .map_err(unavailable)?;
            if spent + reserved >= b.max {
                // Nothing reserved; the floor raised above is kept.
                tx.commit().await.map_err(unavailable)?;
                return Ok(Admission::Denied {
                    index,
                    spend: spent,
                });
            }
        }
        let ids: Vec<&str> = budgets.iter().map(|b| b.id.as_str()).collect();
        sqlx::query("UPDATE llmgate_budget_ledger SET reserved = reserved + $1 WHERE id = ANY($2)")
            .bind(estimate)
            .bind(&ids)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(Admission::Admitted)
    }

    async fn settle(&self, budgets: &[Budget], estimate: f64, cost: f64) -> Result<(), StoreError> {
        let ids: Vec<&str> = budgets.iter().map(|b| b.id.as_str()).collect();
        sqlx::query(
            "UPDATE llmgate_budget_ledger \
             SET reserved = GREATEST(reserved - $1, 0), spent = spent + $2 WHERE id = ANY($3)",
        )
        .bind(estimate)
        .bind(cost)
        .bind(&ids)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(unavailable)
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }
}
