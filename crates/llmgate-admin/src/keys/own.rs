//! `/key/*` for a user limited to their own keys (`internal_user`, `internal_user_viewer`):
//! they generate keys for themselves, and list, read, change, block and delete only keys whose
//! `user_id` is theirs. A key that is not theirs answers 404, as a key that does not exist.

use serde_json::{Map, Value};

use super::api::Op;
use super::KeyAdmin;
use crate::access::forbidden;
use llmgate_core::ApiError;

/// Runs `op` for user `user_id` (`writes`: `internal_user`), with `body` read for the ops that
/// take one.
pub(super) async fn run(
    admin: &KeyAdmin,
    op: Op,
    user_id: &str,
    writes: bool,
    query: &[(String, String)],
    body: Option<Map<String, Value>>,
) -> Result<Value, ApiError> {
    let body = body.unwrap_or_default();
    if !matches!(op, Op::Info | Op::List) && !writes {
        return Err(forbidden(
            "an internal_user_viewer may only read their own keys".into(),
        ));
    }
    match op {
        Op::List => {
            let mut query: Vec<(String, String)> = query
                .iter()
                .filter(|(k, _)| k != "user_id")
                .cloned()
                .collect();
            query.push(("user_id".into(), user_id.into()));
            admin.list(&query).await
        }
        Op::Info => {
            let key = query
                .iter()
                .find(|(k, _)| k == "key")
                .map(|(_, v)| v.as_str())
                .ok_or_else(|| ApiError::bad_request("give the key: /key/info?key=sk-..."))?;
            owned(admin, user_id, key).await?;
            admin.info(key).await
        }
        Op::Generate => {
            names_self(&body, user_id)?;
            let mut body = body;
            body.insert("user_id".into(), Value::String(user_id.into()));
            admin.generate(&body).await
        }
        Op::Update => {
            names_self(&body, user_id)?;
            owned(admin, user_id, key_of(&body)?).await?;
            admin.update(&body).await
        }
        Op::Block(b) => {
            owned(admin, user_id, key_of(&body)?).await?;
            admin.set_blocked(&body, b).await
        }
        Op::Regenerate(path_key) => {
            names_self(&body, user_id)?;
            let key = match &path_key {
                Some(k) => k.as_str(),
                None => key_of(&body)?,
            };
            owned(admin, user_id, key).await?;
            admin.regenerate(path_key.as_deref(), &body).await
        }
        Op::Delete => {
            if body.contains_key("key_aliases") {
                return Err(ApiError::bad_request(
                    "delete your keys by key: {\"keys\": [...]}",
                ));
            }
            let keys = body.get("keys").and_then(Value::as_array);
            for k in keys.into_iter().flatten() {
                owned(admin, user_id, k.as_str().unwrap_or_default()).await?;
            }
            admin.delete(&body).await
        }
        Op::Health => Err(ApiError::internal("unreachable key route")),
    }
}

/// The key a body names.
fn key_of(body: &Map<String, Value>) -> Result<&str, ApiError> {
    body.get("key").and_then(Value::as_str).ok_or_else(|| {
        ApiError::bad_request("name the key: {\"key\": \"sk-...\"}").with_param("key")
    })
}

/// Refuses a body that gives the key to someone else.
fn names_self(body: &Map<String, Value>, user_id: &str) -> Result<(), ApiError> {
    match body.get("user_id") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(u)) if u == user_id => Ok(()),
        Some(_) => Err(forbidden(
            "an internal_user may only make and keep keys of their own (user_id is theirs)".into(),
        )),
    }
}

/// The key, when it is `user_id`'s; else the key API's 404.
async fn owned(admin: &KeyAdmin, user_id: &str, key: &str) -> Result<(), ApiError> {
    let token = super::token_of(key);
    let found = admin
        .keys()
        .store()
        .get(&token)
        .await
        .map_err(super::store_error)?;
    match found {
        Some(k) if k.user_id.as_deref() == Some(user_id) => Ok(()),
        _ => Err(super::not_found()),
    }
}
