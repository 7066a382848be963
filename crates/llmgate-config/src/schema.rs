//! The typed config: LiteLLM's `config.yaml` sections with the names LiteLLM users write.
//!
//! Every value here is already resolved (environment references substituted, defaults for
//! `api_key`/`api_base` filled in) and checked. Settings that this release reads but does not
//! act on are typed too, so later releases only add behaviour; loading reports them as
//! [`Severity::NotYetActive`](crate::Severity::NotYetActive) notices.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use llmgate_core::{MockResponse, ModelInfo, ProviderKind, Secret};
use serde_json::{Map, Value};

/// The whole config file.
#[derive(Clone, Default)]
pub struct Config {
    /// `model_list`: one entry per deployment; entries sharing a `model_name` form a model group.
    pub model_list: Vec<ModelEntry>,
    /// `router_settings`.
    pub router_settings: RouterSettings,
    /// `litellm_settings`.
    pub litellm_settings: LitellmSettings,
    /// `general_settings`.
    pub general_settings: GeneralSettings,
    /// `environment_variables`, values as text. They are used to resolve references in the
    /// config and are never written into the process environment. Values may be secrets, so
    /// `Config`'s `Debug` shows only the names.
    pub environment_variables: BTreeMap<String, String>,
    /// The directory the config was read from (relative `include` paths and `.env` are read
    /// from here); empty for a config that has no file (the sidecar).
    pub config_dir: PathBuf,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("model_list", &self.model_list)
            .field("router_settings", &self.router_settings)
            .field("litellm_settings", &self.litellm_settings)
            .field("general_settings", &self.general_settings)
            .field(
                "environment_variables",
                &self.environment_variables.keys().collect::<Vec<_>>(),
            )
            .field("config_dir", &self.config_dir)
            .finish()
    }
}

/// One `model_list` entry: a deployment of the model group `model_name`.
#[derive(Debug, Clone)]
pub struct ModelEntry {
    /// `model_name`: the public name clients ask for. `"*"` is LiteLLM's catch-all: the router
    /// sends a request for any model no other group or alias matches to this group, and
    /// `/v1/models` does not list it.
    pub model_name: String,
    /// The deployment id: `model_info.id` when given, else `"<model_name>-<index>"` (the
    /// entry's position in `model_list`), which stays the same across restarts of one config.
    pub id: String,
    /// `litellm_params`, resolved.
    pub litellm_params: LitellmParams,
    /// `model_info` (cost fields given in `litellm_params` land here too).
    pub model_info: ModelInfo,
}

/// A `model_list` entry's `litellm_params`, resolved.
#[derive(Debug, Clone)]
pub struct LitellmParams {
    /// `model` as written: `<provider>/<model id>` (`openrouter/anthropic/claude-3.5-sonnet`).
    pub model: String,
    /// The provider named by `model`'s prefix (or `custom_llm_provider`); no prefix is OpenAI.
    pub provider: ProviderKind,
    /// The model id sent upstream: `model` without the provider prefix.
    pub upstream_model: String,
    /// `api_base`, else the provider's `api_base_env()` variable, else its default base URL.
    pub api_base: Option<String>,
    /// `api_key`, else the provider's `api_key_env()` variable when set.
    pub api_key: Option<Secret>,
    /// `api_version` (Azure), else `AZURE_API_VERSION` for Azure deployments.
    pub api_version: Option<String>,
    /// `organization`, sent as the `OpenAI-Organization` header.
    pub organization: Option<String>,
    /// `timeout`: the whole attempt's deadline.
    pub timeout: Option<Duration>,
    /// `stream_timeout`: the deadline for a stream's first byte.
    pub stream_timeout: Option<Duration>,
    /// `stream_idle_timeout` (llmgate's own): the longest wait between two stream events.
    pub stream_idle_timeout: Option<Duration>,
    /// `max_retries`.
    pub max_retries: Option<u32>,
    /// `rpm`: requests per minute this deployment allows.
    pub rpm: Option<u64>,
    /// `tpm`: tokens per minute this deployment allows.
    pub tpm: Option<u64>,
    /// `rpd`: requests per day (a llmgate extension, for free tiers).
    pub rpd: Option<u64>,
    /// `weight` for simple-shuffle.
    pub weight: Option<f64>,
    /// `extra_headers` and `headers` (both are sent; `extra_headers` wins on a clash), plus
    /// `OpenAI-Organization` from `organization`.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// `mock_response`: text, or one of LiteLLM's exception names mapped to a status.
    pub mock_response: Option<MockResponse>,
    /// `tags` (tag-based routing; not active yet).
    pub tags: Vec<String>,
    /// `region_name` (not active yet).
    pub region_name: Option<String>,
    /// `cooldown_time` for this deployment (not active yet).
    pub cooldown_time: Option<Duration>,
    /// `max_parallel_requests` for this deployment (not active yet).
    pub max_parallel_requests: Option<u64>,
    /// Every other key (`temperature`, `max_tokens`, ...; `extra_body`'s fields): defaults
    /// merged into the request body, as LiteLLM passes them to the call.
    pub default_params: Map<String, Value>,
    /// `drop_params` for this deployment (else `litellm_settings.drop_params`).
    pub drop_params: Option<bool>,
    /// Bedrock: `aws_access_key_id`, `aws_secret_access_key`, `aws_session_token`,
    /// `aws_region_name`, else the standard `AWS_*` environment variables.
    pub aws: Option<llmgate_core::AwsParams>,
    /// Vertex AI: `vertex_project`, `vertex_location`, `vertex_credentials`, else
    /// `VERTEXAI_PROJECT`, `VERTEXAI_LOCATION`, `GOOGLE_APPLICATION_CREDENTIALS`.
    pub vertex: Option<llmgate_core::VertexParams>,
    /// IBM watsonx.ai: `project_id`, `space_id`, `token`, else the `WATSONX_*` variables.
    pub watsonx: Option<llmgate_core::WatsonxParams>,
}

/// `router_settings.routing_strategy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RoutingStrategy {
    /// `simple-shuffle` (the default): random, weighted by `weight` (else `rpm`, else `tpm`).
    #[default]
    SimpleShuffle,
    /// `least-busy`.
    LeastBusy,
    /// `latency-based-routing`.
    LatencyBasedRouting,
    /// `usage-based-routing`.
    UsageBasedRouting,
    /// `usage-based-routing-v2`.
    UsageBasedRoutingV2,
    /// `cost-based-routing`.
    CostBasedRouting,
}

impl RoutingStrategy {
    /// Every strategy, in LiteLLM's documentation order.
    pub const ALL: [RoutingStrategy; 6] = [
        RoutingStrategy::SimpleShuffle,
        RoutingStrategy::LeastBusy,
        RoutingStrategy::LatencyBasedRouting,
        RoutingStrategy::UsageBasedRouting,
        RoutingStrategy::UsageBasedRoutingV2,
        RoutingStrategy::CostBasedRouting,
    ];

    /// LiteLLM's name for the strategy.
    pub fn as_str(self) -> &'static str {
        match self {
            RoutingStrategy::SimpleShuffle => "simple-shuffle",
            RoutingStrategy::LeastBusy => "least-busy",
            RoutingStrategy::LatencyBasedRouting => "latency-based-routing",
            RoutingStrategy::UsageBasedRouting => "usage-based-routing",
            RoutingStrategy::UsageBasedRoutingV2 => "usage-based-routing-v2",
            RoutingStrategy::CostBasedRouting => "cost-based-routing",
        }
    }

    /// Parses LiteLLM's name.
    pub fn from_name(name: &str) -> Option<RoutingStrategy> {
        RoutingStrategy::ALL
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// One `fallbacks` item: `- primary: ["second", "third"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fallback {
    /// The model group the fallbacks apply to.
    pub model_group: String,
    /// The groups to try, in order.
    pub fallbacks: Vec<String>,
}

/// A `model_group_alias` value: `alias: group`, `alias: {model: group, hidden: true}`, or
/// `alias: [first, second, third]` (groups tried in order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelGroupAlias {
    /// The model group the alias stands for.
    pub model: String,
    /// Whether `/v1/models` leaves the alias out.
    pub hidden: bool,
    /// With a list: the groups after the first, tried in order when the one before fails
    /// (before that group's own fallbacks).
    pub then: Vec<String>,
}

/// `router_settings.retry_policy`: retries per error class.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[allow(non_snake_case)] // LiteLLM's key names, so a user can grep for them.
pub struct RetryPolicy {
    /// `AuthenticationErrorRetries`.
    pub AuthenticationErrorRetries: Option<u32>,
    /// `TimeoutErrorRetries`.
    pub TimeoutErrorRetries: Option<u32>,
    /// `RateLimitErrorRetries`.
    pub RateLimitErrorRetries: Option<u32>,
    /// `ContentPolicyViolationErrorRetries`.
    pub ContentPolicyViolationErrorRetries: Option<u32>,
    /// `InternalServerErrorRetries`.
    pub InternalServerErrorRetries: Option<u32>,
    /// `BadRequestErrorRetries`.
    pub BadRequestErrorRetries: Option<u32>,
}

/// `router_settings.allowed_fails_policy`: failures per error class before a cooldown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[allow(non_snake_case)] // LiteLLM's key names, so a user can grep for them.
pub struct AllowedFailsPolicy {
    /// `AuthenticationErrorAllowedFails`.
    pub AuthenticationErrorAllowedFails: Option<u32>,
    /// `TimeoutErrorAllowedFails`.
    pub TimeoutErrorAllowedFails: Option<u32>,
    /// `RateLimitErrorAllowedFails`.
    pub RateLimitErrorAllowedFails: Option<u32>,
    /// `ContentPolicyViolationErrorAllowedFails`.
    pub ContentPolicyViolationErrorAllowedFails: Option<u32>,
    /// `InternalServerErrorAllowedFails`.
    pub InternalServerErrorAllowedFails: Option<u32>,
    /// `BadRequestErrorAllowedFails`.
    pub BadRequestErrorAllowedFails: Option<u32>,
}

/// `router_settings`.
#[derive(Debug, Clone, Default)]
pub struct RouterSettings {
    /// `routing_strategy` (default `simple-shuffle`).
    pub routing_strategy: RoutingStrategy,
    /// `routing_strategy_args` (`ttl`, `lowest_latency_buffer`, ...), as given.
    pub routing_strategy_args: Map<String, Value>,
    /// `model_group_alias`: alias -> target group.
    pub model_group_alias: BTreeMap<String, ModelGroupAlias>,
    /// `num_retries`.
    pub num_retries: Option<u32>,
    /// `retry_after`: the least wait before retrying the same deployment.
    pub retry_after: Option<Duration>,
    /// `timeout`: default attempt deadline for deployments that set none.
    pub timeout: Option<Duration>,
    /// `stream_timeout`: default first-byte deadline for deployments that set none.
    pub stream_timeout: Option<Duration>,
    /// `stream_idle_timeout` (llmgate's own): default idle timeout between stream events for
    /// deployments that set none.
    pub stream_idle_timeout: Option<Duration>,
    /// `allowed_fails` before a deployment cools down.
    pub allowed_fails: Option<u32>,
    /// `cooldown_time`.
    pub cooldown_time: Option<Duration>,
    /// `disable_cooldowns`.
    pub disable_cooldowns: Option<bool>,
    /// `retry_policy`.
    pub retry_policy: Option<RetryPolicy>,
    /// `allowed_fails_policy`.
    pub allowed_fails_policy: Option<AllowedFailsPolicy>,
    /// `fallbacks`.
    pub fallbacks: Vec<Fallback>,
    /// `default_fallbacks`: groups tried for any group without its own fallbacks.
    pub default_fallbacks: Vec<String>,
    /// `context_window_fallbacks`.
    pub context_window_fallbacks: Vec<Fallback>,
    /// `content_policy_fallbacks`.
    pub content_policy_fallbacks: Vec<Fallback>,
    /// `redis_host`.
    pub redis_host: Option<String>,
    /// `redis_port`.
    pub redis_port: Option<u16>,
    /// `redis_password`.
    pub redis_password: Option<Secret>,
    /// `redis_url` (`redis://[:password@]host:port[/db]`), instead of host, port and password.
    pub redis_url: Option<Secret>,
    /// `enable_pre_call_checks`.
    pub enable_pre_call_checks: Option<bool>,
    /// `enable_tag_filtering`.
    pub enable_tag_filtering: Option<bool>,
}

/// `litellm_settings.cache_params`.
#[derive(Debug, Clone, Default)]
pub struct CacheParams {
    /// `type`: `local` or `redis` (LiteLLM's proxy defaults to `redis`; its other backends,
    /// `redis-semantic`, `s3`, `disk`, ..., are refused).
    pub cache_type: Option<String>,
    /// `host` (Redis; else `REDIS_HOST` from the environment, as LiteLLM does).
    pub host: Option<String>,
    /// `port` (Redis; else `REDIS_PORT`).
    pub port: Option<u16>,
    /// `password` (Redis; else `REDIS_PASSWORD`).
    pub password: Option<Secret>,
    /// `url` / `redis_url`: `redis://...` (else `REDIS_URL`); wins over host, port, password.
    pub url: Option<Secret>,
    /// `ttl`: how long answers are kept.
    pub ttl: Option<Duration>,
    /// `namespace`: prefix of every key.
    pub namespace: Option<String>,
    /// `supported_call_types`: LiteLLM's call type names (`completion`, `acompletion`,
    /// `text_completion`, `atext_completion`, `embedding`, `aembedding`, ...).
    pub supported_call_types: Vec<String>,
    /// `mode` (`default_on`, or `default_off`: cache only when a request asks).
    pub mode: Option<String>,
    /// `max_size_in_memory`: entries the local cache holds.
    pub max_size_in_memory: Option<u64>,
    /// `max_size_in_memory_mb` (llmgate): megabytes the local cache holds.
    pub max_size_in_memory_mb: Option<f64>,
    /// `max_size_per_item`: the largest answer stored, in kilobytes.
    pub max_size_per_item: Option<u64>,
    /// `per_key` (llmgate): keep separate entries per virtual key.
    pub per_key: Option<bool>,
}

/// `litellm_settings`.
#[derive(Debug, Clone, Default)]
pub struct LitellmSettings {
    /// `drop_params`: drop parameters the provider does not support.
    pub drop_params: Option<bool>,
    /// `num_retries`.
    pub num_retries: Option<u32>,
    /// `retry_after` (LiteLLM reads it from `router_settings`; configs put it here too).
    pub retry_after: Option<Duration>,
    /// `request_timeout`: default attempt deadline when neither the deployment nor
    /// `router_settings.timeout` sets one.
    pub request_timeout: Option<Duration>,
    /// `fallbacks`.
    pub fallbacks: Vec<Fallback>,
    /// `default_fallbacks`.
    pub default_fallbacks: Vec<String>,
    /// `context_window_fallbacks`.
    pub context_window_fallbacks: Vec<Fallback>,
    /// `content_policy_fallbacks`.
    pub content_policy_fallbacks: Vec<Fallback>,
    /// `cache`: turn the response cache on.
    pub cache: Option<bool>,
    /// `cache_params`.
    pub cache_params: Option<CacheParams>,
    /// `success_callback`.
    pub success_callback: Vec<String>,
    /// `failure_callback`.
    pub failure_callback: Vec<String>,
    /// `callbacks`.
    pub callbacks: Vec<String>,
    /// `default_team_settings` given as a mapping (see
    /// [`GeneralSettings::default_team_settings`], which takes it when it has none of its own).
    pub default_team_settings: serde_json::Map<String, serde_json::Value>,
    /// `max_end_user_budget`: USD each end user (a request's `user`) may spend when it has no
    /// budget of its own.
    pub max_end_user_budget: Option<f64>,
    /// `max_budget` in USD for the whole proxy.
    pub max_budget: Option<f64>,
    /// `budget_duration` (`30d`, `1h`, ...).
    pub budget_duration: Option<String>,
    /// `set_verbose`.
    pub set_verbose: Option<bool>,
    /// `json_logs`: log lines as JSON objects (LiteLLM's place for it; `general_settings`
    /// takes it too, and either turns JSON on).
    pub json_logs: Option<bool>,
    /// `turn_off_message_logging`.
    pub turn_off_message_logging: Option<bool>,
    /// `model_cost_map_path` (llmgate): a price file in LiteLLM's
    /// `model_prices_and_context_window.json` format whose entries replace the bundled ones;
    /// relative to the config file's directory.
    pub model_cost_map_path: Option<String>,
}

/// What rate limiting does while its Redis is unreachable
/// (`general_settings.llmgate_rate_limit_failure_policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Admit requests unlimited, counted and logged.
    Open,
    /// Refuse them with a 503.
    Closed,
}

/// `general_settings`.
#[derive(Debug, Clone, Default)]
pub struct GeneralSettings {
    /// `master_key`, else `LITELLM_MASTER_KEY` from the environment (as LiteLLM reads it).
    pub master_key: Option<Secret>,
    /// `database_url`, else `DATABASE_URL` from the environment (as LiteLLM reads it).
    pub database_url: Option<Secret>,
    /// The request headers that name the end user, in order: `user_header_mappings` entries
    /// with `litellm_user_role: customer`, then `user_header_name` (lower-cased).
    pub end_user_headers: Vec<String>,
    /// `UI_USERNAME` from the environment (LiteLLM's): with `UI_PASSWORD`, the administrator
    /// signs in to the UI with a user name and password, as a proxy admin.
    pub ui_username: Option<String>,
    /// `UI_PASSWORD` from the environment (LiteLLM's).
    pub ui_password: Option<Secret>,
    /// `database_connection_pool_limit`.
    pub database_connection_pool_limit: Option<u32>,
    /// `disable_spend_logs`.
    pub disable_spend_logs: Option<bool>,
    /// `store_prompts_in_spend_logs`: keep each request's messages and answer in the spend log
    /// (bounded, credentials masked). Off by default.
    pub store_prompts_in_spend_logs: Option<bool>,
    /// `json_logs`: log lines as JSON objects (as `litellm_settings.json_logs`).
    pub json_logs: Option<bool>,
    /// `set_verbose` (as `litellm_settings.set_verbose`): llmgate's own debug lines.
    pub set_verbose: Option<bool>,
    /// `litellm_metric_names` (llmgate's own): serve LiteLLM's Prometheus names beside
    /// llmgate's (default true).
    pub litellm_metric_names: Option<bool>,
    /// `max_parallel_requests`: requests in flight at once per caller whose key sets none.
    pub max_parallel_requests: Option<u64>,
    /// `global_max_parallel_requests`: requests in flight at once through the gateway.
    pub global_max_parallel_requests: Option<u64>,
    /// `llmgate_rate_limit_failure_policy` (llmgate's own): what rate limiting does while Redis
    /// is unreachable; `open` by default.
    pub llmgate_rate_limit_failure_policy: Option<FailurePolicy>,
    /// `llmgate_rate_limit_redis_prefix` (llmgate's own): prepended to every rate-limit key in
    /// Redis (default `llmgate:rl:`), for gateways that share a Redis but not their limits.
    pub llmgate_rate_limit_redis_prefix: Option<String>,
    /// `background_health_checks`.
    pub background_health_checks: Option<bool>,
    /// `health_check_interval`.
    pub health_check_interval: Option<Duration>,
    /// `allow_requests_on_db_unavailable`.
    pub allow_requests_on_db_unavailable: Option<bool>,
    /// `default_team_settings` (in either settings section) as a mapping: the settings a team
    /// created without its own takes (`rpm_limit`, `tpm_limit`, `max_budget`, `models`, ...).
    pub default_team_settings: serde_json::Map<String, serde_json::Value>,
    /// `user_api_key_cache_ttl`: how long a looked-up virtual key is trusted.
    pub user_api_key_cache_ttl: Option<Duration>,
    /// `max_request_size_mb`: the request body limit in MiB; see
    /// [`GeneralSettings::max_request_body_bytes`].
    pub max_request_size_mb: Option<f64>,
    /// `max_response_size_mb`: the largest upstream answer (and stream event) in MiB; see
    /// [`GeneralSettings::max_response_body_bytes`].
    pub max_response_size_mb: Option<f64>,
    /// `proxy_batch_write_at`: the longest a spend record waits before it is written.
    pub proxy_batch_write_at: Option<Duration>,
    /// `spend_batch_size` (llmgate): spend records per write.
    pub spend_batch_size: Option<u64>,
    /// `spend_queue_size` (llmgate): spend records that may wait to be written.
    pub spend_queue_size: Option<u64>,
    /// `spend_queue_full` (llmgate): what a full spend queue does.
    pub spend_queue_full: Option<SpendQueueFull>,
    /// `spend_spill_dir` (llmgate): where spend records the database did not take by the end
    /// of a stop are kept for the next start (relative to the config's directory); default
    /// `llmgate-spill` beside the config.
    pub spend_spill_dir: Option<std::path::PathBuf>,
    /// `llmgate_request_header_timeout` (llmgate's own): the longest a client may take to send
    /// a whole request header; see [`GeneralSettings::request_header_timeout`].
    pub llmgate_request_header_timeout: Option<Duration>,
    /// `llmgate_request_body_timeout` (llmgate's own): the longest a client may take to send a
    /// whole request body; see [`GeneralSettings::request_body_timeout`].
    pub llmgate_request_body_timeout: Option<Duration>,
    /// `llmgate_max_header_bytes` (llmgate's own): the largest request header (request line and
    /// fields) in bytes; see [`GeneralSettings::max_header_bytes`].
    pub llmgate_max_header_bytes: Option<u64>,
    /// `llmgate_max_headers` (llmgate's own): the most header fields in a request; see
    /// [`GeneralSettings::max_headers`].
    pub llmgate_max_headers: Option<u64>,
    /// `llmgate_max_connections` (llmgate's own): client connections open at once; see
    /// [`GeneralSettings::max_connections`].
    pub llmgate_max_connections: Option<u64>,
    /// `alerting`, `alert_types`, `alerting_threshold`, `alerting_args`,
    /// `alert_to_webhook_url`, with `SLACK_WEBHOOK_URL` and `WEBHOOK_URL`.
    pub alerting: crate::alerting::AlertingConfig,
}

/// `general_settings.spend_queue_full`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpendQueueFull {
    /// `reject`: answer new requests 503 until there is room (every served request is
    /// recorded).
    Reject,
    /// `drop`: serve them and drop their records (counted).
    Drop,
}

impl GeneralSettings {
    /// The request body limit used when `max_request_size_mb` is not set: 16 MiB.
    pub const DEFAULT_MAX_REQUEST_BODY_BYTES: u64 = 16 * 1024 * 1024;

    /// The upstream answer limit used when `max_response_size_mb` is not set: 64 MiB.
    pub const DEFAULT_MAX_RESPONSE_BODY_BYTES: u64 = 64 * 1024 * 1024;

    /// The largest complete upstream answer, and stream event, in bytes:
    /// `max_response_size_mb` MiB, else 64 MiB.
    pub fn max_response_body_bytes(&self) -> u64 {
        match self.max_response_size_mb {
            Some(mb) => (mb * 1024.0 * 1024.0).round() as u64,
            None => Self::DEFAULT_MAX_RESPONSE_BODY_BYTES,
        }
    }

    /// The request body limit in bytes: `max_request_size_mb` MiB, else 16 MiB.
    pub fn max_request_body_bytes(&self) -> u64 {
        match self.max_request_size_mb {
            Some(mb) => (mb * 1024.0 * 1024.0).round() as u64,
            None => Self::DEFAULT_MAX_REQUEST_BODY_BYTES,
        }
    }

    /// `llmgate_request_header_timeout` when not set: 30 s.
    pub const DEFAULT_REQUEST_HEADER_TIMEOUT: Duration = Duration::from_secs(30);
    /// `llmgate_request_body_timeout` when not set: 60 s.
    pub const DEFAULT_REQUEST_BODY_TIMEOUT: Duration = Duration::from_secs(60);
    /// `llmgate_max_header_bytes` when not set: 64 KiB.
    pub const DEFAULT_MAX_HEADER_BYTES: u64 = 64 * 1024;
    /// The largest `llmgate_max_header_bytes`: the HTTP/1 parser's own ceiling (1 MiB - 1).
    pub const MAX_HEADER_BYTES_CEILING: u64 = 1024 * 1024 - 1;
    /// The smallest `llmgate_max_header_bytes`: 1 KiB.
    pub const MAX_HEADER_BYTES_FLOOR: u64 = 1024;
    /// `llmgate_max_headers` when not set: 100 (hyper's default).
    pub const DEFAULT_MAX_HEADERS: u64 = 100;
    /// The largest `llmgate_max_headers`: the HTTP/1 parser's own ceiling.
    pub const MAX_HEADERS_CEILING: u64 = 256;
    /// `llmgate_max_connections` when not set: 10,000.
    pub const DEFAULT_MAX_CONNECTIONS: u64 = 10_000;

    /// The deadline for a whole request header, from a new connection's accept or from the
    /// first byte of the next request on a kept-alive one.
    pub fn request_header_timeout(&self) -> Duration {
        self.llmgate_request_header_timeout
            .unwrap_or(Self::DEFAULT_REQUEST_HEADER_TIMEOUT)
    }

    /// The deadline for a whole request body, from the end of its header.
    pub fn request_body_timeout(&self) -> Duration {
        self.llmgate_request_body_timeout
            .unwrap_or(Self::DEFAULT_REQUEST_BODY_TIMEOUT)
    }

    /// The largest request header in bytes (request line and fields).
    pub fn max_header_bytes(&self) -> u64 {
        self.llmgate_max_header_bytes
            .unwrap_or(Self::DEFAULT_MAX_HEADER_BYTES)
    }

    /// The most header fields in one request.
    pub fn max_headers(&self) -> u64 {
        self.llmgate_max_headers
            .unwrap_or(Self::DEFAULT_MAX_HEADERS)
    }

    /// Client connections open at once; the next one is refused with a 503.
    pub fn max_connections(&self) -> u64 {
        self.llmgate_max_connections
            .unwrap_or(Self::DEFAULT_MAX_CONNECTIONS)
    }
}
