use std::sync::Arc;

use tower::Layer;

use crate::{Fallback, FallbackPolicy};

/// Applies [`Fallback`]. See the crate docs.
#[derive(Debug, Clone)]
pub struct FallbackLayer {
    policy: Arc<FallbackPolicy>,
}

impl FallbackLayer {
    /// Retries and falls back as `policy` says.
    pub fn new(policy: FallbackPolicy) -> Self {
        FallbackLayer {
            policy: Arc::new(policy),
        }
    }
}

impl<S> Layer<S> for FallbackLayer {
    type Service = Fallback<S>;

    fn layer(&self, inner: S) -> Fallback<S> {
        Fallback::new(inner, self.policy.clone())
    }
}
