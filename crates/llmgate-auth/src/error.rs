use std::borrow::Cow;

use http::StatusCode;
use llmgate_core::{ErrorContract, ErrorType, Origin};

/// Why a request was not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No credential in any header the gateway reads.
    #[error("missing API key: send it as `Authorization: Bearer <key>` (or `x-api-key: <key>`)")]
    MissingKey,
    /// A credential that matches no key.
    #[error("invalid API key")]
    InvalidKey,
    /// An `Authorization` header that is not `Bearer <key>`.
    #[error("malformed Authorization header: expected `Bearer <key>`")]
    MalformedHeader,
}

impl ErrorContract for Error {
    fn status(&self) -> StatusCode {
        StatusCode::UNAUTHORIZED
    }
    fn error_type(&self) -> ErrorType {
        ErrorType::AUTHENTICATION
    }
    fn code(&self) -> Option<Cow<'static, str>> {
        Some(Cow::Borrowed(match self {
            Error::MissingKey => "missing_api_key",
            Error::InvalidKey | Error::MalformedHeader => "invalid_api_key",
        }))
    }
    fn retryable(&self) -> bool {
        false
    }
    fn origin(&self) -> Origin {
        Origin::Downstream
    }
}
