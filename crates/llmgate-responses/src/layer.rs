use std::sync::Arc;

use tower::Layer;

use crate::store::{MemoryStore, SharedStore};
use crate::Responses;

/// Applies [`Responses`].
#[derive(Debug, Clone)]
pub struct ResponsesLayer {
    limit: usize,
    store: SharedStore,
}

impl ResponsesLayer {
    /// Caps request bodies at `limit` bytes (a larger one is a 413), storing responses in a
    /// new [`MemoryStore`].
    pub fn new(limit: usize) -> Self {
        ResponsesLayer {
            limit,
            store: Arc::new(MemoryStore::new()),
        }
    }

    /// Stores responses (and finds `previous_response_id`) in `store`.
    #[must_use]
    pub fn store(mut self, store: SharedStore) -> Self {
        self.store = store;
        self
    }
}

impl<S> Layer<S> for ResponsesLayer {
    type Service = Responses<S>;
    fn layer(&self, inner: S) -> Responses<S> {
        Responses::new(inner, self.limit, self.store.clone())
    }
}
