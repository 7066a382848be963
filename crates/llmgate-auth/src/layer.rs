use llmgate_core::Secret;
use tower::Layer;

use crate::service::Auth;

/// Applies [`Auth`] to a service. See the crate docs.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    master_key: Option<Secret>,
}

impl AuthLayer {
    /// Requires `master_key` when it is `Some`; lets everyone in as `Principal::Anonymous`
    /// when it is `None`.
    pub fn new(master_key: Option<Secret>) -> Self {
        AuthLayer { master_key }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Auth<S> {
        Auth::new(inner, self.master_key.clone())
    }
}
