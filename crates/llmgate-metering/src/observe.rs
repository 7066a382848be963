//! A finished request's Prometheus metrics (llmgate's own families), labelled with the
//! config's names only: split from `finish.rs`, which makes the record and calls this once.
//! The handles under the request's model group and deployment are cached
//! ([`TargetHandles`], `metrics/handles.rs`): one lookup a request instead of one a metric.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use llmgate_core::{CacheStatus, ErrorContract as _, FailureClass, StreamFailure};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;

use crate::finish::{Answer, Charge, Started};
use crate::metrics::{
    handle, AttemptFailure, AttemptKind, AttemptLabels, CacheLabels, CacheResult, ClassLabel,
    EndingLabels, F64Counter, FailureLabels, Group, Latency, StatusClass, StatusLabels, Target,
    TokenKind, TokenLabels,
};
use crate::record::Outcome;

/// How a request ended.
pub(crate) struct Ended {
    pub(crate) outcome: Outcome,
    pub(crate) class: Option<FailureClass>,
    pub(crate) latency: Duration,
    pub(crate) ttft: Option<Duration>,
}

/// The metrics a request updates under one model group and deployment, each taken from its
/// family on first use (`metrics::handle`). Indexed by `StatusClass`, `TokenKind` and
/// `stream` as `usize`.
#[derive(Default)]
pub(crate) struct TargetHandles {
    requests: [OnceLock<Counter>; 4],
    upstream_attempts: OnceLock<Counter>,
    upstream: OnceLock<Histogram>,
    tokens: [OnceLock<Counter>; 5],
    estimated: OnceLock<Counter>,
    spend: OnceLock<F64Counter>,
    unpriced: OnceLock<Counter>,
    duration: [OnceLock<Histogram>; 2],
    ttft: OnceLock<Histogram>,
}

/// Updates the metrics, labelled with the config's names only.
pub(crate) fn observe(s: &Started, a: &Answer, requested: &str, charge: &Charge, ended: &Ended) {
    let Ended {
        outcome,
        class,
        latency,
        ttft,
    } = *ended;
    let inner = &s.meter.inner;
    let m = &inner.metrics;
    let group = a.group.clone().unwrap_or_else(|| {
        inner
            .groups
            .get(requested)
            .cloned()
            .unwrap_or_else(|| inner.other.clone())
    });
    let deployment = a
        .deployment
        .as_ref()
        .map(|d| d.id.clone())
        .unwrap_or_else(|| inner.none.clone());
    let target = Target {
        model_group: group.clone(),
        deployment,
    };
    let h = m.handles.get(&target);
    observe_requests(m, &h, &target, a.status, class);
    observe_upstream(m, &h, &target, a, class);
    observe_tokens(m, &h, &target, charge);
    if a.stream {
        m.stream_endings
            .get_or_create(&EndingLabels {
                model_group: group.clone(),
                outcome,
            })
            .inc();
    }
    handle(&h.duration[usize::from(a.stream)], &m.duration, || {
        Latency {
            model_group: group.clone(),
            stream: a.stream,
        }
    })
    .observe(latency.as_secs_f64());
    if let Some(up) = a.upstream {
        handle(&h.upstream, &m.upstream, || target.clone()).observe(up.as_secs_f64());
        if a.attempts.attempts <= 1 {
            if let Some(head) = a.head {
                let overhead = head.saturating_duration_since(s.at).saturating_sub(up);
                m.overhead.observe(overhead.as_secs_f64());
            }
        }
    }
    if let Some(t) = ttft {
        handle(&h.ttft, &m.ttft, || Group {
            model_group: group.clone(),
        })
        .observe(t.as_secs_f64());
    }
    observe_attempts(m, &group, a);
    if let Some(c) = a.cache {
        let result = match c {
            CacheStatus::Hit => CacheResult::hit,
            CacheStatus::Miss => CacheResult::miss,
        };
        m.cache
            .get_or_create(&CacheLabels {
                model_group: group,
                result,
            })
            .inc();
    }
}

fn observe_tokens(m: &crate::Metrics, h: &TargetHandles, target: &Target, charge: &Charge) {
    let tokens = &charge.tokens;
    for (kind, n) in [
        (TokenKind::input, tokens.prompt),
        (TokenKind::output, tokens.completion),
        (TokenKind::cache_read, tokens.cache_read),
        (TokenKind::cache_creation, tokens.cache_creation),
        (TokenKind::reasoning, tokens.reasoning),
    ] {
        if n > 0 {
            handle(&h.tokens[kind as usize], &m.tokens, || TokenLabels {
                model_group: target.model_group.clone(),
                deployment: target.deployment.clone(),
                token_type: kind,
            })
            .inc_by(n);
        }
    }
    if charge.estimated {
        handle(&h.estimated, &m.estimated, || target.clone()).inc();
    }
    match charge.cost {
        Some(c) if c > 0.0 => {
            handle(&h.spend, &m.spend, || target.clone()).inc_by(c);
        }
        Some(_) => {}
        None => {
            handle(&h.unpriced, &m.unpriced, || target.clone()).inc();
        }
    }
}

/// Counts the request under the deployment it reached last; a failed one also by its class.
fn observe_requests(
    m: &crate::Metrics,
    h: &TargetHandles,
    t: &Target,
    status: u16,
    class: Option<FailureClass>,
) {
    let status_class = StatusClass::of(status);
    handle(&h.requests[status_class as usize], &m.requests, || {
        StatusLabels {
            model_group: t.model_group.clone(),
            deployment: t.deployment.clone(),
            status_class,
        }
    })
    .inc();
    if !(200..400).contains(&status) {
        let class = class.unwrap_or_else(|| FailureClass::for_status(status));
        m.failures
            .get_or_create(&FailureLabels {
                model_group: t.model_group.clone(),
                deployment: t.deployment.clone(),
                status_class,
                error_class: ClassLabel(class),
            })
            .inc();
    }
}

/// Counts each attempt that reached a deployment against it: the earlier failed ones, then
/// the last one; as a failure only when it says something about the deployment's health (as
/// cooldowns judge it: not the caller's own deadline, not a forced failure) and is neither
/// the client's leaving nor the gateway's own failure.
fn observe_upstream(
    m: &crate::Metrics,
    h: &TargetHandles,
    last: &Target,
    a: &Answer,
    class: Option<FailureClass>,
) {
    for f in &a.earlier {
        let target = Target {
            model_group: f.group.clone(),
            deployment: f.deployment.clone(),
        };
        m.upstream_attempts.get_or_create(&target).inc();
        if f.counts {
            count_failure(m, target, f.class);
        }
    }
    if a.deployment.is_none() {
        return;
    }
    handle(&h.upstream_attempts, &m.upstream_attempts, || last.clone()).inc();
    let stream_not_deployments = a
        .stream_failure
        .as_ref()
        .and_then(StreamFailure::get)
        .is_some_and(|e| !e.counts_against_deployment());
    if a.not_deployments || stream_not_deployments {
        return;
    }
    match class {
        None | Some(FailureClass::ClientClosed | FailureClass::Gateway) => {}
        Some(c) => count_failure(m, last.clone(), c),
    }
}

fn count_failure(m: &crate::Metrics, target: Target, class: FailureClass) {
    m.upstream_failures
        .get_or_create(&AttemptFailure {
            model_group: target.model_group,
            deployment: target.deployment,
            error_class: ClassLabel(class),
        })
        .inc();
}

fn observe_attempts(m: &crate::Metrics, group: &Arc<str>, a: &Answer) {
    let extra = a.attempts.attempts.saturating_sub(1);
    let fallbacks = a.attempts.fallbacks.min(extra);
    for (kind, n) in [
        (AttemptKind::retry, extra - fallbacks),
        (AttemptKind::fallback, fallbacks),
    ] {
        if n > 0 {
            m.attempts
                .get_or_create(&AttemptLabels {
                    model_group: group.clone(),
                    kind,
                })
                .inc_by(u64::from(n));
        }
    }
}
