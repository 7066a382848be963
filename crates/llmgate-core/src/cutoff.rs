//! [`StreamCutoff`]: the signal that ends every stream in flight when the gateway stops.
//!
//! A graceful stop lets requests in flight finish for a grace period. A stream still running when
//! that period ends would otherwise be cut at the socket, which a client cannot tell from a
//! network fault. Instead, the host calls [`StreamCutoff::cut`] shortly before the grace period
//! ends; every streaming body that watches the cutoff (through a [`CutoffWatch`]) then ends with
//! an error event in the client's dialect and a clean end of the body, and is metered as cut.
//!
//! Cheap on the hot path: a watch is one allocation when a stream starts, and polling it is an
//! atomic load until the cutoff fires.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// The gateway-wide cutoff for streams in flight. Clones share one signal.
#[derive(Debug, Clone, Default)]
pub struct StreamCutoff(CancellationToken);

impl StreamCutoff {
    /// A cutoff that has not fired.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fire the cutoff: every [`CutoffWatch`], made before or after, reports it. Idempotent.
    pub fn cut(&self) {
        self.0.cancel();
    }

    /// Whether the cutoff has fired.
    pub fn is_cut(&self) -> bool {
        self.0.is_cancelled()
    }

    /// A watch for one stream to poll alongside its upstream.
    pub fn watch(&self) -> CutoffWatch {
        CutoffWatch {
            token: self.0.clone(),
            wait: None,
        }
    }
}

/// One stream's view of a [`StreamCutoff`]; poll it with [`CutoffWatch::poll_cut`].
#[derive(Debug)]
pub struct CutoffWatch {
    token: CancellationToken,
    /// Made on the first poll that finds the cutoff not fired, so a stream that ends before
    /// ever waiting allocates nothing.
    wait: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
}

impl CutoffWatch {
    /// `Ready` once the cutoff has fired; otherwise registers `cx` to be woken when it does.
    pub fn poll_cut(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.token.is_cancelled() {
            return Poll::Ready(());
        }
        let token = &self.token;
        self.wait
            .get_or_insert_with(|| Box::pin(token.clone().cancelled_owned()))
            .as_mut()
            .poll(cx)
    }

    /// Whether the cutoff has fired (no registration).
    pub fn is_cut(&self) -> bool {
        self.token.is_cancelled()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_watch_wakes_when_the_cutoff_fires() {
        let cutoff = StreamCutoff::new();
        let mut watch = cutoff.watch();
        assert!(!watch.is_cut());
        let waiter = tokio::spawn(async move {
            std::future::poll_fn(|cx| watch.poll_cut(cx)).await;
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        cutoff.cut();
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        // A watch made after the cut sees it at once.
        let mut late = cutoff.watch();
        let polled = std::future::poll_fn(|cx| Poll::Ready(late.poll_cut(cx))).await;
        assert!(polled.is_ready());
    }
}
