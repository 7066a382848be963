use std::sync::Arc;

use llmgate_core::{ResolveModel, Secret};
use tower::Layer;

use crate::service::Auth;
use crate::{Budgets, Keys};

/// Applies [`Auth`] to a service. See the crate docs.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    master_key: Option<Secret>,
    keys: Option<Keys>,
    resolver: Option<Arc<dyn ResolveModel>>,
    proxy: Option<Budgets>,
    end_user_headers: Option<Arc<[http::HeaderName]>>,
}

impl AuthLayer {
    /// Requires `master_key` when it is `Some`; lets everyone in as `Principal::Anonymous`
    /// when it is `None`.
    pub fn new(master_key: Option<Secret>) -> Self {
        AuthLayer {
            master_key,
            keys: None,
            resolver: None,
            proxy: None,
            end_user_headers: None,
        }
    }

    /// Also accepts the virtual keys in `keys` (as `Principal::Key`). Virtual keys need a master
    /// key: without one the gateway is open and every caller is `Principal::Anonymous`.
    pub fn with_keys(mut self, keys: Keys) -> Self {
        self.keys = Some(keys);
        self
    }

    /// Judges a virtual key's `models` against the model group a requested name resolves to
    /// as well as the name itself (LiteLLM's rule: a key allowed `gpt-4` may call an alias of
    /// it). Without a resolver only the name as requested is judged here; the router judges
    /// every attempt either way (see [`llmgate_core::ModelAccess`]).
    #[must_use]
    pub fn with_model_resolver(mut self, resolver: Arc<dyn ResolveModel>) -> Self {
        self.resolver = Some(resolver);
        self
    }
}

impl AuthLayer {
    /// Holds every request to the gateway's own budget (`litellm_settings.max_budget`):
    /// `budgets` must carry a [`crate::ProxyBudget`]. A virtual key's requests are held through
    /// its [`Keys`]' budgets, which should be these same ones
    /// ([`Keys::with_budgets`]); the master key's and, without a master key, everyone's
    /// through these.
    #[must_use]
    pub fn with_proxy_budget(mut self, budgets: Budgets) -> Self {
        self.proxy = budgets.proxy_budget().is_some().then_some(budgets);
        self
    }
}

impl AuthLayer {
    /// Reads the request's end user from `headers` too (LiteLLM's `user_header_mappings` with
    /// role `customer`, and `user_header_name`): after `x-litellm-customer-id` and
    /// `x-litellm-end-user-id`, before the body's `user` field.
    #[must_use]
    pub fn with_end_user_headers(
        mut self,
        headers: impl IntoIterator<Item = http::HeaderName>,
    ) -> Self {
        let all: Vec<http::HeaderName> = crate::END_USER_HEADERS
            .iter()
            .map(|h| http::HeaderName::from_static(h))
            .chain(headers)
            .collect();
        self.end_user_headers = Some(all.into());
        self
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Auth<S> {
        let auth = Auth::with_keys(inner, self.master_key.clone(), self.keys.clone())
            .with_model_resolver(self.resolver.clone())
            .with_proxy_budget(self.proxy.clone());
        match &self.end_user_headers {
            Some(h) => auth.with_end_user_headers(h.clone()),
            None => auth,
        }
    }
}
