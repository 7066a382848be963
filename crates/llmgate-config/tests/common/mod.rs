//! Helpers shared by the integration tests.
#![allow(dead_code)] // Each test crate uses a different subset.
#![allow(clippy::unwrap_used, clippy::panic, reason = "test helpers")]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use llmgate_config::{from_yaml, Loaded, Problem};

/// A directory that holds no `.env` and no includes.
pub const NO_DIR: &str = "/nonexistent/llmgate-config-tests";

/// An environment from pairs.
pub fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Loads YAML that must load, with no `.env`.
pub fn load_ok(yaml: &str, env: &HashMap<String, String>) -> Loaded {
    match from_yaml(yaml, Path::new(NO_DIR), env) {
        Ok(loaded) => loaded,
        Err(problems) => panic!("expected the config to load, got:\n{problems}"),
    }
}

/// Loads YAML that must fail; every problem as `Problems` prints it (`error: path: message`).
pub fn load_err(yaml: &str, env: &HashMap<String, String>) -> Vec<String> {
    match from_yaml(yaml, Path::new(NO_DIR), env) {
        Ok(loaded) => panic!(
            "expected problems, the config loaded with notices {:?}",
            shown(&loaded.notices)
        ),
        Err(problems) => shown(&problems.0),
    }
}

/// Problems as `severity: path: message` lines, without their positions (tests of positions
/// read [`Problem::position`] or `Display` itself).
pub fn shown(problems: &[Problem]) -> Vec<String> {
    problems
        .iter()
        .map(|p| {
            let p = Problem {
                position: None,
                ..p.clone()
            };
            format!("{}: {p}", p.severity)
        })
        .collect()
}

/// Problems from loading, whether it failed or not.
pub fn all_problems(yaml: &str, env: &HashMap<String, String>) -> Vec<String> {
    match from_yaml(yaml, Path::new(NO_DIR), env) {
        Ok(loaded) => shown(&loaded.notices),
        Err(problems) => shown(&problems.0),
    }
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "llmgate-config-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Each case's problems, loaded with `OPENAI_API_KEY` set, are exactly `want`.
pub fn check(cases: &[(&str, String, &[&str])]) {
    for (name, yaml, want) in cases {
        let got = all_problems(yaml, &env(&[("OPENAI_API_KEY", "sk-x")]));
        assert_eq!(got, *want, "case {name}:\n{yaml}");
    }
}
