//! Budgets as objects, LiteLLM's `/budget/*` API: [`Budgets`] does the work for the HTTP
//! endpoints (master key only).
//!
//! A budget is a named set of limits (`max_budget`, `soft_budget`, `budget_duration`,
//! `rpm_limit`, `tpm_limit`, `max_parallel_requests`, `model_max_budget`). Keys, teams and end
//! users link to one with `budget_id`; each is then held to those limits with its own spend,
//! its own value winning wherever it sets one (see `llmgate_core::budget_object`). A change to
//! a budget reaches every linked object on every instance (`Keys::budget_changed`); a budget
//! still linked is not deleted.

pub(crate) mod api;
mod fields;

use std::sync::Arc;

use http::StatusCode;
use llmgate_auth::{KeyFilter, Keys, Record, RecordKind, RecordStore, StoreError};
use llmgate_core::{ApiError, BudgetObject, EndUser, ErrorType, Origin, Team, VirtualKey};
use serde_json::{Map, Value};

pub(crate) use fields::{first_reset, view};

/// Records (and keys) read per page when the objects linked to a budget are gathered.
const PAGE: u32 = 500;
/// The most budgets `/budget/list` answers with.
const MAX_LIST: u32 = 1_000;
/// Who `created_by` and `updated_by` name for the master key (LiteLLM's
/// `litellm_proxy_admin_name`).
const ADMIN_NAME: &str = "default_user_id";

/// The objects linked to one budget.
#[derive(Debug, Default)]
pub(crate) struct Links {
    pub(crate) keys: Vec<VirtualKey>,
    pub(crate) teams: Vec<Team>,
    pub(crate) end_users: Vec<EndUser>,
}

impl Links {
    fn count(&self) -> usize {
        self.keys.len() + self.teams.len() + self.end_users.len()
    }
}

/// Budget management over the gateway's record store.
pub(crate) struct Budgets<'a> {
    pub(crate) keys: &'a Keys,
    pub(crate) store: &'a Arc<dyn RecordStore>,
}

impl Budgets<'_> {
    fn now(&self) -> i64 {
        self.keys.clock().now()
    }

    /// `POST /budget/new`.
    pub(crate) async fn create(&self, body: &Map<String, Value>) -> Result<Value, ApiError> {
        let budget_id = match body.get("budget_id") {
            None | Some(Value::Null) => uuid::Uuid::new_v4().to_string(),
            Some(Value::String(s)) if !s.is_empty() && s.len() <= 256 => s.clone(),
            Some(_) => return Err(bad("budget_id must be a string of 1 to 256 bytes")),
        };
        let now = self.now();
        let mut b = BudgetObject {
            budget_id,
            created_at: now,
            created_by: Some(ADMIN_NAME.into()),
            updated_at: now,
            updated_by: Some(ADMIN_NAME.into()),
            ..BudgetObject::default()
        };
        fields::apply_all(&mut b, body, now)?;
        match self
            .store
            .insert_record(RecordKind::Budget, &Record::of_budget(&b))
            .await
        {
            Err(StoreError::Conflict(_)) => {
                return Err(bad(format!(
                    "Budget with id '{}' already exists.",
                    b.budget_id
                )))
            }
            other => other.map_err(store_error)?,
        }
        // A link made before the budget existed (an import) is now backed.
        self.keys.budget_changed(&b.budget_id).await;
        Ok(fields::view(&b))
    }

    /// `POST /budget/update`: sets the fields the body names (`null` clears one).
    pub(crate) async fn update(&self, body: &Map<String, Value>) -> Result<Value, ApiError> {
        let id = match body.get("budget_id") {
            Some(Value::String(s)) => s.as_str(),
            _ => return Err(bad("budget_id is required").with_param("budget_id")),
        };
        let mut b = self.find(id).await?;
        let now = self.now();
        let duration = b.budget_duration;
        fields::apply_all(&mut b, body, now)?;
        b.updated_at = now;
        b.updated_by = Some(ADMIN_NAME.into());
        let saved = self
            .store
            .update_record(RecordKind::Budget, &Record::of_budget(&b))
            .await
            .map_err(store_error)?;
        if !saved {
            return Err(not_found(id));
        }
        if b.budget_duration != duration {
            self.start_periods(&b, now).await?;
        }
        self.keys.budget_changed(id).await;
        Ok(fields::view(&b))
    }

    /// `POST /budget/info` with `{"budgets": [...]}`: the budgets found, in the order asked.
    pub(crate) async fn info(&self, body: &Map<String, Value>) -> Result<Value, ApiError> {
        let ids: Vec<&str> = match body.get("budgets") {
            Some(Value::Array(a)) if !a.is_empty() => a
                .iter()
                .map(Value::as_str)
                .collect::<Option<_>>()
                .ok_or_else(|| bad("budgets must be a list of budget ids"))?,
            other => {
                return Err(bad(format!(
                    "Specify list of budget id's to query. Passed in={}",
                    other.cloned().unwrap_or(Value::Null)
                ))
                .with_param("budgets"))
            }
        };
        let mut out = Vec::new();
        for id in ids {
            if let Some(b) = self.get(id).await? {
                out.push(fields::view(&b));
            }
        }
        Ok(Value::Array(out))
    }

    /// `GET /budget/list`: every budget, oldest first.
    pub(crate) async fn list(&self) -> Result<Value, ApiError> {
        let page = self
            .store
            .list_records(RecordKind::Budget, 1, MAX_LIST)
            .await
            .map_err(store_error)?;
        let all = page
            .records
            .iter()
            .map(|r| r.to_budget().map(|b| fields::view(&b)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(store_error)?;
        Ok(Value::Array(all))
    }

    /// `GET /budget/settings?budget_id=`: each setting LiteLLM's UI edits, with its value.
    pub(crate) async fn settings(&self, id: &str) -> Result<Value, ApiError> {
        let b = self.get(id).await?;
        Ok(fields::settings(b.as_ref()))
    }

    /// `POST /budget/delete` with `{"id": "..."}`: refused while keys, teams or end users link
    /// to it; answers the deleted budget.
    pub(crate) async fn delete(&self, body: &Map<String, Value>) -> Result<Value, ApiError> {
        let id = match body.get("id").or_else(|| body.get("budget_id")) {
            Some(Value::String(s)) => s.as_str(),
            _ => return Err(bad("name the budget: {\"id\": \"...\"}").with_param("id")),
        };
        let b = self.find(id).await?;
        let links = self.links(id).await?;
        if links.count() > 0 {
            return Err(bad(format!(
                "budget {id:?} is still linked to {} key(s), {} team(s) and {} end user(s); \
                 unlink them (budget_id: null) before deleting it",
                links.keys.len(),
                links.teams.len(),
                links.end_users.len()
            ))
            .with_param("id"));
        }
        self.store
            .delete_record(RecordKind::Budget, id)
            .await
            .map_err(store_error)?;
        self.keys.budget_changed(id).await;
        Ok(fields::view(&b))
    }

    /// Every key, team and end user linked to the budget `id`.
    async fn links(&self, id: &str) -> Result<Links, ApiError> {
        let mut links = Links::default();
        for page in 1.. {
            let filter = KeyFilter {
                page,
                size: PAGE,
                ..KeyFilter::default()
            };
            let keys = self.keys.store().list(&filter).await.map_err(store_error)?;
            let done = keys.len() < PAGE as usize;
            let linked = keys
                .into_iter()
                .filter(|k| k.extras.budget_id.as_deref() == Some(id));
            links.keys.extend(linked);
            if done {
                break;
            }
        }
        for kind in [RecordKind::Team, RecordKind::EndUser] {
            for page in 1.. {
                let got = self
                    .store
                    .list_records(kind, page, PAGE)
                    .await
                    .map_err(store_error)?;
                let done = got.records.len() < PAGE as usize;
                let linked =
                    |r: &Record| r.doc.get("budget_id").and_then(Value::as_str) == Some(id);
                for r in got.records.iter().filter(|r| linked(r)) {
                    if kind == RecordKind::Team {
                        links.teams.push(r.to_team().map_err(store_error)?);
                    } else {
                        links.end_users.push(r.to_end_user().map_err(store_error)?);
                    }
                }
                if done {
                    break;
                }
            }
        }
        Ok(links)
    }

    /// After a budget's duration changed: each linked object without a period of its own (no
    /// `budget_duration`, no next reset) starts one now.
    async fn start_periods(&self, b: &BudgetObject, now: i64) -> Result<(), ApiError> {
        let links = self.links(&b.budget_id).await?;
        for mut k in links.keys {
            let at = first_reset(k.budget_duration, k.budget_reset_at, Some(b), now);
            if at != k.budget_reset_at {
                k.budget_reset_at = at;
                self.keys.store().update(&k).await.map_err(store_error)?;
            }
        }
        for mut t in links.teams {
            let at = first_reset(t.budget_duration, t.budget_reset_at, Some(b), now);
            if at != t.budget_reset_at {
                t.budget_reset_at = at;
                let r = Record::of_team(&t);
                self.store
                    .update_record(RecordKind::Team, &r)
                    .await
                    .map_err(store_error)?;
            }
        }
        for mut u in links.end_users {
            let at = first_reset(u.budget_duration, u.budget_reset_at, Some(b), now);
            if at != u.budget_reset_at {
                u.budget_reset_at = at;
                let r = Record::of_end_user(&u);
                self.store
                    .update_record(RecordKind::EndUser, &r)
                    .await
                    .map_err(store_error)?;
            }
        }
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<BudgetObject>, ApiError> {
        llmgate_auth::linked_budget(self.store, id)
            .await
            .map_err(store_error)
    }

    async fn find(&self, id: &str) -> Result<BudgetObject, ApiError> {
        self.get(id).await?.ok_or_else(|| not_found(id))
    }
}

/// The budget a body's `budget_id` names, checked to exist; `Ok(None)` when the body sets no
/// `budget_id` (or clears it). A name without a budget is `bad`'s 400 (the caller's API's
/// shape), with `budget_id` as its `param`.
pub(crate) async fn named_in(
    store: &Arc<dyn RecordStore>,
    body: &Map<String, Value>,
    bad: impl Fn(String) -> ApiError,
) -> Result<Option<BudgetObject>, ApiError> {
    let Some(Value::String(id)) = body.get("budget_id") else {
        return Ok(None);
    };
    match llmgate_auth::linked_budget(store, id).await {
        Ok(Some(b)) => Ok(Some(b)),
        Ok(None) => Err(bad(format!(
            "budget_id {id:?} names no budget; create it first with POST /budget/new"
        ))
        .with_param("budget_id")),
        Err(e) => Err(store_error(e)),
    }
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message).with_code("invalid_budget_request")
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        Origin::Downstream,
        format!("budget {id:?} not found"),
    )
    .with_type(ErrorType::NOT_FOUND)
    .with_code("budget_not_found")
}

pub(crate) fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, Origin::Downstream, m)
            .with_type(ErrorType::INVALID_REQUEST)
            .with_code("budget_conflict"),
        other => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Origin::Downstream,
            other.to_string(),
        )
        .with_type(ErrorType::SERVER)
        .with_code("budget_store_unavailable"),
    }
}
