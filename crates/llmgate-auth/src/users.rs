//! Internal users on the request path: a key with a `user_id` naming a stored user is held to
//! the user's models and budget too (see [`llmgate_core::User`]). Users are cached as teams are
//! ([`crate::RecordCache`]) and forgotten everywhere by `user:<id>` on the invalidation feed.

use llmgate_core::VirtualKey;

use crate::teams::UserView;
use crate::{Error, Keys};

/// The prefix of a user's id on the key store's invalidation feed (key tokens are hex, so it
/// cannot collide with one).
pub const USER_INVALIDATION_PREFIX: &str = "user:";

impl Keys {
    /// The key's user, when it names a stored one.
    pub(crate) async fn user_of(
        &self,
        key: &VirtualKey,
        now: i64,
    ) -> Result<Option<UserView>, Error> {
        let (Some(users), Some(id)) = (&self.users, &key.user_id) else {
            return Ok(None);
        };
        match users.get(id, now).await {
            Ok(v) => Ok(v),
            Err(e) if self.allow_on_store_error => {
                tracing::warn!(error = %e, user = %id, "user store unavailable; judging the key without its user (allow_requests_on_db_unavailable)");
                Ok(None)
            }
            Err(e) => Err(Error::StoreUnavailable(e.to_string())),
        }
    }

    /// The users, when the store keeps them.
    pub fn users(&self) -> Option<&crate::Users> {
        self.users.as_ref()
    }

    /// Records `cost` USD against the user in this instance's cache.
    pub async fn note_user_spend(&self, user_id: &str, cost: f64) {
        if let Some(users) = &self.users {
            users.note_spend(user_id, cost).await;
        }
    }

    /// Forgets a user here and tells other instances to forget it: call after changing it.
    pub async fn user_changed(&self, user_id: &str) {
        if let Some(users) = &self.users {
            users.forget(user_id).await;
        }
        let name = format!("{USER_INVALIDATION_PREFIX}{user_id}");
        if let Err(e) = self.store.publish(&name).await {
            tracing::warn!(error = %e, "could not tell other instances that a user changed; they see it within the cache TTL");
        }
    }

    /// Forgets the user an invalidation names; `false` when it names no user.
    pub(crate) async fn forget_user(&self, token: &str) -> bool {
        match (token.strip_prefix(USER_INVALIDATION_PREFIX), &self.users) {
            (Some(id), Some(users)) => {
                users.forget(id).await;
                true
            }
            _ => false,
        }
    }
}

/// The user, checked as the key is: allowed `model`, within budget (for a call to a model).
pub(crate) fn check_user(
    view: &UserView,
    model: Option<&str>,
    group: Option<&str>,
) -> Result<(), Error> {
    let user = &view.item;
    if let Some(model) = model {
        let group = group.unwrap_or(model);
        if !(user.allows_model(model) || user.allows_model(group)) {
            return Err(Error::UserModelNotAllowed {
                user_id: user.user_id.clone(),
                model: model.to_string(),
                allowed: user.models.clone(),
            });
        }
    }
    // A spent budget stops calls to models; the user may still read their keys and spend.
    let calls_model = model.is_some();
    if let Some(max) = user
        .max_budget
        .filter(|max| calls_model && view.spend >= *max)
    {
        return Err(Error::UserBudgetExceeded {
            user_id: user.user_id.clone(),
            spend: view.spend,
            max_budget: max,
            reset_at: user.budget_reset_at,
        });
    }
    Ok(())
}
