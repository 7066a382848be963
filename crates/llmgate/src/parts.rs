//! What the gateway is made of, in two lifetimes:
//!
//! - [`Lasting`]: built once, kept for the life of the process, through config reloads: the
//!   virtual keys (their store and cache), the database, the rate limiter's store and counters,
//!   the Redis connections (shared usage, cooldown channel), the meter's spend queue and metrics,
//!   the response cache's store, the upstream client (its connection pool), the health checks,
//!   the stream cutoff, the background tasks, and [`Live`]: the model table and prices running
//!   now, for the lasting parts that read them.
//! - [`Parts`]: built from one config over the lasting parts, by the builders in `build/`: the
//!   model table (router state carried over from the last one for deployments that did not
//!   change), the auth layer, the rate limiter's settings, the meter's prices, the cache's
//!   settings, the provider's limits. The stack, admin routes and dispatch are made of these.

use std::sync::Arc;
use std::time::Duration;

use llmgate_auth::{AuthLayer, KeyStore, Keys, MemoryRecordStore};
use llmgate_cache::{CacheLayer, CacheStore};
use llmgate_config::Config;
use llmgate_core::events::Events;
use llmgate_core::{DeploymentSpec, SharedClock, StreamCutoff};
use llmgate_metering::{Meter, SpendSink};
use llmgate_providers::{ProviderService, UpstreamClient, UpstreamClientConfig};
use llmgate_ratelimit::RateLimitLayer;
use llmgate_responses::SharedStore;
use llmgate_router::{CooldownHook, ModelTable, SharedUsage};

use crate::alerting::AlertView;
use crate::background::Background;
use crate::build;
use crate::cooldowns::Link;
#[cfg(feature = "sql")]
use crate::daily::DailyUsage;
use crate::health::Health;
use crate::live::{GroupPrices, Live};
use crate::reload::ReloadHandle;
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
pub(crate) struct Lasting {
    /// The table and prices of the config running now.
    pub(crate) live: Arc<Live>,
    /// The virtual keys, with a master key.
    pub(crate) keys: Option<Keys>,
    /// The gateway's own budget (`litellm_settings.max_budget`), with its ledger.
    pub(crate) proxy_budget: Option<llmgate_auth::Budgets>,
    #[cfg(feature = "sql")]
    pub(crate) database: Option<Database>,
    /// The store and counters (the start's settings; each config sets its own).
    pub(crate) ratelimit: RateLimitLayer,
    /// Deployments' rpm/tpm/rpd in the rate limiter's Redis store, when configured.
    shared_usage: Option<Arc<dyn SharedUsage>>,
    /// Each table tells its cooldowns here, with Redis.
    cooldown_hook: Option<CooldownHook>,
    /// The router's cooldown channel, with Redis.
    pub(crate) cooldowns: Option<Arc<Link>>,
    /// The spend queue and metrics, with the start's prices.
    pub(crate) meter: Meter,
    pub(crate) cache_store: Option<Arc<dyn CacheStore>>,
    /// Where `/v1/responses` keeps responses: the database when there is one, else memory.
    pub(crate) responses: SharedStore,
    /// The pooled upstream client, its streams ended by `cutoff`.
    provider: ProviderService,
    pub(crate) health: Health,
    /// Fired when a stop's grace period runs out: every stream relay watches it.
    pub(crate) cutoff: StreamCutoff,
    /// Tasks started with the first request (or by [`crate::Gateway::open`]).
    pub(crate) tasks: Background,
    /// Deployments' `rpd` counts kept in the database.
    #[cfg(feature = "sql")]
    pub(crate) daily: Option<DailyUsage>,
    /// What `POST /config/reload` calls: the gateway, once built.
    pub(crate) reload_handle: ReloadHandle,
    /// The events bus every table, the fallback layer and the keys tell (see `alerting.rs`).
    pub(crate) events: Events,
    /// Where every table watches its attempts for `llm_requests_hanging` (kept across reloads).
    hanging: Option<Arc<llmgate_router::Hanging>>,
    /// The alert counts and recent alerts, for `/metrics` and `GET /alerting/recent`.
    pub(crate) alert_view: Arc<AlertView>,
    /// The admin UI's sign-in sessions: kept across reloads.
    #[cfg(feature = "admin")]
    pub(crate) ui_sessions: llmgate_admin::ui::Sessions,
}

impl Lasting {
    /// Builds the lasting parts for the start's `config`, and its model table. Spawns nothing
    /// (tasks are queued in [`Lasting::tasks`]).
    pub(crate) fn build(
        config: &Config,
        deployments: &[Arc<DeploymentSpec>],
        given: Given,
    ) -> Result<(Lasting, Arc<ModelTable>), BuildError> {
        let tasks = Background::default();
        let events = Events::new();
        let crate::alerting::Started {
            alerting,
            hanging,
            daily_reports,
        } = crate::alerting::start(config, &events, &tasks)?;
        let ratelimit = build::ratelimit::layer(config)?;
        let shared_usage = crate::shared_usage::LimiterUsage::over(ratelimit.store());
        let (cooldown_hook, shared_cooldowns) = match build::routing::shared_cooldowns(config)? {
            Some((hook, task)) => (Some(hook), Some(task)),
            None => (None, None),
        };
        let table = build::routing::model_table(
            config,
            deployments,
            shared_usage.clone(),
            cooldown_hook.clone(),
            None,
            &events,
            hanging.clone(),
        );
        let live = Live::new(table.clone());
        let cooldowns = shared_cooldowns.as_ref().map(|c| c.link());
        if daily_reports {
            let every = crate::reports::frequency(config);
            tasks.add(crate::reports::run(live.clone(), events.clone(), every));
        }
        if let Some(task) = shared_cooldowns {
            tasks.add(task.run(live.clone()));
        }
        #[cfg(feature = "sql")]
        let ledger = given
            .database
            .as_ref()
            .and_then(crate::budget::database_ledger);
        #[cfg(not(feature = "sql"))]
        let ledger = None;
        #[cfg(feature = "sql")]
        let records = given.database.as_ref().map_or_else(
            || Arc::new(MemoryRecordStore::new()) as Arc<dyn llmgate_auth::RecordStore>,
            |db| db.record_store(),
        );
        #[cfg(not(feature = "sql"))]
        let records: Arc<dyn llmgate_auth::RecordStore> = Arc::new(MemoryRecordStore::new());
        let (keys, proxy_budget) =
            build::auth::keys_and_budget(config, given.key_store, ledger, given.clock, &live)?;
        let keys = keys.map(|k| {
            k.with_teams(records)
                .with_end_user_budget(config.litellm_settings.max_end_user_budget)
                .with_events(events.clone(), crate::alerting::budget_percent(config))
        });
        if let Some(keys) = &keys {
            tasks.add(keys.clone().follow_invalidations());
        }
        #[cfg(feature = "sql")]
        let sink = given
            .spend_sink
            .or_else(|| crate::spend::sink(config, given.database.as_ref(), keys.as_ref()));
        #[cfg(not(feature = "sql"))]
        let sink = given.spend_sink;
        let meter = build::meter::meter(config, deployments, sink)?;
        let cutoff = StreamCutoff::new();
        let provider = provider(config, &cutoff)?;
        let health = Health::new(live.clone(), provider.clone(), background_checks(config));
        #[cfg(feature = "sql")]
        let daily = DailyUsage::new(&live, given.database.as_ref());
        #[cfg(feature = "sql")]
        if let Some(daily) = daily.clone() {
            tasks.add(daily.run());
        }
        let alert_view =
            crate::alerting::view(alerting, &events, &tasks, &keys, &ratelimit, &meter);
        #[cfg(feature = "sql")]
        let responses = crate::store::response_store(given.database.as_ref());
        #[cfg(not(feature = "sql"))]
        let responses: SharedStore = Arc::new(llmgate_responses::MemoryStore::new());
        #[cfg(feature = "sql")]
        crate::budget::proxy::start(proxy_budget.as_ref(), given.database.as_ref(), &tasks);
        let lasting = Lasting {
            proxy_budget,
            responses,
            live,
            keys,
            #[cfg(feature = "sql")]
            database: given.database,
            ratelimit,
            shared_usage,
            cooldown_hook,
            cooldowns,
            meter,
            cache_store: build::cache::store(config)?,
            provider,
            health,
            cutoff,
            tasks,
            #[cfg(feature = "sql")]
            daily,
            reload_handle: ReloadHandle::default(),
            events,
            hanging,
            alert_view,
            #[cfg(feature = "admin")]
            ui_sessions: llmgate_admin::ui::Sessions::new(),
        };
        Ok((lasting, table))
    }

    /// A model table for a reload's `config`: the live state of `old`'s deployments that did
    /// not change carried over.
    pub(crate) fn table(
        &self,
        config: &Config,
        deployments: &[Arc<DeploymentSpec>],
        old: &ModelTable,
    ) -> Arc<ModelTable> {
        build::routing::model_table(
            config,
            deployments,
            self.shared_usage.clone(),
            self.cooldown_hook.clone(),
            Some(old),
            &self.events,
            self.hanging.clone(),
        )
    }
}

/// See the module docs.
pub(crate) struct Parts {
    /// The deployments, grouped, with their live state (shared through Redis when configured).
    pub(crate) table: Arc<ModelTable>,
    /// Each group's prices, for budget estimates.
    pub(crate) group_prices: Arc<GroupPrices>,
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
    /// Where `/v1/responses` keeps responses.
    pub(crate) responses: SharedStore,
    pub(crate) health: Health,
    /// Tasks started with the first request (or by [`crate::Gateway::open`]).
    pub(crate) tasks: Background,
    /// The router's cooldown channel, with Redis.
    pub(crate) cooldowns: Option<Arc<Link>>,
    /// For `POST /config/reload`.
    #[cfg(feature = "admin")]
    pub(crate) reloader: ReloadHandle,
    /// The events bus (the lasting one).
    pub(crate) events: Events,
    /// The alert counts and recent alerts, for `/metrics` and `GET /alerting/recent`.
    pub(crate) alert_view: Arc<AlertView>,
    /// The admin UI's sign-in sessions (the lasting ones).
    #[cfg(feature = "admin")]
    pub(crate) ui_sessions: llmgate_admin::ui::Sessions,
}

impl Parts {
    /// The parts of `config`'s stack over `lasting`, with `table` (built for `config`) and
    /// `meter` (the lasting one at the start; [`Meter::reconfigured`] on a reload).
    pub(crate) fn assemble(
        config: &Config,
        deployments: &[Arc<DeploymentSpec>],
        lasting: &Lasting,
        table: Arc<ModelTable>,
        meter: Meter,
    ) -> Parts {
        let max_response = usize::try_from(config.general_settings.max_response_body_bytes())
            .unwrap_or(usize::MAX);
        Parts {
            group_prices: Arc::new(crate::budget::group_prices(meter.prices(), deployments)),
            keys: lasting.keys.clone(),
            auth: build::auth::layer(
                config,
                &table,
                lasting.keys.as_ref(),
                lasting.proxy_budget.as_ref(),
            ),
            #[cfg(feature = "sql")]
            database: lasting.database.clone(),
            ratelimit: build::ratelimit::configure(lasting.ratelimit.clone(), config),
            meter,
            cache: build::cache::layer(config, lasting.cache_store.clone(), &table),
            provider: lasting.provider.clone().max_response_bytes(max_response),
            responses: lasting.responses.clone(),
            health: lasting.health.clone(),
            tasks: lasting.tasks.clone(),
            cooldowns: lasting.cooldowns.clone(),
            #[cfg(feature = "admin")]
            reloader: lasting.reload_handle.clone(),
            events: lasting.events.clone(),
            alert_view: lasting.alert_view.clone(),
            #[cfg(feature = "admin")]
            ui_sessions: lasting.ui_sessions.clone(),
            table,
        }
    }
}

/// The provider service on one pooled upstream client, capped at the start's
/// `max_response_size_mb` (each config's stack sets its own), its streams ended by `cutoff`.
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
