//! [`Built`]: one config's whole service (request id, rescue, dispatch over the LLM stack and
//! the admin routes), built from its [`Parts`]; and [`Shared`], what every clone of a
//! [`crate::Gateway`] holds: the current `Built` behind an atomic swap, and the lasting parts.
//!
//! A request loads the current `Built` once, when it arrives ([`crate::GatewayService`]), and
//! keeps it, through its clone of the service, until its response (a stream's body included)
//! ends; a reload swaps in the next one for the requests that arrive after it.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use http::{Request, Response};
use llmgate_config::Config;
use llmgate_core::BoxBody;
use llmgate_fallback::FallbackLayer;
use llmgate_router::{ModelTable, RouterLayer};
use tower::util::BoxCloneSyncService;
use tower::ServiceBuilder;

use crate::admin;
use crate::build;
use crate::limits::HttpLimits;
use crate::live::GroupPrices;
use crate::parts::{Lasting, Parts};
use crate::request_id::RequestIdLayer;
use crate::rescue::RescueLayer;
use crate::routes::Dispatch;
use crate::stack::{self, Layers};
use crate::ReqBody;

/// The whole service, type-erased.
pub(crate) type Whole = BoxCloneSyncService<Request<ReqBody>, Response<BoxBody>, Infallible>;

/// One config's service and what the gateway reads of it.
pub(crate) struct Built {
    pub(crate) service: Whole,
    /// The config it was built from (a reload compares the next one with it).
    pub(crate) config: Config,
    pub(crate) table: Arc<ModelTable>,
    pub(crate) group_prices: Arc<GroupPrices>,
}

/// What every clone of a gateway shares.
pub(crate) struct Shared {
    /// The service new requests get.
    pub(crate) current: ArcSwap<Built>,
    pub(crate) lasting: Lasting,
    /// The request body cap and client bounds: read by hosts at start, so fixed.
    pub(crate) max_body: usize,
    pub(crate) http_limits: HttpLimits,
    /// Held by the reload being applied: reloads run one at a time.
    pub(crate) reloading: Mutex<()>,
    /// The file `POST /config/reload` (and [`crate::Gateway::reload_config_file`]) reads.
    pub(crate) config_file: Mutex<Option<std::path::PathBuf>>,
    /// Virtual-key management, for [`crate::Gateway::key_admin`].
    #[cfg(feature = "admin")]
    pub(crate) key_admin: Option<crate::keys::KeyAdmin>,
}

impl Shared {
    /// Makes `built` the service new requests get, and its table and prices the ones the
    /// lasting parts read.
    pub(crate) fn install(&self, built: Arc<Built>) {
        self.lasting
            .live
            .install(built.table.clone(), built.group_prices.clone());
        self.current.store(built);
    }
}

/// Stacks `parts` (built for `config`) in the order `stack.rs` draws, with the admin routes and
/// dispatch around them.
pub(crate) fn build(config: Config, parts: Parts, max_body: usize) -> Built {
    let llm = stack::llm(Layers {
        auth: parts.auth.clone(),
        ratelimit: parts.ratelimit.clone(),
        meter: parts.meter.clone(),
        cache: parts.cache.clone(),
        fallback: FallbackLayer::new(
            build::routing::fallback_policy(&config).events(parts.events.clone()),
        ),
        router: RouterLayer::new(parts.table.clone()),
        provider: parts.provider.clone(),
        max_body,
        responses: parts.responses.clone(),
    });
    let admin = admin::routes(&config, &parts, max_body);
    let dispatch = Dispatch::new(llm, &admin, &parts);
    let service = ServiceBuilder::new()
        .layer(crate::sensitive::SensitiveHeadersLayer)
        .layer(RequestIdLayer)
        .layer(RescueLayer)
        .service(dispatch);
    Built {
        service: BoxCloneSyncService::new(service),
        config,
        table: parts.table,
        group_prices: parts.group_prices,
    }
}
