//! llmgate's admin API as an [`axum::Router`]: LiteLLM's virtual-key endpoints (`/key/*`, over
//! [`KeyAdmin`]) and spend endpoints (`/spend/logs`, `/global/spend`, `/global/spend/models`,
//! `/global/spend/keys`, and llmgate's `/global/overview`, over the gateway's
//! [`Database`](llmgate_store::Database)), and
//! `POST /config/reload` (over a [`Reloader`] the gateway gives it); and the web UI at `/ui`
//! ([`ui`]), which signs in with the master key and calls those endpoints.
//!
//! The router does not authenticate: mount it behind `llmgate_auth::AuthLayer`, once, which puts
//! the caller's [`Principal`](llmgate_core::Principal) in the request. The master key may do
//! everything; a virtual key may read its own `/key/info` and gets 403 elsewhere. Every answer,
//! errors included (an unknown path's 404, a wrong method's 405), is JSON in OpenAI's error
//! shape, rendered by [`ApiError::to_response`](llmgate_core::ApiError::to_response).
//!
//! The `llmgate` facade mounts it (its default `admin` feature); a service that mounts only the
//! LLM layers leaves it, and sqlx with it, out.
//!
//! ```
//! use http::{Request, StatusCode};
//! use http_body_util::{BodyExt, Full};
//! use llmgate_admin::AdminApi;
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! // No key store and no database: the endpoints say what to configure.
//! let router = AdminApi::new().max_body(1 << 20).router();
//! let req = Request::get("/global/spend").body(Full::new(bytes::Bytes::new())).unwrap();
//! let res = router.clone().oneshot(req).await.unwrap();
//! assert_eq!(res.status(), StatusCode::BAD_REQUEST);
//! let body = res.into_body().collect().await.unwrap().to_bytes();
//! assert!(std::str::from_utf8(&body).unwrap().contains("\"code\":\"no_database\""));
//!
//! let req = Request::get("/nowhere").body(Full::new(bytes::Bytes::new())).unwrap();
//! assert_eq!(router.oneshot(req).await.unwrap().status(), StatusCode::NOT_FOUND);
//! # }
//! ```

mod access;
mod customers;
mod daily_activity;
pub mod keys;
mod overview;
mod reload;
mod route;
mod router;
mod spend;
mod spend_report;
pub mod teams;
pub mod ui;
pub mod users;

pub use keys::KeyAdmin;
pub use reload::{ReloadFuture, ReloadRefusal, Reloader, RELOAD_PATH};
pub use router::AdminApi;
pub use spend::is_spend_path;
pub use users::UserAdmin;

pub(crate) use router::respond;
