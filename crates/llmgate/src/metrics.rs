//! `GET /metrics`: the metering's metrics, with what the router and the rate limiter count
//! read when scraped; and the count of refusals made above metering.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use llmgate_core::{body, BoxBody, Deployment};
use llmgate_metering::{Metrics, RateLimiterTotals, Rejection};
use llmgate_ratelimit::{LimiterStore, Stats};
use llmgate_router::ModelTable;

/// Counts the refusals of the layers above metering (auth, rate limits): their answers are
/// responses without a [`Deployment`], where every answer from below has one or is an error.
pub(crate) fn count_rejections(
    metrics: Arc<Metrics>,
) -> impl Fn(Response<BoxBody>) -> Response<BoxBody> + Clone {
    move |res| {
        if res.extensions().get::<Deployment>().is_none() {
            match res.status() {
                StatusCode::TOO_MANY_REQUESTS => metrics.rejected(Rejection::rate_limit),
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    metrics.rejected(Rejection::auth)
                }
                _ => {}
            }
        }
        res
    }
}

/// What `/metrics` reads from the rate limiter when scraped.
#[derive(Clone)]
pub(crate) struct LimiterView {
    pub(crate) stats: Arc<Stats>,
    pub(crate) store: Arc<dyn LimiterStore>,
    /// The keys' budget ledger, with a master key.
    pub(crate) budgets: Option<llmgate_auth::Budgets>,
    /// The router's cooldown channel, with Redis.
    pub(crate) cooldowns: Option<Arc<crate::cooldowns::Link>>,
    /// The alert counts and the events bus's losses.
    pub(crate) alerts: Arc<crate::alerting::AlertView>,
}

impl LimiterView {
    fn totals(&self) -> RateLimiterTotals {
        let store = self.store.counters();
        RateLimiterTotals {
            fail_open: self.stats.failed_open(),
            check_errors: self.stats.store_errors(),
            settle_errors: store.settlements_failed,
            slots_reclaimed: store.slots_reclaimed,
        }
    }
}

/// `GET /metrics`: the router's deployment states and the limiter's counters as of now, then
/// every metric.
pub(crate) fn render(
    metrics: &Metrics,
    table: &ModelTable,
    limiter: &LimiterView,
) -> Response<BoxBody> {
    for (spec, cooling) in table.cooldowns() {
        metrics.set_deployment_state(&spec.model_name, &spec.id, cooling.is_some());
        metrics.set_litellm_deployment_state(&spec, cooling.is_some());
    }
    metrics.set_rate_limiter(limiter.totals());
    metrics.set_router_shared(
        table.shared_errors(),
        limiter.cooldowns.as_ref().map_or(0, |l| l.failures()),
    );
    if let Some(b) = &limiter.budgets {
        metrics.set_budget_ledger(b.errors(), b.lost_settlements());
    }
    let mut text = metrics.render();
    limiter.alerts.render_into(&mut text);
    let mut res = Response::new(body::full(Bytes::from(text)));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(Metrics::CONTENT_TYPE),
    );
    res
}
