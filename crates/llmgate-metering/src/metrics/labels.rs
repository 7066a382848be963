//! The label sets and label values of [`super::Metrics`]: each a small, bounded set (see the
//! module docs of `metrics.rs`).

use std::fmt::{self, Write as _};
use std::sync::Arc;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};

use llmgate_core::FailureClass;

use crate::record::Outcome;

/// `Hash` for a label set looked up on every request: its fields through foldhash (fixed
/// seed), then the one `u64` into the family's map, whose hasher is std's SipHash (fixed by
/// `prometheus-client`). SipHash over every label's bytes, several lookups a request, cost
/// about 12,000 instructions a request; foldhash hashes a short string in a few dozen. Label
/// values come from the config and the admin's keys, not from what a client sends, so a
/// hash-flooding-resistant hasher buys nothing here.
macro_rules! fast_hash {
    ($($ty:ident { $($field:ident),+ })+) => {$(
        impl std::hash::Hash for $ty {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                use std::hash::BuildHasher as _;
                let fields = ($(&self.$field,)+);
                state.write_u64(foldhash::fast::FixedState::default().hash_one(fields));
            }
        }
    )+};
}
pub(crate) use fast_hash;

fast_hash! {
    Target { model_group, deployment }
    StatusLabels { model_group, deployment, status_class }
    FailureLabels { model_group, deployment, status_class, error_class }
    AttemptFailure { model_group, deployment, error_class }
    EndingLabels { model_group, outcome }
    TokenLabels { model_group, deployment, token_type }
    Group { model_group }
    Latency { model_group, stream }
    AttemptLabels { model_group, kind }
    CacheLabels { model_group, result }
}

/// `2xx`, `4xx`, ... of an HTTP status.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum StatusClass {
    S2xx,
    S3xx,
    S4xx,
    S5xx,
}

impl EncodeLabelValue for StatusClass {
    fn encode(&self, e: &mut LabelValueEncoder<'_>) -> fmt::Result {
        e.write_str(self.as_str())
    }
}

impl StatusClass {
    /// `2xx`, `3xx`, `4xx` or `5xx`.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusClass::S2xx => "2xx",
            StatusClass::S3xx => "3xx",
            StatusClass::S4xx => "4xx",
            StatusClass::S5xx => "5xx",
        }
    }

    /// The class of `status`.
    pub fn of(status: u16) -> Self {
        match status {
            0..=299 => StatusClass::S2xx,
            300..=399 => StatusClass::S3xx,
            400..=499 => StatusClass::S4xx,
            _ => StatusClass::S5xx,
        }
    }
}

/// Labels of per-deployment metrics.
#[derive(Debug, Clone, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Target {
    pub(crate) model_group: Arc<str>,
    pub(crate) deployment: Arc<str>,
}

#[derive(Debug, Clone, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StatusLabels {
    pub(crate) model_group: Arc<str>,
    pub(crate) deployment: Arc<str>,
    pub(crate) status_class: StatusClass,
}

/// Why a request or an attempt failed, as a label ([`FailureClass::as_str`]).
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub(crate) struct ClassLabel(pub(crate) FailureClass);

impl EncodeLabelValue for ClassLabel {
    fn encode(&self, e: &mut LabelValueEncoder<'_>) -> fmt::Result {
        e.write_str(self.0.as_str())
    }
}

/// Labels of failed requests.
#[derive(Debug, Clone, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct FailureLabels {
    pub(crate) model_group: Arc<str>,
    pub(crate) deployment: Arc<str>,
    pub(crate) status_class: StatusClass,
    pub(crate) error_class: ClassLabel,
}

/// Labels of failed attempts.
#[derive(Debug, Clone, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct AttemptFailure {
    pub(crate) model_group: Arc<str>,
    pub(crate) deployment: Arc<str>,
    pub(crate) error_class: ClassLabel,
}

/// Labels of how streams ended.
#[derive(Debug, Clone, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct EndingLabels {
    pub(crate) model_group: Arc<str>,
    pub(crate) outcome: Outcome,
}

impl EncodeLabelValue for Outcome {
    fn encode(&self, e: &mut LabelValueEncoder<'_>) -> fmt::Result {
        e.write_str(self.as_str())
    }
}

/// Kinds of tokens.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types, missing_docs)]
pub(crate) enum TokenKind {
    input,
    output,
    cache_read,
    cache_creation,
    reasoning,
}

#[derive(Debug, Clone, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TokenLabels {
    pub(crate) model_group: Arc<str>,
    pub(crate) deployment: Arc<str>,
    pub(crate) token_type: TokenKind,
}

#[derive(Debug, Clone, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Group {
    pub(crate) model_group: Arc<str>,
}

#[derive(Debug, Clone, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Latency {
    pub(crate) model_group: Arc<str>,
    pub(crate) stream: bool,
}

/// Why the gateway answered a request itself with an error before any provider saw it.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Rejection {
    /// 429 from the gateway's rate limiter.
    rate_limit,
    /// 401 or 403 from authentication.
    auth,
    /// 503: the spend queue was full.
    spend_queue_full,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RejectionLabels {
    pub(crate) reason: Rejection,
}

#[derive(Debug, Clone, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct AttemptLabels {
    pub(crate) model_group: Arc<str>,
    pub(crate) kind: AttemptKind,
}

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub(crate) enum AttemptKind {
    retry,
    fallback,
}

#[derive(Debug, Clone, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct CacheLabels {
    pub(crate) model_group: Arc<str>,
    pub(crate) result: CacheResult,
}

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub(crate) enum CacheResult {
    hit,
    miss,
}
