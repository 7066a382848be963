//! [`Gateway`]: the whole stack, built from a config.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::BodyExt;
use llmgate_auth::AuthLayer;
use llmgate_config::Config;
use llmgate_core::{wire::ModelList, BoxBody, BoxError};
use llmgate_fallback::FallbackLayer;
use llmgate_providers::{ProviderService, UpstreamClient, UpstreamClientConfig};
use llmgate_router::{ModelTable, RouterLayer};
use tower::util::BoxCloneSyncService;
use tower::{service_fn, Service, ServiceBuilder};

use crate::health::Health;
use crate::messages::MessagesLayer;
use crate::parse::ParseLayer;
use crate::request_id::RequestIdLayer;
use crate::rescue::RescueLayer;
use crate::routes::{self, Dispatch};
use crate::routing;

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
    /// The rate limiter's store could not be set up (a Redis URL that does not parse).
    #[error("cannot set up rate limiting: {0}")]
    RateLimit(String),
}

/// The gateway: cheap to clone, shareable across threads and runtimes.
#[derive(Clone)]
pub struct Gateway {
    service: BoxCloneSyncService<Request<ReqBody>, Response<BoxBody>, Infallible>,
    max_body: usize,
    table: Arc<ModelTable>,
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
    /// auth, rate limit, fallback, router, provider.
    pub fn new(config: Config) -> Result<Gateway, BuildError> {
        let deployments = config.deployments();
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
        let aliases = config
            .model_group_aliases()
            .into_iter()
            .map(|(alias, (target, hidden))| (alias, target, hidden));
        let table = Arc::new(
            ModelTable::new(deployments.into_iter().map(Arc::new), aliases)
                .with_strategy(routing::strategy(&config))
                .with_cooldown_policy(routing::cooldown_policy(&config)),
        );
        let max_body =
            usize::try_from(config.general_settings.max_request_body_bytes()).unwrap_or(usize::MAX);
        let auth = AuthLayer::new(config.master_key());
        let ratelimit = crate::ratelimit::layer(&config)?;

        let client = UpstreamClient::new(UpstreamClientConfig::default())
            .map_err(|e| BuildError::UpstreamClient(e.to_string()))?;
        let provider = ProviderService::new(client);
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
        // `/v1/messages` (Anthropic-format clients) translates its body and answer around the
        // same inner stack as the OpenAI endpoints.
        let inner = ServiceBuilder::new()
            .layer(auth.clone())
            .layer(ratelimit)
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
        let models =
            ServiceBuilder::new()
                .layer(auth)
                .service(service_fn(move |_req: Request<ReqBody>| {
                    let body = models_json.clone();
                    async move { Ok::<_, BoxError>(routes::json(body)) }
                }));
        let readiness = Bytes::from(
            serde_json::json!({
                "status": "healthy",
                "db": "Not connected",
                "cache": null,
                "llmgate_version": env!("CARGO_PKG_VERSION"),
            })
            .to_string(),
        );

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
            readiness,
            health: BoxCloneSyncService::new(health),
            health_checks,
        };
        let service = ServiceBuilder::new()
            .layer(RequestIdLayer)
            .layer(RescueLayer)
            .service(dispatch);
        Ok(Gateway {
            service: BoxCloneSyncService::new(service),
            max_body,
            table,
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
