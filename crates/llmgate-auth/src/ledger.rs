//! [`BudgetLedger`]: each key's spend for its budget period as every instance sees it, so a
//! budget holds across instances and between spend writes (see `docs/keys.md`, "Budgets").
//!
//! When a key with a budget is admitted, an estimate of the request's cost is **reserved**
//! against each budget it is held to (the key's `max_budget`, and its `model_max_budget` for
//! the model), provided none is spent: `spend + reserved < max`. When the request ends, its
//! reservation is given back and its real cost added (**settled**). So concurrent requests on
//! every instance see each other's reservations, and a request's cost counts everywhere the
//! moment it ends, not when the spend writer next writes (up to `proxy_batch_write_at` later)
//! nor when another instance's key cache expires.
//!
//! A ledger entry names its budget and its period (`budget_reset_at`), so a reset starts a
//! fresh entry. It starts from the spend the key's record shows and never falls below it (the
//! record is the truth when a ledger forgot, say after a Redis restart).

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use crate::StoreError;

/// One budget a request is held to.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    /// The budget and its period: `"{token}:{period}"`, or `"{token}:{period}:m:{model}"`.
    pub id: String,
    /// The budget, USD.
    pub max: f64,
    /// Spend the key's record shows for the period, USD: the entry never falls below it.
    pub known: f64,
    /// Unix seconds after which the entry may be forgotten.
    pub expires_at: i64,
}

/// What [`BudgetLedger::reserve`] decided.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Admission {
    /// Reserved on every budget.
    Admitted,
    /// `budgets[index]` is spent (its spend, USD); nothing was reserved.
    Denied {
        /// Which budget.
        index: usize,
        /// Its spend for the period.
        spend: f64,
    },
}

/// Where budgets are counted. Rules every ledger keeps: `reserve` is all or nothing; `settle`
/// never takes `reserved` below zero; an entry missing at `settle` (expired, forgotten) is left
/// alone.
#[async_trait::async_trait]
pub trait BudgetLedger: Send + Sync + fmt::Debug + 'static {
    /// Admits the request unless a budget is spent, reserving `estimate` USD on each.
    async fn reserve(&self, budgets: &[Budget], estimate: f64) -> Result<Admission, StoreError>;

    /// Gives back `estimate` and adds `cost` USD to each budget.
    async fn settle(&self, budgets: &[Budget], estimate: f64, cost: f64) -> Result<(), StoreError>;

    /// A short name for readiness and logs (`memory`, `redis`, `postgres`).
    fn backend(&self) -> &'static str;
}

#[derive(Debug, Default, Clone, Copy)]
struct Entry {
    spent: f64,
    reserved: f64,
    expires_at: i64,
}

/// A ledger in this process: for one instance (the SQLite default). One short lock per
/// budgeted request; entries past their expiry are swept as the map grows.
#[derive(Debug, Default)]
pub struct MemoryLedger {
    entries: Mutex<HashMap<String, Entry>>,
}

/// Entries kept before expired ones are swept.
const SWEEP_AT: usize = 10_000;

impl MemoryLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[async_trait::async_trait]
impl BudgetLedger for MemoryLedger {
    async fn reserve(&self, budgets: &[Budget], estimate: f64) -> Result<Admission, StoreError> {
        let mut map = self.lock();
        if map.len() >= SWEEP_AT {
            let now = now_secs();
            map.retain(|_, e| e.expires_at >= now);
        }
        for (index, b) in budgets.iter().enumerate() {
            let e = map.entry(b.id.clone()).or_default();
            e.spent = e.spent.max(b.known);
            e.expires_at = e.expires_at.max(b.expires_at);
            if e.spent + e.reserved >= b.max {
                return Ok(Admission::Denied {
                    index,
                    spend: e.spent,
                });
            }
        }
        for b in budgets {
            if let Some(e) = map.get_mut(&b.id) {
                e.reserved += estimate;
            }
        }
        Ok(Admission::Admitted)
    }

    async fn settle(&self, budgets: &[Budget], estimate: f64, cost: f64) -> Result<(), StoreError> {
        let mut map = self.lock();
        for b in budgets {
            if let Some(e) = map.get_mut(&b.id) {
                e.reserved = (e.reserved - estimate).max(0.0);
                e.spent += cost;
            }
        }
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}

/// The suite every ledger must pass (the memory ledger's tests here, the Redis and PostgreSQL
/// ones where they live). `prefix` keeps a run's entries apart from other runs'.
#[cfg(any(test, feature = "conformance"))]
#[allow(clippy::unwrap_used, clippy::panic, reason = "a test suite")]
pub async fn conformance(ledger: &dyn BudgetLedger, prefix: &str) {
    let far = now_secs() + 3600;
    let budget = |id: &str, max: f64, known: f64| Budget {
        id: format!("{prefix}{id}"),
        max,
        known,
        expires_at: far,
    };
    let key = budget("k", 1.0, 0.0);
    // Reservations count: two of 0.5 fill a budget of 1.0.
    assert_eq!(
        ledger
            .reserve(std::slice::from_ref(&key), 0.5)
            .await
            .unwrap(),
        Admission::Admitted
    );
    assert_eq!(
        ledger
            .reserve(std::slice::from_ref(&key), 0.5)
            .await
            .unwrap(),
        Admission::Admitted
    );
    assert!(matches!(
        ledger
            .reserve(std::slice::from_ref(&key), 0.5)
            .await
            .unwrap(),
        Admission::Denied { index: 0, .. }
    ));
    // Settling gives the reservation back and adds the real cost.
    ledger
        .settle(std::slice::from_ref(&key), 0.5, 0.1)
        .await
        .unwrap();
    ledger
        .settle(std::slice::from_ref(&key), 0.5, 0.1)
        .await
        .unwrap();
    assert_eq!(
        ledger
            .reserve(std::slice::from_ref(&key), 0.0)
            .await
            .unwrap(),
        Admission::Admitted
    );
    ledger
        .settle(std::slice::from_ref(&key), 0.0, 0.8)
        .await
        .unwrap();
    match ledger
        .reserve(std::slice::from_ref(&key), 0.0)
        .await
        .unwrap()
    {
        Admission::Denied { index: 0, spend } => assert!((spend - 1.0).abs() < 1e-9, "{spend}"),
        other => panic!("{other:?}"),
    }
    // All or nothing: the second budget is spent, so the first reserves nothing.
    let open = budget("open", 1.0, 0.0);
    let spent = budget("spent", 1.0, 2.0);
    assert_eq!(
        ledger.reserve(&[open.clone(), spent], 0.9).await.unwrap(),
        Admission::Denied {
            index: 1,
            spend: 2.0
        }
    );
    assert_eq!(
        ledger
            .reserve(std::slice::from_ref(&open), 0.9)
            .await
            .unwrap(),
        Admission::Admitted
    );
    // The record's spend is a floor.
    let floor = budget("floor", 1.0, 0.0);
    assert_eq!(
        ledger
            .reserve(std::slice::from_ref(&floor), 0.0)
            .await
            .unwrap(),
        Admission::Admitted
    );
    let known = Budget {
        known: 1.5,
        ..floor
    };
    assert!(matches!(
        ledger.reserve(&[known], 0.0).await.unwrap(),
        Admission::Denied { spend, .. } if (spend - 1.5).abs() < 1e-9
    ));
    // Settling an entry the ledger never saw leaves it alone.
    ledger
        .settle(&[budget("never", 1.0, 0.0)], 0.5, 0.5)
        .await
        .unwrap();
    assert_eq!(
        ledger
            .reserve(&[budget("never", 1.0, 0.0)], 0.0)
            .await
            .unwrap(),
        Admission::Admitted
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_ledger_keeps_the_rules() {
        conformance(&MemoryLedger::new(), "t:").await;
    }
}
