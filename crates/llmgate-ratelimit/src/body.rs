use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use llmgate_core::body::{self, Ending, OnEnd};
use llmgate_core::{BoxBody, BoxError, UsageSlot};
use pin_project_lite::pin_project;

use crate::store::{LimiterStore, Settle};

/// What an admitted request holds until it ends: its parallel slots and token reservation.
/// Given back once, when the response body ends or is dropped (the client went away), or when
/// the call fails.
pub(crate) struct Guard {
    store: Arc<dyn LimiterStore>,
    settle: Settle,
    reserved: u64,
    usage: Option<UsageSlot>,
    success: bool,
    done: bool,
}

impl Guard {
    /// `settle.adjust` lists the tpm counters with a delta of 0; the real one is set at the end.
    pub(crate) fn new(store: Arc<dyn LimiterStore>, settle: Settle, reserved: u64) -> Self {
        Guard {
            store,
            settle,
            reserved,
            usage: None,
            success: false,
            done: false,
        }
    }

    /// The response arrived: where its usage will be, and whether it succeeded.
    pub(crate) fn answered(&mut self, usage: Option<UsageSlot>, success: bool) {
        self.usage = usage;
        self.success = success;
    }

    pub(crate) fn finish(&mut self) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        // The real tokens: the provider's usage; without it, nothing for a failure (no tokens
        // were billed) and the reservation for a success that reported none.
        let used = match self.usage.as_ref().and_then(UsageSlot::get) {
            Some(u) => u.total_tokens.max(u.prompt_tokens + u.completion_tokens),
            None if self.success => self.reserved,
            None => 0,
        };
        let delta = i64::try_from(used).unwrap_or(i64::MAX)
            - i64::try_from(self.reserved).unwrap_or(i64::MAX);
        let mut settle = std::mem::take(&mut self.settle);
        if delta == 0 {
            settle.adjust.clear();
        }
        for a in &mut settle.adjust {
            a.3 = delta;
        }
        if !settle.is_empty() {
            self.store.finish(settle);
        }
    }
}

/// The guard is given back however the body ends: completed, at an error frame (the
/// answer will not go on), or dropped by a client that went away (see
/// [`llmgate_core::body::on_end`]).
impl body::Guard for Guard {
    fn on_end(mut self, _: Ending) {
        self.finish();
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.finish();
    }
}

pin_project! {
    /// The response body of an admitted request: settles its [`Guard`] when it ends (core's
    /// [`OnEnd`]).
    pub struct ResponseBody {
        #[pin]
        inner: OnEnd<BoxBody, Guard>,
    }
}

impl ResponseBody {
    pub(crate) fn new(inner: BoxBody, guard: Guard) -> Self {
        ResponseBody {
            inner: OnEnd::new(inner, guard),
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
