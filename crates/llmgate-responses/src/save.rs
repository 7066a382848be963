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
            input: with_ids(self.input),
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

/// The items, each with an `id` (one made for those sent without), so that
/// `GET /v1/responses/{id}/input_items` lists them by id.
fn with_ids(items: Vec<Value>) -> Vec<Value> {
    items
        .into_iter()
        .map(|mut item| {
            if let Value::Object(o) = &mut item {
                if !o.get("id").is_some_and(Value::is_string) {
                    let prefix = match o.get("type").and_then(Value::as_str) {
                        None | Some("message") => "msg",
                        Some("function_call") => "fc",
                        Some("function_call_output") => "fco",
                        Some("reasoning") => "rs",
                        Some(_) => "item",
                    };
                    o.insert(
                        "id".to_owned(),
                        Value::String(crate::object::new_id(prefix)),
                    );
                }
            }
            item
        })
        .collect()
}
