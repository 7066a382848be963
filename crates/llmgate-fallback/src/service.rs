use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderMap, Request, Response, StatusCode};
use llmgate_core::{ApiError, BoxBody, BoxError, ErrorType, ForcedErrors, Origin, Principal};
use tower::Service;

use crate::{run, FallbackPolicy};

/// The request header a master-key caller uses to force errors on named deployments for one
/// request: `x-llmgate-mock-error: <deployment id>=<status>[, <deployment id>=<status>...]`.
pub const MOCK_ERROR_HEADER: &str = "x-llmgate-mock-error";

/// Retries and falls back; see the crate docs.
#[derive(Debug, Clone)]
pub struct Fallback<S> {
    inner: S,
    policy: Arc<FallbackPolicy>,
}

impl<S> Fallback<S> {
    /// Wraps `inner` (the router and what is under it).
    pub fn new(inner: S, policy: Arc<FallbackPolicy>) -> Self {
        Fallback { inner, policy }
    }
}

/// Response future of [`Fallback`]. Boxed: it runs a loop of attempts with sleeps between
/// some of them, allocated once per request.
pub type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<Response<BoxBody>, BoxError>> + Send + 'static>>;

impl<S, B> Service<Request<B>> for Fallback<S>
where
    S: Service<Request<B>, Response = Response<BoxBody>, Error = BoxError> + Clone + Send + 'static,
    S::Future: Send,
    B: Clone + Send + 'static,
{
    type Response = Response<BoxBody>;
    type Error = BoxError;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // Each attempt drives the inner service to readiness itself (`oneshot`).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        match forced_errors(req.headers(), req.extensions().get::<Principal>()) {
            Ok(Some(forced)) => {
                req.extensions_mut().insert(forced);
            }
            Ok(None) => {}
            Err(e) => return Box::pin(std::future::ready(Err(e.boxed()))),
        }
        Box::pin(run::run(self.inner.clone(), self.policy.clone(), req))
    }
}

/// Parses [`MOCK_ERROR_HEADER`]; only the master key (or an open gateway) may use it.
fn forced_errors(
    headers: &HeaderMap,
    principal: Option<&Principal>,
) -> Result<Option<ForcedErrors>, ApiError> {
    let Some(value) = headers.get(MOCK_ERROR_HEADER) else {
        return Ok(None);
    };
    if !matches!(
        principal,
        None | Some(Principal::Master | Principal::Anonymous)
    ) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            Origin::Downstream,
            format!("{MOCK_ERROR_HEADER} needs the master key"),
        )
        .with_type(ErrorType::PERMISSION));
    }
    let bad = || {
        ApiError::bad_request(format!(
            "{MOCK_ERROR_HEADER} must be `<deployment id>=<status>[, ...]`, with statuses 400-599"
        ))
        .with_param(MOCK_ERROR_HEADER)
    };
    let text = value.to_str().map_err(|_| bad())?;
    let mut out = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (id, status) = item.rsplit_once('=').ok_or_else(bad)?;
        let status: u16 = status.trim().parse().map_err(|_| bad())?;
        if !(400..=599).contains(&status) {
            return Err(bad());
        }
        out.push((Arc::from(id.trim()), status));
    }
    Ok(Some(ForcedErrors(out)))
}
