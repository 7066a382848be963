//! [`OnEnd`]: the one body wrapper that tells a [`Guard`], once, how a response body ended.
//!
//! Every layer that holds something until a stream ends (the router's in-flight count, the
//! rate limiter's parallel slots and token reservation, metering's record) wraps the body in
//! [`OnEnd`] with its own [`Guard`], so they all agree on what "the end" is:
//!
//! - [`Ending::Completed`]: the inner body returned its end (`None`), or said after a frame
//!   that it is at its end ([`Body::is_end_stream`]): a host may stop polling then, so that
//!   is the end too.
//! - [`Ending::Errored`]: the inner body yielded an error frame. **An error frame ends the
//!   body**: nothing meaningful follows it, and a host stops sending on it, so the guard
//!   fires at the error, not later when the body happens to be dropped.
//! - [`Ending::Dropped`]: the body was dropped before either (the client went away, the host
//!   stopped polling early).
//!
//! The guard fires exactly once (it is handed over by value), and frames after the end pass
//! through untouched. The wrapper is generic over the body and the guard: no allocation, no
//! boxing of its own.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

/// How a body ended; see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The inner body ended (`None`, or `is_end_stream` after a frame).
    Completed,
    /// The inner body yielded an error frame.
    Errored,
    /// The body was dropped before it ended.
    Dropped,
}

/// What a layer holds until a response body ends: told of each data frame as it passes, and
/// once how the body ended. `D` is the body's data type.
pub trait Guard<D = Bytes> {
    /// A data frame passed on its way to the client (before the end). Default: nothing.
    fn on_data(&mut self, data: &D) {
        let _ = data;
    }

    /// The body ended: called exactly once, with how.
    fn on_end(self, ending: Ending);
}

pin_project! {
    /// A body that fires its [`Guard`] when it ends; see the [module docs](self).
    ///
    /// ```
    /// use http_body_util::BodyExt;
    /// use llmgate_core::body::{self, Ending, Guard, OnEnd};
    ///
    /// struct Check;
    /// impl Guard for Check {
    ///     fn on_end(self, ending: Ending) {
    ///         assert_eq!(ending, Ending::Completed);
    ///     }
    /// }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let bytes = OnEnd::new(body::full("hi"), Check).collect().await.unwrap().to_bytes();
    /// assert_eq!(bytes, "hi");
    /// # }
    /// ```
    pub struct OnEnd<B, G>
    where
        B: Body,
        G: Guard<B::Data>,
    {
        #[pin]
        body: B,
        guard: Option<G>,
    }

    impl<B, G> PinnedDrop for OnEnd<B, G>
    where
        B: Body,
        G: Guard<B::Data>,
    {
        fn drop(this: Pin<&mut Self>) {
            if let Some(guard) = this.project().guard.take() {
                guard.on_end(Ending::Dropped);
            }
        }
    }
}

impl<B, G> OnEnd<B, G>
where
    B: Body,
    G: Guard<B::Data>,
{
    /// Wraps `body`; `guard` fires when it ends.
    pub fn new(body: B, guard: G) -> Self {
        OnEnd {
            body,
            guard: Some(guard),
        }
    }
}

impl<B, G> Body for OnEnd<B, G>
where
    B: Body,
    G: Guard<B::Data>,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let mut this = self.project();
        let polled = ready!(this.body.as_mut().poll_frame(cx));
        if this.guard.is_some() {
            let ending = match &polled {
                Some(Ok(frame)) => {
                    if let (Some(data), Some(guard)) = (frame.data_ref(), this.guard.as_mut()) {
                        guard.on_data(data);
                    }
                    this.body.is_end_stream().then_some(Ending::Completed)
                }
                Some(Err(_)) => Some(Ending::Errored),
                None => Some(Ending::Completed),
            };
            if let Some(ending) = ending {
                if let Some(guard) = this.guard.take() {
                    guard.on_end(ending);
                }
            }
        }
        Poll::Ready(polled)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use futures_util::stream;
    use http_body_util::{BodyExt, StreamBody};

    use super::*;
    use crate::error::BoxError;

    /// Records what the guard saw: the data frames, then the ending.
    #[derive(Clone, Default)]
    struct Seen(Arc<Mutex<(Vec<Bytes>, Vec<Ending>)>>);

    impl Seen {
        fn data(&self) -> Vec<Bytes> {
            self.0.lock().unwrap().0.clone()
        }
        fn endings(&self) -> Vec<Ending> {
            self.0.lock().unwrap().1.clone()
        }
    }

    impl Guard for Seen {
        fn on_data(&mut self, data: &Bytes) {
            self.0.lock().unwrap().0.push(data.clone());
        }
        fn on_end(self, ending: Ending) {
            self.0.lock().unwrap().1.push(ending);
        }
    }

    type Frames = Vec<Result<Frame<Bytes>, BoxError>>;

    fn streamed(frames: Frames) -> impl Body<Data = Bytes, Error = BoxError> {
        StreamBody::new(stream::iter(frames))
    }

    fn data(s: &'static str) -> Result<Frame<Bytes>, BoxError> {
        Ok(Frame::data(Bytes::from_static(s.as_bytes())))
    }

    async fn next<B: Body + Unpin>(body: &mut B) -> Option<Result<Frame<B::Data>, B::Error>> {
        body.frame().await
    }

    #[tokio::test]
    async fn a_body_read_to_its_end_completes_once() {
        let seen = Seen::default();
        let mut body = OnEnd::new(streamed(vec![data("a"), data("b")]), seen.clone());
        assert!(next(&mut body).await.is_some());
        assert!(next(&mut body).await.is_some());
        assert!(seen.endings().is_empty(), "not ended before its end");
        assert!(next(&mut body).await.is_none());
        assert_eq!(seen.endings(), [Ending::Completed]);
        assert!(next(&mut body).await.is_none());
        drop(body);
        assert_eq!(seen.endings(), [Ending::Completed], "fired once");
        assert_eq!(seen.data(), ["a", "b"]);
    }

    #[tokio::test]
    async fn a_body_that_says_it_is_done_after_a_frame_completes_then() {
        // A host may stop polling once the body reports its end (a whole answer in one frame).
        let seen = Seen::default();
        let mut body = OnEnd::new(crate::body::full("whole"), seen.clone());
        assert!(next(&mut body).await.is_some());
        assert_eq!(seen.endings(), [Ending::Completed]);
        drop(body);
        assert_eq!(seen.endings(), [Ending::Completed]);
        assert_eq!(seen.data(), ["whole"]);
    }

    #[tokio::test]
    async fn an_error_frame_ends_the_body_at_once() {
        let seen = Seen::default();
        let frames = vec![data("a"), Err("reset".into()), data("late")];
        let mut body = OnEnd::new(streamed(frames), seen.clone());
        assert!(next(&mut body).await.is_some_and(|f| f.is_ok()));
        assert!(next(&mut body).await.is_some_and(|f| f.is_err()));
        assert_eq!(seen.endings(), [Ending::Errored], "fired at the error");
        // What follows passes through, unseen by the guard.
        assert!(next(&mut body).await.is_some_and(|f| f.is_ok()));
        drop(body);
        assert_eq!(seen.endings(), [Ending::Errored]);
        assert_eq!(seen.data(), ["a"]);
    }

    #[tokio::test]
    async fn a_body_dropped_before_its_end_is_dropped() {
        let seen = Seen::default();
        let mut body = OnEnd::new(streamed(vec![data("a"), data("b")]), seen.clone());
        assert!(next(&mut body).await.is_some());
        assert!(seen.endings().is_empty());
        drop(body);
        assert_eq!(seen.endings(), [Ending::Dropped]);

        let never_polled = Seen::default();
        drop(OnEnd::new(streamed(vec![]), never_polled.clone()));
        assert_eq!(never_polled.endings(), [Ending::Dropped]);
    }

    #[test]
    fn size_and_end_are_the_inner_bodys() {
        let body = OnEnd::new(crate::body::full("12345"), Seen::default());
        assert_eq!(body.size_hint().exact(), Some(5));
        assert!(!body.is_end_stream());
        let empty = OnEnd::new(crate::body::empty(), Seen::default());
        assert!(empty.is_end_stream());
    }
}
