use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response, StatusCode};
use llmgate_core::{
    ApiError, Attribution, BoxBody, BoxError, Deployment, ForcedErrors, LlmRequest, ModelAccess,
    ModelGroup, NativeResponses, Origin, PinnedDeployment, RequestId, RouteHint, RouteSlot, Routed,
};
use tower::Service;

use crate::error::Error;
use crate::future::{Attempt, ResponseFuture};
use crate::pick::{Picked, Unavailable};
use crate::shared::Taken;
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
    S: Service<Request<B>, Response = Response<BoxBody>, Error = BoxError> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<BoxBody>;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let ext = req.extensions();
        let Some(llm) = ext.get::<LlmRequest>() else {
            return ResponseFuture::respond(ApiError::internal(
                "router: the request has no parsed body (is the parse layer mounted?)",
            ));
        };
        if let Some(pin) = ext.get::<PinnedDeployment>() {
            let id = pin.0.clone();
            return self.pinned(req, &id);
        }
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
        let mut exclude = hint.map(|h| h.exclude.as_slice()).unwrap_or_default();
        // A Responses call only a deployment serving that API can take (built-in tools):
        // the others count as tried, so they are picked only when no native one is left.
        let translated;
        if ext
            .get::<NativeResponses>()
            .is_some_and(|n| n.untranslatable().is_some())
        {
            translated = self.table.excluding_translated(&group, exclude);
            exclude = &translated;
        }
        let stream = llm.is_stream();
        let picked = self.table.pick(&group, exclude, stream, || {
            llmgate_core::tokens::prompt_tokens(llm, llm.model())
        });
        let picked = match picked {
            Ok(p) => p,
            Err(unavailable) => {
                return ResponseFuture::fail(no_deployment(group, unavailable, slot));
            }
        };
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        if picked.shared(&self.table).is_none() {
            return send(self.table.clone(), inner, req, group, picked, slot, None);
        }
        // The deployment's limits are shared with other instances: one round trip to the store
        // before sending (see `shared.rs`).
        let exclude = exclude.to_vec();
        let table = self.table.clone();
        ResponseFuture::shared(async move {
            let (req, taken) = take_shared(&table, req, &group, &exclude, stream, picked).await;
            match taken {
                Ok((picked, reserved)) => {
                    send(table, inner, req, group, picked, slot, reserved).await
                }
                Err(unavailable) => Err(no_deployment(group, unavailable, slot).boxed()),
            }
        })
    }
}

impl<S> Router<S> {
    /// Routes a request pinned to deployment `id`: every attempt goes there (fallback groups
    /// and exclusions do not apply), after the caller's access to its group is checked. Its
    /// limits are counted on this instance only (a shared store's refusal would send the
    /// request elsewhere, and there is no elsewhere).
    fn pinned<B>(&mut self, req: Request<B>, id: &Arc<str>) -> ResponseFuture<S::Future>
    where
        S: Service<Request<B>, Response = Response<BoxBody>, Error = BoxError> + Clone,
    {
        let Some((group, picked)) = self.table.pin(id) else {
            return ResponseFuture::fail(Error::PinnedGone(id.clone()).into());
        };
        let slot = req.extensions().get::<RouteSlot>().cloned();
        let access = req.extensions().get::<ModelAccess>();
        if let Some(list) = access.and_then(|a| a.refusing(&group, &group)) {
            let refused = Error::ModelNotAllowed {
                model: group.to_string(),
                group: group.clone(),
                allowed: list.describe(),
            };
            if let Some(slot) = &slot {
                slot.deny(Routed {
                    group,
                    deployment: None,
                    alternatives: 0,
                });
            }
            return ResponseFuture::fail(refused.into());
        }
        let picked = match picked {
            Ok(p) => p,
            Err(unavailable) => {
                return ResponseFuture::fail(no_deployment(group, unavailable, slot))
            }
        };
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        send(self.table.clone(), inner, req, group, picked, slot, None)
    }
}

/// Takes `picked` from the shared store; when the store says it is at a limit across the
/// instances, picks again among the rest (each refusal skips that deployment here for a
/// moment), until one is taken or none is left. A store that cannot answer leaves the local
/// pick standing. Returns the pick and, when its `tpm` was reserved, the store's time of it
/// (with the request, held by value: a reference held across the wait would need `B: Sync`).
async fn take_shared<B>(
    table: &ModelTable,
    req: Request<B>,
    group: &Arc<str>,
    exclude: &[Arc<str>],
    stream: bool,
    picked: Picked,
) -> (Request<B>, Result<(Picked, Option<u64>), Unavailable>) {
    let llm = req.extensions().get::<LlmRequest>();
    let taken = take_loop(table, llm, group, exclude, stream, picked).await;
    (req, taken)
}

async fn take_loop(
    table: &ModelTable,
    llm: Option<&LlmRequest>,
    group: &Arc<str>,
    exclude: &[Arc<str>],
    stream: bool,
    mut picked: Picked,
) -> Result<(Picked, Option<u64>), Unavailable> {
    loop {
        let Some(shared) = picked.shared(table) else {
            return Ok((picked, None));
        };
        match shared.take(&picked.member.spec, picked.day).await {
            Ok(Taken::Admitted { at }) => {
                let reserved = picked.member.spec.tpm.map(|_| at);
                return Ok((picked, reserved));
            }
            Ok(Taken::Denied { limit, retry_after }) => {
                table.shared_denied(&picked, limit, retry_after);
                picked = table.pick(group, exclude, stream, || {
                    llm.map_or(0, |llm| {
                        llmgate_core::tokens::prompt_tokens(llm, llm.model())
                    })
                })?;
            }
            Err(e) => {
                table.shared_failed(&e);
                return Ok((picked, None));
            }
        }
    }
}

/// The failure when no deployment of `group` can take the request.
fn no_deployment(group: Arc<str>, unavailable: Unavailable, slot: Option<RouteSlot>) -> ApiError {
    if let Some(slot) = slot {
        slot.set(Routed {
            group: group.clone(),
            deployment: None,
            alternatives: 0,
        });
    }
    tracing::debug!(%group, "no deployment available");
    let e = ApiError::from(Error::unavailable(group.clone(), unavailable));
    e.with_attribution(Attribution::attempt(group, None))
}

/// Sends the request to the picked deployment (or fails it as the request or config forces).
fn send<S, B>(
    table: Arc<ModelTable>,
    mut inner: S,
    mut req: Request<B>,
    group: Arc<str>,
    picked: Picked,
    slot: Option<RouteSlot>,
    reserved: Option<u64>,
) -> ResponseFuture<S::Future>
where
    S: Service<Request<B>, Response = Response<BoxBody>, Error = BoxError>,
{
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

    let ext = req.extensions();
    let forced = ext
        .get::<RouteHint>()
        .and_then(|h| h.fail_with)
        .or_else(|| {
            ext.get::<ForcedErrors>().and_then(|f| {
                f.0.iter()
                    .find(|(id, _)| **id == *deployment.id)
                    .map(|(_, s)| *s)
            })
        });
    let stream = ext.get::<LlmRequest>().is_some_and(LlmRequest::is_stream);
    // Started before a forced failure so that a reservation is settled (given back) either way.
    let request_id = ext.get::<RequestId>().cloned();
    // Only read when hanging attempts are watched (alerting sends `llm_requests_hanging`).
    let key_alias = table.hanging.as_ref().and_then(|_| {
        ext.get::<llmgate_core::Principal>()?
            .key()?
            .key_alias
            .clone()
    });
    let attempt = Attempt::start(
        table,
        group.clone(),
        picked.member,
        stream,
        reserved,
        request_id,
        key_alias,
    );
    if let Some(status) = forced {
        let e = forced_error(status, &deployment);
        drop(attempt);
        return ResponseFuture::fail(
            e.with_attribution(Attribution::attempt(group, Some(deployment))),
        );
    }
    req.extensions_mut().insert(ModelGroup(group));
    req.extensions_mut().insert(deployment);
    ResponseFuture::inner(inner.call(req), attempt)
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
