//! [`AdminApi`]: what the admin endpoints work on, and the [`Router`] over them.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};
use http_body_util::BodyExt;
use llmgate_core::{body, ApiError, BoxBody, BoxError, ErrorType, Origin};
use llmgate_store::Database;
use serde_json::Value;
use tower::util::BoxCloneSyncService;
use tower::ServiceExt;

use crate::keys::api::KeyApi;
use crate::keys::KeyAdmin;
use crate::reload::{Reloader, RELOAD_PATH};
use crate::spend::{is_spend_path, SpendApi};
use crate::teams::api::TeamApi;
use crate::teams::TeamAdmin;
use crate::users::api::UserApi;
use crate::users::UserAdmin;

/// The request body size [`AdminApi::new`] reads at most: 1 MiB.
pub const DEFAULT_MAX_BODY: usize = 1 << 20;

/// What the admin endpoints work on. Build it with the setters, then take its [`router`].
///
/// [`router`]: AdminApi::router
#[derive(Clone)]
pub struct AdminApi {
    keys: Option<KeyAdmin>,
    teams: Option<TeamAdmin>,
    users: Option<UserAdmin>,
    database: Option<Database>,
    max_budget: Option<f64>,
    max_body: usize,
    reloader: Option<Arc<dyn Reloader>>,
}

impl std::fmt::Debug for AdminApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminApi")
            .field("keys", &self.keys)
            .field("database", &self.database)
            .field("max_budget", &self.max_budget)
            .field("max_body", &self.max_body)
            .field("reloader", &self.reloader.is_some())
            .finish()
    }
}

impl Default for AdminApi {
    fn default() -> Self {
        AdminApi::new()
    }
}

impl AdminApi {
    /// No key store (`/key/*` answers 400 `no_master_key`), no database (the spend endpoints
    /// answer 400 `no_database`), no `max_budget`, bodies up to [`DEFAULT_MAX_BODY`].
    pub fn new() -> Self {
        AdminApi {
            keys: None,
            teams: None,
            users: None,
            database: None,
            max_budget: None,
            max_body: DEFAULT_MAX_BODY,
            reloader: None,
        }
    }

    /// What `POST /config/reload` calls (without one it answers 400 `no_config_file`).
    #[must_use]
    pub fn reloader(mut self, reloader: Option<Arc<dyn Reloader>>) -> Self {
        self.reloader = reloader;
        self
    }

    /// The keys `/key/*` manages.
    #[must_use]
    pub fn keys(mut self, keys: Option<KeyAdmin>) -> Self {
        self.keys = keys;
        self
    }

    /// The teams `/team/*` manages.
    #[must_use]
    pub fn teams(mut self, teams: Option<TeamAdmin>) -> Self {
        self.teams = teams;
        self
    }

    /// The users `/user/*` manages.
    #[must_use]
    pub fn users(mut self, users: Option<UserAdmin>) -> Self {
        self.users = users;
        self
    }

    /// The database the spend endpoints read.
    #[must_use]
    pub fn database(mut self, database: Option<Database>) -> Self {
        self.database = database;
        self
    }

    /// `litellm_settings.max_budget`, which `/global/spend` reports.
    #[must_use]
    pub fn max_budget(mut self, max_budget: Option<f64>) -> Self {
        self.max_budget = max_budget;
        self
    }

    /// The largest request body read, in bytes (a larger one answers 413).
    #[must_use]
    pub fn max_body(mut self, max_body: usize) -> Self {
        self.max_body = max_body;
        self
    }

    /// The admin router. Each endpoint checks its own method (405 in OpenAI's shape, not
    /// axum's); a path it does not serve answers 404 in the same shape. A spend path with a
    /// trailing `/` and any path under `/key/` reach their API through the fallback, which
    /// answers as the routes do.
    pub fn router(self) -> Router {
        let customer_keys = self.keys.as_ref().map(|k| k.keys().clone());
        let apis = Arc::new(Apis {
            keys: KeyApi {
                admin: self.keys,
                max_body: self.max_body,
            },
            budgets: crate::budgets::api::BudgetApi {
                keys: customer_keys.clone(),
                max_body: self.max_body,
            },
            customers: crate::customers::CustomerApi {
                keys: customer_keys,
                max_body: self.max_body,
            },
            teams: TeamApi {
                admin: self.teams,
                max_body: self.max_body,
            },
            users: UserApi {
                admin: self.users,
                max_body: self.max_body,
            },
            spend: SpendApi {
                db: self.database,
                max_budget: self.max_budget,
            },
            reloader: self.reloader,
        });
        Router::new()
            .route("/key/{*rest}", any(crate::keys::api::handler))
            .route("/team/{*rest}", any(crate::teams::api::handler))
            .route("/user/{*rest}", any(crate::users::api::handler))
            .route("/customer/{*rest}", any(crate::customers::handler))
            .route("/end_user/{*rest}", any(crate::customers::handler))
            .route("/budget/{*rest}", any(crate::budgets::api::handler))
            .route("/spend/logs", any(crate::spend::handler))
            .route("/global/spend", any(crate::spend::handler))
            .route("/global/spend/models", any(crate::spend::handler))
            .route("/global/spend/keys", any(crate::spend::handler))
            .route("/global/spend/provider", any(crate::spend::handler))
            .route("/global/spend/days", any(crate::spend::handler))
            .route("/global/spend/teams", any(crate::spend::handler))
            .route("/global/spend/users", any(crate::spend::handler))
            .route("/global/spend/end_users", any(crate::spend::handler))
            .route("/global/spend/report", any(crate::spend::handler))
            .route("/user/daily/activity", any(crate::spend::handler))
            .route(crate::overview::PATH, any(crate::spend::handler))
            .route(RELOAD_PATH, any(crate::reload::handler))
            .fallback(fallback)
            .with_state(apis)
    }

    /// The [`router`](AdminApi::router) over any request body, answering
    /// [`BoxBody`] responses: for hosts that speak plain Tower rather than axum.
    pub fn service<B>(
        self,
    ) -> BoxCloneSyncService<http::Request<B>, http::Response<BoxBody>, BoxError>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let router =
            ServiceExt::<http::Request<B>>::map_response(self.router(), |res: Response| {
                res.map(|b| b.map_err(BoxError::from).boxed_unsync())
            });
        let router = ServiceExt::<http::Request<B>>::map_err(router, |e: Infallible| -> BoxError {
            match e {}
        });
        BoxCloneSyncService::new(router)
    }
}

/// The APIs, the router's state.
pub(crate) struct Apis {
    pub(crate) keys: KeyApi,
    pub(crate) teams: TeamApi,
    pub(crate) users: UserApi,
    pub(crate) customers: crate::customers::CustomerApi,
    pub(crate) budgets: crate::budgets::api::BudgetApi,
    pub(crate) spend: SpendApi,
    pub(crate) reloader: Option<Arc<dyn Reloader>>,
}

/// Paths no route matched: `/key/` and below (the key API's own 404), spend paths with a
/// trailing `/`, else 404.
async fn fallback(state: State<Arc<Apis>>, req: Request) -> Response {
    let path = req.uri().path();
    if path.starts_with("/key/") {
        return crate::keys::api::handler(state, req).await;
    }
    if path.starts_with("/team/") {
        return crate::teams::api::handler(state, req).await;
    }
    if path.starts_with("/customer/") || path.starts_with("/end_user/") {
        return crate::customers::handler(state, req).await;
    }
    if path.starts_with("/budget/") {
        return crate::budgets::api::handler(state, req).await;
    }
    if is_spend_path(path) {
        return crate::spend::handler(state, req).await;
    }
    if path.starts_with("/user/") {
        return crate::users::api::handler(state, req).await;
    }
    ApiError::new(
        StatusCode::NOT_FOUND,
        Origin::Downstream,
        format!("no route for {path}"),
    )
    .with_type(ErrorType::NOT_FOUND)
    .with_code("not_found")
    .to_response()
    .into_response()
}

/// A handler's answer: 200 with the JSON value, or the error in OpenAI's shape.
pub(crate) fn respond(result: Result<Value, ApiError>) -> Response {
    match result {
        Ok(v) => {
            let bytes = Bytes::from(serde_json::to_vec(&v).unwrap_or_default());
            let mut res = http::Response::new(body::full(bytes));
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            res.into_response()
        }
        Err(e) => e.to_response().into_response(),
    }
}

#[cfg(test)]
mod tests {
    use http::{Method, Request, StatusCode};
    use http_body_util::{BodyExt, Full};
    use serde_json::Value;
    use tower::ServiceExt;

    use super::AdminApi;

    async fn call(method: Method, path: &str) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .body(Full::new(bytes::Bytes::new()))
            .unwrap();
        let res = AdminApi::new().router().oneshot(req).await.unwrap();
        let status = res.status();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn every_answer_is_in_openai_shape() {
        // A spend path with a trailing slash reaches the spend API (no database here).
        let (status, body) = call(Method::GET, "/spend/logs/").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], "no_database");
        // The spend API checks its method itself.
        let (status, body) = call(Method::POST, "/global/spend").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(body["error"]["code"], "method_not_allowed");
        // Under /key/, the key API's own 404 and 405, before it looks for a key store.
        let (status, body) = call(Method::GET, "/key/").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("the key API is /key/generate"),
            "{message}"
        );
        let (status, body) = call(Method::POST, "/key/info").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            body["error"]["message"],
            "method POST is not allowed on /key/info; use GET"
        );
        let (status, body) = call(Method::POST, "/key/generate").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], "no_master_key");
        // Anything else: 404, not axum's empty one.
        let (status, body) = call(Method::GET, "/organization/new").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"]["code"], "not_found");
        // The user API checks its methods as the key API does.
        let (status, body) = call(Method::GET, "/user/new").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(body["error"]["code"], "method_not_allowed");
        // The team API checks its methods as the key API does.
        let (status, body) = call(Method::GET, "/team/new").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(body["error"]["code"], "method_not_allowed");
    }
}
