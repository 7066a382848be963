//! Links the release `llmgate` binary with its functions in the order of
//! `link/symbol-order.txt`: the functions that start-up and requests run, hottest first, side
//! by side at the start of `.text` instead of spread over all 19 MB of it.
//!
//! The kernel maps a binary's code into a process around each page the process touches, so
//! code run at start-up and per request that is spread over the whole file makes most of the
//! file resident. Laid out together they take the first 4.9 MB, and the idle RSS after a
//! warm-up fell from 23.2 to 13.5–13.9 MB with the master key and from 27.3 to 18.7–19.1 MB
//! with the full stack (docs/benchmarks-memory.md, "Code laid out by use";
//! `bench/symbol-order --check` checks a binary).
//!
//! The order is a list of symbol names. It is made from `bench/callgrind`'s profiles by
//! `bench/symbol-order`; a symbol it names that the binary lacks (the code changed, or another
//! compiler named it differently) is skipped without a warning, so a stale list costs memory,
//! never a failed build. Only rust-lld (the default linker of `x86_64-unknown-linux-gnu` since
//! Rust 1.90) and mold read `--symbol-ordering-file`, so the order is passed only for that
//! target without a linker of the user's own; `LLMGATE_SYMBOL_ORDER=0` turns it off.

use std::env;
use std::path::Path;

fn main() {
    let order = Path::new("link/symbol-order.txt");
    println!("cargo:rerun-if-changed={}", order.display());
    println!("cargo:rerun-if-env-changed=LLMGATE_SYMBOL_ORDER");
    for var in LINKER_SETTINGS {
        println!("cargo:rerun-if-env-changed={var}");
    }
    if !wanted() {
        return;
    }
    let Ok(dir) = env::var("CARGO_MANIFEST_DIR") else {
        return;
    };
    let path = Path::new(&dir).join(order);
    println!(
        "cargo:rustc-link-arg-bin=llmgate=-Wl,--symbol-ordering-file={}",
        path.display()
    );
    println!("cargo:rustc-link-arg-bin=llmgate=-Wl,--no-warn-symbol-ordering");
}

/// Settings through which a build names a linker of its own (which may be GNU ld, which does
/// not know the option).
const LINKER_SETTINGS: [&str; 3] = [
    "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER",
    "RUSTC_LINKER",
    "CARGO_ENCODED_RUSTFLAGS",
];

/// A release build for x86_64 Linux (GNU), linked by rustc's default linker, not turned off.
fn wanted() -> bool {
    let var = |name: &str| env::var(name).unwrap_or_default();
    if var("LLMGATE_SYMBOL_ORDER") == "0"
        || var("PROFILE") != "release"
        || var("TARGET") != "x86_64-unknown-linux-gnu"
    {
        return false;
    }
    let flags = var("CARGO_ENCODED_RUSTFLAGS");
    let own_linker = !var("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER").is_empty()
        || !var("RUSTC_LINKER").is_empty()
        || flags.contains("linker")
        || flags.contains("fuse-ld")
        || flags.contains("link-self-contained");
    !own_linker
}
