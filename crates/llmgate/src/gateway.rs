//! [`Gateway`]: the whole stack, built from a config.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::BodyExt;
use llmgate_auth::{AuthLayer, KeyStore, Keys, MemoryKeyStore};
use llmgate_config::Config;
use llmgate_core::{
    wire::ModelList, BoxBody, BoxError, ModelAccess, Principal, SharedClock, StreamCutoff,
    SystemClock,
};
use llmgate_fallback::FallbackLayer;
use llmgate_metering::{Meter, SpendSink};
use llmgate_providers::{ProviderService, UpstreamClient, UpstreamClientConfig};
use llmgate_router::{ModelTable, RouterLayer};
use tower::util::BoxCloneSyncService;
use tower::{service_fn, Service, ServiceBuilder};

use crate::background::Background;
use crate::health::Health;
use crate::keys::{api::KeyApi, KeyAdmin};
use crate::limits::HttpLimits;
use crate::messages::MessagesLayer;
use crate::meter;
use crate::parse::ParseLayer;
use crate::readiness::{self, Readiness};
use crate::request_id::RequestIdLayer;
use crate::rescue::RescueLayer;
use crate::routes::{self, Dispatch};
use crate::routing;
use crate::spend;
use crate::store::Database;

/// LiteLLM's default `health_check_interval`.
const DEFAULT_HEALTH_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(300);
use crate::ReqBody;

/// Why a gateway could not be built from a config that loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A deployment names a provider this build cannot serve.
    #[error("model_list entry \"{model_name}\" (deployment {id}): provider \"{provider}\" is not supported by this build")]
    UnsupportedProvider {
        /// The entry's `model_name`.
        model_name: String,
        /// The deployment id.
        id: String,
        /// The provider.
        provider: String,
    },
    /// The upstream HTTP client could not be built (TLS roots, connector).
    #[error("cannot build the upstream HTTP client: {0}")]
    UpstreamClient(String),
    /// The key store (`database_url`, or `llmgate.db` beside the config) could not be opened.
    #[error(transparent)]
    Store(#[from] crate::store::OpenStoreError),
    /// The rate limiter's store could not be set up (a Redis URL that does not parse).
    #[error("cannot set up rate limiting: {0}")]
    RateLimit(String),
    /// The response cache could not be set up (`litellm_settings.cache_params`).
    #[error("cannot set up the response cache: {0}")]
    Cache(String),
    /// The price file could not be used.
    #[error("{0}")]
    Prices(String),
}

/// Builds a [`Gateway`] with parts a config cannot name: a key store, a clock.
pub struct GatewayBuilder {
    config: Config,
    key_store: Option<Arc<dyn KeyStore>>,
    database: Option<Database>,
    clock: SharedClock,
    spend_sink: Option<Arc<dyn SpendSink>>,
}

impl std::fmt::Debug for GatewayBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayBuilder")
            .field("key_store", &self.key_store)
            .finish_non_exhaustive()
    }
}

impl GatewayBuilder {
    /// Virtual keys live in `store` (else, with a master key, in memory).
    pub fn key_store(mut self, store: Arc<dyn KeyStore>) -> Self {
        self.key_store = Some(store);
        self
    }

    /// Keys and spend live in `db`: its key store, its spend log as the spend sink (unless
    /// [`GatewayBuilder::spend_sink`] names another) and the spend endpoints over it.
    pub fn database(mut self, db: Database) -> Self {
        self.key_store = Some(db.key_store());
        self.database = Some(db);
        self
    }

    /// Spend records go to `sink` (see `docs/cost-tracking.md`); without one they are counted
    /// in the metrics but not kept.
    pub fn spend_sink(mut self, sink: Arc<dyn SpendSink>) -> Self {
        self.spend_sink = Some(sink);
        self
    }

    /// The clock key expiry and budget periods are judged by (tests move it by hand).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Builds the stack. Spawns nothing, so it may be called outside a runtime.
    pub fn build(self) -> Result<Gateway, BuildError> {
        Gateway::build(self)
    }
}

/// The gateway: cheap to clone, shareable across threads and runtimes.
#[derive(Clone)]
pub struct Gateway {
    service: BoxCloneSyncService<Request<ReqBody>, Response<BoxBody>, Infallible>,
    max_body: usize,
    http_limits: HttpLimits,
    table: Arc<ModelTable>,
    keys: Option<KeyAdmin>,
    background: Background,
    meter: Meter,
    cutoff: StreamCutoff,
    /// Deployments' `rpd` counts kept in the database, when any deployment has one.
    daily: Option<crate::daily::DailyUsage>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("max_body", &self.max_body)
            .field("models", &self.table.visible_models())
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// Builds the stack. Spawns nothing, so it may be called outside a runtime.
    ///
    /// The layers, outermost first (see `docs/architecture.md`): request id and span, rescue
    /// (errors and panics to OpenAI JSON), path dispatch, then for LLM calls: body limit + parse,
    /// auth, rate limit, metering, cache, fallback, router, provider.
    ///
    /// With a master key, virtual keys are kept in memory (lost on restart): use
    /// [`Gateway::open`] for the configured database, or [`Gateway::builder`] to pass a store.
    pub fn new(config: Config) -> Result<Gateway, BuildError> {
        Gateway::builder(config).build()
    }

    /// A builder, for a key store or clock of the caller's.
    pub fn builder(config: Config) -> GatewayBuilder {
        GatewayBuilder {
            config,
            key_store: None,
            database: None,
            clock: Arc::new(SystemClock),
            spend_sink: None,
        }
    }

    /// Opens the configured key store (when there is a master key: `database_url`, else SQLite
    /// in `llmgate.db` beside the config), runs its migrations, and builds the gateway. Fails
    /// when the database cannot be reached. The store's I/O runs on the calling runtime.
    pub async fn open(config: Config) -> Result<Gateway, BuildError> {
        let db = match config.master_key() {
            Some(_) => Some(crate::store::open_database(&config).await?),
            None => None,
        };
        let mut builder = Gateway::builder(config);
        if let Some(db) = db {
            builder = builder.database(db);
        }
        let gateway = builder.build()?;
        // Today's `rpd` counts before the first request is routed.
        if let Some(daily) = &gateway.daily {
            if let Err(e) = daily.sync().await {
                tracing::warn!(error = %e, "cannot read today's deployment rpd counts; counting from zero until the database answers");
            }
        }
        // Inside a runtime already: follow other instances' key changes from now, not from the
        // first request; and the spend writer replays what the last stop spilled now.
        gateway.background.start();
        gateway.meter.start();
        Ok(gateway)
    }

    /// Virtual-key management (`None` without a master key), as the `/key/*` API does it.
    pub fn key_admin(&self) -> Option<&KeyAdmin> {
        self.keys.as_ref()
    }

    fn build(builder: GatewayBuilder) -> Result<Gateway, BuildError> {
        let GatewayBuilder {
            config,
            key_store,
            database,
            clock,
            spend_sink,
        } = builder;
        let deployments: Vec<_> = config.deployments().into_iter().map(Arc::new).collect();
        if let Some(d) = deployments
            .iter()
            .find(|d| !llmgate_providers::supports(d.provider))
        {
            return Err(BuildError::UnsupportedProvider {
                model_name: d.model_name.to_string(),
                id: d.id.to_string(),
                provider: d.provider.to_string(),
            });
        }
        let ratelimit = crate::ratelimit::layer(&config)?;
        let shared_usage = crate::shared_usage::LimiterUsage::over(ratelimit.store());
        let (table, shared_cooldowns) = routing::model_table(&config, &deployments, shared_usage)?;
        let max_body =
            usize::try_from(config.general_settings.max_request_body_bytes()).unwrap_or(usize::MAX);
        let tasks = Background::default();
        let cooldown_link = shared_cooldowns.as_ref().map(|c| c.link());
        if let Some(task) = shared_cooldowns {
            tasks.add(task.run(table.clone()));
        }
        let group_prices = crate::budget::GroupPrices::default();
        let mut ledger = match config.master_key() {
            Some(_) => Some(crate::budget::ledger(&config, database.as_ref())?),
            None => None,
        };
        let keys = config.master_key().map(|_| {
            let store = key_store.unwrap_or_else(|| Arc::new(MemoryKeyStore::new()));
            let general = &config.general_settings;
            let mut keys = Keys::new(store)
                .with_clock(clock)
                .allow_requests_on_store_error(
                    general.allow_requests_on_db_unavailable.unwrap_or(false),
                );
            if let Some(ttl) = general.user_api_key_cache_ttl {
                keys = keys.with_cache_ttl(ttl);
            }
            if let Some(ledger) = ledger.take() {
                let estimate = crate::budget::estimator(table.clone(), group_prices.clone());
                keys = keys.with_budget_ledger(ledger, estimate);
            }
            tasks.add(keys.clone().follow_invalidations());
            keys
        });
        // A key's `models` are judged by the group a name resolves to as well (aliases).
        let mut auth = AuthLayer::new(config.master_key()).with_model_resolver(table.clone());
        if let Some(keys) = &keys {
            auth = auth.with_keys(keys.clone());
        }
        let spend_sink =
            spend_sink.or_else(|| spend::sink(&config, database.as_ref(), keys.as_ref()));
        let key_store = keys.as_ref().map(|k| k.store().clone());
        let budgets = keys.as_ref().and_then(|k| k.budget_ledger().cloned());
        let key_admin = keys.map(KeyAdmin::new);
        let limiter = (ratelimit.store().clone(), ratelimit.failure_policy());
        let limiter_view = crate::meter::LimiterView {
            stats: ratelimit.stats(),
            store: ratelimit.store().clone(),
            budgets,
            cooldowns: cooldown_link.clone(),
        };
        let meter = meter::meter(&config, &deployments, spend_sink)?;
        crate::budget::group_prices(&group_prices, meter.prices(), &deployments);

        let client = UpstreamClient::new(UpstreamClientConfig::default())
            .map_err(|e| BuildError::UpstreamClient(e.to_string()))?;
        // Fired by `cut_streams` when a stop's grace period runs out: every stream relay
        // watches it.
        let cutoff = StreamCutoff::new();
        let max_response = usize::try_from(config.general_settings.max_response_body_bytes())
            .unwrap_or(usize::MAX);
        let provider = ProviderService::new(client)
            .max_response_bytes(max_response)
            .stream_cutoff(cutoff.clone());
        let background = config
            .general_settings
            .background_health_checks
            .unwrap_or(false)
            .then(|| {
                config
                    .general_settings
                    .health_check_interval
                    .unwrap_or(DEFAULT_HEALTH_CHECK_INTERVAL)
            });
        let health_checks = Health::new(table.clone(), provider.clone(), background);
        let cache = crate::cache::layer(&config, &table)?;
        let readiness = Readiness::new(readiness::Parts {
            keys: key_store,
            allow_without_keys: config
                .general_settings
                .allow_requests_on_db_unavailable
                .unwrap_or(false),
            limiter: limiter.0,
            limiter_policy: limiter.1,
            cache: cache.as_ref().map(|c| c.store().clone()),
            spend: meter.queue().clone(),
            router: (table.shared_backend().is_some() || cooldown_link.is_some()).then(|| {
                readiness::RouterShared {
                    usage: table.shared_backend().is_some(),
                    cooldowns: cooldown_link.clone(),
                }
            }),
        });
        // `/v1/messages` (Anthropic-format clients) translates its body and answer around the
        // same inner stack as the OpenAI endpoints.
        let inner = ServiceBuilder::new()
            .map_response(meter::count_rejections(meter.metrics().clone()))
            .layer(auth.clone())
            .layer(ratelimit)
            .layer(meter.layer())
            .option_layer(cache)
            .layer(FallbackLayer::new(routing::fallback_policy(&config)))
            .layer(RouterLayer::new(table.clone()))
            .service(provider);
        let messages = ServiceBuilder::new()
            .layer(MessagesLayer::new(max_body))
            .service(inner.clone());
        let llm = ServiceBuilder::new()
            .layer(ParseLayer::new(max_body))
            .service(inner);

        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let models_json = Bytes::from(
            serde_json::to_vec(&ModelList::new(table.visible_models(), created))
                .unwrap_or_default(),
        );
        let visible = table.visible_models();
        let resolver = table.clone();
        let models = ServiceBuilder::new()
            .layer(auth.clone())
            .service(service_fn(move |req: Request<ReqBody>| {
                // A key limited to some models sees only those.
                let body = match req.extensions().get::<Principal>().and_then(Principal::key) {
                    Some(key) if !key.models.is_empty() => {
                        let access = req.extensions().get::<ModelAccess>();
                        let allowed: Vec<_> = visible
                            .iter()
                            .filter(|(name, _)| {
                                // The same rule as a call: the name or the group it names.
                                let group = resolver.resolve(name);
                                access.is_none_or(|a| {
                                    a.permits(name, group.map_or(name.as_str(), |g| &**g))
                                })
                            })
                            .cloned()
                            .collect();
                        Bytes::from(
                            serde_json::to_vec(&ModelList::new(allowed, created))
                                .unwrap_or_default(),
                        )
                    }
                    _ => models_json.clone(),
                };
                async move { Ok::<_, BoxError>(routes::json(body)) }
            }));
        let daily = crate::daily::DailyUsage::new(&table, database.as_ref());
        if let Some(daily) = daily.clone() {
            tasks.add(daily.run());
        }
        let spend_api = spend::api(&config, database, auth.clone());
        let key_api = ServiceBuilder::new().layer(auth).service(KeyApi {
            admin: key_admin.clone(),
            max_body,
        });
        let checker = health_checks.clone();
        let health = ServiceBuilder::new()
            .layer(AuthLayer::new(config.master_key()))
            .service(service_fn(move |_req: Request<ReqBody>| {
                let checker = checker.clone();
                async move { Ok::<_, BoxError>(routes::json(checker.report().await)) }
            }));
        let dispatch = Dispatch {
            llm: BoxCloneSyncService::new(llm),
            messages: BoxCloneSyncService::new(messages),
            models: BoxCloneSyncService::new(models),
            readiness: BoxCloneSyncService::new(service_fn(move |_req: Request<ReqBody>| {
                let readiness = readiness.clone();
                async move { Ok::<_, BoxError>(readiness.answer().await) }
            })),
            health: BoxCloneSyncService::new(health),
            health_checks,
            keys: BoxCloneSyncService::new(key_api),
            spend: spend_api,
            background: tasks.clone(),
            meter: meter.clone(),
            table: table.clone(),
            limiter: limiter_view,
        };
        let service = ServiceBuilder::new()
            .layer(RequestIdLayer)
            .layer(RescueLayer)
            .service(dispatch);
        Ok(Gateway {
            service: BoxCloneSyncService::new(service),
            max_body,
            http_limits: HttpLimits::from_settings(&config.general_settings),
            table,
            keys: key_admin,
            background: tasks,
            meter,
            cutoff,
            daily,
        })
    }

    /// The Tower service to host: takes any request body, never fails (errors are responses).
    pub fn service(&self) -> GatewayService {
        GatewayService {
            inner: self.service.clone(),
        }
    }

    /// The request body cap (`general_settings.max_request_size_mb`), for hosts that read the
    /// body before calling the service.
    pub fn max_request_body_bytes(&self) -> usize {
        self.max_body
    }

    /// The bounds on clients a host enforces (header and body deadlines, header size and
    /// count, open connections) from `general_settings`.
    pub fn http_limits(&self) -> HttpLimits {
        self.http_limits
    }

    /// Ends every stream in flight now, each with an error event in its client's dialect: the
    /// host calls it just before its grace period for a stop runs out, so no stream is cut at
    /// the socket without a word. Streams that start afterwards end at once the same way.
    pub fn cut_streams(&self) {
        self.cutoff.cut();
    }

    /// The cutoff [`Gateway::cut_streams`] fires, for the stream bodies that watch it.
    pub fn stream_cutoff(&self) -> &StreamCutoff {
        &self.cutoff
    }

    /// Writes every spend record queued so far; returns once they are written.
    pub async fn flush_spend(&self) {
        self.meter.flush().await;
    }

    /// Writes every queued spend record and stops the spend writer: call it once the host has
    /// stopped serving (the `llmgate` binary does, after Pingora's `run` returns; [`crate::serve`]
    /// does when it returns). Works from any runtime, even one built for this call.
    pub async fn shutdown(&self) {
        self.meter.shutdown().await;
    }

    /// [`Gateway::shutdown`] bounded by the host's grace period: a failing spend sink (the
    /// database down) is retried only until `deadline`.
    pub async fn shutdown_by(&self, deadline: std::time::Instant) {
        let daily = async {
            if let Some(daily) = &self.daily {
                let by = tokio::time::Instant::from_std(deadline);
                match tokio::time::timeout_at(by, daily.sync()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "deployment rpd counts not written at the stop; up to a second of them is lost")
                    }
                    Err(_) => {
                        tracing::warn!("deployment rpd counts not written by the stop's deadline")
                    }
                }
            }
        };
        tokio::join!(self.meter.shutdown_by(deadline), daily);
    }

    /// The metering: prices, spend queue and metrics.
    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    /// The model names clients may use, with their providers.
    pub fn models(&self) -> Vec<(String, String)> {
        self.table.visible_models()
    }
}

/// The gateway as a Tower service over any request body.
#[derive(Clone)]
pub struct GatewayService {
    inner: BoxCloneSyncService<Request<ReqBody>, Response<BoxBody>, Infallible>,
}

impl std::fmt::Debug for GatewayService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayService").finish_non_exhaustive()
    }
}

impl<B> Service<Request<B>> for GatewayService
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<BoxBody>;
    type Error = Infallible;
    type Future =
        <BoxCloneSyncService<Request<ReqBody>, Response<BoxBody>, Infallible> as Service<
            Request<ReqBody>,
        >>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        self.inner
            .call(req.map(|b| b.map_err(Into::into).boxed_unsync()))
    }
}
