//! `llmgate::serve` (the hyper host) under the gateway's `HttpLimits`: the header deadline,
//! the header count cap and the connection cap (issue 12, item 3). Raw TCP, so the test sees
//! exactly what a client sees.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use llmgate_tests::TestGateway;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn config(general: &str) -> String {
    format!(
        "model_list:\n  - model_name: demo\n    litellm_params:\n      model: openai/demo\n      \
         mock_response: hello\ngeneral_settings:\n{general}"
    )
}

/// What the server sends until it closes; `None` if it is still open after `within`.
async fn read_to_close(tcp: &mut TcpStream, within: Duration) -> Option<String> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

async fn exchange(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(bytes).await.unwrap();
    read_to_close(&mut tcp, Duration::from_secs(10))
        .await
        .expect("closed within 10 s")
}

#[tokio::test]
async fn serve_closes_a_trickled_header_at_the_deadline() {
    let gw = TestGateway::start(&config("  llmgate_request_header_timeout: 1\n")).await;
    let started = Instant::now();
    let mut tcp = TcpStream::connect(gw.addr).await.unwrap();
    for byte in b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n".iter() {
        if tcp.write_all(&[*byte]).await.is_err() {
            break;
        }
        let mut probe = [0u8; 1];
        match tokio::time::timeout(Duration::from_millis(500), tcp.read(&mut probe)).await {
            Err(_) => {}
            Ok(_) => break,
        }
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "a trickled header is still open after {:?}",
            started.elapsed()
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn serve_answers_431_past_the_header_count() {
    let gw = TestGateway::start(&config("  llmgate_max_headers: 10\n")).await;
    let extra: String = (0..20).map(|i| format!("X-H{i}: v\r\n")).collect();
    let raw = exchange(
        gw.addr,
        format!("GET /health/liveliness HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n")
            .as_bytes(),
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 431"), "{raw}");
}

#[tokio::test]
async fn serve_refuses_connections_past_the_cap_with_503() {
    let gw = TestGateway::start(&config("  llmgate_max_connections: 2\n")).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut tcp = TcpStream::connect(gw.addr).await.unwrap();
        tcp.write_all(b"GET /health/liveliness HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 1024];
        let n = tcp.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(tcp);
    }
    let raw = exchange(
        gw.addr,
        b"GET /health/liveliness HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 503"), "{raw}");
    assert!(raw.to_ascii_lowercase().contains("retry-after: 1"), "{raw}");
    let body = raw.split_once("\r\n\r\n").unwrap().1;
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(json["error"]["code"], "too_many_connections", "{json}");

    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let raw = exchange(
        gw.addr,
        b"GET /health/liveliness HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
}
