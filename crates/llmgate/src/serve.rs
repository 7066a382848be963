//! [`serve`]: the gateway on a plain hyper server (HTTP/1.1 and h2), for tests, examples and
//! library users. The `llmgate` binary hosts the same service on Pingora.

use std::future::Future;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::Gateway;

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
    let builder = auto::Builder::new(TokioExecutor::new());
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
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service.clone());
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(async move {
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
