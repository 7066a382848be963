use std::sync::Arc;

use tower::Layer;

use crate::{ModelTable, Router};

/// Applies [`Router`] to a service. See the crate docs.
#[derive(Debug, Clone)]
pub struct RouterLayer {
    table: Arc<ModelTable>,
}

impl RouterLayer {
    /// Routes over `table`.
    pub fn new(table: Arc<ModelTable>) -> Self {
        RouterLayer { table }
    }
}

impl<S> Layer<S> for RouterLayer {
    type Service = Router<S>;

    fn layer(&self, inner: S) -> Router<S> {
        Router::new(inner, self.table.clone())
    }
}
