//! [`Metrics`]: the gateway's Prometheus metrics, in one registry, rendered as text for
//! `GET /metrics`. Names and labels are documented in `docs/metrics.md`.
//!
//! Every label is a small, bounded set: model groups and deployments come from the config
//! (a model name the config does not know is `other`), status classes are `2xx` .. `5xx`.
//! A finished request finds its metrics' handles in a cache keyed by its labels
//! ([`HandleCache`], one read lock and one hash a request); a series is created in its family,
//! under the family's lock, on first use only. Locks are read locks, shared between requests:
//! no request waits on another but for the first request of a new label set.

use std::fmt;
use std::sync::Arc;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use crate::config_reloads::{ConfigReloads, ReloadResult};
use crate::litellm::LiteLlm;
use crate::queue::QueueCounters;

mod handles;
mod labels;

pub(crate) use handles::{handle, HandleCache};

pub(crate) use labels::*;
pub use labels::{Rejection, StatusClass};

pub(crate) type F64Counter = Counter<f64, std::sync::atomic::AtomicU64>;

/// The registry and every metric in it. Shared behind an `Arc`.
pub struct Metrics {
    registry: Registry,
    pub(crate) requests: Family<StatusLabels, Counter>,
    pub(crate) failures: Family<FailureLabels, Counter>,
    pub(crate) upstream_attempts: Family<Target, Counter>,
    pub(crate) upstream_failures: Family<AttemptFailure, Counter>,
    pub(crate) stream_endings: Family<EndingLabels, Counter>,
    pub(crate) estimated: Family<Target, Counter>,
    pub(crate) tokens: Family<TokenLabels, Counter>,
    pub(crate) spend: Family<Target, F64Counter>,
    pub(crate) unpriced: Family<Target, Counter>,
    pub(crate) duration: Family<Latency, Histogram>,
    pub(crate) upstream: Family<Target, Histogram>,
    pub(crate) overhead: Histogram,
    pub(crate) ttft: Family<Group, Histogram>,
    pub(crate) in_flight: Gauge,
    deployment_state: Family<Target, Gauge>,
    pub(crate) attempts: Family<AttemptLabels, Counter>,
    pub(crate) cache: Family<CacheLabels, Counter>,
    rejections: Family<RejectionLabels, Counter>,
    pub(crate) queue: QueueCounters,
    limiter: LimiterCounters,
    reloads: ConfigReloads,
    /// LiteLLM's names, when served ([`crate::litellm`]).
    pub(crate) litellm: Option<LiteLlm>,
    /// The handles a finished request updates, per model group and deployment.
    pub(crate) handles: HandleCache<Target, crate::observe::TargetHandles>,
}

/// The rate limiter's fault counters, read from the limiter when scraped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimiterTotals {
    /// Requests admitted without the limiter because its store failed (fail-open policy).
    pub fail_open: u64,
    /// Checks the store could not answer (either policy).
    pub check_errors: u64,
    /// Settlements (slot releases, token settlements) the store could not take when sent.
    pub settle_errors: u64,
    /// Parallel slots freed by the store rather than by their request: expired leases and
    /// releases sent again after a fault.
    pub slots_reclaimed: u64,
}

#[derive(Debug, Default)]
struct LimiterCounters {
    fail_open: Counter,
    errors: Family<LimiterErrorLabels, Counter>,
    reclaimed: Counter,
    budget_errors: Counter,
    budget_lost: Counter,
    router_shared: Family<RouterSharedLabels, Counter>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouterSharedLabels {
    part: RouterShared,
}

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
enum RouterShared {
    usage,
    cooldowns,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimiterErrorLabels {
    op: LimiterOp,
}

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
enum LimiterOp {
    check,
    settle,
}

/// Moves a counter up to `total` (counters never go down; a smaller total is ignored).
fn catch_up(c: &Counter, total: u64) {
    let cur = c.get();
    if total > cur {
        c.inc_by(total - cur);
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Buckets of 5 ms .. 82 s, doubling.
fn request_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every llmgate metric, and LiteLLM's names beside them, all at zero.
    pub fn new() -> Self {
        Self::with_litellm_names(true)
    }

    /// A registry with every llmgate metric and, when `litellm` is true, LiteLLM's names
    /// (`litellm_proxy_total_requests_metric`, ...; see `docs/metrics.md`).
    pub fn with_litellm_names(litellm: bool) -> Self {
        let mut m = Metrics {
            registry: Registry::default(),
            requests: Family::default(),
            failures: Family::default(),
            upstream_attempts: Family::default(),
            upstream_failures: Family::default(),
            stream_endings: Family::default(),
            estimated: Family::default(),
            tokens: Family::default(),
            spend: Family::default(),
            unpriced: Family::default(),
            duration: Family::new_with_constructor(request_buckets),
            upstream: Family::new_with_constructor(request_buckets),
            // 50 µs .. 0.8 s: the gateway's own time is small.
            overhead: Histogram::new(exponential_buckets(0.00005, 2.0, 15)),
            ttft: Family::new_with_constructor(request_buckets),
            in_flight: Gauge::default(),
            deployment_state: Family::default(),
            attempts: Family::default(),
            cache: Family::default(),
            rejections: Family::default(),
            queue: QueueCounters::default(),
            limiter: LimiterCounters::default(),
            reloads: ConfigReloads::default(),
            litellm: None,
            handles: HandleCache::default(),
        };
        m.queue.rejected = m.rejections.get_or_create_owned(&RejectionLabels {
            reason: Rejection::spend_queue_full,
        });
        let r = m.registry.sub_registry_with_prefix("llmgate");
        r.register(
            "requests",
            "LLM requests answered, by model group, deployment and status class",
            m.requests.clone(),
        );
        r.register(
            "request_failures",
            "LLM requests answered with an error status (4xx, 5xx), by the deployment their last attempt reached and error class",
            m.failures.clone(),
        );
        r.register(
            "upstream_attempts",
            "Attempts that reached a deployment (retries and fallbacks each count against their own deployment)",
            m.upstream_attempts.clone(),
        );
        r.register(
            "upstream_failures",
            "Attempts that failed, by their own deployment and error class, also when a later attempt succeeded",
            m.upstream_failures.clone(),
        );
        r.register(
            "stream_endings",
            "Streams by how they ended: success, client_closed, upstream_error (an error event), gateway_shutdown",
            m.stream_endings.clone(),
        );
        r.register(
            "estimated_usage_requests",
            "Requests charged by the gateway's estimate: the provider reported no usage (a stream ended early, a server that omits usage)",
            m.estimated.clone(),
        );
        r.register(
            "tokens",
            "Tokens by type: input (cache reads and writes included), output (reasoning included), cache_read, cache_creation, reasoning",
            m.tokens.clone(),
        );
        r.register(
            "spend_usd",
            "Spend in USD (requests with an unknown price count 0 here and in llmgate_unpriced_requests)",
            m.spend.clone(),
        );
        r.register(
            "unpriced_requests",
            "Requests whose cost is unknown: no price for the model, or no usage reported",
            m.unpriced.clone(),
        );
        r.register_with_unit(
            "request_duration",
            "Time from the request reaching metering to the end of its response (a stream's last byte)",
            Unit::Seconds,
            m.duration.clone(),
        );
        r.register_with_unit(
            "upstream_duration",
            "Time the deployment that answered took to send its response head",
            Unit::Seconds,
            m.upstream.clone(),
        );
        r.register_with_unit(
            "overhead_duration",
            "The gateway's own time before the response head, first-attempt successes only",
            Unit::Seconds,
            m.overhead.clone(),
        );
        r.register_with_unit(
            "time_to_first_token",
            "Streams: time from the request to the first byte of the response body",
            Unit::Seconds,
            m.ttft.clone(),
        );
        r.register(
            "in_flight_requests",
            "LLM requests being answered now (streams until their body ends)",
            m.in_flight.clone(),
        );
        r.register(
            "deployment_state",
            "0: in rotation; 1: cooling down (read from the router when scraped)",
            m.deployment_state.clone(),
        );
        r.register(
            "extra_attempts",
            "Attempts beyond the first for requests that succeeded: retries in the group, and attempts on fallback groups",
            m.attempts.clone(),
        );
        r.register(
            "cache_lookups",
            "Response cache lookups by result",
            m.cache.clone(),
        );
        r.register(
            "gateway_rejections",
            "Requests the gateway refused itself: rate limits (429), auth (401/403), a full spend queue (503)",
            m.rejections.clone(),
        );
        r.register(
            "spend_queue_depth",
            "Spend records waiting to be written",
            m.queue.depth.clone(),
        );
        r.register(
            "spend_records_dropped",
            "Spend records dropped: queue full (policy drop), after shutdown, or unwritable at shutdown",
            m.queue.dropped.clone(),
        );
        r.register(
            "spend_records_written",
            "Spend records the sink stored",
            m.queue.written.clone(),
        );
        r.register(
            "spend_records_spilled",
            "Spend records the sink had not taken by the end of a shutdown, written to the spill directory",
            m.queue.spilled.clone(),
        );
        r.register(
            "spend_records_replayed",
            "Spilled spend records the sink took at a later start",
            m.queue.replayed.clone(),
        );
        r.register(
            "spend_write_failures",
            "Failed spend batch writes (each is retried)",
            m.queue.write_failures.clone(),
        );
        r.register(
            "rate_limiter_fail_open_admissions",
            "Requests admitted without rate limits because the limiter's store (Redis) failed (policy open)",
            m.limiter.fail_open.clone(),
        );
        r.register(
            "rate_limiter_errors",
            "Rate-limiter store failures: check (a request's check) or settle (a slot release or token settlement, sent again later)",
            m.limiter.errors.clone(),
        );
        r.register(
            "budget_ledger_errors",
            "Budget reservations the shared ledger could not answer (the key's cached record judged the request)",
            m.limiter.budget_errors.clone(),
        );
        r.register(
            "budget_settlements_lost",
            "Budget settlements given up after every retry (their reservation stays until the period's entry expires)",
            m.limiter.budget_lost.clone(),
        );
        r.register(
            "router_shared_errors",
            "Router state the shared store (Redis) could not share: usage (a deployment's rpm/tpm/rpd take, routed on this instance's counters) or cooldowns (a failed connection to the cooldown channel)",
            m.limiter.router_shared.clone(),
        );
        r.register(
            "rate_limiter_slots_reclaimed",
            "Parallel slots freed by the limiter rather than their request: expired leases, releases sent again after a fault",
            m.limiter.reclaimed.clone(),
        );
        m.reloads.register(r);
        if litellm {
            m.litellm = Some(LiteLlm::register(&mut m.registry));
        }
        m
    }

    /// Counts a config reload by how it ended; an applied one (`ok`) also sets
    /// `llmgate_config_last_reload_success_timestamp_seconds` to now.
    pub fn config_reloaded(&self, result: ReloadResult) {
        self.reloads.count(result);
        if result == ReloadResult::ok {
            self.config_applied_now();
        }
    }

    /// Sets `llmgate_config_last_reload_success_timestamp_seconds` to now (the gateway calls
    /// it when built, as Prometheus does for its own config at start).
    pub fn config_applied_now(&self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.reloads.applied_at(now);
    }

    /// Sets the budget ledger's fault counters: reservations it could not answer, settlements
    /// lost (the facade calls it when scraped).
    pub fn set_budget_ledger(&self, errors: u64, lost: u64) {
        catch_up(&self.limiter.budget_errors, errors);
        catch_up(&self.limiter.budget_lost, lost);
    }

    /// Sets the router's shared-state fault counters: deployment usage takes and cooldown
    /// channel connections that failed (the facade calls it when scraped).
    pub fn set_router_shared(&self, usage_errors: u64, cooldown_errors: u64) {
        let f = &self.limiter.router_shared;
        catch_up(
            &f.get_or_create(&RouterSharedLabels {
                part: RouterShared::usage,
            }),
            usage_errors,
        );
        catch_up(
            &f.get_or_create(&RouterSharedLabels {
                part: RouterShared::cooldowns,
            }),
            cooldown_errors,
        );
    }

    /// Sets the rate limiter's fault counters (the facade calls it when scraped).
    pub fn set_rate_limiter(&self, t: RateLimiterTotals) {
        let l = &self.limiter;
        catch_up(&l.fail_open, t.fail_open);
        catch_up(&l.reclaimed, t.slots_reclaimed);
        for (op, n) in [
            (LimiterOp::check, t.check_errors),
            (LimiterOp::settle, t.settle_errors),
        ] {
            catch_up(&l.errors.get_or_create(&LimiterErrorLabels { op }), n);
        }
    }

    /// Counts a request the gateway refused itself.
    pub fn rejected(&self, why: Rejection) {
        self.rejections
            .get_or_create(&RejectionLabels { reason: why })
            .inc();
    }

    /// Sets a deployment's state gauge (the facade calls it from the router's view when
    /// scraped).
    pub fn set_deployment_state(
        &self,
        model_group: &Arc<str>,
        deployment: &Arc<str>,
        cooling: bool,
    ) {
        self.deployment_state
            .get_or_create(&Target {
                model_group: model_group.clone(),
                deployment: deployment.clone(),
            })
            .set(i64::from(cooling));
    }

    /// Drops a deployment's state gauge (a config reload removed the deployment), so
    /// `/metrics` no longer shows it. Its counters stay: they are totals.
    pub fn forget_deployment_state(&self, model_group: &Arc<str>, deployment: &Arc<str>) {
        self.deployment_state.remove(&Target {
            model_group: model_group.clone(),
            deployment: deployment.clone(),
        });
    }

    /// Sets a deployment's `litellm_deployment_state` (0 in rotation, 2 cooling down) when
    /// LiteLLM's names are served.
    pub fn set_litellm_deployment_state(&self, spec: &llmgate_core::DeploymentSpec, cooling: bool) {
        if let Some(l) = &self.litellm {
            l.set_deployment_state(spec, cooling);
        }
    }

    /// The metrics in the OpenMetrics text format (which Prometheus reads); see
    /// [`Metrics::CONTENT_TYPE`].
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// The content type of [`Metrics::render`].
    pub const CONTENT_TYPE: &'static str =
        "application/openmetrics-text; version=1.0.0; charset=utf-8";
}
