use std::borrow::Cow;
use std::time::Duration;

use http::StatusCode;
use llmgate_core::{ErrorContract, ErrorType, Origin};

use crate::plan::LimitName;

/// Why a request was not admitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A rate (rpm, tpm) is used up for now.
    #[error("rate limit exceeded: {name} ({limit} {unit} per minute) is used up; retry in {}", crate::headers::duration(*retry_after))]
    Rate {
        /// Which limit.
        name: LimitName,
        /// Its value.
        limit: u64,
        /// `requests` or `tokens`.
        unit: &'static str,
        /// When the same request would pass.
        retry_after: Duration,
    },
    /// The request alone needs more tokens than the limit allows in a minute.
    #[error("request too large: it needs ~{requested} tokens (prompt + max_tokens), more than {name} ({limit} tokens per minute) allows; send a shorter prompt or a smaller max_tokens")]
    TooLarge {
        /// Which limit.
        name: LimitName,
        /// Its value.
        limit: u64,
        /// The tokens the request reserves.
        requested: u64,
    },
    /// Too many requests in flight.
    #[error("rate limit exceeded: {name} ({limit} requests in flight at once) is reached; retry when one of them ends")]
    Parallel {
        /// Which limit.
        name: LimitName,
        /// Its value.
        limit: u64,
    },
    /// The store is down and the policy is to fail closed.
    #[error("the rate limiter's store is unavailable ({0}); requests are refused until it is back (general_settings.llmgate_rate_limit_failure_policy: closed)")]
    Unavailable(String),
}

/// `Retry-After` for a parallel limit: slots free up when requests end, which is not known.
const PARALLEL_RETRY: Duration = Duration::from_secs(1);

impl ErrorContract for Error {
    fn status(&self) -> StatusCode {
        match self {
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::TOO_MANY_REQUESTS,
        }
    }
    fn error_type(&self) -> ErrorType {
        match self {
            Error::Unavailable(_) => ErrorType::API,
            _ => ErrorType::RATE_LIMIT,
        }
    }
    fn code(&self) -> Option<Cow<'static, str>> {
        Some(Cow::Borrowed(match self {
            Error::Unavailable(_) => "rate_limiter_unavailable",
            _ => "rate_limit_exceeded",
        }))
    }
    fn retryable(&self) -> bool {
        !matches!(self, Error::TooLarge { .. })
    }
    fn origin(&self) -> Origin {
        match self {
            Error::Unavailable(_) => Origin::Internal,
            _ => Origin::Downstream,
        }
    }
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Rate { retry_after, .. } => Some(*retry_after),
            Error::Parallel { .. } | Error::Unavailable(_) => Some(PARALLEL_RETRY),
            Error::TooLarge { .. } => None,
        }
    }
}
