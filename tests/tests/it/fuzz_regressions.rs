//! The fuzz targets' regression cases, run on stable in CI: every committed corpus input and
//! every crash file under `fuzz/` goes through the function its target calls
//! (`llmgate::fuzzing::run`), which must not panic. The fuzzers themselves (nightly,
//! `fuzz/run`) are not in CI's time budget; see docs/fuzzing.md.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use llmgate::fuzzing::{run, TARGETS};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `fuzz/<kind>/<target>/`, sorted (none when the directory does not exist).
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir(fuzz_dir().join(kind).join(target)) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = dir
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_none_or(|e| e != "md"))
        .collect();
    files.sort();
    files
}

fn replay(kind: &str) -> usize {
    let mut n = 0;
    for target in TARGETS {
        for file in inputs(kind, target) {
            let data = std::fs::read(&file).unwrap();
            let outcome = std::panic::catch_unwind(|| run(target, &data));
            match outcome {
                Ok(known) => assert!(known, "{target} is not a target"),
                Err(_) => panic!("{target} panics on {}", file.display()),
            }
            n += 1;
        }
    }
    n
}

#[test]
fn every_target_has_a_corpus_and_a_fuzz_target() {
    for target in TARGETS {
        assert!(
            !inputs("corpus", target).is_empty(),
            "fuzz/corpus/{target} is empty or missing"
        );
        assert!(
            fuzz_dir()
                .join("fuzz_targets")
                .join(format!("{target}.rs"))
                .is_file(),
            "fuzz/fuzz_targets/{target}.rs is missing"
        );
    }
}

#[test]
fn corpora_replay_without_panics() {
    let n = replay("corpus");
    assert!(n >= TARGETS.len(), "only {n} corpus inputs");
}

#[test]
fn crashers_replay_without_panics() {
    replay("artifacts");
}
