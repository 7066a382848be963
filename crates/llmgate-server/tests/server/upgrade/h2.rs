//! An HTTP/2 client connection open on the old process across the hand-over gets GOAWAY
//! (docs/upgrade.md, step 4): its connection ends cleanly, its next request goes to the new
//! process, and the old process exits 0 well before its grace period would have let it.

use std::time::{Duration, Instant};

use super::{
    launch, start_old, test_dir, upstream_and_config, wait_exit, Launch, MASTER, NEW, OLD,
};
use crate::support::{post, signal};
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
    let dir = test_dir("h2-goaway");
    let pace = Duration::from_millis(10);
    let (_old_upstream, old_config) = upstream_and_config(&dir, "old", OLD, pace).await;
    let (_new_upstream, new_config) = upstream_and_config(&dir, "new", NEW, pace).await;
    let sock = dir.join("upgrade.sock");
    let args = ["--upgrade_sock", sock.to_str().unwrap(), "--h2c"];
    let how = |name: &str| Launch {
        log: dir.join(name),
        notify: None,
    };
    let (mut old, addr) = start_old(&old_config, &args, &how("old.log")).await;
    let (status, key) = post(addr, "/key/generate", MASTER, &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{key}");
    let secret = key["key"].as_str().unwrap().to_owned();

    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut h2, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    let conn = tokio::spawn(conn);
    assert!(ask(&mut h2, addr.port(), &secret).await.contains(OLD));

    signal(&old, "QUIT");
    let quit = Instant::now();
    let new_args = [args[0], args[1], "--h2c", "--upgrade"];
    let mut new = launch(&new_config, addr, &new_args, &how("new.log"));
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
    let status = wait_exit(&mut old, Duration::from_secs(15)).await;
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
