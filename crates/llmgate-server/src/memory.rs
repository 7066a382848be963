//! Keeping the process's resident memory small: no transparent huge pages
//! ([`no_huge_pages`]), no per-connection read buffer on the plain-HTTP listener
//! ([`plain_http_buffers`]), and freed memory given back when the process goes idle
//! ([`return_freed_memory`]). docs/benchmarks-memory.md ("Idle memory", "1,000 open streams
//! again") has the measurements.
//!
//! mimalloc, the global allocator, asks the kernel for transparent huge pages on its arenas
//! (`madvise(MADV_HUGEPAGE)`, its `allow_thp` option, on by default), so the first byte touched
//! in each 2 MiB region makes the whole 2 MiB resident. For a gateway whose live heap is a few
//! megabytes that was most of its memory: `bench/memory` measured 12 MB of huge pages in a heap
//! of 12 MB right after start, and 46 MB of 46 MB after the full stack's warm-up, against
//! 1.2 MB and 21 MB with `MIMALLOC_ALLOW_THP=0` (docs/benchmarks-memory.md, "Idle memory").
//! Two things keep them off:
//!
//! - mimalloc is built with its `no_thp` feature (the workspace's `Cargo.toml`): it never
//!   advises huge pages, from its first allocation on, before `main`;
//! - [`no_huge_pages`] turns them off for the whole process (`prctl(PR_SET_THP_DISABLE)`), for
//!   systems that give huge pages to every large enough mapping (THP `always`) and for glibc's
//!   allocations (SQLite's).
//!
//! `MIMALLOC_ALLOW_THP` set in the environment (mimalloc's own switch, `1` to allow them) leaves
//! the process's setting alone.

use std::time::Duration;

use pingora_core::listeners::L4BufferSettings;

/// The plain-HTTP listener's socket buffers: no read buffer, Pingora's write buffer (1,460 bytes).
///
/// Pingora gives each accepted connection a 64 KiB read buffer (its
/// `DEFAULT_L4_READ_BUFFER_SIZE`, meant for TLS, whose layer reads in small pieces), a tokio
/// `BufReader`, which zeroes it when it is made. Memory that mimalloc hands out again is not
/// known to be zero, so a connection whose buffer came from reused memory made all 64 KiB
/// resident for as long as it stayed open (`bench/streams`: 1,000 open streams peaked about
/// 5 MiB lower without it, most buffers having come from fresh memory). Over plain TCP the
/// buffer saves nothing: Pingora's HTTP/1 session reads the header into a buffer of its own
/// (4 KiB, growing) and the body into another (64 KiB, not zeroed), so without it a request
/// costs the same read calls (one for a request under 4 KiB). The TLS listener keeps Pingora's
/// default.
pub(crate) fn plain_http_buffers() -> L4BufferSettings {
    L4BufferSettings::default().read(0)
}

/// Turns transparent huge pages off for this process (`prctl(PR_SET_THP_DISABLE)`), unless
/// `MIMALLOC_ALLOW_THP` is set. Call first thing in `main`: memory already backed by a huge page
/// stays so. Returns why it could not, for the log once there is one.
pub(crate) fn no_huge_pages() -> Option<String> {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
        return None;
    }
    disable()
}

#[cfg(target_os = "linux")]
fn disable() -> Option<String> {
    nix::sys::prctl::set_thp_disable(true)
        .err()
        .map(|e| format!("prctl(PR_SET_THP_DISABLE): {e}"))
}

#[cfg(not(target_os = "linux"))]
fn disable() -> Option<String> {
    None
}

/// How often [`return_freed_memory`] gives mimalloc the chance to return freed pages: its
/// purge delay (1 s in mimalloc 3).
const NUDGE_EVERY: Duration = Duration::from_secs(1);
/// An allocation mimalloc serves from a page of its own (over 512 KiB in mimalloc 3), which it
/// gives back to its arena, and so runs its purge, when the allocation is dropped.
const NUDGE_BYTES: usize = 1 << 20;

/// Once a second, lets mimalloc return to the kernel the pages freed more than its purge delay
/// ago. Runs for the life of the process (spawn it on the state runtime).
///
/// mimalloc does not return a freed page at once: it schedules the purge (`madvise(DONTNEED)`)
/// for 1 s later, and runs the purges that are due only from inside its own calls, when a page
/// goes back to its arena. A process that goes idle after a burst (1,000 streams that all
/// ended) makes no such call, so `bench/streams` read the same RSS 5 s after the last stream as
/// at the peak (95–98 MiB; with this, 52 MiB). `MIMALLOC_PURGE_DELAY=0` would purge every page
/// the moment it is free, which under a steady load made about one `madvise` call per streamed
/// request; this keeps the delay and costs one allocation and free a second on the state
/// runtime (mimalloc writes only its page header; the page is purged by the next nudge), never
/// on the request path. Setting `MIMALLOC_PURGE_DELAY` from `main` would come too late
/// (mimalloc reads its options when the process loads), and its API (`mi_collect`,
/// `mi_option_set`) is unsafe code, which the workspace forbids.
pub(crate) async fn return_freed_memory() {
    let mut tick = tokio::time::interval(NUDGE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        nudge();
    }
}

/// One allocation of a page of its own, dropped at once: mimalloc frees the page to its arena
/// and runs the purges that are due.
fn nudge() {
    let block: Vec<u8> = Vec::with_capacity(NUDGE_BYTES);
    drop(std::hint::black_box(block));
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn huge_pages_are_off_after_the_call() {
        // The flag belongs to the test process; no other test reads it.
        if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
            return;
        }
        assert_eq!(super::no_huge_pages(), None);
        assert_eq!(nix::sys::prctl::get_thp_disable(), Ok(true));
    }

    /// Resident memory of this process, KiB.
    fn rss_kib() -> Option<u64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    #[test]
    fn a_nudge_returns_what_was_freed_past_the_purge_delay() {
        const MIB: usize = 1024 * 1024;
        let before = rss_kib().unwrap();
        // Written (made resident) in pieces a page of mimalloc's holds several of, then freed.
        let pieces: Vec<Vec<u8>> = (0..1024).map(|_| vec![1u8; 64 * 1024]).collect();
        let peak = rss_kib().unwrap();
        assert!(peak >= before + 48 * 1024, "{before} KiB -> {peak} KiB");
        drop(std::hint::black_box(pieces));
        std::thread::sleep(super::NUDGE_EVERY + std::time::Duration::from_millis(200));
        super::nudge();
        let after = rss_kib().unwrap();
        assert!(
            after + (48 * MIB / 1024) as u64 <= peak,
            "RSS {before} KiB, {peak} KiB with 64 MiB in use, {after} KiB after the nudge"
        );
    }
}
