//! `bench-floor`: the floor under any gateway built like llmgate. A pass-through HTTP/1 proxy
//! on the parts llmgate forwards with (hyper's server, hyper-util's pooled client, tokio,
//! mimalloc) and nothing else: no key, no routing, no parsing, no metering. Each request goes
//! to `--upstream` with its method, path and headers; both bodies stream through untouched.
//!
//! `HOSTS=floor bench/run` measures it beside the upstream alone, as it does the gateway, so
//! what a request costs here is what the transport alone costs on this machine: the least a
//! gateway that reads a request, makes one upstream call and writes the answer can cost.
//!
//! Run with: `cargo run --release -p llmgate-bench --bin bench-floor -- --upstream http://127.0.0.1:N --port M`
//!
//! With one worker (the default, as the `llmgate` binary's) it runs on a single-threaded tokio
//! runtime, as the binary does with one worker and `--work-stealing auto`.

#[path = "../accept.rs"]
mod accept;

use std::convert::Infallible;
use std::io::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use http::uri::{Authority, Scheme};
use http::{Request, Response, StatusCode, Uri};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::net::TcpListener;

/// The allocator the `llmgate` binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A pass-through HTTP/1 proxy: the floor under the gateway, for the benchmark.
#[derive(Debug, Parser)]
#[command(name = "bench-floor", version)]
struct Args {
    /// Where every request goes: `http://HOST:PORT` (a path is not allowed).
    #[arg(long)]
    upstream: Uri,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Worker threads; one runs a single-threaded runtime.
    #[arg(long = "num_workers", default_value_t = 1)]
    num_workers: usize,
}

/// The client and the upstream's authority, shared by every connection.
struct Proxy {
    client: Client<HttpConnector, Incoming>,
    authority: Authority,
}

impl Proxy {
    fn new(upstream: &Uri) -> anyhow::Result<Proxy> {
        let authority = upstream
            .authority()
            .filter(|_| upstream.scheme() == Some(&Scheme::HTTP))
            .filter(|_| matches!(upstream.path(), "" | "/"))
            .context("--upstream must be http://HOST:PORT")?
            .clone();
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(http);
        Ok(Proxy { client, authority })
    }

    /// Sends `request` upstream with its path, and answers with the upstream's answer, or
    /// 502 when the upstream cannot be reached.
    async fn forward(&self, request: Request<Incoming>) -> Result<Response<ProxyBody>, Infallible> {
        let (mut head, body) = request.into_parts();
        let mut uri = http::uri::Parts::default();
        uri.scheme = Some(Scheme::HTTP);
        uri.authority = Some(self.authority.clone());
        uri.path_and_query = head.uri.path_and_query().cloned();
        head.uri = match Uri::from_parts(uri) {
            Ok(uri) => uri,
            Err(_) => return Ok(bad_gateway()),
        };
        match self.client.request(Request::from_parts(head, body)).await {
            Ok(answer) => Ok(answer.map(ProxyBody::Left)),
            Err(_) => Ok(bad_gateway()),
        }
    }
}

/// The answer's body: the upstream's, streamed, or empty.
type ProxyBody = http_body_util::Either<Incoming, http_body_util::Empty<bytes::Bytes>>;

fn bad_gateway() -> Response<ProxyBody> {
    let mut answer = Response::new(ProxyBody::Right(http_body_util::Empty::new()));
    *answer.status_mut() = StatusCode::BAD_GATEWAY;
    answer
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let proxy: &'static Proxy = Box::leak(Box::new(Proxy::new(&args.upstream)?));
    let runtime = if args.num_workers <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.num_workers)
            .enable_all()
            .build()?
    };
    runtime.block_on(async {
        let listener = TcpListener::bind((args.host, args.port)).await?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{}", listener.local_addr()?)?;
        out.flush()?;
        drop(out);
        serve(listener, proxy).await
    })
}

/// Serves `proxy` on `listener` forever.
async fn serve(listener: TcpListener, proxy: &'static Proxy) -> anyhow::Result<()> {
    accept::serve(listener, "bench-floor", move || {
        service_fn(move |request| proxy.forward(request))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper::client::conn::http1 as client;
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpStream;

    /// An upstream that answers with the method, the path and the request's body.
    async fn echo_upstream() -> Uri {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let echo = || {
            service_fn(|request: Request<Incoming>| async move {
                let head = format!("{} {} ", request.method(), request.uri());
                let body = request.into_body().collect().await?.to_bytes();
                let answer = [head.as_bytes(), &body[..]].concat();
                Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::from(answer))))
            })
        };
        tokio::spawn(accept::serve(listener, "echo", echo));
        format!("http://{addr}").parse().unwrap()
    }

    async fn floor_to(upstream: &Uri) -> client::SendRequest<Full<Bytes>> {
        let proxy: &'static Proxy = Box::leak(Box::new(Proxy::new(upstream).unwrap()));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, proxy));
        let stream = TcpStream::connect(addr).await.unwrap();
        let (sender, connection) = client::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(connection);
        sender
    }

    fn post(path: &str, body: &'static str) -> Request<Full<Bytes>> {
        Request::post(path)
            .header("host", "floor")
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap()
    }

    #[tokio::test]
    async fn forwards_method_path_and_body_over_one_connection() {
        let upstream = echo_upstream().await;
        let mut sender = floor_to(&upstream).await;
        for (path, body) in [("/v1/chat/completions?x=1", "{\"a\":1}"), ("/other", "b")] {
            let answer = sender.send_request(post(path, body)).await.unwrap();
            assert_eq!(answer.status(), StatusCode::OK);
            let got = answer.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(got, format!("POST {path} {body}").as_bytes());
        }
    }

    #[tokio::test]
    async fn an_upstream_that_is_gone_is_a_502() {
        let gone = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream: Uri = format!("http://{}", gone.local_addr().unwrap())
            .parse()
            .unwrap();
        drop(gone);
        let mut sender = floor_to(&upstream).await;
        let answer = sender.send_request(post("/", "")).await.unwrap();
        assert_eq!(answer.status(), StatusCode::BAD_GATEWAY);
    }

    #[test]
    fn the_upstream_is_a_plain_http_origin() {
        for bad in ["https://127.0.0.1:1", "http://127.0.0.1:1/v1", "/path"] {
            assert!(Proxy::new(&bad.parse().unwrap()).is_err(), "{bad}");
        }
        assert!(Proxy::new(&"http://127.0.0.1:1".parse().unwrap()).is_ok());
    }
}
