//! `POST /config/reload`: reloads the gateway's config file (see the gateway's
//! `docs/deployment.md`, "Config reload"). Master key only: a virtual key gets 403, and so does
//! a gateway without a master key (nobody may reload it over HTTP).
//!
//! The admin crate does not know the gateway: it calls a [`Reloader`] the gateway gives it
//! ([`crate::AdminApi::reloader`]). The answer is 200 with the reloader's summary, or 400 in
//! OpenAI's error shape with every problem in `error.problems`:
//!
//! ```json
//! {"error": {"message": "...", "type": "invalid_request_error", "param": null,
//!            "code": "config_invalid", "problems": ["...", "..."]}}
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{header, HeaderValue, Method, StatusCode};
use llmgate_core::{body, ApiError, ErrorType, Origin, Principal};
use serde_json::{json, Value};

use crate::router::Apis;

/// The path.
pub const RELOAD_PATH: &str = "/config/reload";

/// Why a reload changed nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadRefusal {
    /// One sentence: what happened (the running config stays).
    pub message: String,
    /// The error's `code`: `config_invalid`, `config_needs_restart` or `no_config_file`.
    pub code: &'static str,
    /// Every problem, one sentence each.
    pub problems: Vec<String>,
}

/// What [`Reloader::reload`] returns.
pub type ReloadFuture<'a> = Pin<Box<dyn Future<Output = Result<Value, ReloadRefusal>> + Send + 'a>>;

/// Reloads the gateway's config: implemented by the gateway, called by `POST /config/reload`.
pub trait Reloader: Send + Sync + 'static {
    /// Loads the config file, validates it whole and applies it; `Ok` with a JSON summary of
    /// what changed, else why nothing did.
    fn reload(&self) -> ReloadFuture<'_>;
}

/// The handler.
pub(crate) async fn handler(State(apis): State<Arc<Apis>>, req: Request) -> Response {
    if req.method() != Method::POST {
        return ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            Origin::Downstream,
            format!(
                "method {} is not allowed on {RELOAD_PATH}; use POST",
                req.method()
            ),
        )
        .with_code("method_not_allowed")
        .to_response()
        .into_response();
    }
    if !matches!(req.extensions().get::<Principal>(), Some(Principal::Master)) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            Origin::Downstream,
            "only the master key may reload the config (set general_settings.master_key to use this endpoint; SIGHUP reloads it without one)",
        )
        .with_type(ErrorType::PERMISSION)
        .with_code("master_key_required")
        .to_response()
        .into_response();
    }
    let Some(reloader) = &apis.reloader else {
        return refused(&ReloadRefusal {
            message: "this gateway cannot reload its config".into(),
            code: "no_config_file",
            problems: Vec::new(),
        });
    };
    match reloader.reload().await {
        Ok(summary) => json_response(StatusCode::OK, &summary),
        Err(refusal) => refused(&refusal),
    }
}

/// 400 in OpenAI's error shape, with `problems`.
fn refused(r: &ReloadRefusal) -> Response {
    let body = json!({
        "error": {
            "message": r.message,
            "type": "invalid_request_error",
            "param": null,
            "code": r.code,
            "problems": r.problems,
        }
    });
    json_response(StatusCode::BAD_REQUEST, &body)
}

fn json_response(status: StatusCode, v: &Value) -> Response {
    let bytes = Bytes::from(serde_json::to_vec(v).unwrap_or_default());
    let mut res = http::Response::new(body::full(bytes));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res.into_response()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use http::{Method, Request, StatusCode};
    use http_body_util::{BodyExt, Full};
    use llmgate_core::Principal;
    use serde_json::{json, Value};
    use tower::ServiceExt;

    use super::*;
    use crate::AdminApi;

    struct Fixed(Result<Value, ReloadRefusal>);

    impl Reloader for Fixed {
        fn reload(&self) -> ReloadFuture<'_> {
            Box::pin(std::future::ready(self.0.clone()))
        }
    }

    async fn call(reloader: Fixed, who: Option<Principal>) -> (StatusCode, Value) {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(RELOAD_PATH)
            .body(Full::new(bytes::Bytes::new()))
            .unwrap();
        if let Some(p) = who {
            req.extensions_mut().insert(p);
        }
        let router = AdminApi::new().reloader(Some(Arc::new(reloader))).router();
        let res = router.oneshot(req).await.unwrap();
        let status = res.status();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn the_master_key_reloads_and_gets_the_summary() {
        let (status, body) = call(
            Fixed(Ok(json!({"models_added": ["b"]}))),
            Some(Principal::Master),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["models_added"][0], "b");
    }

    #[tokio::test]
    async fn every_problem_is_listed_in_openai_shape() {
        let refusal = ReloadRefusal {
            message: "the new config is invalid".into(),
            code: "config_invalid",
            problems: vec!["one".into(), "two".into()],
        };
        let (status, body) = call(Fixed(Err(refusal)), Some(Principal::Master)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["code"], "config_invalid");
        assert_eq!(body["error"]["problems"], json!(["one", "two"]));
    }

    #[tokio::test]
    async fn nobody_but_the_master_key_may_reload() {
        for who in [None, Some(Principal::Anonymous)] {
            let (status, body) = call(Fixed(Ok(json!({}))), who).await;
            assert_eq!(status, StatusCode::FORBIDDEN);
            assert_eq!(body["error"]["code"], "master_key_required");
        }
    }
}
