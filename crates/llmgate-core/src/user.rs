//! Internal users, as LiteLLM's `/user/*` API makes them: the people who own keys and use the
//! admin UI, each with a role, and a budget and limits of their own.
//!
//! A key with a `user_id` naming a stored user is held to both: the auth layer puts the user in
//! the request's extensions (as `Arc<User>`) beside the key, so a model must be on both lists,
//! the request counts against the user's rpm/tpm/parallel limits (for all the user's keys
//! together) and its cost against the user's budget. The user's role decides what the key (and
//! the user, signed in to the UI) may do with the admin API.

use serde::{Deserialize, Serialize};

/// What a user may do with the admin API and UI (LiteLLM's `user_role`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserRole {
    /// Everything the master key may do.
    ProxyAdmin,
    /// Read everything; change nothing.
    ProxyAdminViewer,
    /// Manage their own keys, read their own spend.
    #[default]
    InternalUser,
    /// Read their own keys and spend.
    InternalUserViewer,
}

impl UserRole {
    /// Every role, in LiteLLM's names.
    pub const ALL: [UserRole; 4] = [
        UserRole::ProxyAdmin,
        UserRole::ProxyAdminViewer,
        UserRole::InternalUser,
        UserRole::InternalUserViewer,
    ];

    /// LiteLLM's name of the role.
    pub fn as_str(self) -> &'static str {
        match self {
            UserRole::ProxyAdmin => "proxy_admin",
            UserRole::ProxyAdminViewer => "proxy_admin_viewer",
            UserRole::InternalUser => "internal_user",
            UserRole::InternalUserViewer => "internal_user_viewer",
        }
    }

    /// The role named `name` (LiteLLM's names; `admin`, `app_owner` and `app_user` are
    /// LiteLLM's older names for the first and third).
    pub fn parse(name: &str) -> Option<UserRole> {
        match name {
            "proxy_admin" | "admin" => Some(UserRole::ProxyAdmin),
            "proxy_admin_viewer" => Some(UserRole::ProxyAdminViewer),
            "internal_user" | "app_owner" | "app_user" => Some(UserRole::InternalUser),
            "internal_user_viewer" => Some(UserRole::InternalUserViewer),
            _ => None,
        }
    }

    /// Whether the role sees every object, not only its own.
    pub fn sees_all(self) -> bool {
        matches!(self, UserRole::ProxyAdmin | UserRole::ProxyAdminViewer)
    }

    /// Whether the role may change what it sees.
    pub fn writes(self) -> bool {
        matches!(self, UserRole::ProxyAdmin | UserRole::InternalUser)
    }
}

/// A user's settings and state, as stored. Times are Unix seconds (UTC).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct User {
    /// The user's id (LiteLLM's `user_id`; a UUID when the creator gives none).
    pub user_id: String,
    /// A human name.
    pub user_alias: Option<String>,
    /// The user's e-mail address (they may sign in with it).
    pub user_email: Option<String>,
    /// What the user may do with the admin API and UI.
    pub user_role: UserRole,
    /// The teams the user is a member of.
    pub teams: Vec<String>,
    /// Model groups (or aliases) the user's keys may call; empty means every model.
    pub models: Vec<String>,
    /// USD spent in the current budget period.
    pub spend: f64,
    /// USD the user may spend per budget period; `None` is unlimited.
    pub max_budget: Option<f64>,
    /// Budget period in seconds; `None` never resets.
    pub budget_duration: Option<i64>,
    /// When spend next resets to zero.
    pub budget_reset_at: Option<i64>,
    /// Requests per minute, for all the user's keys together.
    pub rpm_limit: Option<u64>,
    /// Tokens per minute, for all the user's keys together.
    pub tpm_limit: Option<u64>,
    /// Requests in flight at once, for all the user's keys together.
    pub max_parallel_requests: Option<u64>,
    /// Free-form JSON.
    pub metadata: serde_json::Value,
    /// The PHC string (Argon2id) of the user's UI password, when they have one. Never shown.
    pub password_hash: Option<String>,
    /// Created at.
    pub created_at: i64,
    /// Last changed at.
    pub updated_at: i64,
}

impl User {
    /// Whether the user's keys may call `model` (a group name or alias as the client sent it).
    pub fn allows_model(&self, model: &str) -> bool {
        self.models.is_empty()
            || self
                .models
                .iter()
                .any(|m| m == model || m == "*" || m == "all-proxy-models")
    }

    /// Whether the budget period has ended at `now`, so spend is due to reset.
    pub fn budget_due(&self, now: i64) -> bool {
        self.budget_reset_at.is_some_and(|r| r <= now)
    }

    /// The next reset after `now` (whole idle periods skipped), as for keys.
    pub fn next_budget_reset(&self, now: i64) -> Option<i64> {
        crate::key::next_reset(self.budget_duration, self.budget_reset_at, now)
    }
}

impl crate::ModelPermission for User {
    fn allows(&self, model: &str) -> bool {
        self.allows_model(model)
    }

    fn describe(&self) -> String {
        format!(
            "This user ({}) can only access models={:?}",
            self.user_id, self.models
        )
    }
}

/// Who is calling the admin API, when it is a user signed in to the UI: the UI puts it in the
/// request's extensions (requests from outside the process cannot), and the admin API answers
/// as that user's role allows rather than as the master key the UI forwards with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    /// The user's id (`None` for the administrator signed in with the master key or
    /// `UI_USERNAME` / `UI_PASSWORD`).
    pub user_id: Option<String>,
    /// The role the session acts with.
    pub role: UserRole,
    /// How the UI names them: the user's e-mail, else alias, else id; `admin` for the
    /// administrator.
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_read_and_write_by_litellms_names() {
        for role in UserRole::ALL {
            assert_eq!(UserRole::parse(role.as_str()), Some(role));
            let json = serde_json::to_value(role).unwrap();
            assert_eq!(json, role.as_str());
        }
        assert_eq!(UserRole::parse("app_owner"), Some(UserRole::InternalUser));
        assert_eq!(UserRole::parse("root"), None);
        let table = [
            (UserRole::ProxyAdmin, true, true),
            (UserRole::ProxyAdminViewer, true, false),
            (UserRole::InternalUser, false, true),
            (UserRole::InternalUserViewer, false, false),
        ];
        for (role, all, writes) in table {
            assert_eq!((role.sees_all(), role.writes()), (all, writes), "{role:?}");
        }
    }
}
