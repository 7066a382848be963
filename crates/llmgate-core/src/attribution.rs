//! Attribution: which deployment a request reached, how many attempts it took and, when it
//! failed, why, for failed requests as for successful ones.
//!
//! A successful answer carries the routing facts as response extensions ([`crate::Deployment`],
//! [`crate::ModelGroup`], [`crate::Attempts`], and [`FailedAttempts`] for the attempts that
//! failed before it). A failed request travels as an [`crate::ApiError`], which carries the same
//! facts as an [`Attribution`]: the router attaches the group and the deployment of the attempt,
//! the fallback layer the request's attempt counts and its earlier failed attempts. Metering
//! reads either for `/metrics` and the spend log; the error's response carries them as the
//! `x-llmgate-*` headers a success has.
//!
//! [`FailureClass`] is the one label for why a request or an attempt failed: LiteLLM's
//! [`ErrorClass`] (which `retry_policy` and the router's cooldowns are keyed by), with an
//! unreachable upstream told apart from a 5xx, plus the failures that are no attempt's
//! (no deployment left, the client gone, the gateway's own). A small fixed set: a metric label.

use std::sync::Arc;

use crate::error::{ApiError, ErrorClass, ErrorContract, Origin};
use crate::ext::{Attempts, RequestId};
use crate::Deployment;

/// Why a request, or one attempt of it, failed: a small fixed set of `snake_case` names,
/// used as the `error_class` metric label, the spend log's `error_class` and in logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureClass {
    /// A 400 the deployment (or the router) refused as sent ([`ErrorClass::BadRequest`]).
    BadRequest,
    /// The prompt is too long for the model ([`ErrorClass::ContextWindowExceeded`]).
    ContextWindow,
    /// A content-policy refusal ([`ErrorClass::ContentPolicyViolation`]).
    ContentPolicy,
    /// 401 / 403 from the provider: a wrong or unauthorised provider key
    /// ([`ErrorClass::Authentication`]).
    Auth,
    /// 404 from the provider ([`ErrorClass::NotFound`]).
    NotFound,
    /// 408 / 504 / a deadline passed, a stream idle too long ([`ErrorClass::Timeout`]).
    Timeout,
    /// 429 from the provider ([`ErrorClass::RateLimit`]).
    RateLimited,
    /// A 5xx from the provider, an invalid answer or a broken stream
    /// ([`ErrorClass::InternalServer`]).
    Upstream5xx,
    /// The provider could not be reached (refused, reset, DNS, TLS): code
    /// `upstream_unreachable`, an [`ErrorClass::InternalServer`] to the retry policy.
    Connect,
    /// No deployment of the group could take the attempt (all cooling down or at their
    /// limits): code `no_deployment_available`.
    NoDeployment,
    /// The client went away before the answer ended.
    ClientClosed,
    /// The gateway's own failure (a wiring error, a full spend queue, a stop).
    Gateway,
}

impl FailureClass {
    /// Classifies an error by its status, code and origin.
    pub fn of(e: &dyn ErrorContract) -> FailureClass {
        match e.code().as_deref() {
            Some("no_deployment_available") => return FailureClass::NoDeployment,
            Some("upstream_unreachable") => return FailureClass::Connect,
            _ => {}
        }
        if e.status().as_u16() == 499 {
            return FailureClass::ClientClosed;
        }
        if e.origin() == Origin::Internal {
            return FailureClass::Gateway;
        }
        FailureClass::from(ErrorClass::of(e))
    }

    /// The class of an error answer known only by its status (an answer a layer sent as a
    /// response rather than an error).
    pub fn for_status(status: u16) -> FailureClass {
        match status {
            401 | 403 => FailureClass::Auth,
            404 => FailureClass::NotFound,
            408 | 504 => FailureClass::Timeout,
            429 => FailureClass::RateLimited,
            499 => FailureClass::ClientClosed,
            400..=498 => FailureClass::BadRequest,
            _ => FailureClass::Upstream5xx,
        }
    }

    /// The label: `bad_request`, `context_window`, `content_policy`, `auth`, `not_found`,
    /// `timeout`, `rate_limited`, `upstream_5xx`, `connect`, `no_deployment`, `client_closed`
    /// or `gateway`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::BadRequest => "bad_request",
            FailureClass::ContextWindow => "context_window",
            FailureClass::ContentPolicy => "content_policy",
            FailureClass::Auth => "auth",
            FailureClass::NotFound => "not_found",
            FailureClass::Timeout => "timeout",
            FailureClass::RateLimited => "rate_limited",
            FailureClass::Upstream5xx => "upstream_5xx",
            FailureClass::Connect => "connect",
            FailureClass::NoDeployment => "no_deployment",
            FailureClass::ClientClosed => "client_closed",
            FailureClass::Gateway => "gateway",
        }
    }

    /// The class named `s` (the inverse of [`FailureClass::as_str`]).
    pub fn parse(s: &str) -> Option<FailureClass> {
        FailureClass::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Every class.
    pub const ALL: [FailureClass; 12] = [
        FailureClass::BadRequest,
        FailureClass::ContextWindow,
        FailureClass::ContentPolicy,
        FailureClass::Auth,
        FailureClass::NotFound,
        FailureClass::Timeout,
        FailureClass::RateLimited,
        FailureClass::Upstream5xx,
        FailureClass::Connect,
        FailureClass::NoDeployment,
        FailureClass::ClientClosed,
        FailureClass::Gateway,
    ];
}

impl From<ErrorClass> for FailureClass {
    fn from(c: ErrorClass) -> Self {
        match c {
            ErrorClass::BadRequest => FailureClass::BadRequest,
            ErrorClass::ContextWindowExceeded => FailureClass::ContextWindow,
            ErrorClass::ContentPolicyViolation => FailureClass::ContentPolicy,
            ErrorClass::Authentication => FailureClass::Auth,
            ErrorClass::NotFound => FailureClass::NotFound,
            ErrorClass::Timeout => FailureClass::Timeout,
            ErrorClass::RateLimit => FailureClass::RateLimited,
            ErrorClass::InternalServer => FailureClass::Upstream5xx,
        }
    }
}

/// One failed attempt that reached a deployment (or was failed on its behalf).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedAttempt {
    /// The model group of the attempt.
    pub group: Arc<str>,
    /// The deployment id.
    pub deployment: Arc<str>,
    /// Why it failed.
    pub class: FailureClass,
    /// Whether the failure says something about the deployment's health
    /// ([`crate::ErrorContract::counts_against_deployment`]): not a deadline the caller chose,
    /// not a failure the request forced. Only those count as the deployment's failures.
    pub counts: bool,
}

/// Response extension: the attempts that failed before the one that answered, each against its
/// own deployment (set by the fallback layer only when there were some).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailedAttempts(pub Vec<FailedAttempt>);

/// What a failed request reached, carried by its [`crate::ApiError`].
#[derive(Debug, Clone)]
pub struct Attribution {
    /// The model group of the last attempt.
    pub group: Arc<str>,
    /// The deployment the last attempt reached; `None` when the router found none to offer.
    pub deployment: Option<Deployment>,
    /// Attempts made, the last included, and how many went to fallback groups.
    pub attempts: Attempts,
    /// The failed attempts before the last one, each against its own deployment.
    pub earlier: Vec<FailedAttempt>,
}

impl Attribution {
    /// One attempt on `group`, which reached `deployment` (if any).
    pub fn attempt(group: Arc<str>, deployment: Option<Deployment>) -> Self {
        Attribution {
            group,
            deployment,
            attempts: Attempts {
                attempts: 1,
                fallbacks: 0,
            },
            earlier: Vec::new(),
        }
    }
}

/// The request's log line for an error: with what it is attributed to (the model group and
/// deployment its last attempt reached, its attempts, its class). WARN for a provider's
/// failure or a 5xx, else DEBUG. Called once per failed request by whichever layer renders
/// the error (the facade's rescue layer, or an inbound dialect that answers in its own shape);
/// logged under the target `llmgate::rescue`, where filters have always found it.
pub fn log_failure(e: &ApiError, id: Option<&RequestId>) {
    let request_id = id.map_or("", |i| &*i.0);
    let a = e.attribution();
    let model_group = a.map_or("", |a| &*a.group);
    let deployment = a.and_then(|a| a.deployment.as_ref()).map_or("", |d| &*d.id);
    let attempts = a.map_or(0, |a| a.attempts.attempts);
    let error_class = FailureClass::of(e).as_str();
    let status = e.status().as_u16();
    let origin = e.origin().as_str();
    // An upstream may echo what it was sent: its key is masked (`crate::redact`).
    let key = a
        .and_then(|a| a.deployment.as_ref())
        .and_then(|d| d.api_key.as_ref())
        .map(crate::Secret::expose);
    let error = crate::redact::scrub(e.message(), key.as_slice());
    let error = &*error;
    // A provider's failure is logged as one whatever its status (a 429, a timeout's 408).
    if e.status().is_server_error() || e.origin() == Origin::Upstream {
        tracing::warn!(target: "llmgate::rescue", request_id, status, origin, error_class, model_group, deployment, attempts, error, "request failed");
    } else {
        tracing::debug!(target: "llmgate::rescue", request_id, status, origin, error_class, model_group, deployment, attempts, error, "request rejected");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ApiError;
    use http::StatusCode;

    #[test]
    fn classes_follow_litellm_and_name_what_is_no_attempt() {
        let up = |s: u16| ApiError::new(StatusCode::from_u16(s).unwrap(), Origin::Upstream, "x");
        assert_eq!(FailureClass::of(&up(500)), FailureClass::Upstream5xx);
        assert_eq!(FailureClass::of(&up(429)), FailureClass::RateLimited);
        assert_eq!(FailureClass::of(&up(408)), FailureClass::Timeout);
        assert_eq!(FailureClass::of(&up(401)), FailureClass::Auth);
        assert_eq!(
            FailureClass::of(&up(502).with_code("upstream_unreachable")),
            FailureClass::Connect
        );
        assert_eq!(
            FailureClass::of(&up(400).with_code("content_filter")),
            FailureClass::ContentPolicy
        );
        let none = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, Origin::Internal, "x")
            .with_code("no_deployment_available");
        assert_eq!(FailureClass::of(&none), FailureClass::NoDeployment);
        assert_eq!(
            FailureClass::of(&ApiError::internal("x")),
            FailureClass::Gateway
        );
        for c in FailureClass::ALL {
            assert_eq!(FailureClass::parse(c.as_str()), Some(c));
        }
    }

    #[test]
    fn an_attributed_error_answers_with_the_headers_a_success_has() {
        let plain = ApiError::new(StatusCode::BAD_GATEWAY, Origin::Upstream, "down");
        assert!(plain
            .to_response()
            .headers()
            .get(crate::headers::ATTEMPTS)
            .is_none());
        let mut a = Attribution::attempt(Arc::from("smart"), None);
        a.attempts = Attempts {
            attempts: 3,
            fallbacks: 1,
        };
        let res = plain.with_attribution(a).to_response();
        let h = res.headers();
        assert_eq!(h[crate::headers::MODEL_GROUP], "smart");
        assert_eq!(h[crate::headers::ATTEMPTS], "3");
        assert_eq!(h[crate::headers::FALLBACKS], "1");
        // No deployment was tried: no deployment header.
        assert!(h.get(crate::headers::DEPLOYMENT).is_none());
    }
}
