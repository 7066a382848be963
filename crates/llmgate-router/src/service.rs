use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response, StatusCode};
use llmgate_core::{
    ApiError, Attribution, BoxBody, BoxError, Deployment, ForcedErrors, LlmRequest, ModelAccess,
    ModelGroup, Origin, RouteHint, RouteSlot, Routed,
};
use tower::Service;

use crate::error::Error;
use crate::future::{Attempt, ResponseFuture};
use crate::ModelTable;

/// Routes each request to a deployment; see the crate docs.
#[derive(Debug, Clone)]
pub struct Router<S> {
    inner: S,
    table: Arc<ModelTable>,
}

impl<S> Router<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, table: Arc<ModelTable>) -> Self {
        Router { inner, table }
    }
}

impl<S, B> Service<Request<B>> for Router<S>
where
    S: Service<Request<B>, Response = Response<BoxBody>, Error = BoxError> + Clone,
{
    type Response = Response<BoxBody>;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let ext = req.extensions();
        let Some(llm) = ext.get::<LlmRequest>() else {
            return ResponseFuture::respond(ApiError::internal(
                "router: the request has no parsed body (is the parse layer mounted?)",
            ));
        };
        let hint = ext.get::<RouteHint>();
        let group = match hint.and_then(|h| h.group.as_deref()) {
            // A fallback target: a group, else resolved as a requested model would be (an
            // alias, or a name the catch-all serves), as config validation allows.
            Some(g) => match self.table.group(g).or_else(|| self.table.resolve(g)) {
                Some(g) => g.clone(),
                None => return ResponseFuture::fail(Error::UnknownGroup(g.into()).into()),
            },
            None => match self.table.resolve(llm.model()) {
                Some(g) => g.clone(),
                None => return ResponseFuture::respond(unknown_model(llm.model())),
            },
        };
        let slot = ext.get::<RouteSlot>().cloned();
        // Every attempt, the first and each fallback, is held to the caller's models.
        if let Some(refused) = refuse(ext.get::<ModelAccess>(), hint, llm, &group) {
            if let Some(slot) = &slot {
                slot.deny(Routed {
                    group: group.clone(),
                    deployment: None,
                    alternatives: 0,
                });
            }
            tracing::debug!(%group, "the caller may not reach this group");
            return ResponseFuture::fail(refused.into());
        }
        let exclude = hint.map(|h| h.exclude.as_slice()).unwrap_or_default();
        let picked = self.table.pick(&group, exclude, llm.is_stream(), || {
            llmgate_core::tokens::prompt_tokens(llm, llm.model())
        });
        let picked = match picked {
            Ok(p) => p,
            Err(unavailable) => {
                if let Some(slot) = slot {
                    slot.set(Routed {
                        group: group.clone(),
                        deployment: None,
                        alternatives: 0,
                    });
                }
                tracing::debug!(%group, "no deployment available");
                let e = ApiError::from(Error::unavailable(group.clone(), unavailable));
                return ResponseFuture::fail(e.with_attribution(Attribution::attempt(group, None)));
            }
        };
        let deployment = Deployment(picked.member.spec.clone());
        if let Some(slot) = slot {
            slot.set(Routed {
                group: group.clone(),
                deployment: Some(deployment.clone()),
                alternatives: picked.alternatives,
            });
        }
        let span = tracing::Span::current();
        span.record("model", &*group);
        span.record("deployment", &*deployment.id);

        let forced = hint.and_then(|h| h.fail_with).or_else(|| {
            ext.get::<ForcedErrors>().and_then(|f| {
                f.0.iter()
                    .find(|(id, _)| **id == *deployment.id)
                    .map(|(_, s)| *s)
            })
        });
        if let Some(status) = forced {
            let e = forced_error(status, &deployment);
            return ResponseFuture::fail(
                e.with_attribution(Attribution::attempt(group, Some(deployment))),
            );
        }

        let stream = llm.is_stream();
        req.extensions_mut().insert(ModelGroup(group.clone()));
        req.extensions_mut().insert(deployment);
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let attempt = Attempt::start(self.table.clone(), group, picked.member, stream);
        ResponseFuture::Inner {
            fut: inner.call(req),
            attempt: Some(attempt),
        }
    }
}

/// The refusal when `access` does not permit the name this attempt asks for (a fallback
/// target, else the requested model), resolved to `group`.
fn refuse(
    access: Option<&ModelAccess>,
    hint: Option<&RouteHint>,
    llm: &LlmRequest,
    group: &Arc<str>,
) -> Option<Error> {
    let access = access?;
    let asked = hint
        .and_then(|h| h.group.as_deref())
        .unwrap_or_else(|| llm.model());
    let list = access.refusing(asked, group)?;
    Some(Error::ModelNotAllowed {
        model: asked.to_owned(),
        group: group.clone(),
        allowed: list.describe(),
    })
}

fn unknown_model(model: &str) -> ApiError {
    ApiError::bad_request(format!(
        "model \"{model}\" is not served by this gateway; call /v1/models for the available models"
    ))
    .with_code("model_not_found")
    .with_param("model")
}

/// The failure `mock_testing_fallbacks` or `x-llmgate-mock-error` asks for.
fn forced_error(status: u16, d: &Deployment) -> ApiError {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    ApiError::new(
        status,
        Origin::Upstream,
        format!(
            "{} (deployment {}): mock failure requested for this request (mock_testing_fallbacks or x-llmgate-mock-error)",
            d.provider, d.id
        ),
    )
    .with_code("mock_error")
    // Forced by the request: never the deployment's failure (cooldowns, metrics).
    .with_counts_against_deployment(false)
}
