//! Virtual-key management, LiteLLM's `/key/*` API: [`KeyAdmin`] does the work, for the HTTP
//! endpoints (master key only) and for `llmgate keys` on the command line.
//!
//! Generated secrets are `sk-` and 32 random characters, returned once by `/key/generate` (and
//! `/key/regenerate`) and stored only as their SHA-256, the key's `token`. Every other endpoint
//! takes either the secret or the token.

pub(crate) mod api;
pub(crate) mod fields;
mod own;

use http::StatusCode;
use llmgate_auth::{generate_secret, hash_key, key_name, KeyFilter, Keys, StoreError};
use llmgate_core::{ApiError, ErrorType, Origin, VirtualKey};
use serde_json::{json, Map, Value};

/// `GET /key/list`'s default page size.
const DEFAULT_PAGE_SIZE: u32 = 10;
/// The largest page `GET /key/list` returns.
const MAX_PAGE_SIZE: u32 = 100;

/// Key management over a key store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct KeyAdmin {
    keys: Keys,
}

impl KeyAdmin {
    /// Manages the keys of `keys` (and drops changed keys from its cache).
    pub fn new(keys: Keys) -> Self {
        KeyAdmin { keys }
    }

    fn now(&self) -> i64 {
        self.keys.clock().now()
    }

    /// The keys it manages.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// `POST /key/generate`: a new key. The answer holds the secret as `key`; it is never shown
    /// again.
    pub async fn generate(&self, body: &Map<String, Value>) -> Result<Value, ApiError> {
        let secret = match body.get("key") {
            None | Some(Value::Null) => generate_secret(),
            Some(Value::String(s)) => chosen_secret(s)?,
            Some(_) => return Err(bad("key must be a string starting with sk-")),
        };
        let now = self.now();
        let mut key = VirtualKey {
            token: hash_key(&secret),
            key_name: key_name(&secret),
            created_at: now,
            updated_at: now,
            ..VirtualKey::default()
        };
        fields::apply_all(&mut key, body, &["key"], now).map_err(invalid)?;
        self.check_team(body).await?;
        self.keys.store().insert(&key).await.map_err(store_error)?;
        // A caller-chosen key may have been looked up (and cached as unknown) before.
        self.keys.changed(&key.token).await;
        let mut view = fields::view(&key);
        if let Value::Object(m) = &mut view {
            m.insert("key".into(), Value::String(secret));
            m.insert("token_id".into(), Value::String(key.token.clone()));
        }
        Ok(with_notices(view, body))
    }

    /// `GET /key/info?key=`: the key's settings and spend, never its secret.
    pub async fn info(&self, key: &str) -> Result<Value, ApiError> {
        let k = self.find(key).await?;
        Ok(json!({"key": k.token, "info": fields::view(&k)}))
    }

    /// `POST /key/update`: sets the fields the body names (`null` clears one).
    pub async fn update(&self, body: &Map<String, Value>) -> Result<Value, ApiError> {
        let mut k = self.find(key_field(body)?).await?;
        let now = self.now();
        fields::apply_all(&mut k, body, &["key"], now).map_err(invalid)?;
        self.check_team(body).await?;
        k.updated_at = now;
        if !self.keys.store().update(&k).await.map_err(store_error)? {
            return Err(not_found());
        }
        self.keys.changed(&k.token).await;
        let fresh = self.find(&k.token).await?;
        Ok(with_notices(fields::view(&fresh), body))
    }

    /// `POST /key/block` and `/key/unblock`.
    pub async fn set_blocked(
        &self,
        body: &Map<String, Value>,
        blocked: bool,
    ) -> Result<Value, ApiError> {
        let mut k = self.find(key_field(body)?).await?;
        k.blocked = blocked;
        k.updated_at = self.now();
        if !self.keys.store().update(&k).await.map_err(store_error)? {
            return Err(not_found());
        }
        self.keys.changed(&k.token).await;
        Ok(fields::view(&k))
    }

    /// `POST /key/delete` with `{"keys": [...]}` and/or `{"key_aliases": [...]}`.
    pub async fn delete(&self, body: &Map<String, Value>) -> Result<Value, ApiError> {
        let list = |name: &str| -> Result<Vec<String>, ApiError> {
            match body.get(name) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| bad(format!("{name} must be a list of strings"))),
                Some(_) => Err(bad(format!("{name} must be a list of strings"))),
            }
        };
        let mut tokens: Vec<String> = list("keys")?.iter().map(|k| token_of(k)).collect();
        for alias in list("key_aliases")? {
            match self.keys.store().get_by_alias(&alias).await {
                Ok(Some(k)) => tokens.push(k.token),
                Ok(None) => {}
                Err(e) => return Err(store_error(e)),
            }
        }
        if tokens.is_empty() {
            return Err(bad(
                "give the keys to delete as {\"keys\": [...]} or {\"key_aliases\": [...]}",
            ));
        }
        let deleted = self
            .keys
            .store()
            .delete(&tokens)
            .await
            .map_err(store_error)?;
        for t in &deleted {
            self.keys.changed(t).await;
        }
        if deleted.is_empty() {
            return Err(not_found());
        }
        Ok(json!({"deleted_keys": deleted}))
    }

    /// `GET /key/list`: tokens (or, with `return_full_object=true`, the keys), newest first.
    pub async fn list(&self, query: &[(String, String)]) -> Result<Value, ApiError> {
        let get = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let number = |name: &str, default: u32| -> Result<u32, ApiError> {
            get(name).map_or(Ok(default), |v| {
                v.parse::<u32>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| bad(format!("{name} must be a whole number >= 1")))
            })
        };
        let filter = KeyFilter {
            user_id: get("user_id"),
            team_id: get("team_id"),
            key_alias: get("key_alias"),
            page: number("page", 1)?,
            size: number("size", DEFAULT_PAGE_SIZE)?.min(MAX_PAGE_SIZE),
        };
        let full = get("return_full_object").is_some_and(|v| v == "true");
        let keys = self.keys.store().list(&filter).await.map_err(store_error)?;
        let keys: Vec<Value> = keys
            .iter()
            .map(|k| {
                if full {
                    fields::view(k)
                } else {
                    Value::String(k.token.clone())
                }
            })
            .collect();
        let total = self
            .keys
            .store()
            .count(&filter)
            .await
            .map_err(store_error)?;
        let size = u64::from(filter.size);
        Ok(
            json!({"keys": keys, "total_count": total, "current_page": filter.page,
            "total_pages": total.div_ceil(size), "page_size": filter.size}),
        )
    }

    /// `POST /key/regenerate` (or `/key/{key}/regenerate`): a new secret for the key, which keeps
    /// its settings and spend; the old secret stops working at once. The body may choose the new
    /// secret (`new_key`) and change fields as `/key/update` does.
    pub async fn regenerate(
        &self,
        path_key: Option<&str>,
        body: &Map<String, Value>,
    ) -> Result<Value, ApiError> {
        let old = match path_key {
            Some(k) => k,
            None => key_field(body)?,
        };
        let old = self.find(old).await?;
        let mut changes = body.clone();
        changes.remove("key");
        changes.remove("new_key");
        // Refuse bad changes before the old secret stops working.
        fields::apply_all(&mut old.clone(), &changes, &[], self.now()).map_err(invalid)?;
        let secret = match body.get("new_key") {
            None | Some(Value::Null) => generate_secret(),
            Some(Value::String(s)) => chosen_secret(s)?,
            Some(_) => return Err(bad("new_key must be a string starting with sk-")),
        };
        let token = hash_key(&secret);
        let now = self.now();
        let rotated = self
            .keys
            .store()
            .rotate(&old.token, &token, &key_name(&secret), now)
            .await
            .map_err(store_error)?;
        if !rotated {
            return Err(not_found());
        }
        self.keys.changed(&old.token).await;
        self.keys.changed(&token).await;
        let mut view = if changes.is_empty() {
            fields::view(&self.find(&token).await?)
        } else {
            changes.insert("key".into(), Value::String(token.clone()));
            self.update(&changes).await?
        };
        if let Value::Object(m) = &mut view {
            m.insert("key".into(), Value::String(secret));
            m.insert("token_id".into(), Value::String(token));
        }
        Ok(view)
    }

    /// Charges `cost` USD to the key with this token (and to its spend on `model`), in the store
    /// and in this gateway's cache. Cost metering does this for every request.
    pub async fn charge(&self, token: &str, model: &str, cost: f64) -> Result<(), ApiError> {
        self.keys
            .charge(token, model, cost)
            .await
            .map_err(store_error)
    }

    /// A `team_id` the body sets must name a team (LiteLLM refuses a key for a team that does
    /// not exist). Keys made before teams existed keep theirs as a label.
    async fn check_team(&self, body: &Map<String, Value>) -> Result<(), ApiError> {
        let (Some(teams), Some(Value::String(id))) = (self.keys.teams(), body.get("team_id"))
        else {
            return Ok(());
        };
        let found = teams
            .store()
            .get_record(llmgate_auth::RecordKind::Team, id)
            .await
            .map_err(store_error)?;
        match found {
            Some(_) => Ok(()),
            None => Err(bad(format!(
                "team_id {id:?} names no team; create it first with POST /team/new"
            ))
            .with_param("team_id")),
        }
    }

    /// The key named by its secret or token.
    async fn find(&self, key: &str) -> Result<VirtualKey, ApiError> {
        self.keys
            .store()
            .get(&token_of(key))
            .await
            .map_err(store_error)?
            .ok_or_else(not_found)
    }
}

/// The answer, with `llmgate_notices` naming each field the body set that is kept and shown
/// but not acted on.
fn with_notices(mut view: Value, body: &Map<String, Value>) -> Value {
    let notices: Vec<String> = fields::STORED_ONLY
        .iter()
        .filter(|f| body.get(**f).is_some_and(|v| !v.is_null()))
        .map(|f| format!("{f} is stored and shown by /key/info, but llmgate does not act on it"))
        .collect();
    if let (Value::Object(m), false) = (&mut view, notices.is_empty()) {
        m.insert("llmgate_notices".into(), json!(notices));
    }
    view
}

/// A secret (`sk-...`) is hashed; a 64-character hex string is taken as the token itself.
pub(crate) fn token_of(key: &str) -> String {
    if key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()) {
        key.to_ascii_lowercase()
    } else {
        hash_key(key)
    }
}

fn key_field(body: &Map<String, Value>) -> Result<&str, ApiError> {
    body.get("key")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("name the key: {\"key\": \"sk-...\"} (the secret or its token)"))
}

/// A caller-chosen secret: LiteLLM requires the `sk-` prefix; llmgate also requires enough of it
/// to be hard to guess.
fn chosen_secret(s: &str) -> Result<String, ApiError> {
    if !s.starts_with("sk-") || s.len() < 20 || s.chars().any(char::is_whitespace) {
        return Err(bad(
            "a chosen key must start with sk-, have at least 20 characters and no spaces",
        ));
    }
    Ok(s.to_string())
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message).with_code("invalid_key_request")
}

/// A field's value refused: a 400 naming it as `param`.
fn invalid(e: fields::Invalid) -> ApiError {
    bad(e.message).with_param(e.param)
}

fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, Origin::Downstream, "key not found")
        .with_type(ErrorType::NOT_FOUND)
        .with_code("key_not_found")
}

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, Origin::Downstream, m)
            .with_type(ErrorType::INVALID_REQUEST)
            .with_code("key_conflict"),
        other => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Origin::Downstream,
            other.to_string(),
        )
        .with_type(ErrorType::SERVER)
        .with_code("key_store_unavailable"),
    }
}
