use std::borrow::Cow;

use http::StatusCode;
use llmgate_core::{ErrorContract, ErrorType, Origin};

/// A cache store failed. The layer never fails a request for this: it logs the error and
/// serves the request as a miss.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The backend could not be reached or answered with an error.
    #[error("cache backend {backend}: {message}")]
    Backend {
        /// `local` or `redis`.
        backend: &'static str,
        /// What went wrong.
        message: String,
    },
    /// The backend did not answer in time.
    #[error("cache backend {backend}: no answer within {millis} ms")]
    Timeout {
        /// `local` or `redis`.
        backend: &'static str,
        /// The time allowed.
        millis: u64,
    },
}

impl ErrorContract for Error {
    fn status(&self) -> StatusCode {
        StatusCode::SERVICE_UNAVAILABLE
    }
    fn error_type(&self) -> ErrorType {
        ErrorType::SERVER
    }
    fn code(&self) -> Option<Cow<'static, str>> {
        Some(Cow::Borrowed("cache_unavailable"))
    }
    fn retryable(&self) -> bool {
        true
    }
    fn origin(&self) -> Origin {
        Origin::Internal
    }
}
