//! The keeper: one background task per [`RedisStore`](super::RedisStore) that renews the
//! leases of this instance's requests in flight and sends again the settlements Redis missed.
//!
//! It ticks every [`TICK`]: queued settlements are sent oldest first until one fails (Redis is
//! still away: the rest wait for the next tick); leases are renewed, all in one script call
//! per [`RENEW_BATCH`] slots, once a quarter lease has passed since the last renewal that
//! Redis took. It holds the store weakly and ends when the store is dropped.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior};

use super::{Inner, EPOCH_S};
use crate::store::StoreError;

/// How often the keeper looks at its queue.
pub(super) const TICK: Duration = Duration::from_millis(500);

/// Slots renewed per script call.
const RENEW_BATCH: usize = 1000;

/// Starts the keeper on the current runtime, once.
pub(super) fn ensure(inner: &Arc<Inner>) {
    if inner.keeper.load(Ordering::Relaxed) || inner.keeper.swap(true, Ordering::AcqRel) {
        return;
    }
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => {
            rt.spawn(run(Arc::downgrade(inner)));
        }
        Err(_) => inner.keeper.store(false, Ordering::Release),
    }
}

async fn run(store: Weak<Inner>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut renewed = Instant::now();
    loop {
        tick.tick().await;
        let Some(inner) = store.upgrade() else { return };
        if !probe(&inner).await {
            continue;
        }
        resend(&inner).await;
        if renewed.elapsed() >= inner.config.parallel_lease / 4 {
            match renew(&inner).await {
                Ok(()) => renewed = Instant::now(),
                Err(e) => tracing::debug!(error = %e, "rate-limit lease renewal failed"),
            }
        }
    }
}

/// While checks fail fast after a failure, asks Redis itself (one `PING` per tick, past the
/// fail-fast window): when it answers, requests use it again at once instead of waiting out
/// the window. Returns whether Redis is usable now.
async fn probe(inner: &Inner) -> bool {
    if !inner.failing_fast() {
        return true;
    }
    let ping = async {
        let mut conn = inner.manager().await?;
        redis::cmd("PING")
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| inner.failed(e))
    };
    match ping.await {
        Ok(()) => {
            inner.down_until_ms.store(0, Ordering::Relaxed);
            tracing::info!("rate-limit Redis answers again");
            true
        }
        Err(_) => false,
    }
}

/// Sends queued settlements, oldest first, until one fails.
async fn resend(inner: &Inner) {
    loop {
        let next = inner
            .queued
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front();
        let Some(settle) = next else { return };
        match inner.send(&settle).await {
            Ok(freed) => {
                let n = inner.slots_reclaimed.fetch_add(freed, Ordering::Relaxed) + freed;
                tracing::info!(
                    freed,
                    reclaimed = n,
                    "rate-limit settlement sent again after a Redis fault"
                );
            }
            Err(_) => {
                inner
                    .queued
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push_front(settle);
                return;
            }
        }
    }
}

/// Extends the lease of every slot this instance holds.
async fn renew(inner: &Inner) -> Result<(), StoreError> {
    let held: Vec<(String, String)> = inner
        .held
        .iter()
        .flat_map(|e| {
            let member = inner.member(*e.key());
            e.value()
                .iter()
                .map(|k| (k.clone(), member.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    if held.is_empty() {
        return Ok(());
    }
    let mut conn = inner.conn().await?;
    for batch in held.chunks(RENEW_BATCH) {
        let mut inv = inner.renew.prepare_invoke();
        inv.arg(EPOCH_S)
            .arg(inner.config.parallel_lease.as_micros() as u64);
        for (key, member) in batch {
            inv.key(key).arg(member);
        }
        inv.invoke_async::<i64>(&mut conn)
            .await
            .map_err(|e| inner.failed(e))?;
    }
    Ok(())
}
