//! One small builder per layer, from its config section (the layer crates never see config
//! types): each module reads its part of [`llmgate_config::Config`] and returns the layer, or
//! the part a layer is made from.
//!
//! | module | config | builds |
//! |---|---|---|
//! | `auth` | `master_key`, `user_api_key_cache_ttl`, `allow_requests_on_db_unavailable` | [`llmgate_auth::Keys`], [`llmgate_auth::AuthLayer`] |
//! | `ratelimit` | `router_settings.redis_*`, `max_parallel_requests`, `global_max_parallel_requests`, `llmgate_rate_limit_*` | [`llmgate_ratelimit::RateLimitLayer`] |
//! | `meter` | `proxy_batch_write_at`, `spend_*`, `model_cost_map_path`, `model_info` prices | [`llmgate_metering::Meter`] |
//! | `cache` | `litellm_settings.cache`, `cache_params` | [`llmgate_cache::CacheLayer`] |
//! | `routing` | `model_list`, `router_settings` (strategy, cooldowns, fallbacks, retries) | [`llmgate_router::ModelTable`], [`llmgate_fallback::FallbackPolicy`] |
//!
//! The key store and database are opened by [`crate::store`]; the order the layers are stacked
//! in is [`crate::stack`]'s.

pub(crate) mod auth;
pub(crate) mod cache;
pub(crate) mod meter;
pub(crate) mod ratelimit;
pub(crate) mod routing;
