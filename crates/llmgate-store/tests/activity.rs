//! `Store::activity` on both backends: the request log summed over a window in the database.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, UNIX_EPOCH};

use common::{at, new_key, record, TestDb};
use llmgate_store::Store;

/// `Store::activity`: sums, nearest-rank percentiles and top tables over the window only
/// (`docs/ui.md`, Overview).
async fn activity_sums_a_window_in_the_database(store: Store) {
    let key = new_key(&store).await;
    let rec = |id: &str, key: Option<&str>, group: &str, cost, minute, ms: u64| {
        let mut r = record(id, key, group, cost, minute);
        r.latency = Duration::from_millis(ms);
        r
    };
    let mut batch = vec![
        rec("a0", Some(&key), "gpt", Some(9.0), 0, 1), // before the window
        rec("a1", Some(&key), "gpt", Some(1.0), 5, 100),
        rec("a2", Some(&key), "gpt", Some(0.5), 7, 300),
        rec("a3", None, "gpt", None, 8, 200),
        rec("a4", None, "claude", Some(0.25), 25, 50),
        rec("a5", Some(&key), "gpt", Some(9.0), 61, 1), // after it
    ];
    batch[2].fallbacks = 1;
    batch[3].status = 429;
    batch[3].outcome = llmgate_metering::Outcome::UpstreamError;
    for i in 1..=20 {
        batch.push(rec(&format!("b{i}"), None, "claude", Some(0.0), 45, i));
    }
    store.write_spend(&batch, true).await.unwrap();
    let ms = |m: u64| i64::try_from(at(m).duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap();
    let q = llmgate_store::ActivityQuery {
        from_ms: ms(1),
        until_ms: ms(61),
        bucket_ms: 600_000,
        top: 5,
    };
    let a = store.activity(q).await.unwrap();
    assert_eq!(a.buckets.len(), 6);
    let b0 = &a.buckets[0];
    assert_eq!(
        (b0.start_ms, b0.requests, b0.errors, b0.fallbacks, b0.spend),
        (ms(1), 3, 1, 1, 1.5)
    );
    // Nearest rank of [100, 200, 300]: p50 the 2nd, p95 the 3rd.
    assert_eq!(
        (b0.latency_p50_ms, b0.latency_p95_ms),
        (Some(200), Some(300))
    );
    assert_eq!(
        (a.buckets[1].requests, a.buckets[1].latency_p50_ms),
        (0, None)
    );
    assert_eq!(
        (a.buckets[4].latency_p50_ms, a.buckets[4].latency_p95_ms),
        (Some(10), Some(19))
    );
    let t = &a.total;
    assert_eq!(
        (t.requests, t.errors, t.fallbacks, t.spend),
        (24, 1, 1, 1.75)
    );
    // 24 latencies (1..=20, 50, 100, 200, 300): the 12th and the 23rd.
    assert_eq!((t.latency_p50_ms, t.latency_p95_ms), (Some(12), Some(200)));
    let names = |v: &[llmgate_store::ActivityTop]| {
        v.iter()
            .map(|t| (t.name.clone(), t.requests, t.errors))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&a.top_models),
        [(Some("claude".into()), 21, 0), (Some("gpt".into()), 3, 1)]
    );
    assert_eq!(
        names(&a.top_keys),
        [(None, 22, 1), (Some(key.clone()), 2, 0)]
    );
    assert_eq!(a.top_keys[1].key_alias.as_deref(), Some("team-a"));
    assert_eq!(a.top_deployments[0].name.as_deref(), Some("claude-0"));
    // An empty window answers empty buckets.
    let q = llmgate_store::ActivityQuery {
        from_ms: ms(100),
        until_ms: ms(160),
        ..q
    };
    let empty = store.activity(q).await.unwrap();
    assert_eq!(
        (
            empty.buckets.len(),
            empty.total.requests,
            empty.top_models.len()
        ),
        (6, 0, 0)
    );
}

on_both!(activity_sums_a_window_in_the_database);
