//! Budget objects ([`BudgetObject`], `/budget/*`) as the request path sees them: kept as
//! [`RecordKind::Budget`] records, read when a linked key, team or end user is loaded into its
//! cache, and applied to it there (its own limits win; the budget fills the rest). A change to a
//! budget drops every cached object linked to it, here and, through `budget:<id>` on the key
//! store's invalidation feed, on every other instance.

use std::sync::Arc;

use llmgate_core::BudgetObject;

use crate::{Record, RecordKind, RecordStore, StoreError};

/// The prefix of a budget's id on the key store's invalidation feed.
pub const BUDGET_INVALIDATION_PREFIX: &str = "budget:";

/// The budget `id`, if there is one. A link naming a budget that no longer exists leaves the
/// object with its own limits.
pub async fn linked_budget(
    store: &Arc<dyn RecordStore>,
    id: &str,
) -> Result<Option<BudgetObject>, StoreError> {
    store
        .get_record(RecordKind::Budget, id)
        .await?
        .map(|r| r.to_budget())
        .transpose()
}

impl Record {
    /// The record of a budget: its id and times are columns, the rest is the document.
    pub fn of_budget(b: &BudgetObject) -> Record {
        let mut doc = serde_json::to_value(b).unwrap_or(serde_json::Value::Null);
        if let Some(m) = doc.as_object_mut() {
            for k in ["budget_id", "budget_reset_at", "created_at", "updated_at"] {
                m.remove(k);
            }
        }
        Record {
            id: b.budget_id.clone(),
            doc,
            spend: 0.0,
            budget_reset_at: b.budget_reset_at,
            created_at: b.created_at,
            updated_at: b.updated_at,
        }
    }

    /// The budget this record holds.
    pub fn to_budget(&self) -> Result<BudgetObject, StoreError> {
        let doc: BudgetObject = serde_json::from_value(self.doc.clone()).map_err(|e| {
            StoreError::Unavailable(format!("budget {:?} is not valid: {e}", self.id))
        })?;
        Ok(BudgetObject {
            budget_id: self.id.clone(),
            budget_reset_at: self.budget_reset_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
            ..doc
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryRecordStore;

    #[tokio::test]
    async fn a_budget_round_trips_through_its_record() {
        let b = BudgetObject {
            budget_id: "b1".into(),
            max_budget: Some(2.5),
            soft_budget: Some(1.0),
            budget_duration: Some(3_600),
            budget_reset_at: Some(10),
            model_max_budget: serde_json::json!({"m": {"max_budget": 1.0}}),
            created_at: 1,
            created_by: Some("admin".into()),
            updated_at: 2,
            ..BudgetObject::default()
        };
        let rec = Record::of_budget(&b);
        assert!(rec.doc.get("budget_id").is_none());
        assert_eq!(rec.to_budget().ok(), Some(b.clone()));
        let store: Arc<dyn RecordStore> = Arc::new(MemoryRecordStore::new());
        store.insert_record(RecordKind::Budget, &rec).await.unwrap();
        assert_eq!(linked_budget(&store, "b1").await.unwrap(), Some(b));
        assert_eq!(linked_budget(&store, "nope").await.unwrap(), None);
    }
}
