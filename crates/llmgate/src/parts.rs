//! [`Parts`]: what the gateway's stack and admin routes are made of: the model table and its
//! shared state, the virtual keys and database, the rate limiter and its store, the meter and
//! its spend queue, the response cache, the upstream client, the health checks, and the
//! background tasks. Each is built once, by the builders in `build/`, and shared by the stacks
//! and routes that need it (`Arc`s and cheap clones). These are the things a reload must keep
//! (connections, counters, caches, queued spend) while it rebuilds the layers' settings.

use std::sync::Arc;
use std::time::Duration;

use llmgate_auth::{AuthLayer, KeyStore, Keys};
use llmgate_cache::CacheLayer;
use llmgate_config::Config;
use llmgate_core::events::Events;
use llmgate_core::{DeploymentSpec, SharedClock, StreamCutoff};
use llmgate_metering::{Meter, SpendSink};
use llmgate_providers::{ProviderService, UpstreamClient, UpstreamClientConfig};
use llmgate_ratelimit::RateLimitLayer;
use llmgate_router::ModelTable;

use crate::alerting::AlertView;
use crate::background::Background;
use crate::build;
use crate::cooldowns::Link;
#[cfg(feature = "sql")]
use crate::daily::DailyUsage;
use crate::health::Health;
#[cfg(feature = "sql")]
use crate::store::Database;
use crate::BuildError;

/// LiteLLM's default `health_check_interval`.
const DEFAULT_HEALTH_CHECK_INTERVAL: Duration = Duration::from_secs(300);

/// What a [`crate::GatewayBuilder`] was given besides the config.
pub(crate) struct Given {
    pub(crate) key_store: Option<Arc<dyn KeyStore>>,
    #[cfg(feature = "sql")]
    pub(crate) database: Option<Database>,
    pub(crate) clock: SharedClock,
    pub(crate) spend_sink: Option<Arc<dyn SpendSink>>,
}

/// See the module docs.
pub(crate) struct Parts {
    /// The deployments, grouped, with their live state (shared through Redis when configured).
    pub(crate) table: Arc<ModelTable>,
    /// The virtual keys, with a master key.
    pub(crate) keys: Option<Keys>,
    pub(crate) auth: AuthLayer,
    /// For the spend endpoints (the `admin` feature).
    #[cfg(feature = "sql")]
    #[cfg_attr(
        not(feature = "admin"),
        allow(dead_code, reason = "read by the admin API")
    )]
    pub(crate) database: Option<Database>,
    pub(crate) ratelimit: RateLimitLayer,
    pub(crate) meter: Meter,
    pub(crate) cache: Option<CacheLayer>,
    pub(crate) provider: ProviderService,
    pub(crate) health: Health,
    /// Fired when a stop's grace period runs out: every stream relay watches it.
    pub(crate) cutoff: StreamCutoff,
    /// Tasks started with the first request (or by [`crate::Gateway::open`]).
    pub(crate) tasks: Background,
    /// The router's cooldown channel, with Redis.
    pub(crate) cooldowns: Option<Arc<Link>>,
    /// Deployments' `rpd` counts kept in the database.
    #[cfg(feature = "sql")]
    pub(crate) daily: Option<DailyUsage>,
    /// The events bus the layers tell (see `alerting.rs`).
    pub(crate) events: Events,
    /// The alert counts and recent alerts, for `/metrics` and `GET /alerting/recent`.
    pub(crate) alert_view: Arc<AlertView>,
}

impl Parts {
    /// Builds every part for `config`'s `deployments`. Spawns nothing (tasks are queued in
    /// [`Parts::tasks`]).
    pub(crate) fn build(
        config: &Config,
        deployments: &[Arc<DeploymentSpec>],
        given: Given,
    ) -> Result<Parts, BuildError> {
        let tasks = Background::default();
        let events = Events::new();
        let alerting = crate::alerting::start(config, &events, &tasks)?;
        let ratelimit = build::ratelimit::layer(config)?;
        let shared_usage = crate::shared_usage::LimiterUsage::over(ratelimit.store());
        let (table, shared_cooldowns) =
            build::routing::model_table(config, deployments, shared_usage, &events)?;
        let cooldowns = shared_cooldowns.as_ref().map(|c| c.link());
        if let Some(task) = shared_cooldowns {
            tasks.add(task.run(table.clone()));
        }
        let group_prices = crate::budget::GroupPrices::default();
        #[cfg(feature = "sql")]
        let ledger = given
            .database
            .as_ref()
            .and_then(crate::budget::database_ledger);
        #[cfg(not(feature = "sql"))]
        let ledger = None;
        let keys = build::auth::keys(
            config,
            given.key_store,
            ledger,
            given.clock,
            &table,
            &group_prices,
        )?
        .map(|k| k.with_events(events.clone(), crate::alerting::budget_percent(config)));
        if let Some(keys) = &keys {
            tasks.add(keys.clone().follow_invalidations());
        }
        let auth = build::auth::layer(config, &table, keys.as_ref());
        #[cfg(feature = "sql")]
        let sink = given
            .spend_sink
            .or_else(|| crate::spend::sink(config, given.database.as_ref(), keys.as_ref()));
        #[cfg(not(feature = "sql"))]
        let sink = given.spend_sink;
        let meter = build::meter::meter(config, deployments, sink)?;
        crate::budget::group_prices(&group_prices, meter.prices(), deployments);
        let cutoff = StreamCutoff::new();
        let provider = provider(config, &cutoff)?;
        let health = Health::new(table.clone(), provider.clone(), background_checks(config));
        let cache = build::cache::layer(config, &table)?;
        #[cfg(feature = "sql")]
        let daily = DailyUsage::new(&table, given.database.as_ref());
        #[cfg(feature = "sql")]
        if let Some(daily) = daily.clone() {
            tasks.add(daily.run());
        }
        let alert_view =
            crate::alerting::view(alerting, &events, &tasks, &keys, &ratelimit, &meter);
        Ok(Parts {
            table,
            keys,
            auth,
            #[cfg(feature = "sql")]
            database: given.database,
            ratelimit,
            meter,
            cache,
            provider,
            health,
            cutoff,
            tasks,
            cooldowns,
            #[cfg(feature = "sql")]
            daily,
            events,
            alert_view,
        })
    }
}

/// The provider service on one pooled upstream client, capped at
/// `max_response_size_mb`, its streams ended by `cutoff`.
fn provider(config: &Config, cutoff: &StreamCutoff) -> Result<ProviderService, BuildError> {
    let client = UpstreamClient::new(UpstreamClientConfig::default())
        .map_err(|e| BuildError::UpstreamClient(e.to_string()))?;
    let max_response =
        usize::try_from(config.general_settings.max_response_body_bytes()).unwrap_or(usize::MAX);
    Ok(ProviderService::new(client)
        .max_response_bytes(max_response)
        .stream_cutoff(cutoff.clone()))
}

/// `background_health_checks` every `health_check_interval`, if on.
fn background_checks(config: &Config) -> Option<Duration> {
    let g = &config.general_settings;
    g.background_health_checks.unwrap_or(false).then(|| {
        g.health_check_interval
            .unwrap_or(DEFAULT_HEALTH_CHECK_INTERVAL)
    })
}
