//! Saving a response when it ends, before its last byte reaches the client (so a follow-up
//! with `previous_response_id` sent as soon as the answer arrives finds it).

use futures_util::future::BoxFuture;
use serde_json::Value;

use crate::store::{SharedStore, StoredResponse};

/// What a response is saved with: the store, the calling key's scope and the conversation's
/// input items (the earlier turns' first).
#[derive(Debug, Clone)]
pub(crate) struct Saver {
    pub(crate) store: SharedStore,
    pub(crate) owner: String,
    pub(crate) input: Vec<Value>,
}

impl Saver {
    /// Saves `response` (a failed one is not kept: there is nothing to continue from). A
    /// store failure is logged; the client still gets its answer.
    pub(crate) fn save(self, response: &Value) -> Option<BoxFuture<'static, ()>> {
        if response.get("status").and_then(Value::as_str) == Some("failed") {
            return None;
        }
        let record = StoredResponse {
            id: response
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            owner: self.owner,
            created_at: response
                .get("created_at")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            input: self.input,
            response: response.clone(),
        };
        let store = self.store;
        Some(Box::pin(async move {
            if let Err(e) = store.save(&record).await {
                tracing::warn!(error = %e, response_id = %record.id, "a response could not be stored; previous_response_id will not find it");
            }
        }))
    }
}
