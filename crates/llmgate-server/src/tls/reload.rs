//! A renewed certificate without a restart: the listener's certificate resolver holds the
//! current pair, and a background thread looks at both files every `--ssl-reload-seconds`.
//!
//! When either file changed (its modification time, size or inode, so a Kubernetes Secret
//! volume's symlink swap counts), the pair is read and checked again exactly as at start-up. A
//! good pair serves every handshake from then on; connections already open keep the one they
//! began with. A bad pair (half-written, a key for another certificate) is logged as an error
//! and the current certificate stays: it is tried again at the files' next change, so a
//! certificate written before its key is picked up once the key lands.

use std::fmt;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::CertFiles;

/// The certificate resolver of a listener whose files are watched.
pub(super) struct Reloading {
    files: CertFiles,
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for Reloading {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reloading")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        Some(Arc::clone(&current))
    }
}

/// Load `files` (an error is the start-up's) and check them for changes every `every` on a
/// thread of their own, for as long as the resolver lives.
pub(super) fn watch(files: CertFiles, every: Duration) -> anyhow::Result<Arc<Reloading>> {
    // Stamped before the first load: a change in between is loaded again, never missed.
    let seen = stamps(&files);
    let first = files.load()?;
    let resolver = Arc::new(Reloading {
        files,
        current: RwLock::new(Arc::new(first)),
    });
    let weak = Arc::downgrade(&resolver);
    std::thread::Builder::new()
        .name("llmgate-tls-reload".to_owned())
        .spawn(move || poll(&weak, seen, every))
        .context("starting the TLS certificate watcher")?;
    Ok(resolver)
}

/// The watcher's loop: every `every`, reload when the files' stamps moved.
fn poll(resolver: &Weak<Reloading>, mut seen: [Option<Stamp>; 2], every: Duration) {
    loop {
        std::thread::sleep(every);
        let Some(resolver) = resolver.upgrade() else {
            return;
        };
        let now = stamps(&resolver.files);
        if now == seen {
            continue;
        }
        seen = now;
        match resolver.files.load() {
            Ok(renewed) => {
                *resolver
                    .current
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = Arc::new(renewed);
                tracing::info!(files = %resolver.files, "TLS certificate reloaded");
            }
            // The message names both files.
            Err(e) => {
                tracing::error!("TLS certificate not reloaded, the current one is kept: {e:#}")
            }
        }
    }
}

/// What tells one version of a file from the next, as far as polling can; `None` while the
/// file cannot be looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamps(files: &CertFiles) -> [Option<Stamp>; 2] {
    [stamp(&files.cert), stamp(&files.key)]
}

/// Follows symlinks: a Secret volume's update swaps the link, and the target's inode changes.
fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        inode: meta.ino(),
    })
}
