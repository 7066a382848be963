//! llmgate's vocabulary, shared by every other crate.
//!
//! - [`wire`]: OpenAI's request and response types (chat completions, legacy completions,
//!   embeddings, models), with unknown fields passed through unchanged.
//! - [`LlmRequest`]: the body, parsed once at the edge and kept in the request's extensions.
//! - [`ext`]: the other extension types layers use to talk to each other.
//! - [`error`]: the one error contract, and OpenAI's error body.
//! - [`attribution`]: which deployment a request reached, its attempts, why it failed, and the
//!   log line of a failed request.
//! - [`body`]: the response body type, request bodies read whole under a byte cap, and the one
//!   wrapper that fires a guard when a response body ends ([`body::OnEnd`]).
//! - [`sse`]: server-sent events in and out.
//! - [`redact`]: credentials replaced in texts headed for a log line or the spend log.
//! - [`tokens`]: token counts the gateway works out itself (prompt tokens, estimates).
//! - [`key`]: virtual keys and the clock budgets are judged by.
//! - [`seconds`]: numbers of seconds turned into a `Duration` without a panic, with one bound.
//! - [`cutoff`]: the signal that ends streams in flight when the gateway stops.
//! - [`events`]: the events bus layers emit typed facts on (cooldowns, outages, budgets, backends)
//!   for alerting, the UI and metrics.
//! - [`window`]: the sliding window every rate limit counts with (lock-free cell, formula).
//! - [`native`]: the Responses API served natively (the call handed down, the answer's mark,
//!   the deployment a follow-up is pinned to).
//! - [`DeploymentSpec`] and [`ProviderKind`]: what a `model_list` entry resolves to.
//!
//! This crate depends on no other llmgate crate; everything else depends on it.

pub mod access;
pub mod attribution;
pub mod body;
#[cfg(feature = "tiktoken")]
mod bpe;
pub mod budget;
pub mod budget_object;
pub mod cutoff;
pub mod deployment;
pub mod end_user;
pub mod error;
pub mod events;
pub mod ext;
pub mod key;
pub mod native;
pub mod provider;
pub mod redact;
pub mod request;
pub mod seconds;
pub mod sse;
pub mod team;
pub mod text;
pub mod tokens;
pub mod user;
pub mod window;
pub mod wire;

pub use access::{ModelAccess, ModelPermission, ResolveModel};
pub use attribution::{log_failure, Attribution, FailedAttempt, FailedAttempts, FailureClass};
pub use body::BoxBody;
pub use budget::BudgetHold;
pub use budget_object::BudgetObject;
pub use cutoff::{CutoffWatch, StreamCutoff};
pub use deployment::{
    AwsParams, Deployment, DeploymentSpec, GoogleCredentials, MockResponse, ModelInfo, Secret,
    VertexParams, WatsonxParams,
};
pub use end_user::EndUser;
pub use error::{ApiError, BoxError, ErrorClass, ErrorContract, ErrorType, Origin};
pub use ext::{
    Attempts, CacheStatus, Cost, EndUserId, ForcedErrors, ModelGroup, Principal, RequestId,
    RouteHint, RouteSlot, Routed, StreamFailure, UpstreamTime, UsageSlot,
};
pub use key::{Clock, KeyExtras, ManualClock, SharedClock, SystemClock, VirtualKey};
pub use native::{NativeAnswer, NativeResponses, PinnedDeployment, ResponsesCall};
pub use provider::{ProviderKind, UnknownProvider};
pub use request::{Endpoint, GatewayParams, LlmBody, LlmRequest};
pub use team::{Team, TeamMember};
pub use text::TextCount;
pub use user::{SignedIn, User, UserRole};
pub use wire::Usage;

/// Response header names the gateway adds (stable; documented in `docs/`), as `HeaderName`
/// constants made at compile time: a name given as a `&str` is parsed and hashed again on
/// every insert.
pub mod headers {
    use http::{HeaderMap, HeaderName};

    /// Room for every header the stack puts on an answer before the host adds its own. With
    /// every layer on there are 14: the content type, the model group, the deployment,
    /// attempts, fallbacks, the cost, six `x-ratelimit-*` and the request id.
    pub const ANSWER_CAPACITY: usize = 16;

    /// An empty header map for an answer, with room for [`ANSWER_CAPACITY`] headers: a map
    /// made empty grew three times (6, 12, then 24 entries, each a reallocation and a rehash)
    /// on its way out of the stack.
    #[must_use]
    pub fn answer_map() -> HeaderMap {
        HeaderMap::with_capacity(ANSWER_CAPACITY)
    }

    /// The request's id.
    pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-llmgate-request-id");
    /// The model group that served the request.
    pub const MODEL_GROUP: HeaderName = HeaderName::from_static("x-llmgate-model-group");
    /// The deployment id that answered.
    pub const DEPLOYMENT: HeaderName = HeaderName::from_static("x-llmgate-deployment");
    /// Attempts made.
    pub const ATTEMPTS: HeaderName = HeaderName::from_static("x-llmgate-attempts");
    /// Fallback attempts made.
    pub const FALLBACKS: HeaderName = HeaderName::from_static("x-llmgate-fallbacks");
    /// Fallback groups skipped because the caller may not reach them (a virtual key's
    /// `models`), comma-separated, as the request or the config named them.
    pub const FALLBACKS_SKIPPED: HeaderName =
        HeaderName::from_static("x-llmgate-fallbacks-skipped");
    /// `hit` or `miss`.
    pub const CACHE: HeaderName = HeaderName::from_static("x-llmgate-cache");
    /// Cost in USD.
    pub const RESPONSE_COST: HeaderName = HeaderName::from_static("x-llmgate-response-cost");
    /// The caller's request limit (per minute) that is closest to running out.
    pub const RATELIMIT_LIMIT_REQUESTS: HeaderName =
        HeaderName::from_static("x-ratelimit-limit-requests");
    /// Requests left under that limit.
    pub const RATELIMIT_REMAINING_REQUESTS: HeaderName =
        HeaderName::from_static("x-ratelimit-remaining-requests");
    /// Time until that limit is fully replenished (`1s`, `6m0s`, `20ms`, as OpenAI writes it).
    pub const RATELIMIT_RESET_REQUESTS: HeaderName =
        HeaderName::from_static("x-ratelimit-reset-requests");
    /// The caller's token limit (per minute) that is closest to running out.
    pub const RATELIMIT_LIMIT_TOKENS: HeaderName =
        HeaderName::from_static("x-ratelimit-limit-tokens");
    /// Tokens left under that limit.
    pub const RATELIMIT_REMAINING_TOKENS: HeaderName =
        HeaderName::from_static("x-ratelimit-remaining-tokens");
    /// Time until that limit is fully replenished.
    pub const RATELIMIT_RESET_TOKENS: HeaderName =
        HeaderName::from_static("x-ratelimit-reset-tokens");

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn an_answer_map_takes_every_header_the_stack_adds_without_growing() {
            let mut map = answer_map();
            let room = map.capacity();
            let ours = [
                http::header::CONTENT_TYPE,
                MODEL_GROUP,
                DEPLOYMENT,
                ATTEMPTS,
                FALLBACKS,
                RESPONSE_COST,
                RATELIMIT_LIMIT_REQUESTS,
                RATELIMIT_REMAINING_REQUESTS,
                RATELIMIT_RESET_REQUESTS,
                RATELIMIT_LIMIT_TOKENS,
                RATELIMIT_REMAINING_TOKENS,
                RATELIMIT_RESET_TOKENS,
                REQUEST_ID,
                CACHE,
                FALLBACKS_SKIPPED,
            ];
            assert!(ours.len() <= ANSWER_CAPACITY);
            for name in ours {
                map.insert(name, http::HeaderValue::from_static("1"));
            }
            assert_eq!(map.capacity(), room, "the map grew");
        }
    }
}
