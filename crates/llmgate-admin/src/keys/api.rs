//! The `/key/*` endpoints over [`KeyAdmin`]. They sit behind the auth layer: the master key (and
//! a `proxy_admin`) may do everything, a `proxy_admin_viewer` reads every key, an internal user
//! manages their own (`own.rs`), and a virtual key without a user may read its own `/key/info`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use http::{Method, StatusCode};
use llmgate_core::{ApiError, ErrorType, Origin};
use serde_json::{Map, Value};

use super::KeyAdmin;
use crate::access::Access;
use crate::respond;
use crate::router::Apis;

/// The `/key/*` service.
#[derive(Clone, Debug)]
pub(crate) struct KeyApi {
    /// `None` when the gateway has no master key (and so no virtual keys).
    pub(crate) admin: Option<KeyAdmin>,
    pub(crate) max_body: usize,
}

/// The `/key/*` handler (every path under `/key/`: unknown ones answer the key API's 404).
pub(crate) async fn handler(State(apis): State<Arc<Apis>>, req: Request) -> Response {
    respond(apis.keys.handle(req).await)
}

pub(super) enum Op {
    Generate,
    Info,
    Update,
    Delete,
    List,
    Regenerate(Option<String>),
    Block(bool),
    Health,
}

fn op(method: &Method, path: &str) -> Result<Op, ApiError> {
    let rest = path.strip_prefix("/key/").unwrap_or_default();
    let (op, want) = match rest {
        "generate" => (Op::Generate, Method::POST),
        "info" => (Op::Info, Method::GET),
        "update" => (Op::Update, Method::POST),
        "delete" => (Op::Delete, Method::POST),
        "list" => (Op::List, Method::GET),
        "regenerate" => (Op::Regenerate(None), Method::POST),
        "block" => (Op::Block(true), Method::POST),
        "unblock" => (Op::Block(false), Method::POST),
        "health" => (Op::Health, Method::POST),
        _ => match rest.strip_suffix("/regenerate") {
            Some(key) if !key.is_empty() && !key.contains('/') => {
                (Op::Regenerate(Some(key.to_string())), Method::POST)
            }
            _ => return Err(crate::route::not_found(path, "the key API is /key/generate, /key/info, /key/update, /key/delete, /key/list, /key/regenerate, /key/block, /key/unblock and /key/health")),
        },
    };
    crate::route::expect_method(method, &want, path)?;
    Ok(op)
}

impl KeyApi {
    async fn handle(&self, req: Request) -> Result<Value, ApiError> {
        let (parts, body) = req.into_parts();
        let op = op(&parts.method, parts.uri.path())?;
        let Some(admin) = &self.admin else {
            return Err(ApiError::bad_request(
                "virtual keys need a master key: set general_settings.master_key (or LITELLM_MASTER_KEY)",
            )
            .with_code("no_master_key"));
        };
        let query: Vec<(String, String)> = parts
            .uri
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let access = Access::of(&parts.extensions);
        let own = match &access {
            Access::Key(k) => Some(k.token.clone()),
            _ => None,
        };
        if let Op::Health = op {
            // The caller's key passed auth (and is not blocked, expired or over budget).
            return Ok(serde_json::json!({"key": "healthy", "logging_callbacks": null}));
        }
        if let Some(own) = own {
            // A virtual key may read its own info, nothing else.
            let asked = query
                .iter()
                .find(|(k, _)| k == "key")
                .map(|(_, v)| v.clone());
            return match (&op, asked) {
                (Op::Info, None) => admin.info(&own).await,
                (Op::Info, Some(k)) if super::token_of(&k) == own => admin.info(&k).await,
                _ => Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    Origin::Downstream,
                    "only the master key may manage keys; a virtual key may read its own /key/info",
                )
                .with_type(ErrorType::PERMISSION)
                .with_code("master_key_required")),
            };
        }
        if let Access::Own { user_id, writes } = &access {
            let body = match op {
                Op::Info | Op::List => None,
                _ => Some(read_object(body, self.max_body).await?),
            };
            return super::own::run(admin, op, user_id, *writes, &query, body).await;
        }
        if !matches!(op, Op::Info | Op::List) {
            access.writes("change keys")?;
        }
        match op {
            Op::Info => {
                let key = query
                    .iter()
                    .find(|(k, _)| k == "key")
                    .map(|(_, v)| v.as_str())
                    .ok_or_else(|| ApiError::bad_request("give the key: /key/info?key=sk-..."))?;
                admin.info(key).await
            }
            Op::List => admin.list(&query).await,
            op => {
                let body = read_object(body, self.max_body).await?;
                match op {
                    Op::Generate => admin.generate(&body).await,
                    Op::Update => admin.update(&body).await,
                    Op::Delete => admin.delete(&body).await,
                    Op::Regenerate(key) => admin.regenerate(key.as_deref(), &body).await,
                    Op::Block(b) => admin.set_blocked(&body, b).await,
                    Op::Info | Op::List | Op::Health => {
                        Err(ApiError::internal("unreachable key route"))
                    }
                }
            }
        }
    }
}

type Reading = Pin<Box<dyn Future<Output = Result<Bytes, ApiError>> + Send>>;

/// The capped body, as a boxed future made outside any `async` block: proving an `async` block
/// that holds `Collect<Limited<_>>` is `Send` trips a known rustc limitation.
fn read(body: Body, limit: usize) -> Reading {
    Box::pin(llmgate_core::body::read_capped(body, limit))
}

/// The body as a JSON object; an empty body is `{}`.
pub(crate) async fn read_object(body: Body, limit: usize) -> Result<Map<String, Value>, ApiError> {
    let bytes = read(body, limit).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::bad_request("the body must be a JSON object")),
        Err(e) => Err(ApiError::bad_request(format!(
            "the body is not valid JSON: {e}"
        ))),
    }
}
