//! The router's errors: what the client (or the fallback layer) gets when a group has no
//! deployment to offer.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use llmgate_core::{ApiError, ErrorContract, ErrorType, Origin};

use crate::pick::Unavailable;

/// Why the router could not route a request.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Every deployment of the group is cooling down or at its limits.
    #[error("{}", no_deployment_message(group, reasons))]
    NoDeployment {
        /// The group.
        group: Arc<str>,
        /// Each deployment and why it was skipped.
        reasons: Vec<(Arc<str>, String)>,
        /// All of them are rate limited (answered as 429, else 503).
        rate_limited: bool,
        /// When the first one comes back.
        retry_after: Option<Duration>,
    },
    /// The prompt is longer than every deployment's `model_info.max_input_tokens`.
    #[error("the prompt (~{prompt_tokens} tokens, estimated) is longer than any deployment of model group \"{group}\" accepts (model_info.max_input_tokens)")]
    ContextWindow {
        /// The group.
        group: Arc<str>,
        /// The estimate.
        prompt_tokens: u64,
    },
    /// A fallback named a group that does not exist.
    #[error("model group \"{0}\" does not exist")]
    UnknownGroup(Arc<str>),
    /// The request continues state stored by one deployment ([`llmgate_core::PinnedDeployment`],
    /// a Responses API follow-up), and that deployment is no longer in the config.
    #[error(
        "deployment \"{0}\", which stored this response upstream, is no longer in the config: \
         the response cannot be read or continued (start a new conversation)"
    )]
    PinnedGone(Arc<str>),
    /// The caller may not reach the group (a virtual key's `models`): the attempt was refused
    /// before anything was called.
    #[error(
        "key not allowed to access model {model}{}. {allowed}",
        via(model, group)
    )]
    ModelNotAllowed {
        /// The name the attempt asked for (the requested model or a fallback).
        model: String,
        /// The group it resolves to.
        group: Arc<str>,
        /// What the caller may reach (the refusing list's own description).
        allowed: String,
    },
}

fn via(model: &str, group: &str) -> String {
    if model == group {
        String::new()
    } else {
        format!(" (model group \"{group}\")")
    }
}

fn no_deployment_message(group: &str, reasons: &[(Arc<str>, String)]) -> String {
    let mut m = format!("no deployment of model group \"{group}\" is available");
    for (i, (id, why)) in reasons.iter().enumerate() {
        let _ = write!(m, "{} {id}: {why}", if i == 0 { ":" } else { ";" });
    }
    m
}

impl Error {
    pub(crate) fn unavailable(group: Arc<str>, u: Unavailable) -> Self {
        if let Some(prompt_tokens) = u.context_window {
            return Error::ContextWindow {
                group,
                prompt_tokens,
            };
        }
        Error::NoDeployment {
            group,
            reasons: u.reasons,
            rate_limited: u.all_rate_limited,
            retry_after: u.retry_after,
        }
    }
}

impl ErrorContract for Error {
    fn status(&self) -> StatusCode {
        match self {
            Error::NoDeployment {
                rate_limited: true, ..
            } => StatusCode::TOO_MANY_REQUESTS,
            Error::NoDeployment { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Error::ContextWindow { .. } => StatusCode::BAD_REQUEST,
            Error::UnknownGroup(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Error::ModelNotAllowed { .. } => StatusCode::FORBIDDEN,
            Error::PinnedGone(_) => StatusCode::NOT_FOUND,
        }
    }
    fn error_type(&self) -> ErrorType {
        match self {
            Error::NoDeployment {
                rate_limited: true, ..
            } => ErrorType::RATE_LIMIT,
            Error::NoDeployment { .. } => ErrorType::API,
            Error::ContextWindow { .. } | Error::PinnedGone(_) => ErrorType::INVALID_REQUEST,
            Error::UnknownGroup(_) => ErrorType::SERVER,
            // The auth layer's type for the same refusal, so clients see one shape.
            Error::ModelNotAllowed { .. } => ErrorType::other("key_model_access_denied"),
        }
    }
    fn code(&self) -> Option<Cow<'static, str>> {
        match self {
            Error::NoDeployment { .. } => Some(Cow::Borrowed("no_deployment_available")),
            // OpenAI's code, so clients and the fallback layer treat it as the provider's own.
            Error::ContextWindow { .. } => Some(Cow::Borrowed("context_length_exceeded")),
            Error::UnknownGroup(_) => None,
            Error::ModelNotAllowed { .. } => Some(Cow::Borrowed("model_not_allowed")),
            Error::PinnedGone(_) => Some(Cow::Borrowed("deployment_not_found")),
        }
    }
    fn param(&self) -> Option<Cow<'static, str>> {
        matches!(self, Error::ModelNotAllowed { .. }).then_some(Cow::Borrowed("model"))
    }
    fn retryable(&self) -> bool {
        // Another group may serve it; this group will not until a cooldown ends.
        matches!(self, Error::NoDeployment { .. })
    }
    fn origin(&self) -> Origin {
        match self {
            Error::ContextWindow { .. } | Error::ModelNotAllowed { .. } | Error::PinnedGone(_) => {
                Origin::Downstream
            }
            _ => Origin::Internal,
        }
    }
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::NoDeployment { retry_after, .. } => *retry_after,
            Error::ContextWindow { .. }
            | Error::UnknownGroup(_)
            | Error::ModelNotAllowed { .. }
            | Error::PinnedGone(_) => None,
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError::from_contract(&e)
    }
}
