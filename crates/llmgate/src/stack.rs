//! The LLM stack: the one place the order of the layers is written.
//!
//! Outermost first. Every arrow is a Tower layer over `http::Request<B>` / `http::Response<B>`;
//! the request id, rescue and dispatch around it are the gateway's (see `gateway.rs`).
//!
//! ```text
//! dispatch by path
//!   -> inbound dialect   /v1/chat/completions, /v1/completions, /v1/embeddings: ParseLayer;
//!                        /v1/messages: MessagesLayer (Anthropic's API, translated to the same
//!                        internal request and back); /v1/responses: ResponsesLayer (OpenAI's
//!                        Responses API, translated to chat and back, stored conversations).
//!                        The body is read once, size-capped, into the LlmRequest no later
//!                        layer parses again
//!   -> count refusals    answers of the two layers below without a deployment: 401/403/429
//!                        counted in llmgate_gateway_rejections_total
//!   -> auth              master key (constant time), virtual key -> Principal; a key's models
//!                        and budget (its estimate reserved); 401/403/400 early
//!   -> rate limit        the caller's limits (rpm, tpm, parallel; per model; gateway-wide) in
//!                        memory or Redis; 429 early, x-ratelimit-* headers, tokens settled
//!                        when the body ends (docs/rate-limits.md)
//!   -> metering          cost from usage and prices, x-llmgate-response-cost, one spend
//!                        record per request when its response (a stream's body) ends, metrics;
//!                        503 early when the spend queue is full (docs/cost-tracking.md)
//!   -> cache             (with `cache: true`) a hit answers here, a stream replayed as sent; a
//!                        miss is recorded as it passes and stored when it ends cleanly
//!   -> fallback          runs attempts: another deployment of the group, backoff, then the
//!                        fallback groups; re-sends the parsed LlmRequest, never a body
//!   -> router            model -> group (alias, exact, "*") -> a healthy deployment by
//!                        strategy (skips cooling-down, at-limit, too-small-context; with Redis
//!                        takes shared rpm/tpm/rpd); 400 early for an unknown model; watches
//!                        each attempt's outcome for cooldowns
//!   -> provider          the deployment's dialect builds URL, auth and body; one pooled
//!                        client; the answer passed through (OpenAI-compatible) or translated
//!                        (native), streams event by event. A /v1/responses call on a
//!                        deployment serving the Responses API goes upstream as it is
//! ```
//!
//! `GET`/`DELETE /v1/responses/{id}` (stored responses) sit behind the same auth, beside the
//! stack; those stored upstream (a native deployment's) go through the router, pinned to the
//! deployment that made them, and the provider.
//!
//! Why this order: auth first (limits, budgets and spend are per key); rate limits before
//! metering and the cache (a refused request reaches neither); metering above the cache (a hit
//! is metered as a hit that cost nothing, see `docs/caching.md`) and above fallback (one
//! spend record per client request); the router below fallback (each attempt picks again,
//! skipping what this request already tried).

use llmgate_auth::AuthLayer;
use llmgate_cache::CacheLayer;
use llmgate_fallback::FallbackLayer;
use llmgate_metering::Meter;
use llmgate_providers::ProviderService;
use llmgate_ratelimit::RateLimitLayer;
use llmgate_router::RouterLayer;
use tower::util::BoxCloneSyncService;
use tower::ServiceBuilder;

use crate::messages::MessagesLayer;
use crate::parse::ParseLayer;
use crate::responses::{ResponsesLayer, SharedStore, StoredResponses};
use crate::routes::Stack;

/// The layers, each built from its config section (see `build/`).
pub(crate) struct Layers {
    pub(crate) auth: AuthLayer,
    pub(crate) ratelimit: RateLimitLayer,
    pub(crate) meter: Meter,
    pub(crate) cache: Option<CacheLayer>,
    pub(crate) fallback: FallbackLayer,
    pub(crate) router: RouterLayer,
    pub(crate) provider: ProviderService,
    /// The request body cap of the inbound dialects.
    pub(crate) max_body: usize,
    /// Where `/v1/responses` keeps responses (lasting: the database's, else memory).
    pub(crate) responses: SharedStore,
}

/// The stack for each inbound dialect, over one shared inner stack.
pub(crate) struct LlmStacks {
    /// OpenAI's chat completions, completions and embeddings.
    pub(crate) openai: Stack,
    /// Anthropic's Messages API.
    pub(crate) messages: Stack,
    /// `/v1/messages/count_tokens`: the Messages API's request, authenticated, counted.
    pub(crate) count_tokens: Stack,
    /// OpenAI's Responses API (`POST`).
    pub(crate) responses: Stack,
    /// `GET`/`DELETE /v1/responses/{id}`, behind auth.
    pub(crate) stored_responses: Stack,
}

/// Stacks `layers` in the order drawn in the module docs.
pub(crate) fn llm(layers: Layers) -> LlmStacks {
    let Layers {
        auth,
        ratelimit,
        meter,
        cache,
        fallback,
        router,
        provider,
        max_body,
        responses: store,
    } = layers;
    let count_tokens = ServiceBuilder::new()
        .layer(MessagesLayer::new(max_body))
        .layer(auth.clone())
        .service(tower::service_fn(crate::info::count_tokens));
    // Responses stored upstream are read and deleted on the deployment that made them: the
    // router (pinned to it) over the provider; no limits, cache or metering for these calls.
    let forward = ServiceBuilder::new()
        .layer(router.clone())
        .service(provider.clone());
    let stored_responses = ServiceBuilder::new()
        .layer(auth.clone())
        .service(StoredResponses::new(store.clone()).forward(BoxCloneSyncService::new(forward)));
    let inner = ServiceBuilder::new()
        .map_response(crate::metrics::count_rejections(meter.metrics().clone()))
        .layer(auth)
        .layer(ratelimit)
        .layer(meter.layer())
        .option_layer(cache)
        .layer(fallback)
        .layer(router)
        .service(provider);
    let messages = ServiceBuilder::new()
        .layer(MessagesLayer::new(max_body))
        .service(inner.clone());
    let responses = ServiceBuilder::new()
        .layer(ResponsesLayer::new(max_body).store(store))
        .service(inner.clone());
    let openai = ServiceBuilder::new()
        .layer(ParseLayer::new(max_body))
        .service(inner);
    LlmStacks {
        openai: BoxCloneSyncService::new(openai),
        messages: BoxCloneSyncService::new(messages),
        count_tokens: BoxCloneSyncService::new(count_tokens),
        responses: BoxCloneSyncService::new(responses),
        stored_responses: BoxCloneSyncService::new(stored_responses),
    }
}
