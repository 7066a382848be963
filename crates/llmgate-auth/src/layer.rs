use llmgate_core::Secret;
use tower::Layer;

use crate::service::Auth;
use crate::Keys;

/// Applies [`Auth`] to a service. See the crate docs.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    master_key: Option<Secret>,
    keys: Option<Keys>,
}

impl AuthLayer {
    /// Requires `master_key` when it is `Some`; lets everyone in as `Principal::Anonymous`
    /// when it is `None`.
    pub fn new(master_key: Option<Secret>) -> Self {
        AuthLayer {
            master_key,
            keys: None,
        }
    }

    /// Also accepts the virtual keys in `keys` (as `Principal::Key`). Virtual keys need a master
    /// key: without one the gateway is open and every caller is `Principal::Anonymous`.
    pub fn with_keys(mut self, keys: Keys) -> Self {
        self.keys = Some(keys);
        self
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Auth<S> {
        Auth::with_keys(inner, self.master_key.clone(), self.keys.clone())
    }
}
