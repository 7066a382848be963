//! [`serve`]: the gateway on a plain hyper server (HTTP/1.1 and h2), for tests, examples and
//! library users. The `llmgate` binary hosts the same service on Pingora.
//!
//! Of the gateway's [`HttpLimits`], hyper enforces the header deadline (a close, without the
//! binary's 408), the header size (hyper's own empty 431; its floor is 8 KiB) and the header
//! count (HTTP/1), and [`serve`] refuses connections past the cap with the binary's 503. The
//! body deadline is the binary's only: hyper has no deadline for a whole body.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::{raw_answer, Gateway, HostError, HttpLimits, OpenConnections};

/// hyper's smallest read buffer; a smaller `llmgate_max_header_bytes` is raised to it.
const HYPER_MIN_BUF: usize = 8192;
/// hyper's header count when none is set (set otherwise: it then allocates per request).
const HYPER_DEFAULT_MAX_HEADERS: usize = 100;
/// How long a connection refused at the cap may take to be told so.
const REFUSAL_FOR: Duration = Duration::from_millis(250);

/// How long in-flight requests may run after `shutdown` resolves.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Serves `gateway` on `listener` until `shutdown` resolves, then stops accepting, lets
/// in-flight requests (streams included) finish for up to [`SHUTDOWN_GRACE`], and writes the
/// spend records still queued ([`Gateway::shutdown`]). To serve one gateway on several
/// listeners, call [`Gateway::shutdown`] yourself after the last one stopped and use the
/// [`Gateway::service`] with your own server.
pub async fn serve(
    listener: TcpListener,
    gateway: Gateway,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let limits = gateway.http_limits();
    let builder = builder(&limits);
    let open = OpenConnections::default();
    let refusal = raw_answer(
        &HostError::TooManyConnections(limits.max_connections),
        false,
    );
    let graceful = GracefulShutdown::new();
    let service = TowerToHyperService::new(gateway.service());
    let spend = gateway.clone();
    drop(gateway);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _peer) = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let Some(slot) = open.try_open(limits.max_connections) else {
                    tokio::spawn(refuse(stream, refusal.clone()));
                    continue;
                };
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service.clone());
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(async move {
                    let _slot = slot;
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("in-flight requests still running after the grace period; closing them");
    }
    spend.shutdown().await;
    Ok(())
}

/// The HTTP/1 and h2 server, bounded by `limits` where hyper can.
fn builder(limits: &HttpLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    let mut http1 = builder.http1();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(limits.request_header_timeout)
        .max_buf_size(limits.max_header_bytes.max(HYPER_MIN_BUF));
    if limits.max_headers != HYPER_DEFAULT_MAX_HEADERS {
        http1.max_headers(limits.max_headers);
    }
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    builder
}

/// Tell a connection past the cap so, without reading its request, and close it; a moment of
/// draining keeps the kernel from resetting the connection over the unread request, which can
/// destroy the answer before the client reads it.
async fn refuse(mut stream: TcpStream, answer: Bytes) {
    let _ = tokio::time::timeout(REFUSAL_FOR, async {
        stream.write_all(&answer).await?;
        stream.shutdown().await?;
        let mut scratch = [0u8; 4096];
        while stream.read(&mut scratch).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
}
