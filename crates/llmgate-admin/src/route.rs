//! The answers the prefix APIs (`/key/*`, `/team/*`, `/customer/*`) give a path or method they
//! do not serve, in OpenAI's error shape.

use http::{Method, StatusCode};
use llmgate_core::{ApiError, ErrorType, Origin};

/// 404 naming the API's routes (`routes`: "the key API is /key/generate, ...").
pub(crate) fn not_found(path: &str, routes: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        Origin::Downstream,
        format!("no route for {path}; {routes}"),
    )
    .with_type(ErrorType::NOT_FOUND)
    .with_code("not_found")
}

/// `Ok` when `method` is `want`, else 405 naming the method to use.
pub(crate) fn expect_method(method: &Method, want: &Method, path: &str) -> Result<(), ApiError> {
    if method == want {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        Origin::Downstream,
        format!("method {method} is not allowed on {path}; use {want}"),
    )
    .with_code("method_not_allowed"))
}
