use tower::Layer;

use crate::Messages;

/// Applies [`Messages`].
#[derive(Debug, Clone, Copy)]
pub struct MessagesLayer {
    limit: usize,
}

impl MessagesLayer {
    /// Caps request bodies at `limit` bytes (a larger one is a 413 `request_too_large`).
    pub fn new(limit: usize) -> Self {
        MessagesLayer { limit }
    }
}

impl<S> Layer<S> for MessagesLayer {
    type Service = Messages<S>;
    fn layer(&self, inner: S) -> Messages<S> {
        Messages::new(inner, self.limit)
    }
}
