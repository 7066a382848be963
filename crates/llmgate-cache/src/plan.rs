//! How requests use the cache at run time: the [`Settings`] a layer's services share, and the
//! [`Plan`] they make for each request.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::{Request, Response};
use llmgate_core::{
    body, headers, BoxBody, CacheStatus, Endpoint, LlmRequest, ModelGroup, Principal,
};

use crate::control::Controls;
use crate::entry::{Entry, Kind};
use crate::key::cache_key;
use crate::store::CacheStore;

/// Resolves the model name a client sent to its model group (aliases followed), so requests
/// for an alias and for its group share entries. `None`: no group serves the name, so the
/// request bypasses the cache (the service behind answers it, with its error).
pub type GroupResolver = Arc<dyn Fn(&str) -> Option<Arc<str>> + Send + Sync>;

/// What a [`CacheLayer`](crate::CacheLayer) was configured with, shared by its services.
#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) store: Arc<dyn CacheStore>,
    pub(crate) ttl: Duration,
    /// `default_off`: only requests that opt in use the cache.
    pub(crate) opt_in: bool,
    pub(crate) endpoints: [bool; 3],
    pub(crate) namespace: Option<Arc<str>>,
    pub(crate) per_key: bool,
    pub(crate) max_entry_bytes: usize,
    pub(crate) group: Option<GroupResolver>,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("store", &self.store)
            .field("ttl", &self.ttl)
            .field("opt_in", &self.opt_in)
            .field("endpoints", &self.endpoints)
            .field("namespace", &self.namespace)
            .field("per_key", &self.per_key)
            .field("max_entry_bytes", &self.max_entry_bytes)
            .finish_non_exhaustive()
    }
}

impl Settings {
    pub(crate) fn caches(&self, e: Endpoint) -> bool {
        self.endpoints[index(e)]
    }
}

pub(crate) fn index(e: Endpoint) -> usize {
    match e {
        Endpoint::ChatCompletions => 0,
        Endpoint::Completions => 1,
        Endpoint::Embeddings => 2,
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

impl Settings {
    /// What the cache does for `req`.
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
        if self.opt_in && !controls.use_cache {
            return Decision::Bypass;
        }
        let model = llm.model();
        // A model the router does not know (never configured, or removed by a reload) is its
        // 400, never an answer stored while it was configured.
        let group = match &self.group {
            Some(resolve) => match resolve(model) {
                Some(group) => group,
                None => return Decision::Bypass,
            },
            None => Arc::from(model),
        };
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
        *res.headers_mut() = llmgate_core::headers::answer_map();
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
}
