//! Extension types: how layers talk to each other through `http::Extensions`.
//!
//! On the request: [`RequestId`], [`crate::LlmRequest`], [`Principal`],
//! [`crate::ModelAccess`], [`ModelGroup`],
//! [`crate::Deployment`] (per attempt), [`crate::NativeResponses`] and
//! [`crate::PinnedDeployment`] (`/v1/responses`). On the response: [`crate::Deployment`] (who answered),
//! [`ModelGroup`], [`Attempts`], [`UsageSlot`] (filled when the body ends), [`StreamFailure`],
//! [`UpstreamTime`], [`Cost`], [`CacheStatus`], [`crate::NativeAnswer`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use crate::wire::Usage;

/// The request's id, also sent back as `x-llmgate-request-id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(pub Arc<str>);

/// The request's end user as the auth layer found it: LiteLLM's `x-litellm-customer-id` or
/// `x-litellm-end-user-id` header, else a configured header (`user_header_mappings`,
/// `user_header_name`), else the body's `user` field. Metering records it with the spend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndUserId(pub Arc<str>);

/// Who is calling.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Principal {
    /// No master key is configured: the gateway is open.
    Anonymous,
    /// The caller presented the master key.
    Master,
    /// The caller presented a virtual key; its settings as loaded (spend is a snapshot).
    Key(Arc<crate::VirtualKey>),
}

impl Principal {
    /// The virtual key, when the caller used one.
    pub fn key(&self) -> Option<&crate::VirtualKey> {
        match self {
            Principal::Key(k) => Some(k),
            _ => None,
        }
    }
}

/// The model group the request was routed to, after aliases.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelGroup(pub Arc<str>);

/// How many attempts the request took (1 when the first succeeded), and how many of them went
/// to a fallback group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attempts {
    /// Attempts made, the successful one included.
    pub attempts: u32,
    /// Of those, attempts on fallback groups.
    pub fallbacks: u32,
}

/// Where a response's usage will be, once known. For a stream, the provider fills it when the
/// final event passes; metering reads it when the body ends. Filled at most once.
#[derive(Debug, Clone, Default)]
pub struct UsageSlot(Arc<OnceLock<Usage>>);

impl UsageSlot {
    /// An empty slot.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fills the slot; later calls are ignored (the first report wins).
    pub fn set(&self, usage: Usage) {
        let _ = self.0.set(usage);
    }

    /// The usage, if known yet.
    pub fn get(&self) -> Option<&Usage> {
        self.0.get()
    }
}

/// Where a stream's relay reports the error that ended it after its head (an idle upstream,
/// invalid events, a broken connection), so the router can count it against the deployment
/// when the body ends. Never set when the client goes away. Filled at most once.
#[derive(Debug, Clone, Default)]
pub struct StreamFailure(Arc<OnceLock<crate::ApiError>>);

impl StreamFailure {
    /// An empty slot.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the error; later calls are ignored.
    pub fn set(&self, error: crate::ApiError) {
        let _ = self.0.set(error);
    }

    /// The error that ended the stream, if one did.
    pub fn get(&self) -> Option<&crate::ApiError> {
        self.0.get()
    }
}

/// How long the deployment that answered took to send its response head, as the router timed
/// the attempt (on the response). Metering subtracts it to find the gateway's own overhead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamTime(pub std::time::Duration);

/// The response's cost in USD, when priced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cost(pub f64);

/// Whether the response came from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// Served from the cache.
    Hit,
    /// Not in the cache; served by a provider.
    Miss,
}

/// Per-attempt instructions from the fallback layer to the router.
#[derive(Debug, Clone, Default)]
pub struct RouteHint {
    /// Route this attempt to this group instead of resolving the requested model (a fallback
    /// group).
    pub group: Option<Arc<str>>,
    /// Deployments already tried by this request: the router picks another one of the group
    /// while any is healthy.
    pub exclude: Vec<Arc<str>>,
    /// Fail this attempt, on whichever deployment is picked, with this status without calling
    /// the provider (`mock_testing_fallbacks`). Not counted against the deployment.
    pub fail_with: Option<u16>,
}

/// Where the router reports what it chose for one attempt, so the fallback layer knows which
/// deployment failed, whether the group has other healthy deployments left, and whether the
/// attempt was refused because the caller may not reach the group ([`crate::ModelAccess`]).
#[derive(Debug, Clone, Default)]
pub struct RouteSlot(Arc<SlotInner>);

#[derive(Debug, Default)]
struct SlotInner {
    routed: OnceLock<Routed>,
    denied: AtomicBool,
}

/// What the router chose for an attempt.
#[derive(Debug, Clone)]
pub struct Routed {
    /// The model group.
    pub group: Arc<str>,
    /// The deployment picked (`None` when none was available).
    pub deployment: Option<crate::Deployment>,
    /// Healthy deployments of the group not yet tried, after this pick.
    pub alternatives: usize,
}

impl RouteSlot {
    /// An empty slot.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fills the slot; later calls are ignored.
    pub fn set(&self, routed: Routed) {
        let _ = self.0.routed.set(routed);
    }

    /// Fills the slot for an attempt the router refused without calling anything: the caller
    /// may not reach `routed.group` (nor the name the attempt asked for).
    pub fn deny(&self, routed: Routed) {
        if self.0.routed.set(routed).is_ok() {
            self.0.denied.store(true, Ordering::Relaxed);
        }
    }

    /// What the router reported, if it ran.
    pub fn get(&self) -> Option<&Routed> {
        self.0.routed.get()
    }

    /// Whether the router refused the attempt because the caller may not reach the group.
    pub fn denied(&self) -> bool {
        self.0.denied.load(Ordering::Relaxed)
    }
}

/// Errors a master-key caller forces on named deployments for one request (header
/// `x-llmgate-mock-error: <deployment id>=<status>[, ...]`), to test fallbacks on purpose.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForcedErrors(pub Vec<(Arc<str>, u16)>);
