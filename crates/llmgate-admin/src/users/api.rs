//! The `/user/*` endpoints over [`UserAdmin`], behind the auth layer: an administrator does
//! everything, a viewer reads, an internal user reads their own `/user/info`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::Response;
use http::Method;
use llmgate_core::ApiError;
use serde_json::Value;

use super::UserAdmin;
use crate::access::Access;
use crate::keys::api::read_object;
use crate::respond;
use crate::router::Apis;

/// The `/user/*` service.
#[derive(Clone, Debug)]
pub(crate) struct UserApi {
    /// `None` when the gateway has no master key (and so no keys or users).
    pub(crate) admin: Option<UserAdmin>,
    pub(crate) max_body: usize,
}

/// The `/user/*` handler (every path under `/user/` but `/user/daily/activity`, which is a
/// spend report).
pub(crate) async fn handler(State(apis): State<Arc<Apis>>, req: Request) -> Response {
    respond(apis.users.handle(req).await)
}

enum Op {
    New,
    Info,
    List,
    Update,
    Delete,
}

const ROUTES: &str = "/user/new, /user/info, /user/list, /user/update and /user/delete";

fn op(method: &Method, path: &str) -> Result<Op, ApiError> {
    let (op, want) = match path.strip_prefix("/user/").unwrap_or_default() {
        "new" => (Op::New, Method::POST),
        "info" => (Op::Info, Method::GET),
        "list" | "get_users" => (Op::List, Method::GET),
        "update" => (Op::Update, Method::POST),
        "delete" => (Op::Delete, Method::POST),
        _ => {
            return Err(crate::route::not_found(
                path,
                &format!("the user API is {ROUTES}"),
            ))
        }
    };
    crate::route::expect_method(method, &want, path)?;
    Ok(op)
}

impl UserApi {
    async fn handle(&self, req: Request) -> Result<Value, ApiError> {
        let (parts, body) = req.into_parts();
        let op = op(&parts.method, parts.uri.path())?;
        let Some(admin) = &self.admin else {
            return Err(ApiError::bad_request(
                "users need a master key: set general_settings.master_key (or LITELLM_MASTER_KEY)",
            )
            .with_code("no_master_key"));
        };
        let access = Access::of(&parts.extensions);
        let query: Vec<(String, String)> = parts
            .uri
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        match op {
            Op::Info => {
                let asked = query
                    .iter()
                    .find(|(k, _)| k == "user_id")
                    .map(|(_, v)| v.as_str());
                let id = match (access.own_user(), asked) {
                    (Some(own), None) => own,
                    (Some(own), Some(a)) if a == own => own,
                    _ => {
                        access.read_all("read other users")?;
                        asked.ok_or_else(|| {
                            ApiError::bad_request("give the user: /user/info?user_id=...")
                                .with_param("user_id")
                        })?
                    }
                };
                admin.info(id).await
            }
            Op::List => {
                access.read_all("list users")?;
                admin.list(&query).await
            }
            op => {
                access.admin("manage users")?;
                let body = read_object(body, self.max_body).await?;
                match op {
                    Op::New => admin.create(&body).await,
                    Op::Update => admin.update(&body).await,
                    Op::Delete => admin.delete(&body).await,
                    Op::Info | Op::List => Err(ApiError::internal("unreachable user route")),
                }
            }
        }
    }
}
