//! `GET` and `DELETE /v1/responses/{id}` (and `/responses/{id}`): a stored response, for the
//! key that made it; `GET /v1/responses/{id}/input_items`: its conversation's input items.
//! Mount it behind auth; it scopes by the credential as the layer does ([`crate::owner`]).
//!
//! A response stored upstream (its id names its deployment, [`crate::pinned`]) is read or
//! deleted there: the request goes to the [`Forward`] service (the router and the provider)
//! pinned to that deployment, as a [`ResponsesCall`], and the answer's ids are made the
//! client's again.

use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use llmgate_core::wire::ChatCompletionRequest;
use llmgate_core::{
    ApiError, BoxBody, BoxError, Endpoint, ErrorType, GatewayParams, LlmBody, LlmRequest,
    NativeResponses, Origin, PinnedDeployment, ResponsesCall,
};
use serde_json::json;
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceExt};

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
#[derive(Clone)]
pub struct StoredResponses {
    store: SharedStore,
    forward: Option<Forward>,
}

/// Where calls for responses stored upstream go: a stack that routes by
/// [`PinnedDeployment`] and serves [`NativeResponses`] (the router over the provider).
pub type Forward = BoxCloneSyncService<Request<Bytes>, Response<BoxBody>, BoxError>;

impl std::fmt::Debug for StoredResponses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredResponses")
            .field("store", &self.store)
            .field("forward", &self.forward.is_some())
            .finish()
    }
}

impl StoredResponses {
    /// Over `store`; ids of responses stored upstream are not found without [`Self::forward`].
    pub fn new(store: SharedStore) -> Self {
        StoredResponses {
            store,
            forward: None,
        }
    }

    /// Reads and deletes responses stored upstream through `forward`.
    #[must_use]
    pub fn forward(mut self, forward: Forward) -> Self {
        self.forward = Some(forward);
        self
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
        let forwarded_method =
            matches!(method, Method::GET | Method::HEAD) || (method == Method::DELETE && !items);
        if let (Some(pin), Some(forward), true) = (
            id.as_deref().and_then(crate::pinned::decode),
            self.forward.clone(),
            forwarded_method,
        ) {
            let call = if method == Method::DELETE {
                ResponsesCall::Delete { id: pin.response }
            } else {
                ResponsesCall::Retrieve {
                    id: pin.response,
                    input_items: items,
                    query,
                }
            };
            let ext = req.extensions().clone();
            return Box::pin(forwarded(forward, pin.deployment, call, ext));
        }
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

/// Sends `call` to `deployment` through `forward` (with the caller's extensions: its
/// principal and the models it may reach) and makes the answer's ids the client's.
async fn forwarded(
    forward: Forward,
    deployment: String,
    call: ResponsesCall,
    mut ext: http::Extensions,
) -> Result<Response<BoxBody>, BoxError> {
    let why = ApiError::bad_request(format!(
        "this response is stored upstream by deployment \"{deployment}\", which no longer \
         serves the Responses API itself"
    ));
    ext.insert(PinnedDeployment(deployment.as_str().into()));
    ext.insert(NativeResponses::only_native(call, why));
    // Read by the router and the provider; this call has no chat request of its own.
    let chat: ChatCompletionRequest = serde_json::from_value(json!({"model": "", "messages": []}))?;
    ext.insert(LlmRequest::from_parts(
        Endpoint::ChatCompletions,
        LlmBody::Chat(chat),
        GatewayParams::default(),
    ));
    let mut req = Request::new(Bytes::new());
    *req.extensions_mut() = ext;
    let res = match forward.oneshot(req).await {
        Ok(res) => res,
        Err(e) => return Ok(ApiError::from_box(e).to_response()),
    };
    if !res.status().is_success() {
        return Ok(res);
    }
    let (parts, body) = res.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(crate::native::complete_response(parts, &body))
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
