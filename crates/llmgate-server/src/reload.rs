//! Config reload in the binary: SIGHUP reloads the file given by `--config` (or
//! `CONFIG_FILE_PATH`), and with `--watch-config` (`LLMGATE_WATCH_CONFIG=1`) so does a change
//! of that file, seen by polling it every [`WATCH_EVERY`]. The reload itself is the facade's
//! ([`llmgate::Gateway::reload_file`]): all or nothing, logged with every problem, counted in
//! `/metrics`.
//!
//! The watch compares the file's modification time, size and a hash of its content, read
//! through the path each time: a Kubernetes ConfigMap update (the `..data` symlink swapped to
//! a new directory) changes what the path reads, and is seen like an edit or a rename into
//! place. A file that cannot be read is skipped until it can (a swap in progress); a change
//! is reloaded once.
//!
//! With `--model` there is no file: SIGHUP logs so and changes nothing.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash as _, Hasher as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio::signal::unix::{signal, Signal, SignalKind};

/// How often `--watch-config` looks at the file.
pub const WATCH_EVERY: Duration = Duration::from_secs(2);

/// What the watch compares: modification time, size, content hash.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    modified: Option<SystemTime>,
    len: u64,
    hash: u64,
}

/// The file as it reads now, or `None` when it cannot be read.
fn look(path: &Path) -> Option<Seen> {
    let meta = std::fs::metadata(path).ok()?;
    let bytes = std::fs::read(path).ok()?;
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    Some(Seen {
        modified: meta.modified().ok(),
        len: bytes.len() as u64,
        hash: hasher.finish(),
    })
}

/// Listens for SIGHUP now (so a SIGHUP from here on never stops the process): call it inside
/// the runtime [`run`] will run on.
pub fn listen() -> std::io::Result<Signal> {
    signal(SignalKind::hangup())
}

/// Reloads `gateway`'s config on each SIGHUP from `hup`, and, with `watch`, on each change of
/// `file`. Runs for as long as the runtime does.
pub async fn run(gateway: llmgate::Gateway, file: Option<PathBuf>, watch: bool, mut hup: Signal) {
    let mut seen = file.as_deref().and_then(look);
    let mut tick = tokio::time::interval(WATCH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let watching = watch && file.is_some();
    if watching {
        tracing::info!(
            file = %file.as_deref().unwrap_or(Path::new("")).display(),
            every_seconds = WATCH_EVERY.as_secs(),
            "watching the config file: a change is reloaded"
        );
    }
    loop {
        tokio::select! {
            received = hup.recv() => {
                if received.is_none() {
                    return;
                }
                let Some(path) = &file else {
                    tracing::warn!("SIGHUP: no config file to reload (serving --model); nothing changed");
                    continue;
                };
                tracing::info!(file = %path.display(), "SIGHUP: reloading the config");
                seen = look(path).or(seen);
                reload(&gateway, path).await;
            }
            _ = tick.tick(), if watching => {
                let Some(path) = &file else { continue };
                let Some(now) = look(path) else { continue };
                if seen.as_ref() == Some(&now) {
                    continue;
                }
                seen = Some(now);
                tracing::info!(file = %path.display(), "the config file changed: reloading it");
                reload(&gateway, path).await;
            }
        }
    }
}

/// One reload, off the runtime's worker (it builds the new stack synchronously). The facade
/// logs and counts the outcome.
async fn reload(gateway: &llmgate::Gateway, path: &Path) {
    let (gateway, path) = (gateway.clone(), path.to_owned());
    if let Err(e) = tokio::task::spawn_blocking(move || gateway.reload_file(&path)).await {
        tracing::error!(error = %e, "the config reload did not finish; the running config stays");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_of_content_is_seen_even_with_the_same_size_and_time() {
        let dir = std::env::temp_dir().join(format!("llmgate-watch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.yaml");
        std::fs::write(&path, "model_list: [a]\n").unwrap();
        let first = look(&path).unwrap();
        assert_eq!(look(&path), Some(first.clone()));
        std::fs::write(&path, "model_list: [b]\n").unwrap();
        let second = look(&path).unwrap();
        assert_eq!(first.len, second.len);
        assert_ne!(first.hash, second.hash);
        assert_ne!(first, second);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(look(&path), None);
    }
}
