//! The routes beside the LLM stack, built from the [`Parts`]: the API behind the caller's key
//! (`/v1/models`, and with the `admin` feature `llmgate-admin`'s router: the key API `/key/*`,
//! the spend API and `POST /config/reload`), wrapped in auth once; `/health` behind
//! the master key alone; `/health/readiness`, open.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Request, Response};
use llmgate_auth::AuthLayer;
use llmgate_config::Config;
use llmgate_core::{wire::ModelList, BoxBody, BoxError, ModelAccess, Principal};
use llmgate_router::ModelTable;
use tower::util::BoxCloneSyncService;
use tower::{service_fn, Service, ServiceBuilder};

#[cfg(feature = "admin")]
use crate::keys::KeyAdmin;
use crate::parts::Parts;
use crate::readiness::{self, Readiness};
use crate::routes::{self, Stack};
use crate::ReqBody;

/// The admin and health routes.
pub(crate) struct AdminRoutes {
    /// `/v1/models`, `/key/*`, the spend paths: one auth in front of them all.
    pub(crate) api: Stack,
    pub(crate) readiness: Stack,
    pub(crate) health: Stack,
    /// `GET /alerting/recent`, behind the master key.
    pub(crate) alerting: Stack,
    /// The web UI at `/ui`: its own sign-in, then the API above as the master key.
    #[cfg(feature = "admin")]
    pub(crate) ui: Stack,
}

/// Builds the routes; the key and spend APIs, and `/v1/models`, sit behind one `parts.auth`;
/// `/health` behind the master key alone; readiness is open.
pub(crate) fn routes(config: &Config, parts: &Parts, max_body: usize) -> AdminRoutes {
    #[cfg(feature = "admin")]
    let key_admin = parts.keys.clone().map(KeyAdmin::new);
    // The defaults were checked when the gateway was built (`BuildError::Teams`).
    #[cfg(feature = "admin")]
    let team_admin = parts
        .keys
        .clone()
        .and_then(llmgate_admin::teams::TeamAdmin::new)
        .and_then(|t| t.with_defaults(config.default_team_settings().clone()).ok());
    #[cfg(feature = "admin")]
    let user_admin = parts.keys.clone().and_then(llmgate_admin::UserAdmin::new);
    let api = Api {
        models: models(&parts.table),
        info: crate::info::routes(config, &parts.table, parts.meter.prices(), max_body),
        #[cfg(feature = "admin")]
        admin: llmgate_admin::AdminApi::new()
            .keys(key_admin)
            .teams(team_admin)
            .users(user_admin)
            .database(parts.database.clone())
            .max_budget(config.litellm_settings.max_budget)
            .max_body(max_body)
            .reloader(Some(Arc::new(parts.reloader.clone())))
            .service(),
    };
    // One auth in front of the whole API.
    let api = ServiceBuilder::new().layer(parts.auth.clone()).service(api);
    let checker = parts.health.clone();
    let health = ServiceBuilder::new()
        .layer(AuthLayer::new(config.master_key()))
        .service(service_fn(move |_req: Request<ReqBody>| {
            let checker = checker.clone();
            async move { Ok::<_, BoxError>(routes::json(checker.report().await)) }
        }));
    let readiness = readiness_of(config, parts);
    let api = BoxCloneSyncService::new(api);
    let health = BoxCloneSyncService::new(health);
    let alerting = crate::alerting::recent_route(config, &parts.alert_view);
    #[cfg(feature = "admin")]
    let ui = ui_route(config, parts, &api, &health, &alerting);
    AdminRoutes {
        api,
        readiness: BoxCloneSyncService::new(service_fn(move |_req: Request<ReqBody>| {
            let readiness = readiness.clone();
            async move { Ok::<_, BoxError>(readiness.answer().await) }
        })),
        health,
        alerting,
        #[cfg(feature = "admin")]
        ui,
    }
}

/// The UI over `api` (and `/health` over `health`, `/alerting/recent` over `alerting`), which
/// `/ui/api/*` calls as the master key.
#[cfg(feature = "admin")]
fn ui_route(
    config: &Config,
    parts: &Parts,
    api: &Stack,
    health: &Stack,
    alerting: &Stack,
) -> Stack {
    let (api, health, alerting) = (api.clone(), health.clone(), alerting.clone());
    let inner = service_fn(move |req: Request<ReqBody>| {
        let target = match req.uri().path() {
            "/health" => health.clone(),
            "/alerting/recent" => alerting.clone(),
            _ => api.clone(),
        };
        tower::ServiceExt::oneshot(target, req)
    });
    let general = &config.general_settings;
    let admin_login = general.ui_username.clone().zip(general.ui_password.clone());
    llmgate_admin::ui::UiApi::new(config.master_key(), parts.ui_sessions.clone())
        .users(parts.keys.clone().and_then(llmgate_admin::UserAdmin::new))
        .admin_login(admin_login)
        .deployments(Some(Arc::new(crate::ui::TableView(parts.table.clone()))))
        .config(Some(Arc::new(crate::ui::ConfigFile(
            parts.reloader.clone(),
        ))))
        .service(BoxCloneSyncService::new(inner))
}

/// `/health/readiness` over the parts it pings (see `readiness.rs`).
fn readiness_of(config: &Config, parts: &Parts) -> Readiness {
    let table = &parts.table;
    let shared = table.shared_backend().is_some() || parts.cooldowns.is_some();
    Readiness::new(readiness::Parts {
        keys: parts.keys.as_ref().map(|k| k.store().clone()),
        allow_without_keys: config
            .general_settings
            .allow_requests_on_db_unavailable
            .unwrap_or(false),
        limiter: parts.ratelimit.store().clone(),
        limiter_policy: parts.ratelimit.failure_policy(),
        cache: parts.cache.as_ref().map(|c| c.store().clone()),
        spend: parts.meter.queue().clone(),
        router: shared.then(|| readiness::RouterShared {
            usage: table.shared_backend().is_some(),
            cooldowns: parts.cooldowns.clone(),
        }),
    })
}

/// The API behind the caller's key, by path (dispatch has checked path and method).
#[derive(Clone)]
struct Api {
    models: Stack,
    /// `/v1/models/{id}`, `/model/info`, `/model_group/info`, `/utils/token_counter`.
    info: Stack,
    /// `llmgate-admin`'s router: `/key/*` and the spend paths.
    #[cfg(feature = "admin")]
    admin: Stack,
}

impl Service<Request<ReqBody>> for Api {
    type Response = Response<BoxBody>;
    type Error = BoxError;
    type Future = <Stack as Service<Request<ReqBody>>>::Future;

    /// Always ready, as the services it calls are (see `Dispatch::poll_ready`; axum's
    /// `Router` is always ready).
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        #[cfg(feature = "admin")]
        {
            let path = req.uri().path();
            if crate::routes::is_admin_prefix(path)
                || llmgate_admin::is_spend_path(path)
                || path == llmgate_admin::RELOAD_PATH
            {
                return self.admin.call(req);
            }
        }
        if crate::info::is_info_path(req.uri().path()) {
            return self.info.call(req);
        }
        self.models.call(req)
    }
}

/// The `created` time of the model objects: now, in Unix seconds.
pub(crate) fn started_at() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `/v1/models`: the names clients may use; a key limited to some models sees only those.
fn models(table: &Arc<ModelTable>) -> Stack {
    let created = started_at();
    let visible = table.visible_models();
    let all = Bytes::from(
        serde_json::to_vec(&ModelList::new(visible.clone(), created)).unwrap_or_default(),
    );
    let resolver = table.clone();
    let service = service_fn(move |req: Request<ReqBody>| {
        let body = match req.extensions().get::<Principal>().and_then(Principal::key) {
            Some(key) if !key.models.is_empty() => {
                let access = req.extensions().get::<ModelAccess>();
                let allowed: Vec<_> = visible
                    .iter()
                    .filter(|(name, _)| {
                        // The same rule as a call: the name or the group it names.
                        let group = resolver.resolve(name);
                        access
                            .is_none_or(|a| a.permits(name, group.map_or(name.as_str(), |g| &**g)))
                    })
                    .cloned()
                    .collect();
                Bytes::from(
                    serde_json::to_vec(&ModelList::new(allowed, created)).unwrap_or_default(),
                )
            }
            _ => all.clone(),
        };
        async move { Ok::<_, BoxError>(routes::json(body)) }
    });
    BoxCloneSyncService::new(service)
}
