//! Zero-downtime binary upgrade: Pingora's listener hand-over, made safe to trigger.
//!
//! A new `llmgate --upgrade` (same `--host`, `--port` and `--upgrade_sock` as the running one)
//! loads its config, then listens on the upgrade socket and waits there, for about 6 s, for
//! the listening sockets (Pingora's `Bootstrap`; without them it exits with 1). The running
//! process, sent SIGQUIT:
//!
//! 1. **Checks for a partner** ([`Handover::partner_waiting`]): a process listening on the
//!    upgrade socket, waited for up to [`PARTNER_WAIT`]. Without one it logs an error and keeps
//!    serving: Pingora, asked to hand over with nobody waiting, retries for 5 s, then stops
//!    accepting all the same, leaving a process that serves nothing.
//! 2. **Hands over**: [`crate::shutdown::Signals`] answers Pingora's shutdown watch with
//!    `GracefulUpgrade`; Pingora sends the listening sockets over the upgrade socket, keeps
//!    accepting for 5 more seconds (both processes accept from the same sockets meanwhile), then
//!    stops accepting.
//! 3. **Drains** ([`Handover::accepting_stopped`], then the stop of [`crate::shutdown`]): from
//!    the moment it stopped accepting, the graceful stop of SIGTERM with its grace period,
//!    stream cutoff and spend flush, except that it also waits for the process's client
//!    connections to close. An HTTP/1 answer written while stopping says `Connection: close`
//!    and closes its connection, so kept-alive clients move to the new process after their
//!    next answer; connections idle through the whole grace period are closed at the exit.
//! 4. **Exits** with 0.
//!
//! For systemd, [`notify_systemd_when_running`] tells the service manager the process's pid
//! and readiness once it serves, so the new process becomes the unit's main process
//! (`deploy/systemd/llmgate.service`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use llmgate::OpenConnections;
use pingora_core::server::ExecutionPhase;
use tokio::sync::broadcast;

/// After SIGQUIT, how long the running process waits for a new one to listen on the upgrade
/// socket before it gives up and keeps serving.
pub const PARTNER_WAIT: Duration = Duration::from_secs(5);
/// How often the upgrade socket is looked for meanwhile.
const PARTNER_POLL: Duration = Duration::from_millis(50);
/// Pingora keeps accepting for 5 s after sending the sockets; if it has not stopped by this
/// long after SIGQUIT, the drain starts anyway.
const ACCEPTING_STOPS_WITHIN: Duration = Duration::from_secs(20);
/// The kernel's table of Unix sockets in this network namespace.
const UNIX_SOCKETS: &str = "/proc/net/unix";
/// `__SO_ACCEPTCON` in that table's `Flags` column: the socket is listening.
const SO_ACCEPTCON: u32 = 0x0001_0000;

/// What the running process needs to hand its listening sockets over on SIGQUIT.
#[derive(Debug)]
pub struct Handover {
    /// The upgrade socket (`--upgrade_sock`).
    sock: PathBuf,
    /// Pingora's execution phases, to see when it stops accepting.
    phases: broadcast::Receiver<ExecutionPhase>,
    /// The process's client connections, for the drain to wait on.
    connections: OpenConnections,
}

impl Handover {
    /// Hand over on `sock`, watching Pingora's `phases` and the host's `connections`.
    pub fn new(
        sock: PathBuf,
        phases: broadcast::Receiver<ExecutionPhase>,
        connections: OpenConnections,
    ) -> Self {
        Self {
            sock,
            phases,
            connections,
        }
    }

    /// The upgrade socket.
    pub fn sock(&self) -> &Path {
        &self.sock
    }

    /// The client connections open on this process.
    pub fn connections(&self) -> OpenConnections {
        self.connections.clone()
    }

    /// Whether a process listens on the upgrade socket, waiting up to [`PARTNER_WAIT`] for one.
    pub async fn partner_waiting(&self) -> bool {
        let deadline = Instant::now() + PARTNER_WAIT;
        loop {
            match std::fs::read_to_string(UNIX_SOCKETS) {
                Ok(table) if listening_on(&table, &self.sock) => return true,
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "cannot read {UNIX_SOCKETS} to find the new process");
                    return false;
                }
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(PARTNER_POLL).await;
        }
    }

    /// A future that resolves once Pingora has stopped accepting, after it sent the sockets (or
    /// after [`ACCEPTING_STOPS_WITHIN`], should it never say so). Take it when answering
    /// `GracefulUpgrade`: it sees only the phases that follow.
    pub fn accepting_stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut phases = self.phases.resubscribe();
        let wait = async move {
            loop {
                match phases.recv().await {
                    Ok(ExecutionPhase::ShutdownStarted)
                    | Err(broadcast::error::RecvError::Closed) => return,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                }
            }
        };
        async move {
            if tokio::time::timeout(ACCEPTING_STOPS_WITHIN, wait)
                .await
                .is_err()
            {
                tracing::warn!("Pingora did not report the end of accepting; draining anyway");
            }
        }
    }
}

/// Whether `table` (the text of `/proc/net/unix`) has a listening socket bound to `path`.
///
/// Each line is `Num RefCount Protocol Flags Type St Inode [Path]`, the numbers in hex; the
/// path is the rest of the line, as it was given to `bind`.
fn listening_on(table: &str, path: &Path) -> bool {
    let Some(path) = path.to_str() else {
        return false;
    };
    table.lines().skip(1).any(|line| {
        let mut fields = [""; 7];
        let mut rest = line;
        for field in &mut fields {
            let (head, tail) = rest
                .trim_start()
                .split_once(' ')
                .unwrap_or((rest.trim_start(), ""));
            *field = head;
            rest = tail;
        }
        let listening = u32::from_str_radix(fields[3], 16).is_ok_and(|f| f & SO_ACCEPTCON != 0);
        listening && rest.trim_start() == path
    })
}

/// Once Pingora runs its services, tell systemd (when `NOTIFY_SOCKET` is set, as under
/// `Type=notify`) this process's pid and that it is ready. After an upgrade that makes the new
/// process the unit's main process (with `NotifyAccess=all`); the old one's exit then ends
/// nothing.
pub fn notify_systemd_when_running(mut phases: broadcast::Receiver<ExecutionPhase>) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("llmgate-sd-notify".to_owned())
        .spawn(move || loop {
            match phases.blocking_recv() {
                Ok(ExecutionPhase::Running) => {
                    let state = [
                        sd_notify::NotifyState::MainPid(std::process::id()),
                        sd_notify::NotifyState::Ready,
                    ];
                    if let Err(e) = sd_notify::notify(&state) {
                        tracing::warn!(error = %e, "cannot tell systemd that llmgate is ready");
                    }
                    return;
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the systemd notifier");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
Num       RefCount Protocol Flags    Type St Inode Path
00000000aa5b9a83: 00000002 00000000 00010000 0001 01  4406 /var/run/postgresql/.s.PGSQL.5432
0000000009be6c08: 00000003 00000000 00000000 0001 03 11422
000000004a64a2e4: 00000002 00000000 00000000 0001 01 11031 /tmp/llmgate_upgrade_bound.sock
00000000ec5f9696: 00000002 00000000 00010000 0001 01  8448 /tmp/llmgate upgrade spaced.sock
";

    #[test]
    fn only_a_listening_socket_at_that_path_is_a_partner() {
        for (path, listening) in [
            ("/var/run/postgresql/.s.PGSQL.5432", true),
            ("/tmp/llmgate upgrade spaced.sock", true),
            // Bound but not listening yet: Pingora binds, then chmods, then listens.
            ("/tmp/llmgate_upgrade_bound.sock", false),
            ("/tmp/llmgate_upgrade_absent.sock", false),
            ("/var/run/postgresql", false),
        ] {
            assert_eq!(listening_on(TABLE, Path::new(path)), listening, "{path}");
        }
        assert!(!listening_on("", Path::new("/tmp/x.sock")));
    }

    #[tokio::test]
    async fn a_real_listener_is_found() {
        let dir = std::env::temp_dir().join(format!("llmgate-upgrade-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("u.sock");
        let _ = std::fs::remove_file(&sock);
        let (_tx, rx) = broadcast::channel(4);
        let handover = Handover::new(sock.clone(), rx, OpenConnections::default());
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        assert!(handover.partner_waiting().await);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
