//! Which models a caller may reach.
//!
//! The auth layer puts a [`ModelAccess`] in the request's extensions for a caller limited to
//! some models (a virtual key's `models`; a team's list plugs in with [`ModelAccess::and`]).
//! The router checks it on **every attempt**, after it has resolved the name the attempt asks
//! for (the requested model, or a fallback group from the request's `fallbacks` or any of the
//! configured kinds) to a model group, and refuses the attempt before anything is called. The
//! fallback layer skips a refused fallback group and goes on with the next one.
//!
//! The rule is LiteLLM's (`_can_object_call_model`): a name is permitted when every list allows
//! either the name as asked (an alias, or a name the catch-all `*` serves) or the group it
//! resolves to. So a key allowed `gpt-4` may call `gpt4` when `model_group_alias` maps `gpt4` to
//! `gpt-4`, and a key allowed only the alias `gpt4` may call `gpt4` but not `gpt-4` by its own
//! name. The catch-all opens nothing by itself: a name it serves must be in the list (or the
//! list must hold `*`).
//!
//! ```
//! use std::sync::Arc;
//! use llmgate_core::{ModelAccess, VirtualKey};
//!
//! let key = VirtualKey { models: vec!["gpt-4".into()], ..VirtualKey::default() };
//! let access = ModelAccess::new(Arc::new(key));
//! assert!(access.permits("gpt-4", "gpt-4"));
//! assert!(access.permits("gpt4", "gpt-4"), "an alias of an allowed group");
//! assert!(!access.permits("claude", "claude"));
//! assert!(!access.permits("llama-3", "*"), "the catch-all opens nothing by itself");
//! ```

use std::fmt;
use std::sync::Arc;

/// One list of allowed models (a key's, a team's).
pub trait ModelPermission: Send + Sync + fmt::Debug + 'static {
    /// Whether `model` (a group name, an alias, or a name the catch-all serves) is on the list.
    fn allows(&self, model: &str) -> bool;
    /// Who holds the list and what is on it, for the 403's message (e.g.
    /// `key can only access models=["a"]`). Never a secret.
    fn describe(&self) -> String;
}

impl ModelPermission for crate::VirtualKey {
    fn allows(&self, model: &str) -> bool {
        self.allows_model(model)
    }

    fn describe(&self) -> String {
        format!("This key can only access models={:?}", self.models)
    }
}

/// The lists a request's caller is held to (all of them must permit a group). On the request,
/// put there by the auth layer; absent means unrestricted (the master key, an open gateway).
#[derive(Debug, Clone, Default)]
pub struct ModelAccess {
    lists: Vec<Arc<dyn ModelPermission>>,
}

impl ModelAccess {
    /// Held to one list.
    pub fn new(list: Arc<dyn ModelPermission>) -> Self {
        ModelAccess { lists: vec![list] }
    }

    /// Also held to `list` (a key's team, for example).
    #[must_use]
    pub fn and(mut self, list: Arc<dyn ModelPermission>) -> Self {
        self.lists.push(list);
        self
    }

    /// Whether the caller may reach `requested` (a name as the client or the config wrote it),
    /// which resolves to model group `group` (the same name when it is a group).
    pub fn permits(&self, requested: &str, group: &str) -> bool {
        self.refusing(requested, group).is_none()
    }

    /// The first list that does not permit `requested` (resolving to `group`), if any.
    pub fn refusing(&self, requested: &str, group: &str) -> Option<&dyn ModelPermission> {
        self.lists
            .iter()
            .find(|l| !(l.allows(requested) || l.allows(group)))
            .map(|l| &**l)
    }
}

/// Resolves a requested model name to the group that will serve it (an alias's target, the
/// group of that name, or the catch-all), so a check made before routing judges a name as the
/// router will. The router's model table implements it.
pub trait ResolveModel: Send + Sync + fmt::Debug + 'static {
    /// The group `model` resolves to; `None` when nothing serves it.
    fn resolve_group(&self, model: &str) -> Option<Arc<str>>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VirtualKey;

    fn key(models: &[&str]) -> Arc<dyn ModelPermission> {
        Arc::new(VirtualKey {
            models: models.iter().map(|m| (*m).to_owned()).collect(),
            ..VirtualKey::default()
        })
    }

    #[test]
    fn every_list_must_permit_the_name_or_its_group() {
        let access = ModelAccess::new(key(&["a", "bee"])).and(key(&["a", "b"]));
        assert!(access.permits("a", "a"));
        assert!(
            access.permits("bee", "b"),
            "alias on one list, group on the other"
        );
        assert!(
            !access.permits("b", "b"),
            "the first list has only the alias"
        );
        assert!(
            access
                .refusing("b", "b")
                .is_some_and(|l| l.describe().contains("bee")),
            "the refusing list is named"
        );
        assert!(ModelAccess::default().permits("anything", "*"));
        assert!(
            ModelAccess::new(key(&[])).permits("anything", "*"),
            "empty: all"
        );
        assert!(ModelAccess::new(key(&["*"])).permits("anything", "*"));
    }
}
