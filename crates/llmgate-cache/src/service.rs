use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::{Request, Response, StatusCode};
use llmgate_core::{body, headers, BoxBody, CacheStatus, LlmRequest, ModelGroup, Principal};
use tower::Service;

use crate::body::ResponseBody;
use crate::control::Controls;
use crate::entry::{Entry, Kind};
use crate::future::ResponseFuture;
use crate::key::cache_key;
use crate::layer::{CacheLayer, Mode};
use crate::store::CacheStore;

/// Answers repeated requests from a [`CacheStore`]; see the crate docs.
#[derive(Debug, Clone)]
pub struct Cache<S> {
    inner: S,
    config: Arc<CacheLayer>,
}

impl<S> Cache<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, config: Arc<CacheLayer>) -> Self {
        Cache { inner, config }
    }
}

/// What the cache does for one request.
pub(crate) enum Decision {
    /// The cache does not apply (not a cached endpoint, `default_off` without opt-in, a
    /// `mock_response`): straight to the inner service, no header.
    Bypass,
    /// The request's cache controls are malformed: this 400.
    Reject(Response<BoxBody>),
    /// Look up and/or store.
    Use(Plan),
}

/// How one request uses the cache.
pub(crate) struct Plan {
    pub(crate) store: Arc<dyn CacheStore>,
    pub(crate) key: String,
    /// Look the key up before calling the provider.
    pub(crate) read: bool,
    /// Store the answer for this long (`None`: do not store).
    pub(crate) ttl: Option<Duration>,
    /// Accept only entries up to this age.
    pub(crate) max_age: Option<Duration>,
    pub(crate) kind: Kind,
    pub(crate) group: Arc<str>,
    pub(crate) max_entry_bytes: usize,
}

impl CacheLayer {
    pub(crate) fn decide<B>(&self, req: &Request<B>) -> Decision {
        let Some(llm) = req.extensions().get::<LlmRequest>() else {
            return Decision::Bypass;
        };
        let gw = llm.gateway();
        if !self.caches(llm.endpoint()) || gw.mock_response.is_some() || gw.mock_testing_fallbacks {
            return Decision::Bypass;
        }
        let controls = match Controls::read(gw.cache.as_ref(), req.headers()) {
            Ok(c) => c,
            Err(e) => return Decision::Reject(e.to_response()),
        };
        if self.mode == Mode::DefaultOff && !controls.use_cache {
            return Decision::Bypass;
        }
        let model = llm.model();
        let group = self
            .group
            .as_ref()
            .and_then(|resolve| resolve(model))
            .unwrap_or_else(|| Arc::from(model));
        let isolate = self
            .per_key
            .then(|| match req.extensions().get::<Principal>() {
                Some(Principal::Key(k)) => k.token.as_str(),
                Some(Principal::Master) => "master",
                _ => "anonymous",
            });
        let namespace = controls.namespace.as_deref().or(self.namespace.as_deref());
        let Some(key) = cache_key(llm, &group, isolate, namespace) else {
            return Decision::Bypass;
        };
        let ttl = controls.ttl.unwrap_or(self.ttl);
        Decision::Use(Plan {
            store: self.store.clone(),
            key,
            read: !controls.no_cache,
            ttl: (!controls.no_store && !ttl.is_zero()).then_some(ttl),
            max_age: controls.max_age,
            kind: if llm.is_stream() {
                Kind::Sse
            } else {
                Kind::Json
            },
            group,
            max_entry_bytes: self.max_entry_bytes,
        })
    }
}

impl Plan {
    /// The answer from stored bytes, if they fit this request (right kind, young enough).
    pub(crate) fn hit(&self, stored: Bytes) -> Option<Response<BoxBody>> {
        let Some(entry) = Entry::decode(stored) else {
            tracing::warn!(key = %self.key, "cache entry in an unknown format; treated as a miss");
            return None;
        };
        if entry.kind != self.kind || self.max_age.is_some_and(|max| entry.age() > max) {
            return None;
        }
        let mut res = Response::new(body::full(entry.body));
        let h = res.headers_mut();
        match entry.kind {
            Kind::Json => {
                h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            }
            Kind::Sse => {
                h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
                h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            }
        }
        h.insert(headers::CACHE, HeaderValue::from_static("hit"));
        if let Ok(v) = HeaderValue::from_str(&self.group) {
            h.insert(headers::MODEL_GROUP, v);
        }
        res.extensions_mut().insert(CacheStatus::Hit);
        res.extensions_mut().insert(ModelGroup(self.group.clone()));
        tracing::debug!(key = %self.key, "cache hit");
        Some(res)
    }

    /// Marks a provider's answer as a miss, and records it on its way to the client when it
    /// may be stored.
    pub(crate) fn miss(self, mut res: Response<BoxBody>) -> Response<BoxBody> {
        res.headers_mut()
            .insert(headers::CACHE, HeaderValue::from_static("miss"));
        res.extensions_mut().insert(CacheStatus::Miss);
        let Some(ttl) = self.ttl else { return res };
        if res.status() != StatusCode::OK || answer_kind(&res) != Some(self.kind) {
            return res;
        }
        res.map(|b| BoxBody::new(ResponseBody::recording(b, self, ttl)))
    }
}

fn answer_kind(res: &Response<BoxBody>) -> Option<Kind> {
    let ct = res.headers().get(CONTENT_TYPE)?.to_str().ok()?.trim_start();
    let starts = |p: &str| ct.get(..p.len()).is_some_and(|s| s.eq_ignore_ascii_case(p));
    if starts("text/event-stream") {
        Some(Kind::Sse)
    } else if starts("application/json") {
        Some(Kind::Json)
    } else {
        None
    }
}

impl<S, B> Service<Request<B>> for Cache<S>
where
    S: Service<Request<B>, Response = Response<BoxBody>> + Clone,
{
    type Response = Response<BoxBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        match self.config.decide(&req) {
            Decision::Bypass => ResponseFuture::pass(inner.call(req)),
            Decision::Reject(res) => ResponseFuture::ready(res),
            Decision::Use(plan) if plan.read => {
                let lookup = plan.store.get(&plan.key);
                ResponseFuture::lookup(lookup, inner, req, plan)
            }
            Decision::Use(plan) => ResponseFuture::miss(inner.call(req), plan),
        }
    }
}
