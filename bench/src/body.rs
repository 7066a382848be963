//! A response body that replays pre-built chunks without copying them.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

/// Replays `&'static` chunks, one frame each.
///
/// A single chunk reports its exact length, so hyper sends `Content-Length`; several chunks report
/// no length, so hyper sends them chunked, the way an SSE stream arrives from a real provider.
/// Cloning a chunk built with [`Bytes::from_static`] copies a pointer, nothing more.
///
/// With a pace ([`Canned::paced`]) the first chunk leaves at once and each later one after the
/// interval, like a slow model's stream.
#[derive(Debug)]
pub struct Canned {
    chunks: &'static [Bytes],
    next: usize,
    pace: Option<(Duration, Pin<Box<Sleep>>)>,
}

impl Canned {
    /// A body made of `chunks`, sent in order.
    pub fn new(chunks: &'static [Bytes]) -> Self {
        Self {
            chunks,
            next: 0,
            pace: None,
        }
    }

    /// A body made of `chunks`, the first at once and each later one `interval` after the one
    /// before (no pause when `interval` is zero).
    pub fn paced(chunks: &'static [Bytes], interval: Duration) -> Self {
        let mut body = Self::new(chunks);
        if !interval.is_zero() {
            body.pace = Some((interval, Box::pin(tokio::time::sleep(Duration::ZERO))));
        }
        body
    }

    fn remaining(&self) -> &'static [Bytes] {
        self.chunks.get(self.next..).unwrap_or_default()
    }
}

impl Body for Canned {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some((interval, sleep)) = &mut self.pace {
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let next = sleep.deadline() + *interval;
            sleep.as_mut().reset(next);
        }
        let chunk = self.remaining().first().cloned();
        self.next += 1;
        Poll::Ready(chunk.map(|chunk| Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining().is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        match self.chunks {
            [only] if self.next == 0 => SizeHint::with_exact(only.len() as u64),
            [_] | [] => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    static ONE: [Bytes; 1] = [Bytes::from_static(b"hello")];
    static TWO: [Bytes; 2] = [Bytes::from_static(b"a"), Bytes::from_static(b"b")];

    #[tokio::test]
    async fn one_chunk_has_an_exact_length() {
        let body = Canned::new(&ONE);
        assert_eq!(body.size_hint().exact(), Some(5));
        assert_eq!(body.collect().await.unwrap().to_bytes(), "hello");
    }

    #[tokio::test]
    async fn several_chunks_have_no_length_and_arrive_in_order() {
        let body = Canned::new(&TWO);
        assert_eq!(body.size_hint().exact(), None);
        assert_eq!(body.collect().await.unwrap().to_bytes(), "ab");
    }

    #[tokio::test]
    async fn a_paced_body_waits_between_chunks_not_before_the_first() {
        let interval = Duration::from_millis(200);
        let start = std::time::Instant::now();
        let mut body = Canned::paced(&TWO, interval);
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(first, "a");
        assert!(start.elapsed() < interval, "the first chunk waited");
        let second = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(second, "b");
        assert!(start.elapsed() >= interval, "the second chunk did not wait");
        assert!(body.frame().await.is_none());
    }

    #[tokio::test]
    async fn empty_body_ends_at_once() {
        let body = Canned::new(&[]);
        assert!(body.is_end_stream());
        assert_eq!(body.size_hint().exact(), Some(0));
    }
}
