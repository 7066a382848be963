//! An HTTP/2 client connection open on the old process across the hand-over gets GOAWAY
//! (docs/upgrade.md, step 4): its connection ends cleanly, its next request goes to the new
//! process, and the old process exits 0 well before its grace period would have let it.

use std::time::{Duration, Instant};

use super::{wait_exit, Pair, NEW, OLD};
use crate::support::signal;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use tokio::net::TcpStream;

/// A chat request over HTTP/2 with `key`: the answer's text.
async fn ask(
    sender: &mut hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    port: u16,
    key: &str,
) -> String {
    let body = json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]});
    let request = Request::post(format!("http://127.0.0.1:{port}/v1/chat/completions"))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {key}"))
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_connection_gets_goaway_and_the_old_process_exits_0() {
    let mut p = Pair::start("h2-goaway", &["--h2c"]).await;
    let (addr, secret) = (p.addr, p.secret.clone());

    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut h2, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    let conn = tokio::spawn(conn);
    assert!(ask(&mut h2, addr.port(), &secret).await.contains(OLD));

    signal(&p.old, "QUIT");
    let quit = Instant::now();
    let mut new = p.launch_new(&["--h2c"]);
    // The idle HTTP/2 connection is told to go away once the old process stops accepting
    // (5 s after SIGQUIT), and the connection then ends without an error.
    let ended = tokio::time::timeout(Duration::from_secs(15), conn)
        .await
        .expect("the HTTP/2 connection is still open 15 s after SIGQUIT")
        .unwrap();
    assert!(
        ended.is_ok(),
        "the connection ended with an error: {ended:?}"
    );
    let status = wait_exit(&mut p.old, Duration::from_secs(15)).await;
    assert!(status.success(), "{status}");
    // The grace period is 30 s: the old process did not wait it out for the connection.
    assert!(
        quit.elapsed() < Duration::from_secs(15),
        "{:?}",
        quit.elapsed()
    );

    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut h2, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    assert!(ask(&mut h2, addr.port(), &secret).await.contains(NEW));
    signal(&new, "TERM");
    assert!(wait_exit(&mut new, Duration::from_secs(20)).await.success());
}
