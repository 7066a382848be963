//! The behaviour every [`LimiterStore`] must have, written once and run against each backend
//! (memory here; Redis in `redis.rs` when it is reachable).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use crate::store::{Check, Kind, LimiterStore, Settle, Verdict};

/// Windows are short so the suite runs quickly on Redis's real clock.
const WINDOW: Duration = Duration::from_secs(1);

fn rate(key: String, limit: u64, cost: u64) -> Check {
    Check {
        key: key.into(),
        limit,
        kind: Kind::Rate {
            window: WINDOW,
            cost,
        },
    }
}

fn par(key: String, limit: u64) -> Check {
    Check {
        key: key.into(),
        limit,
        kind: Kind::Parallel,
    }
}

async fn acquire(s: &dyn LimiterStore, checks: &[Check]) -> Verdict {
    s.acquire(checks).await.expect("store answers")
}

async fn settled(s: &dyn LimiterStore) {
    for _ in 0..500 {
        if s.unsettled() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("settlements never applied");
}

/// Runs every case with keys under `prefix` (unique per run).
pub(crate) async fn run(store: Arc<dyn LimiterStore>, prefix: &str) {
    let s = &*store;
    let k = |name: &str| format!("{prefix}{name}");

    // A burst of exactly the limit, then a denial that says when to come back.
    let c = [rate(k("burst"), 5, 1)];
    // Taken before the first request: the window starts when the first one is counted, which
    // is after this instant and before the burst ends.
    let burst_at = std::time::Instant::now();
    for i in 0..5 {
        let v = acquire(s, &c).await;
        assert_eq!(v.denied, None, "request {i}");
        assert_eq!(v.states[0].remaining, 4 - i);
    }
    let burst_done = std::time::Instant::now();
    let v = acquire(s, &c).await;
    assert_eq!(v.denied, Some(0));
    // The burst leaves the window one window (plus at most one granule) after it was counted.
    let retry = v.states[0].retry_after.expect("a retry time");
    let granule = WINDOW / 60;
    assert!(
        retry <= WINDOW + granule && retry + burst_at.elapsed() >= WINDOW,
        "{retry:?}"
    );
    assert!(
        v.states[0].reset <= WINDOW + granule && v.states[0].reset >= WINDOW / 2,
        "{:?}",
        v.states[0]
    );
    // A sliding window, not a bucket: half a window later nothing has come back.
    tokio::time::sleep(WINDOW / 2).await;
    assert_eq!(acquire(s, &c).await.denied, Some(0), "nothing refills");
    // Back after Retry-After, and once the whole burst has left: one window and a granule
    // after its end (a burst that straddled a granule boundary on a slow machine leaves in two
    // parts, the second up to a granule after Retry-After).
    let after_retry = retry.saturating_sub(WINDOW / 2) + Duration::from_millis(5);
    let whole = (WINDOW + granule + Duration::from_millis(5)).saturating_sub(burst_done.elapsed());
    tokio::time::sleep(after_retry.max(whole)).await;
    for i in 0..5 {
        let v = acquire(s, &c).await;
        assert_eq!(v.denied, None, "recovered after Retry-After: request {i}");
    }
    assert_eq!(
        acquire(s, &c).await.denied,
        Some(0),
        "the whole limit came back"
    );

    // All or nothing: a denial by the second check takes nothing from the first.
    let two = [rate(k("aon-a"), 10, 1), rate(k("aon-b"), 1, 1)];
    assert_eq!(acquire(s, &two).await.denied, None);
    let v = acquire(s, &two).await;
    assert_eq!(v.denied, Some(1));
    let a = acquire(s, &two[..1]).await;
    assert_eq!(
        a.states[0].remaining, 8,
        "the denied request took nothing from a"
    );

    // Costs: tokens, a cost above the limit itself, settlement both ways.
    let tpm = |cost| [rate(k("tpm"), 1000, cost)];
    let reserved = acquire(s, &tpm(600)).await;
    assert_eq!(reserved.denied, None);
    let v = acquire(s, &tpm(500)).await;
    assert_eq!(v.denied, Some(0));
    assert_eq!(v.states[0].remaining, 400, "{v:?}");
    let huge = acquire(s, &tpm(1001)).await;
    assert_eq!((huge.denied, huge.states[0].retry_after), (Some(0), None));
    // Given back from the granule the 600 were counted in, a little later.
    tokio::time::sleep(WINDOW / 10).await;
    s.finish(Settle {
        at: reserved.at,
        adjust: vec![(k("tpm").into(), 1000, WINDOW, -500)],
        ..Settle::default()
    });
    settled(s).await;
    assert_eq!(acquire(s, &tpm(850)).await.denied, None, "500 given back");
    s.finish(Settle {
        adjust: vec![(k("tpm").into(), 1000, WINDOW, 200)],
        ..Settle::default()
    });
    settled(s).await;
    assert_eq!(
        acquire(s, &tpm(1)).await.denied,
        Some(0),
        "used beyond the reservation"
    );

    // Parallel: slots are held until given back.
    let p = [par(k("par"), 2)];
    let first = acquire(s, &p).await;
    let second = acquire(s, &p).await;
    assert_eq!((first.denied, second.denied), (None, None));
    assert_eq!(second.states[0].remaining, 0);
    assert_eq!(acquire(s, &p).await.denied, Some(0));
    s.finish(Settle {
        lease: first.lease,
        release: vec![k("par").into()],
        ..Settle::default()
    });
    settled(s).await;
    let third = acquire(s, &p).await;
    assert_eq!(third.denied, None, "a released slot is free again");
    for v in [second, third] {
        s.finish(Settle {
            lease: v.lease,
            release: vec![k("par").into()],
            ..Settle::default()
        });
    }
    settled(s).await;

    // A rate denial takes no parallel slot.
    let mixed = [rate(k("mix-r"), 1, 1), par(k("mix-p"), 1)];
    let held = acquire(s, &mixed).await;
    assert_eq!(held.denied, None);
    assert_eq!(acquire(s, &mixed).await.denied, Some(0));
    s.finish(Settle {
        lease: held.lease,
        release: vec![k("mix-p").into()],
        ..Settle::default()
    });
    settled(s).await;
    assert_eq!(acquire(s, &mixed[1..]).await.denied, None);

    // Concurrent callers together get exactly the limit.
    let c = Arc::new([rate(k("race"), 17, 1)]);
    let tasks: Vec<_> = (0..60)
        .map(|_| {
            let (store, c) = (store.clone(), c.clone());
            tokio::spawn(async move { store.acquire(&c[..]).await.unwrap().denied.is_none() })
        })
        .collect();
    let mut admitted = 0;
    for t in tasks {
        admitted += usize::from(t.await.unwrap());
    }
    assert_eq!(admitted, 17);
}
