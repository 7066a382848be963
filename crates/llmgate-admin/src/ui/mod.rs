//! The admin web UI at `/ui` (LiteLLM's path): server-rendered page skeletons, embedded
//! scripts and one stylesheet (no CDN, no Node.js at build time), filled from the JSON APIs.
//!
//! - Sign-in: `GET /ui/login` shows a form; `POST /ui/login` with the master key, with
//!   `UI_USERNAME` / `UI_PASSWORD`, or with a user's id (or e-mail) and password opens a
//!   [`Sessions`] entry and sets an `HttpOnly; SameSite=Strict` cookie holding its random id
//!   (`Secure` when the request came over TLS). A virtual key cannot sign in. A user's session
//!   calls the admin API as their role allows.
//! - Pages: `/ui/` (overview), `/ui/models`, `/ui/keys`, `/ui/teams`, `/ui/end-users`,
//!   `/ui/logs`, `/ui/spend`, `/ui/alerts`, `/ui/config`; without a session they redirect to
//!   the sign-in form. Their scripts are served under `/ui/assets/`.
//! - `/ui/api/*`: what the pages call. `/ui/api/deployments` and `/ui/api/config` are the UI's
//!   own views (over a [`DeploymentView`] and a [`ConfigView`] the gateway gives); any other
//!   path is the admin API's (`/ui/api/key/list` is `GET /key/list`), called as the master key
//!   on the service the gateway gives (which also answers `/health` and `/alerting/recent`).
//!   A session's calls that change something carry its CSRF token in [`CSRF_HEADER`]; a script
//!   calls the same paths with `Authorization: Bearer <master key>`, or the admin API directly.
//!
//! The UI is not behind the auth layer: mount [`Ui::service`] beside it, over the service that
//! answers the admin API (with the auth layer in front, which sees the master key).
//!
//! ```
//! use http::{Request, StatusCode};
//! use llmgate_admin::ui::{Sessions, UiApi};
//! use tower::{service_fn, util::BoxCloneSyncService, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let api = BoxCloneSyncService::new(service_fn(|_req: Request<String>| async {
//!     Ok::<_, llmgate_core::BoxError>(http::Response::new(llmgate_core::body::empty()))
//! }));
//! let ui = UiApi::new(Some(llmgate_core::Secret::new("sk-master")), Sessions::new()).service(api);
//! // Without a session, a page sends the browser to the sign-in form.
//! let res = ui.oneshot(Request::get("/ui/keys").body(String::new()).unwrap()).await.unwrap();
//! assert_eq!(res.status(), StatusCode::SEE_OTHER);
//! assert_eq!(res.headers()["location"], "/ui/login");
//! # }
//! ```

mod assets;
mod mask;
mod pages;
mod service;
mod session;

use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use http_body::Body;
use llmgate_core::{BoxError, Secret};
use serde_json::Value;
use tower::service_fn;
use tower::util::BoxCloneSyncService;

pub use mask::mask_secrets;
pub use service::{Inner, CSRF_HEADER};
pub use session::{Sessions, SESSION_TTL};

/// The router's deployments as the Models page shows them: implemented by the gateway.
pub trait DeploymentView: Send + Sync + 'static {
    /// `{"deployments": [{"model_name", "id", "provider", "model", "api_base", "in_flight",
    /// "cooling_down", "cooldown_reason", "rpm", "tpm", "rpd", "rpm_used", "tpm_used",
    /// "rpd_used", "latency_ms", "ttft_ms"}]}`, in config order.
    fn deployments(&self) -> Value;
}

/// The config as the Config page shows it: implemented by the gateway.
pub trait ConfigView: Send + Sync + 'static {
    /// `{"path", "yaml", "notices": [..]}`: the config file with every secret masked
    /// ([`mask_secrets`]) and its validation notices.
    fn config(&self) -> Value;
}

/// What the UI works on. Build it, then take its [`service`](UiApi::service).
#[derive(Clone)]
pub struct UiApi {
    ui: service::Ui,
}

impl std::fmt::Debug for UiApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UiApi")
            .field("master_key", &self.ui.master.is_some())
            .field("sessions", &self.ui.sessions)
            .finish()
    }
}

impl UiApi {
    /// The UI signed into with `master` (without one nobody can sign in), keeping its sessions
    /// in `sessions` (keep one for the process's life, so a config reload signs nobody out).
    pub fn new(master: Option<Secret>, sessions: Sessions) -> Self {
        UiApi {
            ui: service::Ui {
                master,
                users: None,
                admin_login: None,
                sessions,
                deployments: None,
                config: None,
            },
        }
    }

    /// The users who may sign in with their password (`/user/*`'s).
    #[must_use]
    pub fn users(mut self, users: Option<crate::UserAdmin>) -> Self {
        self.ui.users = users;
        self
    }

    /// `UI_USERNAME` and `UI_PASSWORD` (LiteLLM's): the administrator signs in with them as a
    /// proxy admin, beside the master key.
    #[must_use]
    pub fn admin_login(mut self, login: Option<(String, Secret)>) -> Self {
        self.ui.admin_login = login;
        self
    }

    /// What `/ui/api/deployments` answers (without one: 404).
    #[must_use]
    pub fn deployments(mut self, view: Option<Arc<dyn DeploymentView>>) -> Self {
        self.ui.deployments = view;
        self
    }

    /// What `/ui/api/config` answers (without one: 404).
    #[must_use]
    pub fn config(mut self, view: Option<Arc<dyn ConfigView>>) -> Self {
        self.ui.config = view;
        self
    }

    /// The UI as a service for every path under `/ui`; `api` answers the admin API's paths
    /// (with its auth layer in front), which `/ui/api/*` calls as the master key.
    pub fn service<B>(self, api: Inner<B>) -> Inner<B>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let ui = self.ui;
        BoxCloneSyncService::new(service_fn(move |req: Request<B>| {
            let ui = ui.clone();
            let api = api.clone();
            async move { Ok::<_, BoxError>(ui.handle(req, api).await) }
        }))
    }
}

/// Whether `path` is the UI's (`/ui` or under `/ui/`).
pub fn is_ui_path(path: &str) -> bool {
    path == "/ui" || path.starts_with("/ui/")
}

#[cfg(test)]
mod tests;
