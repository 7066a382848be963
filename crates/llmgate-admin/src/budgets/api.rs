//! The `/budget/*` endpoints over [`Budgets`], behind the auth layer: the master key (or a
//! `proxy_admin` user) manages budgets; a `proxy_admin_viewer` may read them.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::Response;
use http::Method;
use llmgate_auth::Keys;
use llmgate_core::ApiError;
use serde_json::Value;

use super::Budgets;
use crate::access::Access;
use crate::keys::api::read_object;
use crate::respond;
use crate::router::Apis;

/// The `/budget/*` service.
#[derive(Clone, Debug)]
pub(crate) struct BudgetApi {
    /// The keys (for the record store and cache invalidation); `None` without a master key.
    pub(crate) keys: Option<Keys>,
    pub(crate) max_body: usize,
}

/// The `/budget/*` handler (every path under `/budget/`: unknown ones answer its 404).
pub(crate) async fn handler(State(apis): State<Arc<Apis>>, req: Request) -> Response {
    respond(apis.budgets.handle(req).await)
}

const ROUTES: &str = "the budget API is /budget/new, /budget/update, /budget/info, \
    /budget/list, /budget/settings and /budget/delete";

fn op(method: &Method, path: &str) -> Result<&'static str, ApiError> {
    let (op, want) = match path.strip_prefix("/budget/").unwrap_or_default() {
        "new" => ("new", Method::POST),
        "update" => ("update", Method::POST),
        "info" => ("info", Method::POST),
        "delete" => ("delete", Method::POST),
        "list" => ("list", Method::GET),
        "settings" => ("settings", Method::GET),
        _ => return Err(crate::route::not_found(path, ROUTES)),
    };
    crate::route::expect_method(method, &want, path)?;
    Ok(op)
}

impl BudgetApi {
    async fn handle(&self, req: Request) -> Result<Value, ApiError> {
        let (parts, body) = req.into_parts();
        let op = op(&parts.method, parts.uri.path())?;
        let Some(keys) = &self.keys else {
            return Err(ApiError::bad_request(
                "budgets need a master key: set general_settings.master_key (or LITELLM_MASTER_KEY)",
            )
            .with_code("no_master_key"));
        };
        let Some(teams) = keys.teams() else {
            return Err(ApiError::bad_request(
                "budgets need a database: set general_settings.database_url",
            )
            .with_code("no_database"));
        };
        // As for teams: administrators manage budgets, viewers read them.
        let access = Access::of(&parts.extensions);
        match op {
            "list" | "settings" | "info" => access.read_all("read budgets")?,
            _ => access.admin("manage budgets")?,
        }
        let admin = Budgets {
            keys,
            store: teams.store(),
        };
        match op {
            "list" => admin.list().await,
            "settings" => {
                let query: Vec<(String, String)> = parts
                    .uri
                    .query()
                    .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
                    .unwrap_or_default();
                let id = query
                    .iter()
                    .find(|(k, _)| k == "budget_id")
                    .map(|(_, v)| v.as_str())
                    .ok_or_else(|| {
                        ApiError::bad_request("give the budget: /budget/settings?budget_id=...")
                            .with_code("invalid_budget_request")
                            .with_param("budget_id")
                    })?;
                admin.settings(id).await
            }
            op => {
                let body = read_object(body, self.max_body).await?;
                match op {
                    "new" => admin.create(&body).await,
                    "update" => admin.update(&body).await,
                    "info" => admin.info(&body).await,
                    _ => admin.delete(&body).await,
                }
            }
        }
    }
}
