//! The `/team/*` endpoints over [`TeamAdmin`], behind the auth layer: an administrator does
//! everything, a viewer reads, an internal user reads the teams they are a member of.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::Response;
use http::Method;
use llmgate_core::ApiError;
use serde_json::Value;

use super::TeamAdmin;
use crate::access::Access;
use crate::keys::api::read_object;
use crate::respond;
use crate::router::Apis;

/// The `/team/*` service.
#[derive(Clone, Debug)]
pub(crate) struct TeamApi {
    /// `None` when the gateway has no master key (and so no keys or teams).
    pub(crate) admin: Option<TeamAdmin>,
    pub(crate) max_body: usize,
}

/// The `/team/*` handler (every path under `/team/`: unknown ones answer the team API's 404).
pub(crate) async fn handler(State(apis): State<Arc<Apis>>, req: Request) -> Response {
    respond(apis.teams.handle(req).await)
}

enum Op {
    New,
    Info,
    List,
    Update,
    Delete,
    MemberAdd,
    MemberDelete,
    Block(bool),
}

const ROUTES: &str = "/team/new, /team/info, /team/list, /team/update, /team/delete, \
    /team/member_add, /team/member_delete, /team/block and /team/unblock";

fn op(method: &Method, path: &str) -> Result<Op, ApiError> {
    let (op, want) = match path.strip_prefix("/team/").unwrap_or_default() {
        "new" => (Op::New, Method::POST),
        "info" => (Op::Info, Method::GET),
        "list" => (Op::List, Method::GET),
        "update" => (Op::Update, Method::POST),
        "delete" => (Op::Delete, Method::POST),
        "member_add" => (Op::MemberAdd, Method::POST),
        "member_delete" => (Op::MemberDelete, Method::POST),
        "block" => (Op::Block(true), Method::POST),
        "unblock" => (Op::Block(false), Method::POST),
        _ => {
            return Err(crate::route::not_found(
                path,
                &format!("the team API is {ROUTES}"),
            ))
        }
    };
    crate::route::expect_method(method, &want, path)?;
    Ok(op)
}

impl TeamApi {
    async fn handle(&self, req: Request) -> Result<Value, ApiError> {
        let (parts, body) = req.into_parts();
        let op = op(&parts.method, parts.uri.path())?;
        let Some(admin) = &self.admin else {
            return Err(ApiError::bad_request(
                "teams need a master key: set general_settings.master_key (or LITELLM_MASTER_KEY)",
            )
            .with_code("no_master_key"));
        };
        let access = Access::of(&parts.extensions);
        let mut query: Vec<(String, String)> = parts
            .uri
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        match (&op, access.own_user()) {
            // An internal user reads the teams they are a member of.
            (Op::List, Some(own)) => {
                query.retain(|(k, _)| k != "user_id");
                query.push(("user_id".into(), own.to_owned()));
            }
            (Op::Info, Some(own)) => {
                let id = query.iter().find(|(k, _)| k == "team_id").map(|(_, v)| v);
                let member = admin.has_member(id.map_or("", |v| v.as_str()), own).await?;
                if !member {
                    return Err(crate::access::forbidden(
                        "an internal user may only read the teams they are a member of".into(),
                    ));
                }
            }
            (Op::Info | Op::List, None) => access.read_all("read teams")?,
            _ => access.admin("manage teams")?,
        }
        match op {
            Op::Info => {
                let id = query
                    .iter()
                    .find(|(k, _)| k == "team_id")
                    .map(|(_, v)| v.as_str())
                    .ok_or_else(|| {
                        ApiError::bad_request("give the team: /team/info?team_id=...")
                            .with_param("team_id")
                    })?;
                admin.info(id).await
            }
            Op::List => admin.list(&query).await,
            op => {
                let body = read_object(body, self.max_body).await?;
                match op {
                    Op::New => admin.create(&body).await,
                    Op::Update => admin.update(&body).await,
                    Op::Delete => admin.delete(&body).await,
                    Op::MemberAdd => admin.member_add(&body).await,
                    Op::MemberDelete => admin.member_delete(&body).await,
                    Op::Block(b) => admin.set_blocked(&body, b).await,
                    Op::Info | Op::List => Err(ApiError::internal("unreachable team route")),
                }
            }
        }
    }
}
