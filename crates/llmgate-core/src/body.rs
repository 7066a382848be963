//! The response body type every llmgate service returns.

use bytes::Bytes;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty, Full};

use crate::error::BoxError;

/// A type-erased, streaming response body. Unsync so that bodies built from streams need not
/// be `Sync`; it is `Send`, which is all hyper, axum and the Pingora host need.
pub type BoxBody = UnsyncBoxBody<Bytes, BoxError>;

/// A body of known bytes (its exact length is its size hint, so hosts send `Content-Length`).
pub fn full(bytes: impl Into<Bytes>) -> BoxBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// An empty body.
pub fn empty() -> BoxBody {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}
