//! [`FaultProxy`]: a TCP proxy a test puts in front of Redis, PostgreSQL or a provider, then cuts,
//! stalls and restores, to see what the gateway does while a backend is away.
//!
//! ```
//! use llmgate_testkit::FaultProxy;
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! // An echo server to stand for a backend.
//! let backend = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let backend_addr = backend.local_addr()?;
//! tokio::spawn(async move {
//!     while let Ok((mut socket, _)) = backend.accept().await {
//!         tokio::spawn(async move {
//!             let (mut r, mut w) = socket.split();
//!             let _ = tokio::io::copy(&mut r, &mut w).await;
//!         });
//!     }
//! });
//!
//! let proxy = FaultProxy::start(backend_addr).await?;
//! let mut conn = tokio::net::TcpStream::connect(proxy.addr()).await?;
//! conn.write_all(b"ping").await?;
//! let mut buf = [0u8; 4];
//! conn.read_exact(&mut buf).await?;
//! assert_eq!(&buf, b"ping");
//!
//! proxy.cut(); // the open connection is closed, new ones are closed at once
//! assert_eq!(conn.read(&mut buf).await.unwrap_or(0), 0);
//! proxy.restore();
//! # Ok(())
//! # }
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does with traffic now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward both ways.
    Pass,
    /// Close every open connection, and close new ones as soon as they are accepted (the backend
    /// looks down: connection reset).
    Cut,
    /// Keep connections open but forward nothing, either way, until restored (the backend looks
    /// hung: a network partition without resets). New connections are accepted and held.
    Stall,
}

/// A TCP proxy on `127.0.0.1:<ephemeral>` in front of one backend address. Dropping it stops
/// the listener and closes every connection.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
    accepted: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Listen on `127.0.0.1:0` and forward to `backend`.
    pub async fn start(backend: SocketAddr) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (mode, watch) = watch::channel(Mode::Pass);
        let accepted = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(accept_loop(listener, backend, watch, accepted.clone()));
        Ok(FaultProxy {
            addr,
            mode,
            accepted,
            task,
        })
    }

    /// The address to give the gateway instead of the backend's.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Close every connection and refuse new ones until [`FaultProxy::restore`].
    pub fn cut(&self) {
        self.mode.send_replace(Mode::Cut);
    }

    /// Hold every connection silent until [`FaultProxy::restore`].
    pub fn stall(&self) {
        self.mode.send_replace(Mode::Stall);
    }

    /// Forward again (connections closed by a cut stay closed; clients reconnect).
    pub fn restore(&self) {
        self.mode.send_replace(Mode::Pass);
    }

    /// The mode now.
    pub fn mode(&self) -> Mode {
        *self.mode.borrow()
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.mode.send_replace(Mode::Cut);
        self.task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    backend: SocketAddr,
    mode: watch::Receiver<Mode>,
    accepted: Arc<AtomicUsize>,
) {
    while let Ok((client, _)) = listener.accept().await {
        accepted.fetch_add(1, Ordering::Relaxed);
        if *mode.borrow() == Mode::Cut {
            drop(client);
            continue;
        }
        tokio::spawn(connection(client, backend, mode.clone()));
    }
}

/// One proxied connection: connect to the backend (after a stall, if stalled), then pump both
/// ways until either side closes or the proxy is cut.
async fn connection(client: TcpStream, backend: SocketAddr, mut mode: watch::Receiver<Mode>) {
    if !wait_while_stalled(&mut mode).await {
        return;
    }
    let Ok(server) = TcpStream::connect(backend).await else {
        return;
    };
    let (client_r, client_w) = client.into_split();
    let (server_r, server_w) = server.into_split();
    tokio::select! {
        () = pump(client_r, server_w, mode.clone()) => {}
        () = pump(server_r, client_w, mode.clone()) => {}
        () = until_cut(mode) => {}
    }
}

/// Wait while the mode is `Stall`; false when it becomes `Cut` (or the proxy is gone).
async fn wait_while_stalled(mode: &mut watch::Receiver<Mode>) -> bool {
    loop {
        match *mode.borrow_and_update() {
            Mode::Pass => return true,
            Mode::Cut => return false,
            Mode::Stall => {}
        }
        if mode.changed().await.is_err() {
            return false;
        }
    }
}

async fn until_cut(mut mode: watch::Receiver<Mode>) {
    let _ = mode.wait_for(|m| *m == Mode::Cut).await;
}

/// Copy `from` to `to`, pausing (reading nothing) while stalled.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if !wait_while_stalled(&mut mode).await {
            return;
        }
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            // A stall or cut that starts while we wait for bytes: re-check before reading.
            changed = mode.changed() => {
                if changed.is_err() { return; }
                continue;
            }
        };
        // Bytes read just as a stall began are held until it ends.
        if !wait_while_stalled(&mut mode).await || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn echo() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = socket.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn roundtrip(conn: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
        conn.write_all(b"ping").await.ok()?;
        let mut buf = [0u8; 4];
        match tokio::time::timeout(within, conn.read_exact(&mut buf)).await {
            Ok(Ok(_)) => Some(buf.to_vec()),
            _ => None,
        }
    }

    #[tokio::test]
    async fn stall_holds_bytes_until_restored() {
        let proxy = FaultProxy::start(echo().await).await.unwrap();
        let mut conn = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(
            roundtrip(&mut conn, Duration::from_secs(5)).await.unwrap(),
            b"ping"
        );
        proxy.stall();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(roundtrip(&mut conn, Duration::from_millis(200))
            .await
            .is_none());
        proxy.restore();
        let mut buf = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(5), conn.read_exact(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf, b"ping", "the held bytes arrive after the stall");
    }

    #[tokio::test]
    async fn cut_closes_open_and_new_connections_until_restored() {
        let proxy = FaultProxy::start(echo().await).await.unwrap();
        let mut open = TcpStream::connect(proxy.addr()).await.unwrap();
        assert!(roundtrip(&mut open, Duration::from_secs(5)).await.is_some());
        proxy.cut();
        let mut buf = [0u8; 4];
        let read = tokio::time::timeout(Duration::from_secs(5), open.read(&mut buf)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
        let mut new = TcpStream::connect(proxy.addr()).await.unwrap();
        assert!(roundtrip(&mut new, Duration::from_millis(300))
            .await
            .is_none());
        proxy.restore();
        let mut again = TcpStream::connect(proxy.addr()).await.unwrap();
        assert!(roundtrip(&mut again, Duration::from_secs(5))
            .await
            .is_some());
    }
}
