//! The accept loop of this crate's two servers, `bench-upstream` and `bench-floor`: HTTP/1.1
//! with keep-alive, Nagle off, one task per connection.

use std::error::Error;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::Service;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Accepts connections forever and serves each with a service from `service` on its own task.
/// `name` prefixes what it prints when an accept fails.
pub async fn serve<S, B>(
    listener: TcpListener,
    name: &str,
    service: impl Fn() -> S,
) -> anyhow::Result<()>
where
    S: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn Error + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn Error + Send + Sync>>,
{
    let mut http = http1::Builder::new();
    http.keep_alive(true);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors and the like: wait for connections to close.
                eprintln!("{name}: accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        // Small responses must leave at once, not wait for Nagle's algorithm.
        stream.set_nodelay(true)?;
        let connection = http.serve_connection(TokioIo::new(stream), service());
        tokio::spawn(async move {
            // A client that goes away mid-request is not the server's problem.
            let _: Result<(), hyper::Error> = connection.await;
        });
    }
}
