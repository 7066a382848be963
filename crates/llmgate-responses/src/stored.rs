//! `GET` and `DELETE /v1/responses/{id}` (and `/responses/{id}`): a stored response, for the
//! key that made it; `GET /v1/responses/{id}/input_items`: its conversation's input items. Mount it behind auth; it scopes by the credential as the layer does
//! ([`crate::owner`]).

use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use http::{Method, Request, Response, StatusCode};
use llmgate_core::{ApiError, BoxBody, BoxError, ErrorType, Origin};
use serde_json::json;
use tower::Service;

use crate::owner;
use crate::response::ok_json;
use crate::store::SharedStore;

/// The id in a `/v1/responses/{id}` or `/v1/responses/{id}/input_items` path (or the same
/// without `/v1`).
pub fn response_id(path: &str) -> Option<&str> {
    let rest = path
        .strip_prefix("/v1/responses/")
        .or_else(|| path.strip_prefix("/responses/"))?;
    let id = rest.strip_suffix("/input_items").unwrap_or(rest);
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

fn wants_input_items(path: &str) -> bool {
    path.ends_with("/input_items")
}

/// Answers `GET` (the response object) and `DELETE` (`{"id", "object": "response",
/// "deleted": true}`) for stored responses; 404 for another key's or an unknown id.
#[derive(Debug, Clone)]
pub struct StoredResponses {
    store: SharedStore,
}

impl StoredResponses {
    /// Over `store`.
    pub fn new(store: SharedStore) -> Self {
        StoredResponses { store }
    }
}

impl<B> Service<Request<B>> for StoredResponses {
    type Response = Response<BoxBody>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response<BoxBody>, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let store = self.store.clone();
        let owner = owner::of(req.headers());
        let id = response_id(req.uri().path()).map(str::to_owned);
        let method = req.method().clone();
        let items = wants_input_items(req.uri().path());
        let query = req.uri().query().map(str::to_owned);
        Box::pin(async move {
            let Some(id) = id else {
                return Ok(not_found("?"));
            };
            let res = match method {
                Method::GET | Method::HEAD if items => match store.load(&owner, &id).await {
                    Ok(Some(r)) => ok_json(&crate::input_items::page(&r.input, query.as_deref())),
                    Ok(None) => not_found(&id),
                    Err(e) => unavailable(&e),
                },
                Method::GET | Method::HEAD => match store.load(&owner, &id).await {
                    Ok(Some(r)) => ok_json(&r.response),
                    Ok(None) => not_found(&id),
                    Err(e) => unavailable(&e),
                },
                Method::DELETE if !items => match store.delete(&owner, &id).await {
                    Ok(true) => ok_json(&json!({"id": id, "object": "response", "deleted": true})),
                    Ok(false) => not_found(&id),
                    Err(e) => unavailable(&e),
                },
                _ => ApiError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    Origin::Downstream,
                    format!(
                        "method {method} is not allowed here; use GET (or DELETE on a response)"
                    ),
                )
                .with_code("method_not_allowed")
                .to_response(),
            };
            Ok::<_, BoxError>(res)
        })
    }
}

fn not_found(id: &str) -> Response<BoxBody> {
    ApiError::new(
        StatusCode::NOT_FOUND,
        Origin::Downstream,
        format!("Response with id '{id}' not found."),
    )
    .with_type(ErrorType::INVALID_REQUEST)
    .with_code("not_found")
    .to_response()
}

fn unavailable(e: &dyn std::error::Error) -> Response<BoxBody> {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        Origin::Internal,
        e.to_string(),
    )
    .to_response()
}
