//! Bodies: the response body type every llmgate service returns, and the one reader of request
//! bodies, whole and under a byte cap, that every inbound layer uses (the OpenAI endpoints'
//! parse layer, `/v1/messages`, the key API); and [`OnEnd`], the one wrapper that fires a
//! layer's [`Guard`] when a response body ends (see [`on_end`] for the rule).

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::{header, HeaderMap};
use http_body::Body;
use http_body_util::combinators::{Collect, UnsyncBoxBody};
use http_body_util::{BodyExt, Empty, Full, LengthLimitError, Limited};
use pin_project_lite::pin_project;

use crate::error::{ApiError, BoxError};

pub mod on_end;
pub use on_end::{Ending, Guard, OnEnd};

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

/// The 413 for a request whose `Content-Length` already says it is over `limit`, so that it is
/// answered before a byte of it is read.
pub fn declared_too_large(headers: &HeaderMap, limit: usize) -> Option<ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    declared
        .is_some_and(|n| n > limit as u64)
        .then(|| ApiError::payload_too_large(limit))
}

/// Reads a request body whole, at most `limit` bytes: past the limit it fails with a 413
/// (`ApiError::payload_too_large`), a body that cannot be read with a 400 that says why.
///
/// ```
/// use llmgate_core::body::{self, read_capped};
/// use llmgate_core::ErrorContract;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// assert_eq!(read_capped(body::full("{}"), 8).await.unwrap(), "{}");
/// let too_long = read_capped(body::full("0123456789"), 8).await.unwrap_err();
/// assert_eq!(too_long.status(), 413);
/// # }
/// ```
pub fn read_capped<B>(body: B, limit: usize) -> ReadCapped<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    ReadCapped {
        collect: Limited::new(body, limit).collect(),
        limit,
    }
}

pin_project! {
    /// The future of [`read_capped`]: the body's bytes, or the 413 / 400 to answer with.
    pub struct ReadCapped<B>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        #[pin]
        collect: Collect<Limited<B>>,
        limit: usize,
    }
}

impl<B> Future for ReadCapped<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Output = Result<Bytes, ApiError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        Poll::Ready(match ready!(this.collect.poll(cx)) {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(e) if e.is::<LengthLimitError>() => Err(ApiError::payload_too_large(*this.limit)),
            Err(e) => Err(ApiError::bad_request(format!(
                "failed to read request body: {e}"
            ))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorContract;

    #[test]
    fn a_declared_length_over_the_limit_is_a_413_before_reading() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, "9".parse().unwrap());
        assert_eq!(
            declared_too_large(&headers, 8).map(|e| e.status().as_u16()),
            Some(413)
        );
        assert!(declared_too_large(&headers, 9).is_none());
        assert!(declared_too_large(&HeaderMap::new(), 0).is_none());
    }

    #[tokio::test]
    async fn a_body_is_read_whole_under_the_limit() {
        assert_eq!(read_capped(full("12345678"), 8).await.unwrap(), "12345678");
        let e = read_capped(full("123456789"), 8).await.unwrap_err();
        assert_eq!(e.status(), 413);
        let broken = http_body_util::StreamBody::new(futures_util::stream::iter([Err::<
            http_body::Frame<Bytes>,
            BoxError,
        >(
            "reset".into(),
        )]));
        let e = read_capped(broken, 8).await.unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(
            e.message().contains("failed to read request body: reset"),
            "{e}"
        );
    }
}
