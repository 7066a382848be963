use std::sync::Arc;
use std::task::{Context, Poll};

use http::{header, HeaderMap, HeaderName, Request, Response};
use llmgate_core::{
    ApiError, BoxBody, Clock, EndUserId, LlmRequest, ModelAccess, Principal, ResolveModel, Secret,
    VirtualKey,
};
use subtle::ConstantTimeEq;
use tower::Service;

use crate::{Authenticated, Budgets, EndUserBudget, Error, Holders, Keys, ResponseFuture};

/// Authenticates each request; see the crate docs.
#[derive(Debug, Clone)]
pub struct Auth<S> {
    inner: S,
    master_key: Option<Secret>,
    /// Shared: the service is cloned for every request, and `Keys` holds a dozen handles.
    keys: Option<Arc<Keys>>,
    resolver: Option<Arc<dyn ResolveModel>>,
    /// The gateway's own budget, for requests without a virtual key.
    proxy: Option<Budgets>,
    /// The headers that name the end user, first found first (see [`END_USER_HEADERS`]).
    end_user_headers: Arc<[HeaderName]>,
}

/// What the synchronous part of authentication decided.
enum Verdict<'a> {
    Let(Principal),
    Reject(Error),
    /// A virtual key: look it up.
    Lookup(&'a str),
}

impl<S> Auth<S> {
    /// Wraps `inner`: the master key only.
    pub fn new(inner: S, master_key: Option<Secret>) -> Self {
        Auth {
            inner,
            master_key,
            keys: None,
            resolver: None,
            proxy: None,
            end_user_headers: standard_end_user_headers(),
        }
    }

    /// Wraps `inner`: the master key and virtual keys.
    pub fn with_keys(inner: S, master_key: Option<Secret>, keys: Option<Keys>) -> Self {
        Auth {
            inner,
            master_key,
            keys: keys.map(Arc::new),
            resolver: None,
            proxy: None,
            end_user_headers: standard_end_user_headers(),
        }
    }

    /// Reads the end user from `headers` too (after LiteLLM's two standard ones, before the
    /// body's `user`).
    #[must_use]
    pub fn with_end_user_headers(mut self, headers: Arc<[HeaderName]>) -> Self {
        self.end_user_headers = headers;
        self
    }

    /// See [`AuthLayer::with_proxy_budget`](crate::AuthLayer::with_proxy_budget).
    #[must_use]
    pub fn with_proxy_budget(mut self, budgets: Option<Budgets>) -> Self {
        self.proxy = budgets;
        self
    }

    /// See [`AuthLayer::with_model_resolver`](crate::AuthLayer::with_model_resolver).
    #[must_use]
    pub fn with_model_resolver(mut self, resolver: Option<Arc<dyn ResolveModel>>) -> Self {
        self.resolver = resolver;
        self
    }

    fn verdict<'h>(&self, headers: &'h HeaderMap) -> Verdict<'h> {
        let Some(master) = &self.master_key else {
            return Verdict::Let(Principal::Anonymous);
        };
        let presented = match credential(headers) {
            Ok(Some(k)) => k,
            Ok(None) => return Verdict::Reject(Error::MissingKey),
            Err(e) => return Verdict::Reject(e),
        };
        if bool::from(presented.as_bytes().ct_eq(master.expose().as_bytes())) {
            Verdict::Let(Principal::Master)
        } else if self.keys.is_some() {
            Verdict::Lookup(presented)
        } else {
            Verdict::Reject(Error::InvalidKey)
        }
    }
}

/// The credential a request presents: `x-litellm-api-key` first (LiteLLM's header for the
/// gateway's key when `Authorization` carries something else), else `Authorization: Bearer
/// <key>`, else `x-api-key`, else `api-key`. `Ok(None)` when there is none; an `Authorization`
/// header that is present but not `Bearer <key>` is an error rather than a silent fall-through
/// to the other headers.
pub fn credential(headers: &HeaderMap) -> Result<Option<&str>, Error> {
    if let Some(v) = headers.get(LITELLM_KEY_HEADER) {
        let key = v.to_str().map_err(|_| Error::MalformedHeader)?;
        let key = key.strip_prefix("Bearer ").unwrap_or(key).trim();
        if !key.is_empty() {
            return Ok(Some(key));
        }
    }
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        let v = v.to_str().map_err(|_| Error::MalformedHeader)?;
        let key = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or(Error::MalformedHeader)?;
        return Ok(Some(key));
    }
    for name in ["x-api-key", "api-key"] {
        if let Some(v) = headers.get(name) {
            let key = v.to_str().map_err(|_| Error::MalformedHeader)?.trim();
            if !key.is_empty() {
                return Ok(Some(key));
            }
        }
    }
    Ok(None)
}

/// LiteLLM's header for the gateway's own key.
pub const LITELLM_KEY_HEADER: &str = "x-litellm-api-key";

impl<S, B> Service<Request<B>> for Auth<S>
where
    S: Service<Request<B>, Response = Response<BoxBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<BoxBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        match self.verdict(req.headers()) {
            Verdict::Let(principal) => {
                req.extensions_mut().insert(principal);
                let names_end_user = note_end_user(&mut req, &self.end_user_headers);
                let keys = self.keys.as_ref().filter(|_| names_end_user).cloned();
                let budgets = self
                    .proxy
                    .clone()
                    .or_else(|| keys.as_ref().and_then(|k| k.budget_ledger().cloned()));
                if budgets.is_none() && keys.is_none() {
                    return ResponseFuture::inner(inner.call(req));
                }
                let now = self
                    .keys
                    .as_ref()
                    .map_or_else(|| llmgate_core::SystemClock.now(), |k| k.clock().now());
                ResponseFuture::lookup(Box::pin(async move {
                    let held = async {
                        let end_user = end_user_of(keys.as_deref(), &mut req).await?;
                        match &budgets {
                            Some(b) => {
                                let holders = Holders {
                                    end_user: end_user.as_ref(),
                                    ..Holders::default()
                                };
                                hold(b, None, holders, &mut req, now).await
                            }
                            None => Ok(()),
                        }
                    };
                    match held.await {
                        Ok(()) => inner.call(req).await,
                        Err(e) => Ok(ApiError::from_contract(&e).to_response()),
                    }
                }))
            }
            Verdict::Reject(e) => ResponseFuture::reject(ApiError::from_contract(&e).to_response()),
            Verdict::Lookup(secret) => {
                let secret = secret.to_string();
                let resolver = self.resolver.clone();
                note_end_user(&mut req, &self.end_user_headers);
                let Some(keys) = self.keys.clone() else {
                    return ResponseFuture::reject(
                        ApiError::from_contract(&Error::InvalidKey).to_response(),
                    );
                };
                ResponseFuture::lookup(Box::pin(async move {
                    let model = req
                        .extensions()
                        .get::<LlmRequest>()
                        .map(|r| r.model().to_string());
                    let Authenticated {
                        key,
                        team,
                        user,
                        alias,
                    } = match keys
                        .authenticate(&secret, model.as_deref(), resolver.as_deref())
                        .await
                    {
                        Ok(a) => a,
                        Err(e) => return Ok(ApiError::from_contract(&e).to_response()),
                    };
                    if let Err(e) = admit(&key, alias.as_deref(), &mut req) {
                        return Ok(ApiError::from_contract(&e).to_response());
                    }
                    let end_user = match end_user_of(Some(&keys), &mut req).await {
                        Ok(u) => u,
                        Err(e) => return Ok(ApiError::from_contract(&e).to_response()),
                    };
                    // A key with a budget reserves the request's estimated cost in the
                    // ledger every instance shares; metering settles it.
                    if let Some(budgets) = keys.budget_ledger() {
                        let now = keys.clock().now();
                        let holders = Holders {
                            team: team.as_ref(),
                            user: user.as_ref(),
                            end_user: end_user.as_ref(),
                        };
                        let held = hold(budgets, Some(&key), holders, &mut req, now).await;
                        if let Err(e) = held {
                            return Ok(ApiError::from_contract(&e).to_response());
                        }
                    }
                    // The router holds every attempt (fallbacks included) to it.
                    let mut access = ModelAccess::new(key.clone());
                    if let Some(team) = team {
                        access = access.and(team.item.clone());
                        // The rate limiter counts the team's limits for the whole team.
                        req.extensions_mut().insert(team.item);
                    }
                    if let Some(user) = user {
                        access = access.and(user.item.clone());
                        // The rate limiter counts the user's limits for all their keys, and
                        // the admin API answers as the user's role allows.
                        req.extensions_mut().insert(user.item);
                    }
                    req.extensions_mut().insert(access);
                    req.extensions_mut().insert(Principal::Key(key));
                    inner.call(req).await
                }))
            }
        }
    }
}

/// The key's route and field rules (`key_type`, `allowed_routes`, `enforced_params`); then the
/// request is sent on for the group `alias` names, when the name was an alias.
fn admit<B>(key: &VirtualKey, alias: Option<&str>, req: &mut Request<B>) -> Result<(), Error> {
    crate::rules::check_route(key, req.uri().path())?;
    let llm = req.extensions().get::<LlmRequest>();
    crate::rules::check_params(key, llm)?;
    if let Some(aliased) = alias.and_then(|a| llm.map(|r| r.with_model(a))) {
        req.extensions_mut().insert(aliased);
    }
    Ok(())
}

/// The request's end user, checked; its budget, if it has one. An end user with rate limits
/// goes in the extensions (as `Arc<EndUser>`) for the rate limiter.
async fn end_user_of<B>(
    keys: Option<&Keys>,
    req: &mut Request<B>,
) -> Result<Option<EndUserBudget>, Error> {
    let id = req.extensions().get::<EndUserId>().map(|u| u.0.clone());
    let found = match (keys, id) {
        (Some(keys), Some(id)) => keys.end_user(&id).await?,
        _ => return Ok(None),
    };
    if let Some(user) = found.limited {
        req.extensions_mut().insert(user);
    }
    Ok(found.budget)
}

/// LiteLLM's headers naming the end user, read before any configured one and the body's
/// `user` (`x-litellm-customer-id` first).
pub const END_USER_HEADERS: [&str; 2] = ["x-litellm-customer-id", "x-litellm-end-user-id"];

fn standard_end_user_headers() -> Arc<[HeaderName]> {
    END_USER_HEADERS
        .iter()
        .map(|h| HeaderName::from_static(h))
        .collect()
}

/// Finds the request's end user (the first of `headers` that is set, else the body's `user`)
/// and puts it in the extensions as [`EndUserId`]; whether there is one.
fn note_end_user<B>(req: &mut Request<B>, headers: &[HeaderName]) -> bool {
    let from_header = headers.iter().find_map(|name| {
        let v = req.headers().get(name)?.to_str().ok()?.trim();
        (!v.is_empty() && v.len() <= MAX_END_USER_BYTES).then_some(v)
    });
    let id: Option<Arc<str>> = match from_header {
        Some(v) => Some(v.into()),
        None => req
            .extensions()
            .get::<LlmRequest>()
            .and_then(LlmRequest::end_user)
            .map(Arc::from),
    };
    match id {
        Some(id) => {
            req.extensions_mut().insert(EndUserId(id));
            true
        }
        None => false,
    }
}

/// The longest end-user id a header may give (a longer one is ignored).
const MAX_END_USER_BYTES: usize = 256;

/// Reserves the request's estimated cost against `key`'s budgets and the gateway's, and puts
/// the hold in its extensions for metering to settle.
async fn hold<B>(
    budgets: &Budgets,
    key: Option<&VirtualKey>,
    holders: Holders<'_>,
    req: &mut Request<B>,
    now: i64,
) -> Result<(), Error> {
    let llm = req.extensions().get::<LlmRequest>();
    let model = llm.map(|r| r.model().to_string());
    let estimate = || budgets.estimate(llm);
    if let Some(hold) = budgets
        .hold(key, holders, model.as_deref(), estimate, now)
        .await?
    {
        req.extensions_mut().insert(hold);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use llmgate_core::body;
    use tower::{service_fn, ServiceExt};

    fn svc(
        key: Option<&str>,
    ) -> impl Service<Request<()>, Response = Response<BoxBody>, Error = std::convert::Infallible> + Clone
    {
        Auth::new(
            service_fn(|req: Request<()>| async move {
                let p = req.extensions().get::<Principal>().cloned();
                Ok(Response::new(body::full(format!("{p:?}"))))
            }),
            key.map(Secret::new),
        )
    }

    async fn call(key: Option<&str>, headers: &[(&str, &str)]) -> (u16, serde_json::Value) {
        let mut req = Request::builder();
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = svc(key).oneshot(req.body(()).unwrap()).await.unwrap();
        let status = res.status().as_u16();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let v = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, v)
    }

    #[tokio::test]
    async fn open_gateway_is_anonymous() {
        assert_eq!(call(None, &[]).await, (200, "Some(Anonymous)".into()));
    }

    #[tokio::test]
    async fn master_key_in_each_header() {
        for h in ["authorization", "x-api-key", "api-key"] {
            let v = if h == "authorization" {
                "Bearer sk-m"
            } else {
                "sk-m"
            };
            assert_eq!(
                call(Some("sk-m"), &[(h, v)]).await,
                (200, "Some(Master)".into())
            );
        }
    }

    #[tokio::test]
    async fn x_litellm_api_key_wins_over_authorization() {
        // LiteLLM's clients put the gateway's key here when Authorization carries another one.
        assert_eq!(
            call(
                Some("sk-m"),
                &[
                    ("x-litellm-api-key", "sk-m"),
                    ("authorization", "Bearer sk-provider")
                ]
            )
            .await,
            (200, "Some(Master)".into())
        );
        assert_eq!(
            call(Some("sk-m"), &[("x-litellm-api-key", "Bearer sk-m")]).await,
            (200, "Some(Master)".into())
        );
        let (status, _) = call(Some("sk-m"), &[("x-litellm-api-key", "sk-wrong")]).await;
        assert_eq!(status, 401);
    }

    #[tokio::test]
    async fn rejections_are_openai_shaped_401s() {
        let (s, v) = call(Some("sk-m"), &[]).await;
        assert_eq!(s, 401);
        assert_eq!(v["error"]["type"], "authentication_error");
        assert_eq!(v["error"]["code"], "missing_api_key");
        let (s, v) = call(Some("sk-m"), &[("authorization", "Bearer sk-wrong")]).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (401, Some("invalid_api_key"))
        );
        let (s, v) = call(Some("sk-m"), &[("authorization", "sk-m")]).await;
        assert_eq!(s, 401);
        assert!(v["error"]["message"].as_str().unwrap().contains("Bearer"));
        // A prefix of the key is not the key.
        assert_eq!(
            call(Some("sk-m"), &[("authorization", "Bearer sk-")])
                .await
                .0,
            401
        );
    }
}
