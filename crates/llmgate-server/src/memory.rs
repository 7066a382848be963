//! Keeping the process's resident memory small: no transparent huge pages.
//!
//! mimalloc, the global allocator, asks the kernel for transparent huge pages on its arenas
//! (`madvise(MADV_HUGEPAGE)`, its `allow_thp` option, on by default), so the first byte touched
//! in each 2 MiB region makes the whole 2 MiB resident. For a gateway whose live heap is a few
//! megabytes that was most of its memory: `bench/memory` measured 12 MB of huge pages in a heap
//! of 12 MB right after start, and 46 MB of 46 MB after the full stack's warm-up, against
//! 1.2 MB and 21 MB with `MIMALLOC_ALLOW_THP=0` (docs/benchmarks.md, "Memory"). Two things
//! keep them off:
//!
//! - mimalloc is built with its `no_thp` feature (the workspace's `Cargo.toml`): it never
//!   advises huge pages, from its first allocation on, before `main`;
//! - [`no_huge_pages`] turns them off for the whole process (`prctl(PR_SET_THP_DISABLE)`), for
//!   systems that give huge pages to every large enough mapping (THP `always`) and for glibc's
//!   allocations (SQLite's).
//!
//! `MIMALLOC_ALLOW_THP` set in the environment (mimalloc's own switch, `1` to allow them) leaves
//! the process's setting alone.

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
}
