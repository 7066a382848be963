//! [`StreamWatch`]: what ends a relayed stream besides its upstream, watched by every relay.
//!
//! - **Idle timeout.** After the response head, each upstream event must follow the previous
//!   one (or the head) within the idle timeout: the deployment's `stream_idle_timeout`
//!   (or `router_settings.stream_idle_timeout`), else its `stream_timeout`, else
//!   [`DEFAULT_STREAM_IDLE_TIMEOUT`]. An upstream that sends its head and then nothing, or
//!   trickles events slower than that, ends with [`Error::StreamIdle`].
//! - **Cutoff.** [`StreamCutoff::cut`] (the gateway stopping) ends every stream at once with
//!   [`Error::ShuttingDown`].
//!
//! Cheap per event: an event stores the time it arrived (`Instant::now()`, a vDSO read); the
//! timer is only armed when the upstream has nothing ready, and moved only when it fires
//! before the real deadline, so a busy stream resets no timer per event.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use llmgate_core::{CutoffWatch, DeploymentSpec, ProviderKind, StreamCutoff};
use tokio::time::{Instant, Sleep};

use crate::error::Error;

/// The idle timeout between two stream events when the deployment sets neither
/// `stream_idle_timeout` nor `stream_timeout`: 300 s.
pub const DEFAULT_STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// The idle timeout for streams of `dep`, and the setting that chose it.
pub(crate) fn idle_timeout(dep: &DeploymentSpec) -> (Duration, &'static str) {
    if let Some(t) = dep.stream_idle_timeout {
        (t, "stream_idle_timeout")
    } else if let Some(t) = dep.stream_timeout {
        (t, "stream_timeout")
    } else {
        (DEFAULT_STREAM_IDLE_TIMEOUT, "default stream idle timeout")
    }
}

/// One stream's idle timer and view of the gateway's cutoff.
pub(crate) struct StreamWatch {
    idle: Duration,
    setting: &'static str,
    /// When the last event (or the head) arrived.
    last: Instant,
    /// Armed on the first wait.
    timer: Option<Pin<Box<Sleep>>>,
    cutoff: CutoffWatch,
    /// The waker the cutoff's wait and the timer were last polled with.
    polled_by: Option<Waker>,
}

impl StreamWatch {
    /// A watch for a stream of `dep` whose head just arrived.
    pub(crate) fn new(dep: &DeploymentSpec, cutoff: &StreamCutoff) -> Self {
        let (idle, setting) = idle_timeout(dep);
        StreamWatch {
            idle,
            setting,
            last: Instant::now(),
            timer: None,
            cutoff: cutoff.watch(),
            polled_by: None,
        }
    }

    /// An upstream event arrived.
    pub(crate) fn event(&mut self) {
        self.last = Instant::now();
    }

    /// Whether the cutoff has fired (an atomic load; check it before each event).
    pub(crate) fn is_cut(&self) -> bool {
        self.cutoff.is_cut()
    }

    /// Call when the upstream has nothing ready: `Ready` with the error that ends the stream
    /// when the cutoff fired or the idle timeout passed, else registers `cx` for both.
    pub(crate) fn poll_stop(
        &mut self,
        cx: &mut Context<'_>,
        provider: ProviderKind,
        deployment: &std::sync::Arc<str>,
    ) -> Poll<Error> {
        // The cutoff's wait and the timer keep the waker they were last polled with: while it
        // is this task's and neither has fired, polling them again would only register it
        // again (a lock in the cutoff's wait), so they are left alone.
        if self
            .polled_by
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
            && !self.cutoff.is_cut()
            && self.timer.as_ref().is_none_or(|t| !t.is_elapsed())
        {
            return Poll::Pending;
        }
        if self.cutoff.poll_cut(cx).is_ready() {
            return Poll::Ready(Error::ShuttingDown);
        }
        // A deadline past what the clock can hold never comes.
        let Some(deadline) = self.last.checked_add(self.idle) else {
            self.polled_by = Some(cx.waker().clone());
            return Poll::Pending;
        };
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        loop {
            if timer.deadline() > deadline {
                timer.as_mut().reset(deadline);
            }
            if timer.as_mut().poll(cx).is_pending() {
                self.polled_by = Some(cx.waker().clone());
                return Poll::Pending;
            }
            if Instant::now() >= deadline {
                return Poll::Ready(Error::StreamIdle {
                    provider,
                    deployment: deployment.clone(),
                    limit: self.idle,
                    setting: self.setting,
                });
            }
            // Events came since the timer was armed: wait for the real deadline.
            timer.as_mut().reset(deadline);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep() -> DeploymentSpec {
        DeploymentSpec::new("d", "g", ProviderKind::OpenAi, "m")
    }

    #[tokio::test(start_paused = true)]
    async fn fires_after_the_idle_timeout_and_events_push_it_back() {
        let mut d = dep();
        d.stream_timeout = Some(Duration::from_secs(10));
        let cutoff = StreamCutoff::new();
        let mut w = StreamWatch::new(&d, &cutoff);
        let id: std::sync::Arc<str> = "d".into();
        let poll = |w: &mut StreamWatch| {
            let waker = futures_util::task::noop_waker();
            let mut cx = Context::from_waker(&waker);
            w.poll_stop(&mut cx, ProviderKind::OpenAi, &id)
        };
        assert!(poll(&mut w).is_pending());
        tokio::time::advance(Duration::from_secs(6)).await;
        w.event();
        tokio::time::advance(Duration::from_secs(6)).await;
        // 12 s since the head, 6 s since the event: not yet.
        assert!(poll(&mut w).is_pending());
        tokio::time::advance(Duration::from_secs(5)).await;
        match poll(&mut w) {
            Poll::Ready(Error::StreamIdle { limit, setting, .. }) => {
                assert_eq!(limit, Duration::from_secs(10));
                assert_eq!(setting, "stream_timeout");
            }
            _ => panic!("expected the idle timeout"),
        }
        // The cutoff wins, at once.
        let mut w = StreamWatch::new(&d, &cutoff);
        assert!(poll(&mut w).is_pending());
        cutoff.cut();
        assert!(w.is_cut());
        assert!(matches!(poll(&mut w), Poll::Ready(Error::ShuttingDown)));
    }

    /// Counts its wakes.
    #[derive(Default)]
    struct Wakes(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Wakes {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    impl Wakes {
        fn count(&self) -> usize {
            self.0.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    /// A poll with the waker of the poll before it skips the registrations; one with another
    /// waker makes them again, so the cutoff and the timer wake whichever polled last.
    #[tokio::test(start_paused = true)]
    async fn the_last_waker_to_poll_is_the_one_woken() {
        let mut d = dep();
        d.stream_timeout = Some(Duration::from_secs(10));
        let cutoff = StreamCutoff::new();
        let id: std::sync::Arc<str> = "d".into();
        let poll = |w: &mut StreamWatch, wakes: &std::sync::Arc<Wakes>| {
            let waker = Waker::from(wakes.clone());
            w.poll_stop(&mut Context::from_waker(&waker), ProviderKind::OpenAi, &id)
        };
        let (a, b) = (
            std::sync::Arc::new(Wakes::default()),
            std::sync::Arc::new(Wakes::default()),
        );
        let mut w = StreamWatch::new(&d, &cutoff);
        assert!(poll(&mut w, &a).is_pending());
        assert!(poll(&mut w, &a).is_pending());
        assert!(poll(&mut w, &b).is_pending());
        cutoff.cut();
        assert_eq!((a.count(), b.count()), (0, 1));
        assert!(matches!(poll(&mut w, &b), Poll::Ready(Error::ShuttingDown)));

        // The timer: polled twice by `a`, it wakes `a` at the deadline, and the next poll
        // (by the same waker) sees that it fired.
        let cutoff = StreamCutoff::new();
        let a = std::sync::Arc::new(Wakes::default());
        let mut w = StreamWatch::new(&d, &cutoff);
        assert!(poll(&mut w, &a).is_pending());
        tokio::time::advance(Duration::from_secs(4)).await;
        assert!(poll(&mut w, &a).is_pending());
        tokio::time::advance(Duration::from_secs(7)).await;
        assert_eq!(a.count(), 1);
        assert!(matches!(
            poll(&mut w, &a),
            Poll::Ready(Error::StreamIdle { .. })
        ));
    }

    #[test]
    fn which_setting_sets_the_idle_timeout() {
        let mut d = dep();
        assert_eq!(
            idle_timeout(&d),
            (DEFAULT_STREAM_IDLE_TIMEOUT, "default stream idle timeout")
        );
        d.stream_timeout = Some(Duration::from_secs(30));
        assert_eq!(idle_timeout(&d).1, "stream_timeout");
        d.stream_idle_timeout = Some(Duration::from_secs(5));
        assert_eq!(
            idle_timeout(&d),
            (Duration::from_secs(5), "stream_idle_timeout")
        );
        // A timeout too long for the clock never fires (and never panics).
        d.stream_idle_timeout = Some(Duration::MAX);
        let cutoff = StreamCutoff::new();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut w = StreamWatch::new(&d, &cutoff);
            let waker = futures_util::task::noop_waker();
            let mut cx = Context::from_waker(&waker);
            assert!(w
                .poll_stop(&mut cx, ProviderKind::OpenAi, &"d".into())
                .is_pending());
        });
    }
}
