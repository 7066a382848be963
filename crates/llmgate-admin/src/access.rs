//! [`Access`]: who calls the admin API and what their role lets them see and change.
//!
//! | caller | sees | changes |
//! |---|---|---|
//! | master key (or no master key at all), a `proxy_admin` user | everything | everything |
//! | a `proxy_admin_viewer` user | everything | nothing |
//! | an `internal_user` | their own keys, spend and user record, the teams they are in | their own keys |
//! | an `internal_user_viewer` | the same | nothing |
//! | a virtual key without a stored user | its own `/key/info` and daily activity | nothing |
//!
//! A user calls with one of their keys (`user_id` naming a stored user), or through the UI
//! signed in with their password (the UI puts [`SignedIn`] in the request).

use std::sync::Arc;

use http::{Extensions, StatusCode};
use llmgate_core::{ApiError, ErrorType, Origin, Principal, SignedIn, User, UserRole, VirtualKey};

/// What the caller may do.
#[derive(Debug, Clone)]
pub(crate) enum Access {
    /// Everything.
    Admin,
    /// Read everything.
    Viewer,
    /// Their own things; change them when `writes`.
    Own {
        /// The user.
        user_id: String,
        /// `internal_user` (true) or `internal_user_viewer` (false).
        writes: bool,
    },
    /// A virtual key with no stored user.
    Key(Arc<VirtualKey>),
}

impl Access {
    /// The caller of a request that passed the auth layer.
    pub(crate) fn of(ext: &Extensions) -> Access {
        if let Some(s) = ext.get::<SignedIn>() {
            return Access::of_role(s.user_id.clone(), s.role);
        }
        match ext.get::<Principal>() {
            Some(Principal::Key(k)) => match ext.get::<Arc<User>>() {
                Some(u) => Access::of_role(Some(u.user_id.clone()), u.user_role),
                None => Access::Key(k.clone()),
            },
            _ => Access::Admin,
        }
    }

    fn of_role(user_id: Option<String>, role: UserRole) -> Access {
        match (role, user_id) {
            (UserRole::ProxyAdmin, _) => Access::Admin,
            (UserRole::ProxyAdminViewer, _) => Access::Viewer,
            (_, None) => Access::Viewer,
            (role, Some(user_id)) => Access::Own {
                user_id,
                writes: role.writes(),
            },
        }
    }

    /// Whether the caller sees every object.
    pub(crate) fn sees_all(&self) -> bool {
        matches!(self, Access::Admin | Access::Viewer)
    }

    /// Refuses all but an administrator.
    pub(crate) fn admin(&self, what: &str) -> Result<(), ApiError> {
        match self {
            Access::Admin => Ok(()),
            _ => Err(forbidden(format!(
                "only the master key or a proxy_admin may {what}"
            ))),
        }
    }

    /// Refuses all but those who see everything.
    pub(crate) fn read_all(&self, what: &str) -> Result<(), ApiError> {
        match self {
            Access::Admin | Access::Viewer => Ok(()),
            _ => Err(forbidden(format!(
                "only the master key, a proxy_admin or a proxy_admin_viewer may {what}"
            ))),
        }
    }

    /// The user whose own things the caller may read, if it is limited to them.
    pub(crate) fn own_user(&self) -> Option<&str> {
        match self {
            Access::Own { user_id, .. } => Some(user_id),
            _ => None,
        }
    }

    /// Refuses a viewer's change.
    pub(crate) fn writes(&self, what: &str) -> Result<(), ApiError> {
        match self {
            Access::Admin | Access::Own { writes: true, .. } => Ok(()),
            _ => Err(forbidden(format!(
                "this role may only read; it may not {what}"
            ))),
        }
    }
}

/// 403 in the admin API's shape.
pub(crate) fn forbidden(message: String) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, Origin::Downstream, message)
        .with_type(ErrorType::PERMISSION)
        .with_code("insufficient_role")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(p: Option<Principal>, user: Option<UserRole>, signed: Option<SignedIn>) -> Access {
        let mut ext = Extensions::new();
        if let Some(p) = p {
            ext.insert(p);
        }
        if let Some(role) = user {
            ext.insert(Arc::new(User {
                user_id: "u".into(),
                user_role: role,
                ..User::default()
            }));
        }
        if let Some(s) = signed {
            ext.insert(s);
        }
        Access::of(&ext)
    }

    /// The role table above, as a table.
    #[test]
    fn each_caller_gets_its_roles_access() {
        let key = || Some(Principal::Key(Arc::new(VirtualKey::default())));
        let table: Vec<(Access, bool, bool, bool, Option<&str>)> = vec![
            // (access, admin, sees all, writes, own user)
            (
                access(Some(Principal::Master), None, None),
                true,
                true,
                true,
                None,
            ),
            (access(None, None, None), true, true, true, None),
            (
                access(key(), Some(UserRole::ProxyAdmin), None),
                true,
                true,
                true,
                None,
            ),
            (
                access(key(), Some(UserRole::ProxyAdminViewer), None),
                false,
                true,
                false,
                None,
            ),
            (
                access(key(), Some(UserRole::InternalUser), None),
                false,
                false,
                true,
                Some("u"),
            ),
            (
                access(key(), Some(UserRole::InternalUserViewer), None),
                false,
                false,
                false,
                Some("u"),
            ),
            (access(key(), None, None), false, false, false, None),
            (
                access(
                    Some(Principal::Master),
                    None,
                    Some(SignedIn {
                        user_id: Some("v".into()),
                        role: UserRole::InternalUserViewer,
                        name: "v".into(),
                    }),
                ),
                false,
                false,
                false,
                Some("v"),
            ),
        ];
        for (i, (a, admin, all, writes, own)) in table.into_iter().enumerate() {
            assert_eq!(a.admin("x").is_ok(), admin, "row {i}: {a:?}");
            assert_eq!(a.sees_all(), all, "row {i}: {a:?}");
            assert_eq!(a.read_all("x").is_ok(), all, "row {i}: {a:?}");
            assert_eq!(a.writes("x").is_ok(), writes, "row {i}: {a:?}");
            assert_eq!(a.own_user(), own, "row {i}: {a:?}");
        }
    }
}
