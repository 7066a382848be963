//! The routes beside the LLM stack: `/v1/models`, `/health`, `/health/readiness`, the key API
//! (`/key/*`) and the spend API, each behind the auth it needs, built from the [`Parts`].

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::Request;
use llmgate_auth::AuthLayer;
use llmgate_config::Config;
use llmgate_core::{wire::ModelList, BoxError, ModelAccess, Principal};
use llmgate_router::ModelTable;
use tower::util::BoxCloneSyncService;
use tower::{service_fn, ServiceBuilder};

use crate::keys::{api::KeyApi, KeyAdmin};
use crate::parts::Parts;
use crate::readiness::{self, Readiness};
use crate::routes::{self, Stack};
use crate::ReqBody;

/// The admin and health routes.
pub(crate) struct AdminRoutes {
    pub(crate) models: Stack,
    pub(crate) readiness: Stack,
    pub(crate) health: Stack,
    pub(crate) keys: Stack,
    pub(crate) spend: Stack,
    /// Virtual-key management, for [`crate::Gateway::key_admin`] too.
    pub(crate) key_admin: Option<KeyAdmin>,
}

/// Builds the routes; the key and spend APIs, and `/v1/models`, sit behind `parts.auth`;
/// `/health` behind the master key alone; readiness is open.
pub(crate) fn routes(config: &Config, parts: &Parts, max_body: usize) -> AdminRoutes {
    let key_admin = parts.keys.clone().map(KeyAdmin::new);
    let keys = ServiceBuilder::new()
        .layer(parts.auth.clone())
        .service(KeyApi {
            admin: key_admin.clone(),
            max_body,
        });
    let checker = parts.health.clone();
    let health = ServiceBuilder::new()
        .layer(AuthLayer::new(config.master_key()))
        .service(service_fn(move |_req: Request<ReqBody>| {
            let checker = checker.clone();
            async move { Ok::<_, BoxError>(routes::json(checker.report().await)) }
        }));
    let readiness = readiness_of(config, parts);
    AdminRoutes {
        models: models(&parts.table, parts.auth.clone()),
        readiness: BoxCloneSyncService::new(service_fn(move |_req: Request<ReqBody>| {
            let readiness = readiness.clone();
            async move { Ok::<_, BoxError>(readiness.answer().await) }
        })),
        health: BoxCloneSyncService::new(health),
        keys: BoxCloneSyncService::new(keys),
        spend: crate::spend::api(config, parts.database.clone(), parts.auth.clone()),
        key_admin,
    }
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

/// `/v1/models`: the names clients may use; a key limited to some models sees only those.
fn models(table: &Arc<ModelTable>, auth: AuthLayer) -> Stack {
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
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
    BoxCloneSyncService::new(ServiceBuilder::new().layer(auth).service(service))
}
