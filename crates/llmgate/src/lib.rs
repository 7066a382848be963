//! llmgate: an OpenAI-compatible LLM gateway, as a Tower stack built from LiteLLM's
//! `config.yaml`.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let loaded = llmgate::load_config(std::path::Path::new("examples/quickstart.yaml"))?;
//! let gateway = llmgate::Gateway::new(loaded.config)?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:4000").await?;
//! llmgate::serve(listener, gateway, std::future::pending()).await?;
//! # Ok(()) }
//! ```
//!
//! [`Gateway::service`] is a plain Tower service, so the same stack mounts in an axum or hyper
//! application; each feature is also its own layer crate (`llmgate-auth`, `llmgate-router`,
//! `llmgate-providers`) for teams that compose their own stack.
//!
//! [`Gateway::reload`] (and [`Gateway::reload_file`]) replaces the config while the gateway
//! serves: validated whole, refused when it changes what needs a restart, swapped atomically
//! (requests in flight finish on the config they started with), with the keys, connections,
//! queued spend, cache entries and router state of unchanged deployments kept.

/// Entry points for the fuzz targets (`fuzz/`) and their regression test; not a stable API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "admin")]
pub mod keys;
pub mod parse;
pub mod request_id;
pub mod rescue;

mod admin;
mod alert_dedup;
mod alerting;
mod azure_path;
mod background;
mod budget;
mod build;
mod cooldowns;
mod current;
#[cfg(feature = "sql")]
mod daily;
mod gateway;
mod health;
mod info;
mod limits;
mod live;
mod metrics;
mod parts;
mod readiness;
mod reload;
mod reports;
mod routes;
mod sensitive;
mod serve;
mod shared_usage;
#[cfg(feature = "sql")]
mod spend;
mod stack;
#[cfg(feature = "sql")]
pub mod store;
#[cfg(feature = "admin")]
mod ui;
#[cfg(all(test, not(feature = "sql")))]
mod without_sql_tests;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;

pub use gateway::{BuildError, Gateway, GatewayBuilder, GatewayService};
pub use limits::{raw_answer, HostError, HttpLimits, OpenConnection, OpenConnections};
pub use llmgate_auth as auth;
pub use llmgate_config as config;
pub use llmgate_config::{Config, Loaded, Problems as ConfigProblems};
pub use llmgate_core as core;
pub use llmgate_messages as messages;
pub use llmgate_metering as metering;
pub use llmgate_responses as responses;
pub use reload::{ReloadError, ReloadOutcome};
pub use serve::{serve, SHUTDOWN_GRACE};
#[cfg(feature = "sql")]
pub use spend::StoreSpendSink;

/// The request body inner services see before parsing: any host's body, boxed.
pub type ReqBody = UnsyncBoxBody<Bytes, llmgate_core::BoxError>;

/// Loads and validates a LiteLLM `config.yaml` (with the `.env` beside it and the process
/// environment). Every problem is reported at once.
pub fn load_config(path: &std::path::Path) -> Result<Loaded, ConfigProblems> {
    llmgate_config::load(path)
}

/// The config `llmgate --model X --api_base URL` serves: one model, no file.
pub fn sidecar_config(
    model: &str,
    api_base: Option<&str>,
    api_key: Option<&str>,
) -> Result<Loaded, ConfigProblems> {
    llmgate_config::sidecar(model, api_base, api_key, &llmgate_config::ProcessEnv)
}
