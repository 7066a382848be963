//! Internal users, LiteLLM's `/user/*` API: [`UserAdmin`] does the work for the HTTP endpoints.
//!
//! A user has a role (`proxy_admin`, `proxy_admin_viewer`, `internal_user`,
//! `internal_user_viewer`), a budget and limits of their own, and keys (`user_id` on
//! `/key/generate`). A user with a password signs in to the admin UI with their `user_id` or
//! `user_email`, and sees and changes what the role allows (see `access.rs`).

pub(crate) mod api;
mod fields;
pub(crate) mod password;

use std::sync::Arc;

use http::StatusCode;
use llmgate_auth::{KeyFilter, Keys, Record, RecordKind, RecordStore, StoreError};
use llmgate_core::{ApiError, ErrorType, Origin, User, VirtualKey};
use serde_json::{json, Map, Value};

use crate::keys::KeyAdmin;

/// Keys read per page when a user's keys are listed or deleted.
const KEY_PAGE: u32 = 100;
/// Users read per page when one is found by e-mail.
const SCAN_PAGE: u32 = 500;
/// The largest `page_size` of `/user/list`.
const MAX_PAGE_SIZE: u32 = 1_000;

/// User management over the gateway's record store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct UserAdmin {
    keys: KeyAdmin,
    records: Arc<dyn RecordStore>,
}

impl UserAdmin {
    /// Manages the users of `keys` (whose caches it drops on a change). `None` when the keys
    /// keep no users.
    pub fn new(keys: Keys) -> Option<Self> {
        let records = keys.users()?.store().clone();
        Some(UserAdmin {
            keys: KeyAdmin::new(keys),
            records,
        })
    }

    fn keys(&self) -> &Keys {
        self.keys.keys()
    }

    fn now(&self) -> i64 {
        self.keys().clock().now()
    }

    /// `POST /user/new`: a new user (its `user_id` given, else a UUID) and, unless
    /// `auto_create_key` is false, a key of theirs (its secret shown once, as `key`).
    pub async fn create(&self, body: &Map<String, Value>) -> Result<Value, ApiError> {
        let user_id = match body.get("user_id") {
            None | Some(Value::Null) => uuid::Uuid::new_v4().to_string(),
            Some(Value::String(s)) if !s.is_empty() && s.len() <= 256 => s.clone(),
            Some(_) => return Err(bad("user_id must be a string of 1 to 256 bytes")),
        };
        let now = self.now();
        let mut user = User {
            user_id,
            created_at: now,
            updated_at: now,
            ..User::default()
        };
        let skip = ["user_id", "auto_create_key", "send_invite_email"];
        fields::apply_all(&mut user, body, &skip, now).map_err(invalid)?;
        if let Some(email) = &user.user_email {
            if self.by_email(email).await?.is_some() {
                return Err(conflict(format!(
                    "a user with user_email {email:?} exists already"
                )));
            }
        }
        self.records
            .insert_record(RecordKind::User, &Record::of_user(&user))
            .await
            .map_err(store_error)?;
        self.keys().user_changed(&user.user_id).await;
        let mut out = fields::view(&user);
        if body.get("auto_create_key").and_then(Value::as_bool) != Some(false) {
            let mut key_body = Map::new();
            key_body.insert("user_id".into(), json!(user.user_id));
            if !user.models.is_empty() {
                key_body.insert("models".into(), json!(user.models));
            }
            let key = self.keys.generate(&key_body).await?;
            if let (Value::Object(m), Value::Object(k)) = (&mut out, key) {
                for f in ["key", "token_id", "expires", "key_name"] {
                    m.insert(f.into(), k.get(f).cloned().unwrap_or(Value::Null));
                }
            }
        }
        Ok(out)
    }

    /// `GET /user/info?user_id=`: the user, their keys and their teams.
    pub async fn info(&self, user_id: &str) -> Result<Value, ApiError> {
        let user = self.find(user_id).await?;
        let keys = self.user_keys(user_id).await?;
        let keys: Vec<Value> = keys.iter().map(crate::keys::fields::view).collect();
        let teams = self.teams_of(&user).await?;
        Ok(json!({
            "user_id": user.user_id,
            "user_info": fields::view(&user),
            "keys": keys,
            "teams": teams,
        }))
    }

    /// The teams the user is in: those listing them as a member (`/team/member_add`), and
    /// those their own `teams` names.
    async fn teams_of(&self, user: &User) -> Result<Vec<String>, ApiError> {
        let mut out = user.teams.clone();
        let page = self
            .records
            .list_records(RecordKind::Team, 1, MAX_PAGE_SIZE)
            .await
            .map_err(store_error)?;
        for r in &page.records {
            let team = r.to_team().map_err(store_error)?;
            let member = team.members_with_roles.iter().any(|m| {
                m.user_id.as_deref() == Some(&user.user_id)
                    || m.user_email.is_some() && m.user_email == user.user_email
            });
            if member && !out.contains(&team.team_id) {
                out.push(team.team_id);
            }
        }
        Ok(out)
    }

    /// `GET /user/list?page=&page_size=&role=&user_ids=a,b`: users, oldest first.
    pub async fn list(&self, query: &[(String, String)]) -> Result<Value, ApiError> {
        let get = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let page = number(get("page"), 1, "page")?.max(1);
        let size = number(get("page_size"), 25, "page_size")?.clamp(1, MAX_PAGE_SIZE);
        let role = get("role")
            .map(|r| llmgate_core::UserRole::parse(r).ok_or_else(|| bad(format!("no role {r:?}"))));
        let role = role.transpose()?;
        let ids: Option<Vec<&str>> = get("user_ids").map(|s| s.split(',').collect());
        let all = self.all().await?;
        let kept: Vec<&User> = all
            .iter()
            .filter(|u| role.is_none_or(|r| u.user_role == r))
            .filter(|u| {
                ids.as_ref()
                    .is_none_or(|ids| ids.contains(&u.user_id.as_str()))
            })
            .collect();
        let total = kept.len() as u64;
        let users: Vec<Value> = kept
            .into_iter()
            .skip(((page - 1) * size) as usize)
            .take(size as usize)
            .map(fields::view)
            .collect();
        Ok(json!({
            "users": users,
            "total": total,
            "page": page,
            "page_size": size,
            "total_pages": total.div_ceil(u64::from(size)),
        }))
    }

    /// `POST /user/update`: sets the fields the body names (`null` clears one); the user is
    /// named by `user_id`, else `user_email`.
    pub async fn update(&self, body: &Map<String, Value>) -> Result<Value, ApiError> {
        let mut user = self.named(body).await?;
        let now = self.now();
        fields::apply_all(&mut user, body, &["user_id"], now).map_err(invalid)?;
        user.updated_at = now;
        let saved = self
            .records
            .update_record(RecordKind::User, &Record::of_user(&user))
            .await
            .map_err(store_error)?;
        if !saved {
            return Err(not_found("user not found"));
        }
        self.keys().user_changed(&user.user_id).await;
        let user = self.find(&user.user_id).await?;
        Ok(json!({"user_id": user.user_id, "data": fields::view(&user)}))
    }

    /// `POST /user/delete` with `{"user_ids": [...]}`: deletes the users and, as LiteLLM does,
    /// their keys.
    pub async fn delete(&self, body: &Map<String, Value>) -> Result<Value, ApiError> {
        let ids: Vec<String> = match body.get("user_ids") {
            Some(Value::Array(a)) if !a.is_empty() => a
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or_else(|| bad("user_ids must be a list of strings"))?,
            _ => return Err(bad("give the users to delete as {\"user_ids\": [...]}")),
        };
        for id in &ids {
            self.find(id).await?;
        }
        let mut deleted_keys = Vec::new();
        for id in &ids {
            let tokens: Vec<String> = self
                .user_keys(id)
                .await?
                .into_iter()
                .map(|k| k.token)
                .collect();
            let gone = self
                .keys()
                .store()
                .delete(&tokens)
                .await
                .map_err(store_error)?;
            for t in &gone {
                self.keys().changed(t).await;
            }
            deleted_keys.extend(gone);
            self.records
                .delete_record(RecordKind::User, id)
                .await
                .map_err(store_error)?;
            self.keys().user_changed(id).await;
        }
        Ok(json!({"deleted_users": ids, "deleted_keys": deleted_keys}))
    }

    /// The user who signs in as `name` (their `user_id`, else their `user_email`).
    pub async fn by_login(&self, name: &str) -> Result<Option<User>, ApiError> {
        match self.get(name).await? {
            Some(u) => Ok(Some(u)),
            None => self.by_email(name).await,
        }
    }

    /// The user with this id, if there is one.
    pub async fn get(&self, user_id: &str) -> Result<Option<User>, ApiError> {
        self.records
            .get_record(RecordKind::User, user_id)
            .await
            .map_err(store_error)?
            .map(|r| r.to_user().map_err(store_error))
            .transpose()
    }

    async fn find(&self, user_id: &str) -> Result<User, ApiError> {
        self.get(user_id)
            .await?
            .ok_or_else(|| not_found(format!("user {user_id:?} not found")))
    }

    /// The user a body names: `user_id`, else `user_email`.
    async fn named(&self, body: &Map<String, Value>) -> Result<User, ApiError> {
        if let Some(id) = body.get("user_id").and_then(Value::as_str) {
            return self.find(id).await;
        }
        match body.get("user_email").and_then(Value::as_str) {
            Some(email) => self
                .by_email(email)
                .await?
                .ok_or_else(|| not_found(format!("no user has user_email {email:?}"))),
            None => {
                Err(bad("name the user: {\"user_id\": \"...\"} (or user_email)")
                    .with_param("user_id"))
            }
        }
    }

    async fn by_email(&self, email: &str) -> Result<Option<User>, ApiError> {
        Ok(self.all().await?.into_iter().find(|u| {
            u.user_email
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(email))
        }))
    }

    /// Every user, oldest first.
    async fn all(&self) -> Result<Vec<User>, ApiError> {
        let mut out = Vec::new();
        for page in 1.. {
            let got = self
                .records
                .list_records(RecordKind::User, page, SCAN_PAGE)
                .await
                .map_err(store_error)?;
            let done = got.records.len() < SCAN_PAGE as usize;
            for r in &got.records {
                out.push(r.to_user().map_err(store_error)?);
            }
            if done {
                break;
            }
        }
        Ok(out)
    }

    /// The user's keys.
    pub(crate) async fn user_keys(&self, user_id: &str) -> Result<Vec<VirtualKey>, ApiError> {
        let mut all = Vec::new();
        for page in 1.. {
            let filter = KeyFilter {
                user_id: Some(user_id.to_owned()),
                page,
                size: KEY_PAGE,
                ..KeyFilter::default()
            };
            let keys = self
                .keys()
                .store()
                .list(&filter)
                .await
                .map_err(store_error)?;
            let done = keys.len() < KEY_PAGE as usize;
            all.extend(keys);
            if done {
                break;
            }
        }
        Ok(all)
    }
}

fn number(v: Option<&str>, default: u32, name: &'static str) -> Result<u32, ApiError> {
    v.map_or(Ok(default), |v| {
        v.parse()
            .map_err(|_| bad(format!("{name} must be a whole number")).with_param(name))
    })
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message).with_code("invalid_user_request")
}

fn invalid(e: crate::keys::fields::Invalid) -> ApiError {
    bad(e.message).with_param(e.param)
}

fn conflict(message: String) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, Origin::Downstream, message)
        .with_type(ErrorType::INVALID_REQUEST)
        .with_code("user_conflict")
}

fn not_found(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, Origin::Downstream, message)
        .with_type(ErrorType::NOT_FOUND)
        .with_code("user_not_found")
}

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict(m) => conflict(m),
        other => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Origin::Downstream,
            other.to_string(),
        )
        .with_type(ErrorType::SERVER)
        .with_code("user_store_unavailable"),
    }
}
