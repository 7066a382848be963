//! `llmgate healthcheck`, the image's health check, through the real binary: 0 against a
//! running gateway (port from `--port` or `PORT`), 1 with the reason on stderr when nothing
//! listens, when the answer is not a 200, and when no answer comes within its two seconds;
//! over TLS with `--tls` or `SSL_CERTFILE_PATH`, against an HTTPS listener made here with rustls.

#![allow(clippy::unwrap_used, clippy::panic, reason = "test helpers")]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Output};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::support::{start, write_config, BIN, DEMO};

/// A self-signed certificate for 127.0.0.1 and its key, made for this test only (it guards
/// nothing): the probe does not verify certificates, so any pair will do.
const TEST_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBmjCCAUGgAwIBAgIUMB2KDwPYu1U/fYLgimGfhbFovscwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTIwMjEzMDUxNVoYDzIxMjYxMTA4
MTMwNTE1WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAAQbY1qyMLCHthfY6rsdM4heAABwW5bn8M0ayHK1j1Tv4w+N0cnAXr35
JrnXUHKoHVFJSFAacGj0uJW3bm8yC0dWo28wbTAdBgNVHQ4EFgQUD63Jkcl+OfV8
w197gwW/8ITcLlQwHwYDVR0jBBgwFoAUD63Jkcl+OfV8w197gwW/8ITcLlQwDwYD
VR0TAQH/BAUwAwEB/zAaBgNVHREEEzARhwR/AAABgglsb2NhbGhvc3QwCgYIKoZI
zj0EAwIDRwAwRAIgG9MMbsY1qppErH2BZPRmw/nmUndHsOIhQaDGbyaZw2ICIHkC
ZpS8TNNjyooHnpndodle5u4evb2CZchFr6YOh6jZ
-----END CERTIFICATE-----
";
const TEST_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgxRfiAN2IBdHzbe0R
IdiII+48YU+1UJ6EM1S3PTwtmkChRANCAAQbY1qyMLCHthfY6rsdM4heAABwW5bn
8M0ayHK1j1Tv4w+N0cnAXr35JrnXUHKoHVFJSFAacGj0uJW3bm8yC0dW
-----END PRIVATE KEY-----
";

/// Runs `llmgate healthcheck ARGS` with `PORT` set to `port_env` (or unset), and
/// `SSL_CERTFILE_PATH` unset.
fn healthcheck(args: &[&str], port_env: Option<&str>) -> Output {
    healthcheck_with(args, port_env, &[])
}

fn healthcheck_with(args: &[&str], port_env: Option<&str>, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BIN);
    command
        .arg("healthcheck")
        .args(args)
        .env_remove("PORT")
        .env_remove("SSL_CERTFILE_PATH")
        .envs(env.iter().copied());
    if let Some(port) = port_env {
        command.env("PORT", port);
    }
    command.output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A one-connection server on 127.0.0.1:0 that answers `reply` (or nothing, when `None`, holding
/// the connection open for `hold`) and reports the request line it was sent.
fn fake_server(
    reply: Option<&'static str>,
    hold: Duration,
) -> (SocketAddr, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut chunk = [0_u8; 512];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = conn.read(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            request.extend_from_slice(&chunk[..n]);
        }
        let text = String::from_utf8_lossy(&request).into_owned();
        let _ = tx.send(text);
        match reply {
            Some(reply) => conn.write_all(reply.as_bytes()).unwrap(),
            None => std::thread::sleep(hold),
        }
    });
    (addr, rx)
}

/// An HTTPS server on 127.0.0.1:0 (rustls, the gateway's TLS library) serving `connections`
/// connections: each gets `HTTP/1.1 200 OK` once its request is read; a client that does not
/// speak TLS gets the alert rustls sends.
fn tls_server(connections: usize) -> SocketAddr {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(TEST_CERT.as_bytes()).unwrap()],
            PrivateKeyDer::from_pem_slice(TEST_KEY.as_bytes()).unwrap(),
        )
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for _ in 0..connections {
            let (mut sock, _) = listener.accept().unwrap();
            let mut conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut request = Vec::new();
            let mut chunk = [0_u8; 512];
            let served = loop {
                if let Err(_e) = conn.complete_io(&mut sock) {
                    // Not TLS: send the alert rustls queued, as a TLS listener does.
                    let _ = conn.write_tls(&mut sock);
                    break false;
                }
                match conn.reader().read(&mut chunk) {
                    Ok(n) if n > 0 => request.extend_from_slice(&chunk[..n]),
                    _ => {}
                }
                if request.windows(4).any(|w| w == b"\r\n\r\n") {
                    break true;
                }
            };
            if served {
                conn.writer()
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                    .unwrap();
                let _ = conn.complete_io(&mut sock);
                conn.send_close_notify();
                let _ = conn.complete_io(&mut sock);
            }
        }
    });
    addr
}

#[tokio::test]
async fn a_running_gateway_is_healthy() {
    let (_gateway, addr) = start(&write_config("healthcheck-live", DEMO)).await;
    let port = addr.port().to_string();

    let by_flag = healthcheck(&["--port", &port], None);
    assert!(by_flag.status.success(), "--port: {}", stderr(&by_flag));
    let stdout = String::from_utf8_lossy(&by_flag.stdout);
    assert!(
        stdout.contains(&format!("http://127.0.0.1:{port}/health/liveliness"))
            && stdout.contains("200"),
        "{stdout}"
    );

    let by_env = healthcheck(&[], Some(&port));
    assert!(by_env.status.success(), "PORT: {}", stderr(&by_env));

    let url = format!("http://127.0.0.1:{port}/health/readiness");
    let by_url = healthcheck(&["--url", &url], Some("1"));
    assert!(
        by_url.status.success(),
        "--url wins over PORT: {}",
        stderr(&by_url)
    );
}

#[test]
fn nothing_listening_is_unhealthy() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let output = healthcheck(&["--port", &port.to_string()], None);
    assert_eq!(output.status.code(), Some(1));
    let why = stderr(&output);
    assert_eq!(why.lines().count(), 1, "one line: {why}");
    assert!(
        why.contains(&format!("127.0.0.1:{port}/health/liveliness")) && why.contains("refused"),
        "{why}"
    );
}

#[test]
fn a_503_is_unhealthy() {
    let (addr, request) = fake_server(
        Some("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n"),
        Duration::ZERO,
    );
    let output = healthcheck(&[], Some(&addr.port().to_string()));
    assert_eq!(output.status.code(), Some(1));
    let why = stderr(&output);
    assert!(why.contains("503 Service Unavailable"), "{why}");
    let request = request.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(
        request.starts_with("GET /health/liveliness HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(
        request.contains(&format!("Host: 127.0.0.1:{}\r\n", addr.port())),
        "{request}"
    );
}

#[test]
fn a_silent_server_times_out_in_two_seconds() {
    let (addr, _request) = fake_server(None, Duration::from_secs(10));
    let started = Instant::now();
    let output = healthcheck(&["--port", &addr.port().to_string()], None);
    let took = started.elapsed();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("no answer within 2s"),
        "{}",
        stderr(&output)
    );
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(5),
        "took {took:?}"
    );
}

#[test]
fn https_by_flag_by_url_and_by_ssl_certfile_path() {
    let addr = tls_server(3);
    let port = addr.port().to_string();

    let by_flag = healthcheck(&["--tls", "--port", &port], None);
    assert!(by_flag.status.success(), "--tls: {}", stderr(&by_flag));
    let url = format!("https://127.0.0.1:{port}/health/liveliness");
    let by_url = healthcheck(&["--url", &url], None);
    assert!(by_url.status.success(), "--url https: {}", stderr(&by_url));
    // The image's users turn TLS on with SSL_CERTFILE_PATH; the probe follows.
    let by_env = healthcheck_with(&[], Some(&port), &[("SSL_CERTFILE_PATH", "/certs/tls.crt")]);
    assert!(
        by_env.status.success(),
        "SSL_CERTFILE_PATH: {}",
        stderr(&by_env)
    );
}

#[test]
fn plain_http_to_an_https_listener_says_to_use_tls() {
    let addr = tls_server(1);
    let output = healthcheck(&["--port", &addr.port().to_string()], None);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("probe it with --tls"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn unknown_schemes_are_refused_with_a_reason() {
    let output = healthcheck(&["--url", "ftp://127.0.0.1:4000/health/liveliness"], None);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("ftp:// is not supported"),
        "{}",
        stderr(&output)
    );
}
