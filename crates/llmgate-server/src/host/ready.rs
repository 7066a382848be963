//! The data a response body already has, gathered into one write.
//!
//! A stream's upstream often sends several events in one TCP segment (or the client reads
//! slower than the provider writes), and each event is a frame of its own. Written one by one,
//! each costs a write to the socket, which on loopback costs more than the relay's whole work
//! on it. So after a data frame, [`gather`] takes whatever further frames the body can give
//! without waiting and joins them to it. Nothing waits for more than the producer's next run on
//! this worker (one yield to the scheduler): an event that is alone is written after that one
//! round, not after a timer.

use std::fmt::Display;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::Poll;

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame};

/// At most this many bytes are gathered into one write.
pub(super) const GATHER_BYTES: usize = 64 * 1024;

/// A frame read from the body and not handled yet: `None` for its end, the error as text.
pub(super) type Polled = Option<Result<Frame<Bytes>, String>>;

/// `first` and, joined to it, the data frames `body` has ready now (up to [`GATHER_BYTES`]).
/// The first ready frame that is not data (trailers, an error, or the body's end) goes to
/// `held`, for the caller to handle next, in order.
pub(super) async fn gather<B>(
    mut body: Pin<&mut B>,
    first: Bytes,
    held: &mut Option<Polled>,
) -> Bytes
where
    B: Body<Data = Bytes>,
    B::Error: Display,
{
    let mut joined: Option<BytesMut> = None;
    let mut len = first.len();
    let mut yielded = false;
    while len < GATHER_BYTES && !body.is_end_stream() {
        // Polled once with this task's waker: `Pending` leaves it registered, which at most
        // wakes the task once more than needed.
        // The error becomes text before the yield below: `B::Error` need not be `Send`.
        let polled: Poll<Polled> = poll_fn(|cx| {
            let polled = body.as_mut().poll_frame(cx);
            Poll::Ready(polled.map(|next| next.map(|f| f.map_err(|e| e.to_string()))))
        })
        .await;
        let next = match polled {
            Poll::Pending if yielded => break,
            Poll::Pending => {
                // hyper's client body hands over one chunk per run of its connection's task,
                // which our poll has just woken: let it run once, then take what it decoded
                // from what it had already read.
                yielded = true;
                tokio::task::yield_now().await;
                continue;
            }
            Poll::Ready(next) => next,
        };
        yielded = false;
        let data = match next {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(frame) => {
                    *held = Some(Some(Ok(frame)));
                    break;
                }
            },
            other => {
                *held = Some(other);
                break;
            }
        };
        len += data.len();
        joined
            .get_or_insert_with(|| {
                let mut buf = BytesMut::with_capacity(len.max(1024));
                buf.extend_from_slice(&first);
                buf
            })
            .extend_from_slice(&data);
    }
    joined.map_or(first, BytesMut::freeze)
}

#[cfg(test)]
mod tests {
    use std::pin::pin;

    use http_body_util::channel::Channel;
    use http_body_util::BodyExt as _;

    use super::*;

    /// The body's next frame, which must be data.
    async fn first_data<B: Body<Data = Bytes>>(mut body: Pin<&mut B>) -> Bytes
    where
        B::Error: std::fmt::Debug,
    {
        body.frame().await.unwrap().unwrap().into_data().unwrap()
    }

    #[tokio::test]
    async fn ready_frames_are_joined_and_what_follows_is_held_in_order() {
        let (mut feed, body) = Channel::<Bytes, std::io::Error>::new(8);
        for event in ["data: 1\n\n", "data: 2\n\n", "data: 3\n\n"] {
            feed.send_data(Bytes::from_static(event.as_bytes()))
                .await
                .unwrap();
        }
        let mut trailers = http::HeaderMap::new();
        trailers.insert("x-done", http::HeaderValue::from_static("1"));
        feed.send_trailers(trailers).await.unwrap();
        let mut body = pin!(body);
        let first = first_data(body.as_mut()).await;
        let mut held = None;
        let data = gather(body.as_mut(), first, &mut held).await;
        assert_eq!(data, "data: 1\n\ndata: 2\n\ndata: 3\n\n");
        let Some(Some(Ok(frame))) = held else {
            panic!("the trailers are held, got {held:?}")
        };
        assert_eq!(frame.into_trailers().unwrap()["x-done"], "1");
    }

    #[tokio::test]
    async fn nothing_waits_for_a_frame_that_is_not_there() {
        let (mut feed, body) = Channel::<Bytes, std::io::Error>::new(8);
        feed.send_data(Bytes::from_static(b"data: 1\n\n"))
            .await
            .unwrap();
        let mut body = pin!(body);
        let first = first_data(body.as_mut()).await;
        let mut held = None;
        let data = gather(body.as_mut(), first, &mut held).await;
        assert_eq!(data, "data: 1\n\n");
        assert!(held.is_none(), "{held:?}");

        // The end, once there, is held like any frame that is not data.
        feed.send_data(Bytes::from_static(b"data: 2\n\n"))
            .await
            .unwrap();
        drop(feed);
        let first = first_data(body.as_mut()).await;
        let data = gather(body.as_mut(), first, &mut held).await;
        assert_eq!(data, "data: 2\n\n");
        assert!(matches!(held, Some(None)), "the end is held: {held:?}");

        // A body that says it has ended is not polled again.
        let mut held = None;
        let mut body = pin!(http_body_util::Full::new(Bytes::from_static(b"x")));
        let first = first_data(body.as_mut()).await;
        let data = gather(body.as_mut(), first, &mut held).await;
        assert_eq!(data, "x");
        assert!(held.is_none(), "{held:?}");
    }

    #[tokio::test]
    async fn a_producer_on_the_same_worker_gets_a_turn() {
        // Room for one frame: like hyper's client body, the feeder hands over the next frame
        // only when its task runs again after the last was taken.
        let (mut feed, body) = Channel::<Bytes, std::io::Error>::new(1);
        let feeder = tokio::spawn(async move {
            for event in ["data: 1\n\n", "data: 2\n\n", "data: 3\n\n"] {
                feed.send_data(Bytes::from_static(event.as_bytes()))
                    .await
                    .unwrap();
            }
            feed
        });
        let mut body = pin!(body);
        let first = first_data(body.as_mut()).await;
        let mut held = None;
        let data = gather(body.as_mut(), first, &mut held).await;
        assert_eq!(data, "data: 1\n\ndata: 2\n\ndata: 3\n\n");
        assert!(held.is_none(), "{held:?}");
        drop(feeder.await.unwrap());
    }

    #[tokio::test]
    async fn the_cap_bounds_a_write_and_an_error_behind_data_is_held() {
        let (mut feed, body) = Channel::<Bytes, std::io::Error>::new(64);
        let big = Bytes::from(vec![b'a'; GATHER_BYTES / 2]);
        for _ in 0..3 {
            feed.send_data(big.clone()).await.unwrap();
        }
        feed.abort(std::io::Error::other("upstream reset"));
        let mut body = pin!(body);
        let first = first_data(body.as_mut()).await;
        let mut held = None;
        let data = gather(body.as_mut(), first, &mut held).await;
        assert_eq!(data.len(), GATHER_BYTES, "two frames, then the cap");
        assert!(held.is_none());
        let first = first_data(body.as_mut()).await;
        let data = gather(body.as_mut(), first, &mut held).await;
        assert_eq!(data.len(), GATHER_BYTES / 2);
        assert!(
            matches!(&held, Some(Some(Err(e))) if e.contains("upstream reset")),
            "{held:?}"
        );
    }
}
