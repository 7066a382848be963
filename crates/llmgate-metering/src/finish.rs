//! The end of a metered request: its record and its metrics, exactly once.
//!
//! A [`Guard`] travels with the request from [`crate::Metering::call`] to the end of its
//! response (for a stream, the end of the body). Whatever ends it — the response, an error,
//! the client going away — finishes it once, with what is known by then.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::Extensions;
use llmgate_core::{
    tokens, ApiError, Attempts, CacheStatus, Deployment, ErrorContract as _, FailedAttempt,
    FailedAttempts, FailureClass, LlmRequest, ModelGroup, Principal, StreamFailure, UpstreamTime,
    UsageSlot,
};
use serde_json::Value;
use tokio::time::Instant;

use crate::cost::Tokens;
use crate::meter::Meter;
use crate::queue::Slot;
use crate::record::{Outcome, SpendRecord};
use crate::tally::Tally;

/// Status recorded for a request whose client went away before its response head.
pub(crate) const CLIENT_CLOSED: u16 = 499;

/// What the request looked like when it reached metering.
pub(crate) struct Started {
    pub(crate) meter: Meter,
    pub(crate) slot: Slot,
    pub(crate) at: Instant,
    pub(crate) time: SystemTime,
    pub(crate) request_id: Option<Arc<str>>,
    pub(crate) llm: Option<LlmRequest>,
    pub(crate) principal: Option<Principal>,
    /// The key's budget reservation, settled with the cost.
    pub(crate) hold: Option<llmgate_core::BudgetHold>,
    /// LiteLLM's `x-litellm-tags` request header (comma-separated spend tags), when sent.
    pub(crate) header_tags: Option<String>,
    /// The end user the auth layer found (a header's, else the body's `user`).
    pub(crate) end_user: Option<Arc<str>>,
}

/// What the response says, as far as it is known.
#[derive(Default)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) deployment: Option<Deployment>,
    pub(crate) group: Option<Arc<str>>,
    pub(crate) attempts: Attempts,
    /// Attempts that failed before the last one, each against its own deployment.
    pub(crate) earlier: Vec<FailedAttempt>,
    /// The class of the error the request failed with (an error, not a response).
    pub(crate) class: Option<FailureClass>,
    /// Where a stream's relay reports the error that broke it after its head.
    pub(crate) stream_failure: Option<StreamFailure>,
    /// The failed request's error says nothing about the deployment's health (the caller's
    /// own deadline, a failure the request forced).
    pub(crate) not_deployments: bool,
    pub(crate) cache: Option<CacheStatus>,
    pub(crate) usage: Option<UsageSlot>,
    pub(crate) upstream: Option<Duration>,
    /// When the response head reached metering.
    pub(crate) head: Option<Instant>,
    /// When a stream's first body frame passed.
    pub(crate) first_byte: Option<Instant>,
    pub(crate) stream: bool,
    /// What passed through the body, when metering wrapped it (a stream, or an answer that
    /// reported no usage).
    pub(crate) tally: Option<Tally>,
    /// The body reached its end (`false` while it is sent, and when it was dropped before).
    pub(crate) ended: bool,
    /// The body failed.
    pub(crate) body_failed: bool,
    /// A failed request's error message, credentials masked.
    pub(crate) message: Option<String>,
}

impl Answer {
    /// Reads a response's extensions.
    pub(crate) fn of(status: u16, ext: &Extensions) -> Answer {
        Answer {
            status,
            deployment: ext.get::<Deployment>().cloned(),
            group: ext.get::<ModelGroup>().map(|g| g.0.clone()),
            attempts: ext.get::<Attempts>().copied().unwrap_or_default(),
            earlier: ext
                .get::<FailedAttempts>()
                .map(|f| f.0.clone())
                .unwrap_or_default(),
            class: None,
            stream_failure: ext.get::<StreamFailure>().cloned(),
            not_deployments: false,
            cache: ext.get::<CacheStatus>().copied(),
            usage: ext.get::<UsageSlot>().cloned(),
            upstream: ext.get::<UpstreamTime>().map(|t| t.0),
            head: Some(Instant::now()),
            first_byte: None,
            stream: false,
            tally: None,
            ended: false,
            body_failed: false,
            message: None,
        }
    }

    /// Reads a failed request's error: its status, class and attribution (the group and
    /// deployment its last attempt reached, its attempts, its earlier failed attempts).
    pub(crate) fn failed(&mut self, e: &ApiError) {
        self.status = e.status().as_u16();
        self.class = Some(FailureClass::of(e));
        self.not_deployments = !e.counts_against_deployment();
        if let Some(a) = e.attribution() {
            self.group = Some(a.group.clone());
            self.deployment = a.deployment.clone();
            self.attempts = a.attempts;
            self.earlier = a.earlier.clone();
        }
        self.message = Some(crate::log::error_message(
            e.message(),
            self.deployment.as_ref(),
        ));
    }

    /// The failure's message: the error's, or the one that broke a stream.
    fn failure_message(&self, outcome: Outcome) -> Option<String> {
        match outcome {
            Outcome::Success => None,
            Outcome::UpstreamError => self
                .stream_failure
                .as_ref()
                .and_then(StreamFailure::get)
                .map(|e| crate::log::error_message(e.message(), self.deployment.as_ref()))
                .or_else(|| self.message.clone()),
            _ => self.message.clone(),
        }
    }

    /// Why the request failed (`None` for a success): the error's class; for an error
    /// response, its status's; for a stream, how it ended.
    fn failure_class(&self, outcome: Outcome) -> Option<FailureClass> {
        match outcome {
            Outcome::Success => None,
            Outcome::ClientClosed => Some(FailureClass::ClientClosed),
            Outcome::GatewayShutdown => Some(FailureClass::Gateway),
            Outcome::UpstreamError => Some(
                self.stream_failure
                    .as_ref()
                    .and_then(StreamFailure::get)
                    .map_or(FailureClass::Upstream5xx, |e| FailureClass::of(e)),
            ),
            _ => Some(
                self.class
                    .unwrap_or_else(|| FailureClass::for_status(self.status)),
            ),
        }
    }

    /// How the request ended, as far as the answer and its body tell.
    fn outcome(&self) -> Outcome {
        if self.status == CLIENT_CLOSED {
            return Outcome::ClientClosed;
        }
        if !(200..400).contains(&self.status) {
            return Outcome::Error;
        }
        let Some(t) = &self.tally else {
            return Outcome::Success;
        };
        if let Some(e) = t.error {
            e
        } else if self.body_failed {
            Outcome::UpstreamError
        } else if self.ended || t.done {
            Outcome::Success
        } else {
            Outcome::ClientClosed
        }
    }
}

/// Finishes the request once: explicitly, or when dropped.
pub(crate) struct Guard {
    started: Option<Started>,
    pub(crate) answer: Answer,
}

impl Guard {
    pub(crate) fn new(started: Started) -> Guard {
        started.meter.inner.metrics.in_flight.inc();
        Guard {
            started: Some(started),
            answer: Answer {
                status: CLIENT_CLOSED,
                ..Answer::default()
            },
        }
    }

    /// Whether a complete answer must be counted to be charged: the provider reported no
    /// usage, it is not from the cache, and it has text (not embeddings).
    pub(crate) fn answer_needs_count(&self) -> bool {
        let a = &self.answer;
        let reported = a.usage.as_ref().is_some_and(|u| u.get().is_some());
        let llm = self.started.as_ref().and_then(|s| s.llm.as_ref());
        !reported
            && a.cache != Some(CacheStatus::Hit)
            && llm.is_some_and(|l| l.endpoint() != llmgate_core::Endpoint::Embeddings)
    }

    /// Whether the spend record keeps the answer (`store_prompts_in_spend_logs`).
    pub(crate) fn keeps_answers(&self) -> bool {
        self.started
            .as_ref()
            .is_some_and(|s| s.meter.inner.store_prompts)
    }

    /// Records the request; returns its cost when known.
    pub(crate) fn finish(&mut self) -> Option<f64> {
        let started = self.started.take()?;
        finish(started, &self.answer)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.finish();
    }
}

/// What a request is charged: its tokens, whether they are estimated, its cost.
pub(crate) struct Charge {
    pub(crate) tokens: Tokens,
    pub(crate) estimated: bool,
    pub(crate) cost: Option<f64>,
}

impl Charge {
    /// By the usage the provider reported; else, for an answer that was served (a success
    /// status, not from the cache), by an estimate: the prompt counted from the request, the
    /// completion from the text the body relayed. A failed request without usage costs 0
    /// (providers do not bill it), a cache hit 0.
    fn of(s: &Started, a: &Answer) -> Charge {
        let inner = &s.meter.inner;
        let reported = a.usage.as_ref().and_then(UsageSlot::get).map(Tokens::of);
        let cache_hit = a.cache == Some(CacheStatus::Hit);
        let served = (200..400).contains(&a.status) && !cache_hit;
        let (tokens, estimated) = match (reported, &s.llm) {
            (Some(t), _) => (Some(t), false),
            (None, Some(llm)) if served => (Some(estimate(llm, a)), true),
            (None, _) => (None, false),
        };
        let cost = if cache_hit || (!served && tokens.is_none()) {
            // A cache hit is free; providers do not bill a failed call.
            Some(0.0)
        } else {
            match (&a.deployment, tokens) {
                (Some(d), Some(t)) => inner.prices.price(d).and_then(|p| t.cost(&p)),
                _ => None,
            }
        };
        Charge {
            tokens: tokens.unwrap_or_default(),
            estimated,
            cost,
        }
    }
}

/// The gateway's own count of an answer without usage: the prompt for the deployment's model
/// (the requested one before routing), the completion from the relayed text.
fn estimate(llm: &LlmRequest, a: &Answer) -> Tokens {
    let model = a
        .deployment
        .as_ref()
        .map_or(llm.model(), |d| d.model.as_ref());
    Tokens {
        prompt: tokens::prompt_tokens(llm, model),
        completion: a
            .tally
            .as_ref()
            .map_or(0, |t| tokens::estimate_bytes(t.text_bytes())),
        ..Tokens::default()
    }
}

fn finish(s: Started, a: &Answer) -> Option<f64> {
    let inner = &s.meter.inner;
    inner.metrics.in_flight.dec();
    let latency = Instant::now().saturating_duration_since(s.at);
    let charge = Charge::of(&s, a);
    if let Some(hold) = &s.hold {
        hold.settle(charge.cost);
    }
    let outcome = a.outcome();
    let class = a.failure_class(outcome);
    let llm = s.llm.as_ref();
    let requested = llm.map(|l| l.model().to_owned()).unwrap_or_default();
    let ttft = a.first_byte.map(|t| t.saturating_duration_since(s.at));
    let ended = crate::observe::Ended {
        outcome,
        class,
        latency,
        ttft,
    };
    crate::observe::observe(&s, a, &requested, &charge, &ended);
    let key_arc = match &s.principal {
        Some(Principal::Key(k)) => Some(k),
        _ => None,
    };
    let key = key_arc.map(|k| &**k);
    if let Some(l) = &inner.metrics.litellm {
        l.observe(crate::litellm::sample(
            &s, a, &requested, &charge, &ended, key_arc,
        ));
    }
    let (messages, response) = kept(&s, a);
    let record = SpendRecord {
        request_id: s.request_id.clone().unwrap_or_else(|| Arc::from("")),
        key_token: key.map(|k| k.token.clone()),
        key_alias: key.and_then(|k| k.key_alias.clone()),
        team_id: key.and_then(|k| k.team_id.clone()),
        user_id: key.and_then(|k| k.user_id.clone()),
        end_user: s
            .end_user
            .as_deref()
            .or_else(|| llm.and_then(|l| l.end_user()))
            .map(str::to_owned),
        requested_model: requested,
        model_group: a.group.clone(),
        deployment: a.deployment.as_ref().map(|d| d.id.clone()),
        provider: a
            .deployment
            .as_ref()
            .map(|d| d.provider.as_str().to_owned()),
        upstream_model: a.deployment.as_ref().map(|d| d.model.clone()),
        endpoint: llm.map_or("", |l| l.endpoint().path()),
        tokens: charge.tokens,
        cost: charge.cost,
        status: a.status,
        outcome,
        error_class: class,
        usage_estimated: charge.estimated,
        stream: a.stream,
        cache_hit: a.cache == Some(CacheStatus::Hit),
        attempts: a.attempts.attempts,
        fallbacks: a.attempts.fallbacks,
        start_time: s.time,
        end_time: s.time + latency,
        latency,
        time_to_first_token: ttft,
        tags: tags(
            llm,
            s.header_tags.as_deref(),
            key.map(|k| k.tags.as_slice()).unwrap_or_default(),
        ),
        error_message: a.failure_message(outcome),
        messages,
        response,
    };
    crate::log::request_line(&record);
    s.slot.send(record);
    charge.cost
}

/// The request's messages and its answer, when the spend log keeps them
/// (`store_prompts_in_spend_logs`).
fn kept(s: &Started, a: &Answer) -> (Option<String>, Option<String>) {
    if !s.meter.inner.store_prompts {
        return (None, None);
    }
    (
        s.llm.as_ref().and_then(crate::log::messages),
        a.tally.as_ref().and_then(Tally::captured),
    )
}

/// The request's `metadata.tags` and `tags`, then its `x-litellm-tags` header's, then the key's,
/// each once.
fn tags(llm: Option<&LlmRequest>, header: Option<&str>, key_tags: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |t: &str| {
        if !t.is_empty() && !out.iter().any(|o| o == t) {
            out.push(t.to_owned());
        }
    };
    if let Some(g) = llm.map(LlmRequest::gateway) {
        if let Some(Value::Array(items)) = g.metadata.as_ref().and_then(|m| m.get("tags")) {
            items.iter().filter_map(Value::as_str).for_each(&mut add);
        }
        g.tags.iter().for_each(|t| add(t));
    }
    header
        .into_iter()
        .flat_map(|h| h.split(','))
        .map(str::trim)
        .for_each(&mut add);
    key_tags.iter().for_each(|t| add(t));
    out
}
