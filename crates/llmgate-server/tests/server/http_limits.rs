//! The binary's HTTP host against bad and slow clients, over raw TCP: deadlines for the request
//! header and body, caps on header size and count and on open connections, pipelining, and a
//! 400 in OpenAI's JSON error shape for HTTP it cannot parse (issue 12, items 3 and 12).

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::support::{start, write_config, Gateway, DEMO};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The config with `general_settings` appended.
fn config(name: &str, general: &str) -> std::path::PathBuf {
    write_config(name, &format!("{DEMO}general_settings:\n{general}"))
}

/// Everything the server sends until it closes (or `within` passes: then `None`).
async fn read_to_close(tcp: &mut TcpStream, within: Duration) -> Option<String> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            // A reset after the answer still counts as a close.
            Ok(Err(_)) => break,
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Write `bytes` on a new connection and read the answer until the server closes.
async fn exchange(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(bytes).await.unwrap();
    read_to_close(&mut tcp, Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("no close within 10 s after {:?}", preview(bytes)))
}

fn preview(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(80)]).into_owned()
}

/// The status code of the first answer in `raw`.
fn status(raw: &str) -> u16 {
    raw.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {raw:?}"))
}

/// The header `name` of the first answer in `raw`, lower-cased name match.
fn header<'a>(raw: &'a str, name: &str) -> Option<&'a str> {
    let head = raw.split("\r\n\r\n").next()?;
    head.lines().skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The JSON body of a one-answer exchange (sized with `Content-Length`).
fn json(raw: &str) -> serde_json::Value {
    let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: not JSON: {raw:?}"))
}

/// An error answer in OpenAI's shape with this status, and the connection closed.
fn assert_error(raw: &str, code: u16) -> serde_json::Value {
    assert_eq!(status(raw), code, "{raw}");
    assert_eq!(header(raw, "connection"), Some("close"), "{raw}");
    let json = json(raw);
    let error = &json["error"];
    assert!(error["message"].is_string(), "{json}");
    assert!(error["type"].is_string(), "{json}");
    assert!(error.get("param").is_some(), "{json}");
    assert!(error.get("code").is_some(), "{json}");
    json
}

fn chat_request(target: &str, host: &str, extra: &str) -> Vec<u8> {
    let body = r#"{"model":"demo","messages":[{"role":"user","content":"hi"}]}"#;
    format!(
        "POST {target} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n{extra}\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn rss_kib(gateway: &Gateway) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", gateway.0.id())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A client that sends a request header one byte a second; returns what it received and how
/// long after connecting the server closed.
async fn trickle(addr: SocketAddr, give_up: Duration) -> (Option<String>, Duration) {
    let started = Instant::now();
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let header = b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    for byte in header.iter().cycle() {
        if started.elapsed() > give_up {
            return (None, started.elapsed());
        }
        if tcp.write_all(&[*byte]).await.is_err() {
            break;
        }
        match tokio::time::timeout(Duration::from_secs(1), tcp.read(&mut buf)).await {
            Err(_) => continue,
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
    // Whatever else arrives before the close.
    let rest = read_to_close(&mut tcp, Duration::from_secs(2))
        .await
        .unwrap_or_default();
    out.extend_from_slice(rest.as_bytes());
    (
        Some(String::from_utf8_lossy(&out).into_owned()),
        started.elapsed(),
    )
}

/// 300 clients trickling a header at one byte a second: a normal client is still served
/// promptly, each trickler gets a 408 and a close at the header deadline, and the binary's
/// memory stays flat.
#[tokio::test]
async fn header_tricklers_get_408_at_the_deadline_and_others_are_served() {
    let config = config("trickle", "  llmgate_request_header_timeout: 2\n");
    let (gateway, addr) = start(&config).await;
    let before = rss_kib(&gateway);

    let tricklers: Vec<_> = (0..300)
        .map(|_| tokio::spawn(trickle(addr, Duration::from_secs(15))))
        .collect();
    tokio::time::sleep(Duration::from_millis(800)).await;

    let started = Instant::now();
    let raw = exchange(
        addr,
        &chat_request("/v1/chat/completions", "x", "Connection: close\r\n"),
    )
    .await;
    assert_eq!(status(&raw), 200, "{raw}");
    assert!(raw.contains("hello"), "{raw}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a normal client waited {:?}",
        started.elapsed()
    );
    let during = rss_kib(&gateway);

    for trickler in tricklers {
        let (answer, after) = trickler.await.unwrap();
        let answer = answer.unwrap_or_else(|| panic!("a trickler is still open after {after:?}"));
        assert!(
            after < Duration::from_secs(6),
            "a trickler was closed only after {after:?}"
        );
        let json = assert_error(&answer, 408);
        assert_eq!(json["error"]["code"], "request_header_timeout", "{json}");
    }
    assert!(
        during < before + 64 * 1024,
        "RSS grew from {before} KiB to {during} KiB with 300 tricklers"
    );
}

/// A connection that sends nothing is closed at the header deadline, without an answer.
#[tokio::test]
async fn a_silent_connection_is_closed_at_the_header_deadline() {
    let config = config("silent", "  llmgate_request_header_timeout: 1\n");
    let (_gateway, addr) = start(&config).await;
    let started = Instant::now();
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let answer = read_to_close(&mut tcp, Duration::from_secs(8)).await;
    assert_eq!(answer.as_deref(), Some(""), "after {:?}", started.elapsed());
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

/// One answer sized by `Content-Length` from a connection that stays open.
async fn read_one(tcp: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&out).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = header(&text, "content-length").unwrap().parse().unwrap();
            if body.len() >= length {
                assert!(!head.is_empty());
                return text;
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed after {text:?}");
        out.extend_from_slice(&buf[..n]);
    }
}

/// The header deadline of a kept-alive connection's next request starts at its first byte: a
/// client may idle between requests (up to the keep-alive timeout), but not trickle.
#[tokio::test]
async fn a_kept_alive_connection_may_idle_past_the_header_deadline() {
    let config = config("keepalive", "  llmgate_request_header_timeout: 1\n");
    let (_gateway, addr) = start(&config).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = b"GET /health/liveliness HTTP/1.1\r\nHost: x\r\n\r\n";
    tcp.write_all(request).await.unwrap();
    assert_eq!(status(&read_one(&mut tcp).await), 200);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    tcp.write_all(request).await.unwrap();
    assert_eq!(status(&read_one(&mut tcp).await), 200);

    // The next one trickled: 408 a deadline after its first byte.
    let started = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    for byte in b"GET /health/liveliness HTTP/1.1\r\n".iter() {
        if tcp.write_all(&[*byte]).await.is_err() {
            break;
        }
        match tokio::time::timeout(Duration::from_millis(400), tcp.read(&mut buf)).await {
            Err(_) => continue,
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
    let rest = read_to_close(&mut tcp, Duration::from_secs(3))
        .await
        .unwrap();
    out.extend_from_slice(rest.as_bytes());
    let raw = String::from_utf8_lossy(&out).into_owned();
    assert_error(&raw, 408);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

/// A body trickled one byte a second gets a 408 at the body deadline: a trickle is never idle,
/// so only a deadline for the whole body stops it.
#[tokio::test]
async fn a_trickled_body_gets_408_at_the_body_deadline() {
    let config = config("body", "  llmgate_request_body_timeout: 2\n");
    let (_gateway, addr) = start(&config).await;
    let started = Instant::now();
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 1000\r\n\r\n{",
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "still open: {out:?}"
        );
        let _ = tcp.write_all(b" ").await;
        match tokio::time::timeout(Duration::from_secs(1), tcp.read(&mut buf)).await {
            Err(_) => continue,
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
    let raw = String::from_utf8_lossy(&out).into_owned();
    let json = assert_error(&raw, 408);
    assert_eq!(json["error"]["code"], "request_body_timeout", "{json}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// A header over `llmgate_max_header_bytes` (64 KiB by default) gets a 431, and so does one
/// over the parser's own 1 MiB ceiling.
#[tokio::test]
async fn an_oversized_header_gets_431() {
    let config = config("big-header", "  disable_spend_logs: true\n");
    let (_gateway, addr) = start(&config).await;
    for size in [100 * 1024, 2 * 1024 * 1024] {
        let big = "a".repeat(size);
        let request = chat_request("/v1/chat/completions", "x", &format!("X-Big: {big}\r\n"));
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let (mut read, mut write) = tcp.split();
        let writing = async move {
            let _ = write.write_all(&request).await;
        };
        let reading = async {
            let mut out = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(10), read.read_to_end(&mut out)).await;
            String::from_utf8_lossy(&out).into_owned()
        };
        let ((), raw) = tokio::join!(writing, reading);
        let json = assert_error(&raw, 431);
        assert_eq!(
            json["error"]["code"], "request_header_too_large",
            "{size}: {json}"
        );
    }
}

/// More headers than `llmgate_max_headers` (100 by default) get a 431, and so do more than the
/// parser's own ceiling of 256.
#[tokio::test]
async fn too_many_headers_get_431() {
    let config = config("many-headers", "  disable_spend_logs: true\n");
    let (_gateway, addr) = start(&config).await;
    for count in [150, 300] {
        let extra: String = (0..count).map(|i| format!("X-H{i}: v\r\n")).collect();
        let raw = exchange(addr, &chat_request("/v1/chat/completions", "x", &extra)).await;
        let json = assert_error(&raw, 431);
        assert_eq!(json["error"]["code"], "too_many_headers", "{count}: {json}");
    }
    // At the cap: served.
    let extra: String = (0..90).map(|i| format!("X-H{i}: v\r\n")).collect();
    let raw = exchange(
        addr,
        &chat_request(
            "/v1/chat/completions",
            "x",
            &format!("{extra}Connection: close\r\n"),
        ),
    )
    .await;
    assert_eq!(status(&raw), 200, "{raw}");
}

/// Past `llmgate_max_connections`, a new connection gets a 503 with `Retry-After` and is
/// closed; once a connection ends, a new one is served.
#[tokio::test]
async fn connections_past_the_cap_are_refused_with_503() {
    let config = config("cap", "  llmgate_max_connections: 3\n");
    let (_gateway, addr) = start(&config).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET /health/liveliness HTTP/1.1\r\n")
            .await
            .unwrap();
        held.push(tcp);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let raw = exchange(addr, b"GET /health/liveliness HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let json = assert_error(&raw, 503);
    assert_eq!(json["error"]["code"], "too_many_connections", "{json}");
    assert!(header(&raw, "retry-after").is_some(), "{raw}");

    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let raw = exchange(
        addr,
        b"GET /health/liveliness HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status(&raw), 200, "{raw}");
}

/// Two requests in one write (HTTP/1.1 pipelining): both answered, in order.
#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let config = config("pipeline", "  disable_spend_logs: true\n");
    let (_gateway, addr) = start(&config).await;
    let mut both = chat_request("/v1/chat/completions", "x", "");
    both.extend_from_slice(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let raw = exchange(addr, &both).await;
    assert_eq!(raw.matches("HTTP/1.1 200").count(), 2, "{raw}");
    let chat = raw
        .find("hello")
        .unwrap_or_else(|| panic!("no chat answer: {raw}"));
    let models = raw
        .find("\"object\":\"list\"")
        .unwrap_or_else(|| panic!("no models answer: {raw}"));
    assert!(chat < models, "out of order: {raw}");
}

/// A TLS ClientHello's first bytes (TLS 1.2 record, handshake, ClientHello).
const CLIENT_HELLO: &[u8] = &[
    0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03, 0x5b, 0x90, 0x9d, 0x9b, 0x72,
    0x0b, 0xbc, 0x0c, 0xbc, 0x2b, 0x92, 0xa8, 0x48, 0x97, 0xcf, 0xbd, 0x39, 0x04, 0xcc, 0x16, 0x0a,
    0x85, 0x03, 0x90, 0x9f, 0x77, 0x04, 0x33, 0xd4, 0xde, 0x00, 0x00, 0x20, 0xcc, 0xa8, 0xcc, 0xa9,
    0xc0, 0x2f, 0xc0, 0x30, 0xc0, 0x2b, 0xc0, 0x2c, 0xc0, 0x13, 0xc0, 0x09, 0x0d, 0x0a, 0x0d, 0x0a,
];

/// HTTP it cannot parse gets a 400 in OpenAI's JSON shape and a close, not a silent close.
#[tokio::test]
async fn malformed_http_gets_400_json_then_close() {
    let config = config("malformed", "  disable_spend_logs: true\n");
    let (_gateway, addr) = start(&config).await;
    let cases: [&[u8]; 5] = [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/9.9 extra\r\nHost: x\r\n\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n\
          Content-Length: 99999999999999999999999999\r\n\r\n",
        CLIENT_HELLO,
    ];
    for case in cases {
        let raw = exchange(addr, case).await;
        assert!(!raw.is_empty(), "silent close after {:?}", preview(case));
        let json = assert_error(&raw, 400);
        assert_eq!(json["error"]["type"], "invalid_request_error", "{json}");
    }
}

/// An absolute-form target (RFC 9112 §3.2.2) is served as if it were origin-form.
#[tokio::test]
async fn absolute_form_targets_are_served() {
    let config = config("absolute", "  disable_spend_logs: true\n");
    let (_gateway, addr) = start(&config).await;
    let target = format!("http://{addr}/v1/chat/completions");
    let raw = exchange(
        addr,
        &chat_request(&target, &addr.to_string(), "Connection: close\r\n"),
    )
    .await;
    assert_eq!(status(&raw), 200, "{raw}");
    assert!(raw.contains("hello"), "{raw}");
}

/// A body over `max_request_size_mb` gets a 413 `request_too_large`, whether its
/// `Content-Length` says so up front or a chunked body grows past the bound; a body under it
/// is served.
#[tokio::test]
async fn an_oversized_body_gets_413() {
    let config = config(
        "big-body",
        "  max_request_size_mb: 1\n  disable_spend_logs: true\n",
    );
    let (_gateway, addr) = start(&config).await;
    let body = |size: usize| {
        let pad = "a".repeat(size);
        format!(r#"{{"model":"demo","messages":[{{"role":"user","content":"{pad}"}}]}}"#)
    };

    let small = body(900 * 1024);
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        small.len()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(small.as_bytes()).await.unwrap();
    assert_eq!(status(&read_one(&mut tcp).await), 200, "under the bound");

    let big = body(2 * 1024 * 1024);
    let declared = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{big}",
        big.len()
    );
    let chunked = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
        big.len()
    );
    for request in [declared, chunked] {
        let raw = exchange(addr, request.as_bytes()).await;
        let json = assert_error(&raw, 413);
        assert_eq!(json["error"]["code"], "request_too_large", "{json}");
    }
}

/// An idle kept-alive connection is closed 60 s after its last answer.
#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_60_s() {
    let config = config("idle", "  disable_spend_logs: true\n");
    let (_gateway, addr) = start(&config).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /health/liveliness HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(status(&read_one(&mut tcp).await), 200);
    let answered = Instant::now();
    let rest = read_to_close(&mut tcp, Duration::from_secs(75))
        .await
        .unwrap_or_else(|| panic!("still open 75 s after the answer"));
    let idle = answered.elapsed();
    assert!(rest.is_empty(), "{rest:?}");
    assert!(
        idle >= Duration::from_secs(59) && idle < Duration::from_secs(65),
        "closed after {idle:?}"
    );
}
