//! LiteLLM's Prometheus names, served beside llmgate's own so dashboards built on LiteLLM's
//! metrics keep working (`litellm_proxy_total_requests_metric_total{requested_model="..."}`).
//!
//! The names and labels are LiteLLM's (its `PrometheusMetricLabels`), with two llmgate labels
//! added where they attribute a failure: `model_group` and `model_id` (the deployment the last
//! attempt reached). Every label stays bounded:
//!
//! - `requested_model` is a model name the config knows (groups and aliases), else `other`;
//! - `model` / `litellm_model_name` and `model_id` come from the config's deployments (`none`
//!   when no deployment was reached);
//! - `hashed_api_key`, `api_key_alias`, `team`, `user` are the virtual key's: as many as the
//!   admin created (empty for the master key and an open gateway);
//! - `end_user` and `team_alias` are always empty: LiteLLM leaves `end_user` out by default
//!   (a client names it), and keys carry no team alias;
//! - `status_code` / `exception_status` are HTTP statuses, `exception_class` LiteLLM's error
//!   class names (a dozen).
//!
//! Off with `general_settings.litellm_metric_names: false` ([`crate::MeterBuilder::litellm_metrics`]).

use std::sync::{Arc, OnceLock};

use llmgate_core::{DeploymentSpec, FailureClass, VirtualKey};
use prometheus_client::encoding::{EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::cost::Tokens;
use crate::metrics::{handle, HandleCache};

type F64Counter = Counter<f64, std::sync::atomic::AtomicU64>;

/// LiteLLM's latency buckets (seconds), so its dashboards' quantiles read the same.
const LATENCY_BUCKETS: [f64; 35] = [
    0.005, 0.00625, 0.0125, 0.025, 0.05, 0.1, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0,
    5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5, 9.0, 9.5, 10.0, 15.0, 20.0, 25.0, 30.0, 60.0, 120.0, 180.0,
    240.0, 300.0,
];

fn latency() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Who asked: the key's labels, as LiteLLM names them (`end_user`, `hashed_api_key`,
/// `api_key_alias`, `team`, `team_alias`, `user`), read from the key itself: a request shares
/// the key's `Arc` instead of copying four strings for its labels.
#[derive(Debug, Clone)]
pub(crate) struct Who(Option<Arc<VirtualKey>>);

impl Who {
    pub(crate) fn of(key: Option<&Arc<VirtualKey>>) -> Who {
        Who(key.cloned())
    }

    /// `hashed_api_key`, `api_key_alias`, `team`, `user`.
    fn fields(&self) -> [Option<&str>; 4] {
        let k = self.0.as_deref();
        [
            k.map(|k| k.token.as_str()),
            k.and_then(|k| k.key_alias.as_deref()),
            k.and_then(|k| k.team_id.as_deref()),
            k.and_then(|k| k.user_id.as_deref()),
        ]
    }
}

impl PartialEq for Who {
    fn eq(&self, other: &Self) -> bool {
        self.fields() == other.fields()
    }
}

impl Eq for Who {}

impl std::hash::Hash for Who {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.fields().hash(state);
    }
}

impl EncodeLabelSet for Who {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), std::fmt::Error> {
        let [key, alias, team, user] = self.fields().map(Option::unwrap_or_default);
        [
            ("end_user", ""),
            ("hashed_api_key", key),
            ("api_key_alias", alias),
            ("team", team),
            ("team_alias", ""),
            ("user", user),
        ]
        .encode(encoder)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, EncodeLabelSet)]
struct Requests {
    #[prometheus(flatten)]
    who: Who,
    requested_model: Arc<str>,
    status_code: u16,
    model_group: Arc<str>,
}

#[derive(Debug, Clone, PartialEq, Eq, EncodeLabelSet)]
struct Failures {
    #[prometheus(flatten)]
    who: Who,
    requested_model: Arc<str>,
    exception_status: u16,
    exception_class: &'static str,
    model_group: Arc<str>,
    model_id: Arc<str>,
}

#[derive(Debug, Clone, PartialEq, Eq, EncodeLabelSet)]
struct ByModel {
    #[prometheus(flatten)]
    who: Who,
    requested_model: Arc<str>,
    model: Arc<str>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeploymentLabels {
    litellm_model_name: Arc<str>,
    model_id: Arc<str>,
    api_base: String,
    api_provider: &'static str,
}

crate::metrics::fast_hash! {
    Requests { who, requested_model, status_code, model_group }
    Failures { who, requested_model, exception_status, exception_class, model_group, model_id }
    ByModel { who, requested_model, model }
}

/// LiteLLM's metric families.
pub(crate) struct LiteLlm {
    requests: Family<Requests, Counter>,
    failures: Family<Failures, Counter>,
    total_latency: Family<ByModel, Histogram>,
    api_latency: Family<ByModel, Histogram>,
    overhead: Family<ByModel, Histogram>,
    ttft: Family<ByModel, Histogram>,
    spend: Family<ByModel, F64Counter>,
    input_tokens: Family<ByModel, Counter>,
    output_tokens: Family<ByModel, Counter>,
    total_tokens: Family<ByModel, Counter>,
    deployment_state: Family<DeploymentLabels, Gauge>,
    /// The handles of a request's series, per [`LiteKey`].
    handles: HandleCache<LiteKey, LiteHandles>,
}

/// The labels a request's LiteLLM series are made of, but its status (and a failure's class).
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct LiteKey {
    who: Who,
    requested_model: Arc<str>,
    model_group: Arc<str>,
    model: Arc<str>,
}

/// A request's LiteLLM series under one [`LiteKey`], each taken from its family on first use;
/// of the request counts only status 200's (others are rarer and go through the family).
#[derive(Default)]
struct LiteHandles {
    ok: OnceLock<Counter>,
    total_latency: OnceLock<Histogram>,
    api_latency: OnceLock<Histogram>,
    overhead: OnceLock<Histogram>,
    ttft: OnceLock<Histogram>,
    spend: OnceLock<F64Counter>,
    input_tokens: OnceLock<Counter>,
    output_tokens: OnceLock<Counter>,
    total_tokens: OnceLock<Counter>,
}

/// What one request adds to LiteLLM's metrics.
pub(crate) struct Sample<'a> {
    pub(crate) who: Who,
    pub(crate) requested_model: Arc<str>,
    pub(crate) model_group: Arc<str>,
    pub(crate) deployment: Arc<str>,
    pub(crate) model: Arc<str>,
    pub(crate) status: u16,
    pub(crate) class: Option<FailureClass>,
    pub(crate) latency: f64,
    pub(crate) upstream: Option<f64>,
    pub(crate) overhead: Option<f64>,
    pub(crate) ttft: Option<f64>,
    pub(crate) tokens: &'a Tokens,
    pub(crate) cost: Option<f64>,
}

impl LiteLlm {
    /// The families, registered in `r` (the registry's root: LiteLLM's names have no prefix).
    pub(crate) fn register(r: &mut Registry) -> LiteLlm {
        let m = LiteLlm {
            requests: Family::default(),
            failures: Family::default(),
            total_latency: Family::new_with_constructor(latency),
            api_latency: Family::new_with_constructor(latency),
            overhead: Family::new_with_constructor(latency),
            ttft: Family::new_with_constructor(latency),
            spend: Family::default(),
            input_tokens: Family::default(),
            output_tokens: Family::default(),
            total_tokens: Family::default(),
            deployment_state: Family::default(),
            handles: HandleCache::default(),
        };
        r.register(
            "litellm_proxy_total_requests_metric",
            "LiteLLM's name: requests made to the proxy, by key, team, requested model and status code",
            m.requests.clone(),
        );
        r.register(
            "litellm_proxy_failed_requests_metric",
            "LiteLLM's name: requests the client did not get a success for, by exception status and class, and the deployment the last attempt reached (model_id)",
            m.failures.clone(),
        );
        r.register(
            "litellm_request_total_latency_metric",
            "LiteLLM's name: seconds from the request reaching metering to the end of its response",
            m.total_latency.clone(),
        );
        r.register(
            "litellm_llm_api_latency_metric",
            "LiteLLM's name: seconds the deployment took to its response head",
            m.api_latency.clone(),
        );
        r.register(
            "litellm_overhead_latency_metric",
            "LiteLLM's name: the gateway's own seconds before the response head (first-attempt answers)",
            m.overhead.clone(),
        );
        r.register(
            "litellm_llm_api_time_to_first_token_metric",
            "LiteLLM's name: streams, seconds to the first byte of the answer",
            m.ttft.clone(),
        );
        r.register(
            "litellm_spend_metric",
            "LiteLLM's name: spend in USD",
            m.spend.clone(),
        );
        r.register(
            "litellm_input_tokens_metric",
            "LiteLLM's name: input tokens",
            m.input_tokens.clone(),
        );
        r.register(
            "litellm_output_tokens_metric",
            "LiteLLM's name: output tokens",
            m.output_tokens.clone(),
        );
        r.register(
            "litellm_total_tokens_metric",
            "LiteLLM's name: input and output tokens",
            m.total_tokens.clone(),
        );
        r.register(
            "litellm_deployment_state",
            "LiteLLM's name: 0 healthy, 2 cooling down (complete outage), read from the router when scraped",
            m.deployment_state.clone(),
        );
        m
    }

    /// Counts one request, through the handles cached under its labels.
    pub(crate) fn observe(&self, s: Sample<'_>) {
        let key = LiteKey {
            who: s.who,
            requested_model: s.requested_model,
            model_group: s.model_group,
            model: s.model,
        };
        let h = self.handles.get(&key);
        let requests = || Requests {
            who: key.who.clone(),
            requested_model: key.requested_model.clone(),
            status_code: s.status,
            model_group: key.model_group.clone(),
        };
        if s.status == 200 {
            handle(&h.ok, &self.requests, requests).inc();
        } else {
            self.requests.get_or_create(&requests()).inc();
        }
        if !(200..400).contains(&s.status) {
            let class = s
                .class
                .unwrap_or_else(|| FailureClass::for_status(s.status));
            self.failures
                .get_or_create(&Failures {
                    who: key.who.clone(),
                    requested_model: key.requested_model.clone(),
                    exception_status: s.status,
                    exception_class: exception_class(class),
                    model_group: key.model_group.clone(),
                    model_id: s.deployment.clone(),
                })
                .inc();
        }
        let by_model = || ByModel {
            who: key.who.clone(),
            requested_model: key.requested_model.clone(),
            model: key.model.clone(),
        };
        handle(&h.total_latency, &self.total_latency, by_model).observe(s.latency);
        for (slot, family, value) in [
            (&h.api_latency, &self.api_latency, s.upstream),
            (&h.overhead, &self.overhead, s.overhead),
            (&h.ttft, &self.ttft, s.ttft),
        ] {
            if let Some(v) = value {
                handle(slot, family, by_model).observe(v);
            }
        }
        if let Some(c) = s.cost.filter(|c| *c > 0.0) {
            handle(&h.spend, &self.spend, by_model).inc_by(c);
        }
        let t = s.tokens;
        for (slot, family, n) in [
            (&h.input_tokens, &self.input_tokens, t.prompt),
            (&h.output_tokens, &self.output_tokens, t.completion),
            (
                &h.total_tokens,
                &self.total_tokens,
                t.prompt.saturating_add(t.completion),
            ),
        ] {
            if n > 0 {
                handle(slot, family, by_model).inc_by(n);
            }
        }
    }

    /// Sets a deployment's state: 0 in rotation, 2 cooling down.
    pub(crate) fn set_deployment_state(&self, spec: &DeploymentSpec, cooling: bool) {
        let api_base = spec
            .api_base
            .as_deref()
            .map(|b| b.split(['?', '#']).next().unwrap_or_default().to_owned())
            .unwrap_or_default();
        self.deployment_state
            .get_or_create(&DeploymentLabels {
                litellm_model_name: spec.model.clone(),
                model_id: spec.id.clone(),
                api_base,
                api_provider: spec.provider.as_str(),
            })
            .set(if cooling { 2 } else { 0 });
    }
}

/// LiteLLM's exception class for a failure (its `litellm.exceptions` names).
pub(crate) fn exception_class(class: FailureClass) -> &'static str {
    match class {
        FailureClass::BadRequest => "BadRequestError",
        FailureClass::ContextWindow => "ContextWindowExceededError",
        FailureClass::ContentPolicy => "ContentPolicyViolationError",
        FailureClass::Auth => "AuthenticationError",
        FailureClass::NotFound => "NotFoundError",
        FailureClass::Timeout => "Timeout",
        FailureClass::RateLimited => "RateLimitError",
        FailureClass::Upstream5xx => "InternalServerError",
        FailureClass::Connect => "APIConnectionError",
        FailureClass::NoDeployment => "RouterRateLimitError",
        FailureClass::ClientClosed => "ClientClosedError",
        _ => "InternalServerError",
    }
}

/// One finished request's [`Sample`], its labels bounded as the module docs say.
pub(crate) fn sample<'a>(
    s: &crate::finish::Started,
    a: &crate::finish::Answer,
    requested: &str,
    charge: &'a crate::finish::Charge,
    ended: &crate::observe::Ended,
    key: Option<&Arc<VirtualKey>>,
) -> Sample<'a> {
    let inner = &s.meter.inner;
    // The config's interned names: nothing allocated for the labels but the key's.
    let known = inner.groups.get_key_value(requested);
    let requested_model = known.map_or_else(|| inner.other.clone(), |(name, _)| name.clone());
    let model_group = a
        .group
        .clone()
        .or_else(|| known.map(|(_, group)| group.clone()))
        .unwrap_or_else(|| inner.other.clone());
    let (deployment, model) = match &a.deployment {
        Some(d) => (d.id.clone(), d.model.clone()),
        None => (inner.none.clone(), inner.none.clone()),
    };
    let overhead = match (a.upstream, a.head) {
        (Some(up), Some(head)) if a.attempts.attempts <= 1 => Some(
            head.saturating_duration_since(s.at)
                .saturating_sub(up)
                .as_secs_f64(),
        ),
        _ => None,
    };
    Sample {
        who: Who::of(key),
        requested_model,
        model_group,
        deployment,
        model,
        status: a.status,
        class: ended.class,
        latency: ended.latency.as_secs_f64(),
        upstream: a.upstream.map(|d| d.as_secs_f64()),
        overhead,
        ttft: ended.ttft.map(|d| d.as_secs_f64()),
        tokens: &charge.tokens,
        cost: charge.cost,
    }
}
