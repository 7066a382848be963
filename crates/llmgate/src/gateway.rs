//! [`Gateway`]: the whole stack, built from a config.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use arc_swap::ArcSwap;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::BodyExt;
use llmgate_auth::KeyStore;
use llmgate_config::Config;
use llmgate_core::{BoxBody, BoxError, DeploymentSpec, SharedClock, StreamCutoff, SystemClock};
use llmgate_metering::{Meter, SpendSink};
use tower::Service;

use crate::current::{Shared, Whole};
#[cfg(feature = "admin")]
use crate::keys::KeyAdmin;
use crate::limits::HttpLimits;
use crate::parts::{Given, Lasting, Parts};
#[cfg(feature = "sql")]
use crate::store::Database;
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
    #[cfg(feature = "sql")]
    #[error(transparent)]
    Store(#[from] crate::store::OpenStoreError),
    /// The config asks for a part this build was compiled without (its cargo feature is off).
    #[error("{0}")]
    NotInThisBuild(String),
    /// The rate limiter's store could not be set up (a Redis URL that does not parse).
    #[error("cannot set up rate limiting: {0}")]
    RateLimit(String),
    /// The response cache could not be set up (`litellm_settings.cache_params`).
    #[error("cannot set up the response cache: {0}")]
    Cache(String),
    /// `default_team_settings` holds a setting a team cannot take.
    #[error("{0}")]
    Teams(String),
    /// The price file could not be used.
    #[error("{0}")]
    Prices(String),
    /// Alerting could not be set up (`general_settings.alerting`).
    #[error("{0}")]
    Alerting(String),
}

/// Builds a [`Gateway`] with parts a config cannot name: a key store, a clock.
pub struct GatewayBuilder {
    config: Config,
    key_store: Option<Arc<dyn KeyStore>>,
    #[cfg(feature = "sql")]
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
    #[cfg(feature = "sql")]
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

/// The deployments `config` lists, each one a provider this build serves.
pub(crate) fn deployments(config: &Config) -> Result<Vec<Arc<DeploymentSpec>>, BuildError> {
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
    Ok(deployments)
}

/// The gateway: cheap to clone, shareable across threads and runtimes. Its config can be
/// replaced while it serves ([`Gateway::reload`]): every clone sees the new one.
#[derive(Clone)]
pub struct Gateway {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("max_body", &self.shared.max_body)
            .field("models", &self.models())
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
            #[cfg(feature = "sql")]
            database: None,
            clock: Arc::new(SystemClock),
            spend_sink: None,
        }
    }

    /// Opens the configured key store (when there is a master key: `database_url`, else SQLite
    /// in `llmgate.db` beside the config), runs its migrations, and builds the gateway. Fails
    /// when the database cannot be reached. The store's I/O runs on the calling runtime.
    ///
    /// Without the `sql` feature there is no database: virtual keys come only from a
    /// [`GatewayBuilder::key_store`], and a config that sets `database_url` is refused.
    pub async fn open(config: Config) -> Result<Gateway, BuildError> {
        let gateway = Gateway::open_builder(config).await?.build()?;
        // Today's `rpd` counts before the first request is routed.
        #[cfg(feature = "sql")]
        if let Some(daily) = &gateway.shared.lasting.daily {
            if let Err(e) = daily.sync().await {
                tracing::warn!(error = %e, "cannot read today's deployment rpd counts; counting from zero until the database answers");
            }
        }
        // The gateway budget's spend this period, before the first request is held to it.
        #[cfg(feature = "sql")]
        crate::budget::proxy::load_at_open(&gateway.shared.lasting).await;
        // Inside a runtime already: follow other instances' key changes from now, not from the
        // first request; and the spend writer replays what the last stop spilled now.
        gateway.shared.lasting.tasks.start();
        gateway.shared.lasting.meter.start();
        Ok(gateway)
    }

    /// The builder [`Gateway::open`] builds: with the configured database when there is a
    /// master key.
    #[cfg(feature = "sql")]
    async fn open_builder(config: Config) -> Result<GatewayBuilder, BuildError> {
        let db = match config.master_key() {
            Some(_) => Some(crate::store::open_database(&config).await?),
            None => None,
        };
        let builder = Gateway::builder(config);
        Ok(match db {
            Some(db) => builder.database(db),
            None => builder,
        })
    }

    /// Without the `sql` feature: refuses a `database_url` rather than keep keys and spend
    /// somewhere the operator did not ask for.
    #[cfg(not(feature = "sql"))]
    async fn open_builder(config: Config) -> Result<GatewayBuilder, BuildError> {
        if config.general_settings.database_url.is_some() {
            return Err(BuildError::NotInThisBuild(
                "general_settings.database_url (or DATABASE_URL) is set, but this build of llmgate has no SQL store: build the llmgate crate with its `sql` feature (on by default), or pass keys with GatewayBuilder::key_store".into(),
            ));
        }
        Ok(Gateway::builder(config))
    }

    /// Virtual-key management (`None` without a master key), as the `/key/*` API does it.
    #[cfg(feature = "admin")]
    pub fn key_admin(&self) -> Option<&KeyAdmin> {
        self.shared.key_admin.as_ref()
    }

    /// Lasting parts, parts, stack, admin routes, dispatch: each built in its own module
    /// (`parts.rs`, `current.rs`, `stack.rs`, `admin.rs`, `routes.rs`).
    fn build(builder: GatewayBuilder) -> Result<Gateway, BuildError> {
        let GatewayBuilder {
            config,
            key_store,
            #[cfg(feature = "sql")]
            database,
            clock,
            spend_sink,
        } = builder;
        let deployments = deployments(&config)?;
        #[cfg(feature = "admin")]
        llmgate_admin::teams::check_defaults(config.default_team_settings())
            .map_err(BuildError::Teams)?;
        let given = Given {
            key_store,
            #[cfg(feature = "sql")]
            database,
            clock,
            spend_sink,
        };
        let (lasting, table) = Lasting::build(&config, &deployments, given)?;
        let max_body =
            usize::try_from(config.general_settings.max_request_body_bytes()).unwrap_or(usize::MAX);
        let http_limits = HttpLimits::from_settings(&config.general_settings);
        let meter = lasting.meter.clone();
        let parts = Parts::assemble(&config, &deployments, &lasting, table, meter);
        let built = crate::current::build(config, parts, max_body);
        lasting.meter.metrics().config_applied_now();
        let reload_handle = lasting.reload_handle.clone();
        #[cfg(feature = "admin")]
        let lasting_keys = lasting.keys.clone();
        let shared = Arc::new(Shared {
            current: ArcSwap::from_pointee(built),
            lasting,
            max_body,
            http_limits,
            reloading: Mutex::default(),
            config_file: Mutex::default(),
            #[cfg(feature = "admin")]
            key_admin: lasting_keys.map(KeyAdmin::new),
        });
        shared.install(shared.current.load_full());
        reload_handle.point_at(&shared);
        Ok(Gateway::from_shared(shared))
    }

    /// A handle on `shared`.
    pub(crate) fn from_shared(shared: Arc<Shared>) -> Gateway {
        Gateway { shared }
    }

    /// The Tower service to host: takes any request body, never fails (errors are responses).
    pub fn service(&self) -> GatewayService {
        GatewayService {
            shared: self.shared.clone(),
        }
    }

    /// The request body cap (`general_settings.max_request_size_mb`), for hosts that read the
    /// body before calling the service.
    pub fn max_request_body_bytes(&self) -> usize {
        self.shared.max_body
    }

    /// The bounds on clients a host enforces (header and body deadlines, header size and
    /// count, open connections) from `general_settings`.
    pub fn http_limits(&self) -> HttpLimits {
        self.shared.http_limits
    }

    /// Ends every stream in flight now, each with an error event in its client's dialect: the
    /// host calls it just before its grace period for a stop runs out, so no stream is cut at
    /// the socket without a word. Streams that start afterwards end at once the same way.
    pub fn cut_streams(&self) {
        self.shared.lasting.cutoff.cut();
    }

    /// The cutoff [`Gateway::cut_streams`] fires, for the stream bodies that watch it.
    pub fn stream_cutoff(&self) -> &StreamCutoff {
        &self.shared.lasting.cutoff
    }

    /// Writes every spend record queued so far; returns once they are written.
    pub async fn flush_spend(&self) {
        self.shared.lasting.meter.flush().await;
    }

    /// Writes every queued spend record and stops the spend writer: call it once the host has
    /// stopped serving (the `llmgate` binary does, after Pingora's `run` returns; [`crate::serve`]
    /// does when it returns). Works from any runtime, even one built for this call.
    pub async fn shutdown(&self) {
        self.shared.lasting.meter.shutdown().await;
    }

    /// [`Gateway::shutdown`] bounded by the host's grace period: a failing spend sink (the
    /// database down) is retried only until `deadline`.
    pub async fn shutdown_by(&self, deadline: std::time::Instant) {
        #[cfg(feature = "sql")]
        let daily = async {
            if let Some(daily) = &self.shared.lasting.daily {
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
        #[cfg(not(feature = "sql"))]
        let daily = async {};
        tokio::join!(self.shared.lasting.meter.shutdown_by(deadline), daily);
    }

    /// The metering: spend queue and metrics (shared by every config this gateway runs),
    /// with the prices of the config it started with.
    pub fn meter(&self) -> &Meter {
        &self.shared.lasting.meter
    }

    /// The model names clients may use now, with their providers.
    pub fn models(&self) -> Vec<(String, String)> {
        self.shared.current.load().table.visible_models()
    }
}

/// The gateway as a Tower service over any request body. Each request is served by the config
/// current when it is called, to its end (a stream's included), whatever reloads happen
/// meanwhile.
#[derive(Clone)]
pub struct GatewayService {
    shared: Arc<Shared>,
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
    type Future = <Whole as Service<Request<ReqBody>>>::Future;

    /// Always ready: the stack behind it is (see `Dispatch::poll_ready`: every layer delegates
    /// and the services they end in are always ready), whichever config is current.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    /// One atomic load of the current stack (no lock), and the clone of it a host would have
    /// made of the service anyway.
    fn call(&mut self, req: Request<B>) -> Self::Future {
        let mut service = self.shared.current.load().service.clone();
        service.call(req.map(|b| b.map_err(Into::into).boxed_unsync()))
    }
}
