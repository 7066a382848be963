//! End users (LiteLLM's customers), `/customer/*` and `/end_user/*`: [`CustomerApi`] over the
//! gateway's record store, master key only.
//!
//! An end user is the `user` a request names. It is created the first time a request of it is
//! charged (as LiteLLM does), or by `/customer/new` with a budget; `/customer/block` refuses its
//! requests (403 `end_user_blocked`) until `/customer/unblock`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::Response;
use http::{Method, StatusCode};
use llmgate_auth::{Keys, Record, RecordKind, RecordStore, StoreError};
use llmgate_core::{ApiError, BudgetObject, EndUser, ErrorType, Origin};
use serde_json::{json, Map, Value};

use crate::keys::api::read_object;
use crate::keys::fields::{
    metadata, opt_count, opt_duration, opt_money, opt_string, time, MAX_BUDGET_DURATION_SECS,
};
use crate::respond;
use crate::router::Apis;

/// The most end users `/customer/list` answers with.
const MAX_LIST: u32 = 1_000;

/// The `/customer/*` and `/end_user/*` service.
#[derive(Clone, Debug)]
pub(crate) struct CustomerApi {
    /// The keys (for the record store and cache invalidation); `None` without a master key.
    pub(crate) keys: Option<Keys>,
    pub(crate) max_body: usize,
}

/// The handler (every path under `/customer/` and `/end_user/`).
pub(crate) async fn handler(State(apis): State<Arc<Apis>>, req: Request) -> Response {
    respond(apis.customers.handle(req).await)
}

fn op(method: &Method, path: &str) -> Result<&'static str, ApiError> {
    let rest = path
        .strip_prefix("/customer/")
        .or_else(|| path.strip_prefix("/end_user/"))
        .unwrap_or_default();
    let (op, want) = match rest {
        "new" => ("new", Method::POST),
        "info" => ("info", Method::GET),
        "list" => ("list", Method::GET),
        "update" => ("update", Method::POST),
        "delete" => ("delete", Method::POST),
        "block" => ("block", Method::POST),
        "unblock" => ("unblock", Method::POST),
        _ => return Err(crate::route::not_found(path, "the end-user API is /customer/new, /customer/info, /customer/list, /customer/update, /customer/delete, /customer/block and /customer/unblock (or the same under /end_user/)")),
    };
    crate::route::expect_method(method, &want, path)?;
    Ok(op)
}

impl CustomerApi {
    async fn handle(&self, req: Request) -> Result<Value, ApiError> {
        let (parts, body) = req.into_parts();
        let op = op(&parts.method, parts.uri.path())?;
        let Some(keys) = &self.keys else {
            return Err(ApiError::bad_request(
                "end users need a master key: set general_settings.master_key",
            )
            .with_code("no_master_key"));
        };
        let Some(users) = keys.end_users() else {
            return Err(ApiError::bad_request("this gateway keeps no end users"));
        };
        let access = crate::access::Access::of(&parts.extensions);
        access.read_all("read end users")?;
        let admin = Customers {
            keys,
            store: users.store(),
        };
        match op {
            "info" => {
                let query: Vec<(String, String)> = parts
                    .uri
                    .query()
                    .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
                    .unwrap_or_default();
                let id = query
                    .iter()
                    .find(|(k, _)| k == "end_user_id" || k == "user_id")
                    .map(|(_, v)| v.as_str())
                    .ok_or_else(|| bad("give the end user: /customer/info?end_user_id=..."))?;
                admin.shown(&admin.find(id).await?).await
            }
            "list" => admin.list().await,
            op => {
                access.writes("change end users")?;
                let body = read_object(body, self.max_body).await?;
                match op {
                    "new" => admin.create(&body).await,
                    "update" => admin.update(&body).await,
                    "delete" => admin.delete(&body).await,
                    _ => admin.block(&body, op == "block").await,
                }
            }
        }
    }
}

struct Customers<'a> {
    keys: &'a Keys,
    store: &'a Arc<dyn RecordStore>,
}

impl Customers<'_> {
    async fn create(&self, body: &Map<String, Value>) -> Result<Value, ApiError> {
        let id = id_field(body)?;
        let now = self.keys.clock().now();
        let mut user = EndUser {
            user_id: id.to_owned(),
            created_at: now,
            updated_at: now,
            ..EndUser::default()
        };
        apply_all(&mut user, body, now)?;
        self.link_budget(&mut user, body, now).await?;
        self.store
            .insert_record(RecordKind::EndUser, &Record::of_end_user(&user))
            .await
            .map_err(store_error)?;
        self.keys.end_user_changed(id).await;
        self.shown(&user).await
    }

    async fn update(&self, body: &Map<String, Value>) -> Result<Value, ApiError> {
        let mut user = self.find(id_field(body)?).await?;
        let now = self.keys.clock().now();
        apply_all(&mut user, body, now)?;
        self.link_budget(&mut user, body, now).await?;
        user.updated_at = now;
        self.save(&user).await?;
        self.shown(&self.find(&user.user_id).await?).await
    }

    async fn block(&self, body: &Map<String, Value>, blocked: bool) -> Result<Value, ApiError> {
        let ids = ids_field(body)?;
        let now = self.keys.clock().now();
        for id in &ids {
            // A user not seen yet can be blocked ahead of its first request.
            let mut user = match self.get(id).await? {
                Some(u) => u,
                None => {
                    let new = EndUser {
                        user_id: id.clone(),
                        created_at: now,
                        ..EndUser::default()
                    };
                    self.store
                        .insert_record(RecordKind::EndUser, &Record::of_end_user(&new))
                        .await
                        .map_err(store_error)?;
                    new
                }
            };
            user.blocked = blocked;
            user.updated_at = now;
            self.save(&user).await?;
        }
        let name = if blocked {
            "blocked_users"
        } else {
            "unblocked_users"
        };
        Ok(json!({ name: ids }))
    }

    async fn delete(&self, body: &Map<String, Value>) -> Result<Value, ApiError> {
        let ids = ids_field(body)?;
        let mut deleted = Vec::new();
        for id in ids {
            if self
                .store
                .delete_record(RecordKind::EndUser, &id)
                .await
                .map_err(store_error)?
            {
                self.keys.end_user_changed(&id).await;
                deleted.push(id);
            }
        }
        if deleted.is_empty() {
            return Err(not_found("no such end user"));
        }
        Ok(json!({"deleted_customers": deleted}))
    }

    async fn list(&self) -> Result<Value, ApiError> {
        let page = self
            .store
            .list_records(RecordKind::EndUser, 1, MAX_LIST)
            .await
            .map_err(store_error)?;
        let mut budgets: HashMap<String, Option<BudgetObject>> = HashMap::new();
        let mut users = Vec::with_capacity(page.records.len());
        for r in &page.records {
            let u = r.to_end_user().map_err(store_error)?;
            let budget = match &u.budget_id {
                Some(id) if !budgets.contains_key(id) => {
                    let b = llmgate_auth::linked_budget(self.store, id)
                        .await
                        .map_err(store_error)?;
                    budgets.entry(id.clone()).or_insert(b).as_ref()
                }
                Some(id) => budgets.get(id).and_then(Option::as_ref),
                None => None,
            };
            users.push(view(&u, budget));
        }
        Ok(Value::Array(users))
    }

    /// The end user as LiteLLM shows a customer, with the budget object it links to.
    async fn shown(&self, u: &EndUser) -> Result<Value, ApiError> {
        let budget = match &u.budget_id {
            Some(id) => llmgate_auth::linked_budget(self.store, id)
                .await
                .map_err(store_error)?,
            None => None,
        };
        Ok(view(u, budget.as_ref()))
    }

    /// A `budget_id` the body sets must name a budget; an end user without a period of its
    /// own starts the budget's.
    async fn link_budget(
        &self,
        user: &mut EndUser,
        body: &Map<String, Value>,
        now: i64,
    ) -> Result<(), ApiError> {
        let budget = crate::budgets::named_in(self.store, body, bad).await?;
        if budget.is_some() {
            user.budget_reset_at = crate::budgets::first_reset(
                user.budget_duration,
                user.budget_reset_at,
                budget.as_ref(),
                now,
            );
        }
        Ok(())
    }

    async fn save(&self, user: &EndUser) -> Result<(), ApiError> {
        self.store
            .update_record(RecordKind::EndUser, &Record::of_end_user(user))
            .await
            .map_err(store_error)?;
        self.keys.end_user_changed(&user.user_id).await;
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<EndUser>, ApiError> {
        self.store
            .get_record(RecordKind::EndUser, id)
            .await
            .map_err(store_error)?
            .map(|r| r.to_end_user())
            .transpose()
            .map_err(store_error)
    }

    async fn find(&self, id: &str) -> Result<EndUser, ApiError> {
        self.get(id)
            .await?
            .ok_or_else(|| not_found(format!("end user {id:?} not found")))
    }
}

/// Fields a body may set (besides `user_id`).
const FIELDS: &str = "alias, blocked, max_budget, budget_duration, budget_id, rpm_limit, \
    tpm_limit, max_parallel_requests, allowed_model_region, default_model, metadata";

fn apply_all(user: &mut EndUser, body: &Map<String, Value>, now: i64) -> Result<(), ApiError> {
    for (field, v) in body {
        let done = match field.as_str() {
            "user_id" => Ok(()),
            "budget_id" => opt_string(v, field).map(|b| user.budget_id = b),
            "alias" => opt_string(v, field).map(|a| user.alias = a),
            "blocked" => match v {
                Value::Bool(b) => {
                    user.blocked = *b;
                    Ok(())
                }
                Value::Null => {
                    user.blocked = false;
                    Ok(())
                }
                _ => Err(format!("{field} must be true or false")),
            },
            "max_budget" => opt_money(v, field).map(|m| user.max_budget = m),
            "budget_duration" => {
                opt_duration(v, field, MAX_BUDGET_DURATION_SECS, "366 days").map(|d| {
                    user.budget_duration = d;
                    user.budget_reset_at = d.map(|d| now.saturating_add(d));
                })
            }
            "rpm_limit" => opt_count(v, field).map(|l| user.rpm_limit = l),
            "tpm_limit" => opt_count(v, field).map(|l| user.tpm_limit = l),
            "max_parallel_requests" => opt_count(v, field).map(|l| user.max_parallel_requests = l),
            "allowed_model_region" => opt_string(v, field).map(|r| user.allowed_model_region = r),
            "default_model" => opt_string(v, field).map(|m| user.default_model = m),
            "metadata" => metadata(v, field).map(|m| user.metadata = m),
            other => Err(format!(
                "{other} is not an end-user field; the fields are user_id, {FIELDS}"
            )),
        };
        done.map_err(|m| bad(m).with_param(field.clone()))?;
    }
    Ok(())
}

/// The end user as LiteLLM shows a customer: `litellm_budget_table` is the budget object it
/// links to (LiteLLM's budget row), else its own budget.
fn view(u: &EndUser, budget: Option<&BudgetObject>) -> Value {
    let own = || {
        u.max_budget.map(|max| {
            json!({
                "max_budget": max,
                "budget_duration": u.budget_duration.map(|d| format!("{d}s")),
                "budget_reset_at": time(u.budget_reset_at),
            })
        })
    };
    json!({
        "user_id": u.user_id,
        "alias": u.alias,
        "blocked": u.blocked,
        "spend": u.spend,
        "allowed_model_region": u.allowed_model_region,
        "default_model": u.default_model,
        "budget_id": u.budget_id,
        "rpm_limit": u.rpm_limit,
        "tpm_limit": u.tpm_limit,
        "max_parallel_requests": u.max_parallel_requests,
        "litellm_budget_table": budget.map_or_else(own, |b| Some(crate::budgets::view(b))),
        "metadata": if u.metadata.is_null() { json!({}) } else { u.metadata.clone() },
        "created_at": time(Some(u.created_at)),
        "updated_at": time(Some(u.updated_at)),
    })
}

fn id_field(body: &Map<String, Value>) -> Result<&str, ApiError> {
    body.get("user_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= 256)
        .ok_or_else(|| {
            bad("name the end user: {\"user_id\": \"...\"} (1 to 256 bytes)").with_param("user_id")
        })
}

fn ids_field(body: &Map<String, Value>) -> Result<Vec<String>, ApiError> {
    match body.get("user_ids") {
        Some(Value::Array(a)) if !a.is_empty() => a
            .iter()
            .map(|v| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| bad("user_ids must be a list of end-user ids")),
        _ => Err(bad("give the end users as {\"user_ids\": [...]}").with_param("user_ids")),
    }
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message).with_code("invalid_end_user_request")
}

fn not_found(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, Origin::Downstream, message)
        .with_type(ErrorType::NOT_FOUND)
        .with_code("end_user_not_found")
}

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, Origin::Downstream, m)
            .with_type(ErrorType::INVALID_REQUEST)
            .with_code("end_user_conflict"),
        other => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Origin::Downstream,
            other.to_string(),
        )
        .with_type(ErrorType::SERVER)
        .with_code("end_user_store_unavailable"),
    }
}
