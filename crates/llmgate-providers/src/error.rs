//! The crate's errors, and what each one means to the client and to the fallback layer.
//!
//! Messages about a provider call start with `"{provider} (deployment {id}): "` so the client
//! knows which deployment failed, e.g.
//! `"openrouter (deployment primary-0): Rate limit exceeded"`. They never contain API keys.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use llmgate_core::error::status_is_retryable;
use llmgate_core::{
    ApiError, BoxError, DeploymentSpec, ErrorContract, ErrorType, Origin, ProviderKind,
};

/// [`Error::Timeout`]'s `setting` when the deadline was the request's own `timeout` (the
/// caller's choice): such a timeout is the caller's problem and does not count against the
/// deployment's health ([`ErrorContract::counts_against_deployment`]).
pub const REQUEST_TIMEOUT: &str = "request timeout";

/// What can go wrong in the provider service.
///
/// | variant | status | retryable | origin |
/// |---|---|---|---|
/// | [`Error::MissingExtension`] | 500 | no | internal |
/// | [`Error::Unsupported`] | 501 | no | internal |
/// | [`Error::UnsupportedParam`] | 400 | no | downstream |
/// | [`Error::UnsupportedEndpoint`] | 400 | no | downstream |
/// | [`Error::Config`] | 500 | no | internal |
/// | [`Error::Tls`] | 500 | no | internal |
/// | [`Error::Unreachable`] | 502 | yes | upstream |
/// | [`Error::Timeout`] | 408 | yes | upstream |
/// | [`Error::InvalidResponse`] | 502 | yes | upstream |
/// | [`Error::StreamEnded`] | 502 | yes | upstream |
/// | [`Error::InvalidStream`] | 502 | yes | upstream |
/// | [`Error::StreamIdle`] | 408 | yes | upstream |
/// | [`Error::ResponseTooLarge`] | 502 | yes | upstream |
/// | [`Error::ShuttingDown`] | 503 | yes | internal |
/// | [`Error::Upstream`] | the provider's | as the status says | upstream |
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request lacks an extension the service needs: a wiring bug in the stack.
    #[error(
        "the request has no `{0}` extension: mount the provider service below the \
         body-parsing layer and the router"
    )]
    MissingExtension(&'static str),

    /// The deployment's provider has no dialect in this release.
    #[error(
        "{provider} (deployment {deployment}): provider `{provider}` is not supported by \
         this release of llmgate"
    )]
    Unsupported {
        /// The provider.
        provider: ProviderKind,
        /// The deployment id.
        deployment: Arc<str>,
    },

    /// The request has a parameter the provider cannot take, and `drop_params` is off.
    #[error("{provider} (deployment {deployment}) does not support the parameter `{param}`; set drop_params: true (in litellm_settings, the deployment's litellm_params, or the request) to drop it")]
    UnsupportedParam {
        /// The provider.
        provider: ProviderKind,
        /// The deployment id.
        deployment: Arc<str>,
        /// The parameter.
        param: &'static str,
    },

    /// The provider has no such endpoint (Anthropic has no embeddings, for example).
    #[error("{provider} (deployment {deployment}) does not serve {endpoint}")]
    UnsupportedEndpoint {
        /// The provider.
        provider: ProviderKind,
        /// The deployment id.
        deployment: Arc<str>,
        /// The endpoint, as `/v1/...`.
        endpoint: &'static str,
    },

    /// The deployment cannot be called as configured (no `api_base` where one is required, an
    /// `api_base` that is not a URL, a key that is not a valid header value).
    #[error("{provider} (deployment {deployment}): {detail}")]
    Config {
        /// The provider.
        provider: ProviderKind,
        /// The deployment id.
        deployment: Arc<str>,
        /// What is wrong (never the key itself).
        detail: String,
    },

    /// The upstream TLS configuration could not be built.
    #[error("could not build the upstream TLS client: {0}")]
    Tls(#[source] rustls::Error),

    /// The connection failed: refused, reset, DNS, TLS handshake.
    #[error("{provider} (deployment {deployment}): the upstream could not be reached: {cause}")]
    Unreachable {
        /// The provider.
        provider: ProviderKind,
        /// The deployment id.
        deployment: Arc<str>,
        /// The transport's explanation (its error chain).
        cause: String,
    },

    /// The attempt ran past its deadline.
    #[error(
        "{provider} (deployment {deployment}): the upstream did not answer within {limit:?} \
         (`{setting}`)"
    )]
    Timeout {
        /// The provider.
        provider: ProviderKind,
        /// The deployment id.
        deployment: Arc<str>,
        /// The deadline that passed.
        limit: Duration,
        /// Which setting set it: `timeout`, `stream_timeout`, the client's default, or the
        /// request's own `timeout` ([`REQUEST_TIMEOUT`], which never counts against the
        /// deployment).
        setting: &'static str,
    },

    /// A success status with a body that is not what the endpoint returns.
    #[error(
        "{provider} (deployment {deployment}): provider returned an invalid response: {detail}"
    )]
    InvalidResponse {
        /// The provider.
        provider: ProviderKind,
        /// The deployment id.
        deployment: Arc<str>,
        /// What was wrong.
        detail: String,
    },

    /// A stream broke (body error, or end without `[DONE]`) after its first byte.
    #[error("{provider} (deployment {deployment}): upstream stream ended before completion")]
    StreamEnded {
        /// The provider.
        provider: ProviderKind,
        /// The deployment id.
        deployment: Arc<str>,
    },

    /// A stream event that is not what the dialect sends (for OpenAI's: a `data:` that is not
    /// a JSON object nor `[DONE]`).
    #[error(
        "{provider} (deployment {deployment}): the upstream sent an invalid stream event: {detail}"
    )]
    InvalidStream {
        /// The provider.
        provider: ProviderKind,
        /// The deployment id.
        deployment: Arc<str>,
        /// What was wrong (never the event itself).
        detail: String,
    },

    /// No stream event arrived for the idle timeout after the response head.
    #[error(
        "{provider} (deployment {deployment}): the upstream sent no stream event for {limit:?} \
         (`{setting}`)"
    )]
    StreamIdle {
        /// The provider.
        provider: ProviderKind,
        /// The deployment id.
        deployment: Arc<str>,
        /// The idle timeout that passed.
        limit: Duration,
        /// Which setting set it: `stream_idle_timeout`, `stream_timeout` or the default.
        setting: &'static str,
    },

    /// The answer (or one stream event) is larger than `max_response_size_mb`.
    #[error(
        "{provider} (deployment {deployment}): the upstream answer is larger than the \
         {limit}-byte limit (`max_response_size_mb`)"
    )]
    ResponseTooLarge {
        /// The provider.
        provider: ProviderKind,
        /// The deployment id.
        deployment: Arc<str>,
        /// The limit in bytes.
        limit: u64,
    },

    /// The gateway is stopping and ended the stream before its grace period ran out.
    #[error("the gateway is shutting down")]
    ShuttingDown,

    /// The provider answered with an error status (or a mock error was asked for).
    #[error("{provider} (deployment {deployment}): {message}")]
    Upstream {
        /// The provider.
        provider: ProviderKind,
        /// The deployment id.
        deployment: Arc<str>,
        /// The provider's status, passed on to the client.
        status: StatusCode,
        /// The provider's message (or its raw body, truncated).
        message: String,
        /// The provider's `error.type`, when it sent one.
        error_type: Option<Box<str>>,
        /// The provider's `error.code`, when it sent one.
        code: Option<Box<str>>,
        /// The provider's `error.param`, when it sent one.
        param: Option<Box<str>>,
        /// From `retry-after-ms` or `Retry-After`.
        retry_after: Option<Duration>,
    },
}

/// The provider and deployment an error names, kept by what outlives the request's borrow of
/// its [`DeploymentSpec`] (the stream translators). Cheap to clone: one `Arc`.
#[derive(Debug, Clone)]
pub(crate) struct Named {
    /// The provider.
    pub(crate) provider: ProviderKind,
    /// The deployment id.
    pub(crate) deployment: Arc<str>,
}

impl Named {
    /// `dep`'s provider and id.
    pub(crate) fn of(dep: &DeploymentSpec) -> Self {
        Named {
            provider: dep.provider,
            deployment: dep.id.clone(),
        }
    }

    /// [`Error::InvalidResponse`] about this deployment, as `detail` says.
    pub(crate) fn invalid(&self, detail: impl Into<String>) -> Error {
        Error::InvalidResponse {
            provider: self.provider,
            deployment: self.deployment.clone(),
            detail: detail.into(),
        }
    }
}

impl Error {
    /// [`Error::Config`]: `dep` cannot be called as configured, because of `detail`.
    pub(crate) fn config(dep: &DeploymentSpec, detail: impl Into<String>) -> Error {
        Error::Config {
            provider: dep.provider,
            deployment: dep.id.clone(),
            detail: detail.into(),
        }
    }

    /// [`Error::InvalidResponse`]: `dep` answered with something that is not what the
    /// endpoint returns, as `detail` says.
    pub(crate) fn invalid(dep: &DeploymentSpec, detail: impl Into<String>) -> Error {
        Named::of(dep).invalid(detail)
    }

    /// [`Error::UnsupportedParam`]: `dep`'s provider cannot take `param` (whatever
    /// `drop_params` says: dialects ask [`crate::dialect::Ctx::unsupported`] first where the
    /// parameter may be dropped).
    pub(crate) fn unsupported_param(dep: &DeploymentSpec, param: &'static str) -> Error {
        Error::UnsupportedParam {
            provider: dep.provider,
            deployment: dep.id.clone(),
            param,
        }
    }

    /// [`Error::UnsupportedEndpoint`]: `dep`'s provider does not serve `endpoint`.
    pub(crate) fn unsupported_endpoint(dep: &DeploymentSpec, endpoint: &'static str) -> Error {
        Error::UnsupportedEndpoint {
            provider: dep.provider,
            deployment: dep.id.clone(),
            endpoint,
        }
    }

    /// The error as the value the stack carries.
    pub fn into_api(self) -> ApiError {
        ApiError::from_contract(&self)
    }

    /// The error boxed as the services' error type (an [`ApiError`] inside).
    pub fn into_box(self) -> BoxError {
        self.into_api().boxed()
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        e.into_api()
    }
}

impl ErrorContract for Error {
    fn status(&self) -> StatusCode {
        match self {
            Error::MissingExtension(_) | Error::Config { .. } | Error::Tls(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            Error::Unsupported { .. } => StatusCode::NOT_IMPLEMENTED,
            Error::UnsupportedParam { .. } | Error::UnsupportedEndpoint { .. } => {
                StatusCode::BAD_REQUEST
            }
            Error::Unreachable { .. }
            | Error::InvalidResponse { .. }
            | Error::StreamEnded { .. }
            | Error::InvalidStream { .. }
            | Error::ResponseTooLarge { .. } => StatusCode::BAD_GATEWAY,
            Error::Timeout { .. } | Error::StreamIdle { .. } => StatusCode::REQUEST_TIMEOUT,
            Error::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            Error::Upstream { status, .. } => *status,
        }
    }

    fn error_type(&self) -> ErrorType {
        match self {
            Error::MissingExtension(_) | Error::Config { .. } | Error::Tls(_) => ErrorType::SERVER,
            Error::Timeout { .. } | Error::StreamIdle { .. } => ErrorType::TIMEOUT,
            Error::Upstream {
                error_type: Some(t),
                ..
            } if !t.is_empty() => ErrorType::other(String::from(&**t)),
            _ => ErrorType::for_status(self.status()),
        }
    }

    fn code(&self) -> Option<Cow<'static, str>> {
        match self {
            Error::Upstream { code, .. } => code.as_deref().map(|c| Cow::Owned(c.to_owned())),
            Error::Timeout { .. } => Some(Cow::Borrowed("timeout")),
            Error::Unreachable { .. } => Some(Cow::Borrowed("upstream_unreachable")),
            Error::UnsupportedParam { .. } => Some(Cow::Borrowed("unsupported_parameter")),
            Error::UnsupportedEndpoint { .. } => Some(Cow::Borrowed("unsupported_endpoint")),
            Error::InvalidResponse { .. } => Some(Cow::Borrowed("invalid_upstream_response")),
            Error::StreamEnded { .. } => Some(Cow::Borrowed("upstream_stream_broken")),
            Error::InvalidStream { .. } => Some(Cow::Borrowed("upstream_invalid_stream")),
            Error::StreamIdle { .. } => Some(Cow::Borrowed("stream_idle_timeout")),
            Error::ResponseTooLarge { .. } => Some(Cow::Borrowed("upstream_response_too_large")),
            Error::ShuttingDown => Some(Cow::Borrowed("gateway_shutting_down")),
            _ => None,
        }
    }

    fn param(&self) -> Option<Cow<'static, str>> {
        match self {
            Error::UnsupportedParam { param, .. } => Some(Cow::Borrowed(param)),
            Error::Upstream { param, .. } => param.as_deref().map(|p| Cow::Owned(p.to_owned())),
            _ => None,
        }
    }

    fn retryable(&self) -> bool {
        match self {
            Error::MissingExtension(_)
            | Error::Unsupported { .. }
            | Error::UnsupportedParam { .. }
            | Error::UnsupportedEndpoint { .. }
            | Error::Config { .. }
            | Error::Tls(_) => false,
            Error::Unreachable { .. }
            | Error::Timeout { .. }
            | Error::InvalidResponse { .. }
            | Error::StreamEnded { .. }
            | Error::InvalidStream { .. }
            | Error::StreamIdle { .. }
            | Error::ResponseTooLarge { .. }
            | Error::ShuttingDown => true,
            Error::Upstream { status, .. } => status_is_retryable(*status),
        }
    }

    fn origin(&self) -> Origin {
        match self {
            Error::UnsupportedParam { .. } | Error::UnsupportedEndpoint { .. } => {
                Origin::Downstream
            }
            Error::MissingExtension(_)
            | Error::Unsupported { .. }
            | Error::Config { .. }
            | Error::Tls(_)
            | Error::ShuttingDown => Origin::Internal,
            _ => Origin::Upstream,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Upstream { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    fn counts_against_deployment(&self) -> bool {
        match self {
            Error::Timeout { setting, .. } => *setting != REQUEST_TIMEOUT,
            _ => self.origin() == Origin::Upstream,
        }
    }
}

/// The text of an error and its sources, `"a: b: c"`, skipping repeats (hyper's errors
/// repeat their cause in their own message sometimes).
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract() {
        let e = Error::Timeout {
            provider: ProviderKind::Groq,
            deployment: "g-0".into(),
            limit: Duration::from_millis(250),
            setting: "timeout",
        }
        .into_api();
        assert_eq!(e.status(), 408);
        assert!(e.retryable());
        assert_eq!(e.error_type(), ErrorType::TIMEOUT);
        assert_eq!(
            e.message(),
            "groq (deployment g-0): the upstream did not answer within 250ms (`timeout`)"
        );
        assert!(
            e.counts_against_deployment(),
            "the deployment's own deadline"
        );
        let e = Error::Timeout {
            provider: ProviderKind::Groq,
            deployment: "g-0".into(),
            limit: Duration::from_millis(10),
            setting: REQUEST_TIMEOUT,
        }
        .into_api();
        assert_eq!(
            (e.status(), e.retryable()),
            (StatusCode::REQUEST_TIMEOUT, true)
        );
        assert!(!e.counts_against_deployment(), "the caller's own deadline");

        let e = Error::Upstream {
            provider: ProviderKind::OpenRouter,
            deployment: "primary-0".into(),
            status: StatusCode::UNAUTHORIZED,
            message: "bad key".into(),
            error_type: Some("invalid_request_error".into()),
            code: Some("invalid_api_key".into()),
            param: None,
            retry_after: None,
        }
        .into_api();
        assert_eq!(e.status(), 401);
        assert!(!e.retryable());
        assert_eq!(e.origin(), Origin::Upstream);
        assert_eq!(e.message(), "openrouter (deployment primary-0): bad key");
        assert_eq!(e.code().as_deref(), Some("invalid_api_key"));

        let e = Error::MissingExtension("Deployment").into_api();
        assert_eq!(e.status(), 500);
        assert!(!e.retryable());
        assert_eq!(e.origin(), Origin::Internal);
    }
}
