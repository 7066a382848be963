//! Microbenchmark of the in-memory check: one `acquire` of a key's rpm + tpm + parallel limits
//! and the `finish` that gives the slot back, on one thread and on several at once (different
//! keys, then all on one key).
//!
//! Run with: `cargo bench -p llmgate-ratelimit --bench check`. Under `cargo test` (no `--bench`
//! argument) it only checks that every path runs: a few thousand iterations, no figures.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use llmgate_ratelimit::{Check, Kind, LimiterStore, MemoryStore, Settle};

/// Iterations per measurement under `cargo bench`; `cargo test` runs [`SMOKE_ITERS`].
const ITERS: u64 = 400_000;
const SMOKE_ITERS: u64 = 2_000;

fn checks(key: &str) -> Vec<Check> {
    let rate = |suffix: &str, cost| Check {
        key: format!("k:{key}:{suffix}").into(),
        // High enough that nothing is denied: the admitted path is the one measured.
        limit: u64::MAX / 4,
        kind: Kind::Rate {
            window: Duration::from_secs(60),
            cost,
        },
    };
    vec![
        rate("rpm", 1),
        rate("tpm", 500),
        Check {
            key: format!("k:{key}:par").into(),
            limit: u64::MAX,
            kind: Kind::Parallel,
        },
    ]
}

/// ns per acquire + finish on `threads` threads; `shared`: all on one key.
fn run(
    rt: &tokio::runtime::Runtime,
    store: &Arc<MemoryStore>,
    threads: usize,
    shared: bool,
    iters: u64,
) -> f64 {
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let store = store.clone();
            let handle = rt.handle().clone();
            s.spawn(move || {
                let _rt = handle.enter();
                let key = if shared {
                    "shared".to_owned()
                } else {
                    format!("key{t}")
                };
                let checks = checks(&key);
                let release = vec![checks[2].key.clone()];
                for _ in 0..iters {
                    let v = futures_util::FutureExt::now_or_never(store.acquire(&checks))
                        .unwrap()
                        .unwrap();
                    assert!(v.denied.is_none());
                    store.finish(Settle {
                        lease: v.lease,
                        at: v.at,
                        release: release.clone(),
                        adjust: Vec::new(),
                    });
                }
            });
        }
    });
    started.elapsed().as_nanos() as f64 / (iters as f64 * threads as f64)
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let store = Arc::new(MemoryStore::new());
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(2);
    if !std::env::args().any(|a| a == "--bench") {
        for (threads, shared) in [(1, false), (threads, false), (threads, true)] {
            run(&rt, &store, threads, shared, SMOKE_ITERS);
        }
        println!("in-memory check: every path ran (figures only under cargo bench)");
        return;
    }
    // Warm up the map and the CPU.
    run(&rt, &store, 1, false, ITERS);
    println!("in-memory check (3 limits: rpm, tpm, parallel; acquire + finish)");
    for _ in 0..3 {
        println!(
            "  1 thread: {:6.0} ns/op | {threads} threads, own keys: {:6.0} ns/op | {threads} threads, one key: {:6.0} ns/op",
            run(&rt, &store, 1, false, ITERS),
            run(&rt, &store, threads, false, ITERS),
            run(&rt, &store, threads, true, ITERS),
        );
    }
}
