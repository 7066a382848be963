//! Teams, LiteLLM's `/team/*` API: [`TeamAdmin`] does the work for the HTTP endpoints (master
//! key only).
//!
//! A team holds models, a budget (and its period), rpm/tpm/parallel limits, model aliases,
//! members and metadata. Keys join a team with `team_id` on `/key/generate` or `/key/update`;
//! from then on each request of the key is held to both (see `llmgate_core::team`). Teams
//! created without their own limits take `default_team_settings` from the config.

pub(crate) mod api;
mod fields;

use std::sync::Arc;

use http::StatusCode;
use llmgate_auth::{KeyFilter, Keys, Record, RecordKind, RecordStore, StoreError};
use llmgate_core::{ApiError, ErrorType, Origin, Team};
use serde_json::{json, Map, Value};

/// Keys read per page when a team's keys are listed or deleted.
const KEY_PAGE: u32 = 100;
/// The most teams `/team/list` answers with.
const MAX_LIST: u32 = 1_000;

/// Team management over the gateway's record store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct TeamAdmin {
    keys: Keys,
    records: Arc<dyn RecordStore>,
    defaults: Map<String, Value>,
}

impl TeamAdmin {
    /// Manages the teams of `keys` (whose caches it drops on a change). `None` when the keys
    /// keep no teams.
    pub fn new(keys: Keys) -> Option<Self> {
        let records = keys.teams()?.store().clone();
        Some(TeamAdmin {
            keys,
            records,
            defaults: Map::new(),
        })
    }

    /// Settings a new team takes for every field its body does not give
    /// (`default_team_settings`). Checked as a body's fields are.
    pub fn with_defaults(mut self, defaults: Map<String, Value>) -> Result<Self, String> {
        check_defaults(&defaults)?;
        self.defaults = defaults;
        Ok(self)
    }

    fn store(&self) -> &Arc<dyn RecordStore> {
        &self.records
    }

    fn now(&self) -> i64 {
        self.keys.clock().now()
    }

    /// `POST /team/new`: a new team (its `team_id` given, else a UUID).
    pub async fn create(&self, body: &Map<String, Value>) -> Result<Value, ApiError> {
        let team_id = match body.get("team_id") {
            None | Some(Value::Null) => uuid::Uuid::new_v4().to_string(),
            Some(Value::String(s)) if !s.is_empty() && s.len() <= 256 => s.clone(),
            Some(_) => return Err(bad("team_id must be a string of 1 to 256 bytes")),
        };
        let now = self.now();
        let mut team = Team {
            team_id,
            created_at: now,
            updated_at: now,
            ..Team::default()
        };
        let defaults: Map<String, Value> = self
            .defaults
            .iter()
            .filter(|(k, _)| !body.contains_key(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        fields::apply_all(&mut team, &defaults, &[], now).map_err(invalid)?;
        fields::apply_all(&mut team, body, &["team_id"], now).map_err(invalid)?;
        self.store()
            .insert_record(RecordKind::Team, &Record::of_team(&team))
            .await
            .map_err(store_error)?;
        self.keys.team_changed(&team.team_id).await;
        Ok(fields::view(&team))
    }

    /// `GET /team/info?team_id=`: the team, and its keys.
    pub async fn info(&self, team_id: &str) -> Result<Value, ApiError> {
        let team = self.find(team_id).await?;
        let keys = self.team_keys(team_id).await?;
        let keys: Vec<Value> = keys.iter().map(crate::keys::fields::view).collect();
        Ok(json!({"team_id": team.team_id, "team_info": fields::view(&team), "keys": keys}))
    }

    /// `GET /team/list`: every team (oldest first); `user_id=` keeps the teams it is a member of.
    pub async fn list(&self, query: &[(String, String)]) -> Result<Value, ApiError> {
        let user = query
            .iter()
            .find(|(k, _)| k == "user_id")
            .map(|(_, v)| v.as_str());
        let page = self
            .store()
            .list_records(RecordKind::Team, 1, MAX_LIST)
            .await
            .map_err(store_error)?;
        let mut out = Vec::with_capacity(page.records.len());
        for r in &page.records {
            let team = r.to_team().map_err(store_error)?;
            let member = |u: &str| {
                team.members_with_roles
                    .iter()
                    .any(|m| m.user_id.as_deref() == Some(u))
            };
            if user.is_none_or(member) {
                out.push(fields::view(&team));
            }
        }
        Ok(Value::Array(out))
    }

    /// `POST /team/update`: sets the fields the body names (`null` clears one).
    pub async fn update(&self, body: &Map<String, Value>) -> Result<Value, ApiError> {
        let mut team = self.find(team_field(body)?).await?;
        let now = self.now();
        fields::apply_all(&mut team, body, &["team_id"], now).map_err(invalid)?;
        let team = self.save(team, now).await?;
        Ok(json!({"team_id": team.team_id, "data": fields::view(&team)}))
    }

    /// `POST /team/block` and `/team/unblock` with `{"team_id"}`.
    pub async fn set_blocked(
        &self,
        body: &Map<String, Value>,
        blocked: bool,
    ) -> Result<Value, ApiError> {
        let mut team = self.find(team_field(body)?).await?;
        team.blocked = blocked;
        let team = self.save(team, self.now()).await?;
        Ok(fields::view(&team))
    }

    /// `POST /team/member_add` with `{"team_id", "member": {...} or [...]}`: adds members (a
    /// member already there by `user_id` or `user_email` takes the new role).
    pub async fn member_add(&self, body: &Map<String, Value>) -> Result<Value, ApiError> {
        let mut team = self.find(team_field(body)?).await?;
        let given = body.get("member").unwrap_or(&Value::Null);
        let added = fields::members(given, "member").map_err(|m| bad(m).with_param("member"))?;
        if added.is_empty() {
            return Err(bad("give the member: {\"team_id\": \"...\", \"member\": {\"role\": \"user\", \"user_id\": \"...\"}}"));
        }
        for m in added {
            team.members_with_roles.retain(|old| {
                !(old.user_id.is_some() && old.user_id == m.user_id
                    || old.user_email.is_some() && old.user_email == m.user_email)
            });
            team.members_with_roles.push(m);
        }
        let team = self.save(team, self.now()).await?;
        Ok(fields::view(&team))
    }

    /// `POST /team/member_delete` with `{"team_id", "user_id"}` (or `"user_email"`).
    pub async fn member_delete(&self, body: &Map<String, Value>) -> Result<Value, ApiError> {
        let mut team = self.find(team_field(body)?).await?;
        let id = body.get("user_id").and_then(Value::as_str);
        let email = body.get("user_email").and_then(Value::as_str);
        if id.is_none() && email.is_none() {
            return Err(bad(
                "name the member: {\"team_id\": \"...\", \"user_id\": \"...\"} (or user_email)",
            ));
        }
        let before = team.members_with_roles.len();
        team.members_with_roles.retain(|m| {
            !(id.is_some() && m.user_id.as_deref() == id
                || email.is_some() && m.user_email.as_deref() == email)
        });
        if team.members_with_roles.len() == before {
            return Err(not_found("no such member in this team"));
        }
        let team = self.save(team, self.now()).await?;
        Ok(fields::view(&team))
    }

    /// `POST /team/delete` with `{"team_ids": [...]}`: deletes the teams and, as LiteLLM does,
    /// every key in them.
    pub async fn delete(&self, body: &Map<String, Value>) -> Result<Value, ApiError> {
        let ids: Vec<String> = match body.get("team_ids") {
            Some(Value::Array(a)) if !a.is_empty() => a
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or_else(|| bad("team_ids must be a list of strings"))?,
            _ => return Err(bad("give the teams to delete as {\"team_ids\": [...]}")),
        };
        for id in &ids {
            self.find(id).await?;
        }
        let mut deleted_keys = Vec::new();
        for id in &ids {
            let tokens: Vec<String> = self
                .team_keys(id)
                .await?
                .into_iter()
                .map(|k| k.token)
                .collect();
            let gone = self
                .keys
                .store()
                .delete(&tokens)
                .await
                .map_err(store_error)?;
            for t in &gone {
                self.keys.changed(t).await;
            }
            deleted_keys.extend(gone);
            self.store()
                .delete_record(RecordKind::Team, id)
                .await
                .map_err(store_error)?;
            self.keys.team_changed(id).await;
        }
        Ok(json!({"deleted_teams": ids, "deleted_keys": deleted_keys}))
    }

    /// Whether `user_id` is a member of the team (`false` when there is no such team).
    pub async fn has_member(&self, team_id: &str, user_id: &str) -> Result<bool, ApiError> {
        let Some(r) = self
            .store()
            .get_record(RecordKind::Team, team_id)
            .await
            .map_err(store_error)?
        else {
            return Ok(false);
        };
        let team = r.to_team().map_err(store_error)?;
        Ok(team
            .members_with_roles
            .iter()
            .any(|m| m.user_id.as_deref() == Some(user_id)))
    }

    /// Whether a team with this id exists (for `/key/generate` and `/key/update`).
    pub async fn exists(&self, team_id: &str) -> Result<bool, ApiError> {
        Ok(self
            .store()
            .get_record(RecordKind::Team, team_id)
            .await
            .map_err(store_error)?
            .is_some())
    }

    async fn save(&self, mut team: Team, now: i64) -> Result<Team, ApiError> {
        team.updated_at = now;
        let saved = self
            .store()
            .update_record(RecordKind::Team, &Record::of_team(&team))
            .await
            .map_err(store_error)?;
        if !saved {
            return Err(not_found("team not found"));
        }
        self.keys.team_changed(&team.team_id).await;
        self.find(&team.team_id).await
    }

    async fn find(&self, team_id: &str) -> Result<Team, ApiError> {
        self.store()
            .get_record(RecordKind::Team, team_id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| not_found(format!("team {team_id:?} not found")))?
            .to_team()
            .map_err(store_error)
    }

    async fn team_keys(&self, team_id: &str) -> Result<Vec<llmgate_core::VirtualKey>, ApiError> {
        let mut all = Vec::new();
        for page in 1.. {
            let filter = KeyFilter {
                team_id: Some(team_id.to_owned()),
                page,
                size: KEY_PAGE,
                ..KeyFilter::default()
            };
            let keys = self.keys.store().list(&filter).await.map_err(store_error)?;
            let done = keys.len() < KEY_PAGE as usize;
            all.extend(keys);
            if done {
                break;
            }
        }
        Ok(all)
    }
}

/// Whether `default_team_settings` holds only settings a team can take, with valid values.
pub fn check_defaults(defaults: &Map<String, Value>) -> Result<(), String> {
    let mut probe = Team::default();
    fields::apply_all(&mut probe, defaults, &["team_id"], 0)
        .map_err(|e| format!("default_team_settings: {}", e.message))
}

fn team_field(body: &Map<String, Value>) -> Result<&str, ApiError> {
    body.get("team_id")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("name the team: {\"team_id\": \"...\"}").with_param("team_id"))
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message).with_code("invalid_team_request")
}

fn invalid(e: crate::keys::fields::Invalid) -> ApiError {
    bad(e.message).with_param(e.param)
}

fn not_found(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, Origin::Downstream, message)
        .with_type(ErrorType::NOT_FOUND)
        .with_code("team_not_found")
}

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, Origin::Downstream, m)
            .with_type(ErrorType::INVALID_REQUEST)
            .with_code("team_conflict"),
        other => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Origin::Downstream,
            other.to_string(),
        )
        .with_type(ErrorType::SERVER)
        .with_code("team_store_unavailable"),
    }
}
