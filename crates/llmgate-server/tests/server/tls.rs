//! HTTPS through the real `llmgate` binary: a test CA and a server certificate made at test
//! time, the gateway started with LiteLLM's `--ssl_certfile_path`/`--ssl_keyfile_path` (or
//! their variables), and clients that trust only that CA, over HTTP/1.1 and HTTP/2 chosen by
//! ALPN, streams included. Also what must fail: a plain-HTTP request to the TLS port (a 400), a client
//! that does not trust the CA, and a start with a missing, unreadable or mismatched key or
//! certificate (with a message naming the file).

#![allow(clippy::unwrap_used, clippy::panic, reason = "test helpers")]

mod interval;
mod secret_volume;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{chat, start_with, write_config, Gateway, BIN};
use bytes::Bytes;
use http::{Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

const DEMO: &str = r#"
model_list:
  - model_name: demo
    litellm_params:
      model: openai/demo
      mock_response: "hello over tls"
"#;

/// A test CA and a server certificate it signed for `localhost` and `127.0.0.1`, as PEM files.
struct Pki {
    dir: PathBuf,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Pki {
    fn new(name: &str) -> Self {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("llmgate-tls-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();

        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("llmgate test CA {name}"));
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let server_cert = params.signed_by(&server_key, &issuer).unwrap();

        let pki = Self {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            dir,
        };
        std::fs::write(&pki.ca, ca_cert.pem()).unwrap();
        std::fs::write(&pki.cert, server_cert.pem()).unwrap();
        std::fs::write(&pki.key, server_key.serialize_pem()).unwrap();
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A client configuration that trusts only this CA and offers `alpn`.
    fn client(&self, alpn: &[&[u8]]) -> ClientConfig {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&self.ca).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        config
    }

    fn flags(&self) -> [String; 4] {
        [
            "--ssl_certfile_path".to_owned(),
            self.cert.display().to_string(),
            "--ssl_keyfile_path".to_owned(),
            self.key.display().to_string(),
        ]
    }
}

/// One client connection over TLS, HTTP/1.1 or HTTP/2 as ALPN chose.
enum Client {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

impl Client {
    /// Connect to `addr` as `localhost` with `config`; the protocol ALPN picked comes back.
    async fn connect(
        addr: SocketAddr,
        config: ClientConfig,
    ) -> std::io::Result<(Self, Option<Vec<u8>>)> {
        let tcp = TcpStream::connect(addr).await?;
        let name = ServerName::try_from("localhost").unwrap();
        let tls = TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await?;
        let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        let io = TokioIo::new(tls);
        let client = if alpn.as_deref() == Some(b"h2") {
            let (sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .unwrap();
            tokio::spawn(conn);
            Self::H2(sender)
        } else {
            let (sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
            tokio::spawn(conn);
            Self::H1(sender)
        };
        Ok((client, alpn))
    }

    async fn chat(&mut self, addr: SocketAddr, stream: bool) -> Response<Incoming> {
        let body = chat("demo", stream);
        self.post(addr, "/v1/chat/completions", "application/json", body)
            .await
    }

    async fn post(
        &mut self,
        addr: SocketAddr,
        path: &str,
        content_type: &str,
        body: String,
    ) -> Response<Incoming> {
        let request = Request::post(format!("https://localhost:{}{path}", addr.port()))
            .header("content-type", content_type)
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        match self {
            Self::H1(sender) => {
                let (mut parts, body) = request.into_parts();
                // HTTP/1.1 in origin form, with a Host header, as clients send it.
                parts.uri = path.parse().unwrap();
                parts.headers.insert(
                    "host",
                    format!("localhost:{}", addr.port()).parse().unwrap(),
                );
                sender
                    .send_request(Request::from_parts(parts, body))
                    .await
                    .unwrap()
            }
            Self::H2(sender) => sender.send_request(request).await.unwrap(),
        }
    }
}

async fn body_text(response: Response<Incoming>) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// A completion and a streamed completion on one connection, answered over `version`.
async fn completion_and_stream(client: &mut Client, addr: SocketAddr, version: Version) {
    let response = client.chat(addr, false).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), version);
    let body = body_text(response).await;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        json["choices"][0]["message"]["content"], "hello over tls",
        "{body}"
    );

    let response = client.chat(addr, true).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), version);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let body = body_text(response).await;
    assert!(body.starts_with("data: "), "{body}");
    assert!(body.contains("hello"), "{body}");
    assert!(body.trim_end().ends_with("data: [DONE]"), "{body}");
}

async fn start_tls(pki: &Pki, name: &str) -> (Gateway, SocketAddr) {
    let config = write_config(name, DEMO);
    let flags = pki.flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    start_with(&config, &flags, &[]).await
}

/// The protocols a client offers by ALPN, in its order of preference.
type Offer<'a> = &'a [&'a [u8]];

#[tokio::test]
async fn https_answers_over_http1_and_h2_chosen_by_alpn() {
    let pki = Pki::new("alpn");
    let (_gateway, addr) = start_tls(&pki, "tls-alpn").await;

    // (what the client offers, what the gateway must pick, the answers' version)
    let cases: [(Offer, Option<&[u8]>, Version); 4] = [
        (&[b"h2", b"http/1.1"], Some(b"h2"), Version::HTTP_2),
        (&[b"h2"], Some(b"h2"), Version::HTTP_2),
        (&[b"http/1.1"], Some(b"http/1.1"), Version::HTTP_11),
        (&[], None, Version::HTTP_11),
    ];
    for (offered, picked, version) in cases {
        let (mut client, alpn) = Client::connect(addr, pki.client(offered)).await.unwrap();
        assert_eq!(alpn.as_deref(), picked, "offered {offered:?}");
        completion_and_stream(&mut client, addr, version).await;
    }
}

/// The admin UI's session cookie is `Secure` when the sign-in came over the gateway's own TLS
/// (docs/ui.md), over HTTP/1.1 and HTTP/2 alike.
#[tokio::test]
async fn the_ui_session_cookie_is_secure_over_tls() {
    let pki = Pki::new("ui-cookie");
    let yaml = format!(
        "{DEMO}general_settings:\n  master_key: sk-tls-master\n  database_url: \"sqlite::memory:\"\n"
    );
    let config = write_config("tls-ui-cookie", &yaml);
    let flags = pki.flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (_gateway, addr) = start_with(&config, &flags, &[]).await;
    for offered in [&[b"http/1.1" as &[u8]] as Offer, &[b"h2"]] {
        let (mut client, _) = Client::connect(addr, pki.client(offered)).await.unwrap();
        let form = "application/x-www-form-urlencoded";
        let res = client
            .post(addr, "/ui/login", form, "key=sk-tls-master".into())
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "offered {offered:?}");
        let cookie = res.headers()["set-cookie"].to_str().unwrap();
        assert!(
            cookie.contains("HttpOnly") && cookie.ends_with("; Secure"),
            "{cookie}"
        );
    }
}

#[tokio::test]
async fn tls_files_from_the_environment_and_dashed_flags() {
    let pki = Pki::new("env");
    let config = write_config("tls-env", DEMO);
    let cert = pki.cert.display().to_string();
    let key = pki.key.display().to_string();
    let (gateway, addr) = start_with(
        &config,
        &[],
        &[("SSL_CERTFILE_PATH", &cert), ("SSL_KEYFILE_PATH", &key)],
    )
    .await;
    let (mut client, _) = Client::connect(addr, pki.client(&[b"h2", b"http/1.1"]))
        .await
        .unwrap();
    completion_and_stream(&mut client, addr, Version::HTTP_2).await;
    drop(gateway);

    let (_gateway, addr) = start_with(
        &config,
        &["--ssl-certfile-path", &cert, "--ssl-keyfile-path", &key],
        &[],
    )
    .await;
    let (mut client, _) = Client::connect(addr, pki.client(&[b"http/1.1"]))
        .await
        .unwrap();
    completion_and_stream(&mut client, addr, Version::HTTP_11).await;
}

/// A plain-HTTP request to the TLS port is not served: it gets a 400 in OpenAI's error shape
/// saying the port speaks HTTPS, and the connection is closed.
#[tokio::test]
async fn plain_http_to_the_tls_port_gets_a_400_saying_https() {
    let pki = Pki::new("plain");
    let (_gateway, addr) = start_tls(&pki, "tls-plain").await;

    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let body = chat("demo", false);
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: localhost\r\ncontent-type: \
         application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the connection was left open");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400 "), "not a 400: {answer:?}");
    assert!(!answer.contains("hello over tls"), "served: {answer}");
    let (head, json) = answer.split_once("\r\n\r\n").unwrap();
    assert!(
        head.to_ascii_lowercase().contains("connection: close"),
        "{head}"
    );
    let json: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(json["error"]["type"], "invalid_request_error", "{json}");
    let message = json["error"]["message"].as_str().unwrap();
    assert!(message.contains("https://"), "{message}");

    // The gateway still serves HTTPS.
    let (mut client, _) = Client::connect(addr, pki.client(&[b"h2"])).await.unwrap();
    completion_and_stream(&mut client, addr, Version::HTTP_2).await;
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_ca_fails() {
    let pki = Pki::new("trusted");
    let stranger = Pki::new("stranger");
    let (_gateway, addr) = start_tls(&pki, "tls-untrusted").await;

    let error = match Client::connect(addr, stranger.client(&[b"h2", b"http/1.1"])).await {
        Ok(_) => panic!("a client trusting another CA completed the handshake"),
        Err(e) => e.to_string(),
    };
    assert!(
        error.contains("UnknownIssuer") || error.contains("invalid peer certificate"),
        "{error}"
    );

    let (mut client, _) = Client::connect(addr, pki.client(&[b"http/1.1"]))
        .await
        .unwrap();
    completion_and_stream(&mut client, addr, Version::HTTP_11).await;
}

/// Replace `dest` with `src`'s bytes the way a Secret volume or certbot does: a new file, then
/// a rename over the old one.
fn replace(dest: &Path, src: &Path) {
    let tmp = dest.with_extension("tmp");
    std::fs::copy(src, &tmp).unwrap();
    std::fs::rename(&tmp, dest).unwrap();
}

/// A client trusting only `pki`'s CA completes a handshake with the gateway.
async fn trusted_by(pki: &Pki, addr: SocketAddr) -> bool {
    Client::connect(addr, pki.client(&[b"http/1.1"]))
        .await
        .is_ok()
}

/// A renewed certificate and key are served to new connections without a restart, the
/// connection opened before keeps working, and a pair that does not match afterwards changes
/// nothing.
#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart() {
    let old = Pki::new("renew-old");
    let new = Pki::new("renew-new");
    let served = old.path("served");
    std::fs::create_dir_all(&served).unwrap();
    let (cert, key) = (served.join("cert.pem"), served.join("key.pem"));
    replace(&cert, &old.cert);
    replace(&key, &old.key);
    let config = write_config("tls-renew", DEMO);
    let (_gateway, addr) = start_with(
        &config,
        &[
            "--ssl_certfile_path",
            &s(&cert),
            "--ssl_keyfile_path",
            &s(&key),
            "--ssl-reload-seconds",
            "1",
        ],
        &[],
    )
    .await;
    let (mut before, _) = Client::connect(addr, old.client(&[b"h2"])).await.unwrap();
    completion_and_stream(&mut before, addr, Version::HTTP_2).await;
    assert!(
        !trusted_by(&new, addr).await,
        "the new CA verified the old certificate"
    );

    // The certificate first, the key a moment later: the watcher may see the pair half-done.
    replace(&cert, &new.cert);
    tokio::time::sleep(Duration::from_millis(300)).await;
    replace(&key, &new.key);
    let deadline = Instant::now() + Duration::from_secs(15);
    while !trusted_by(&new, addr).await {
        assert!(
            Instant::now() < deadline,
            "the renewed certificate was not served"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        !trusted_by(&old, addr).await,
        "new connections still get the old certificate"
    );
    completion_and_stream(&mut before, addr, Version::HTTP_2).await;
    let (mut after, _) = Client::connect(addr, new.client(&[b"h2"])).await.unwrap();
    completion_and_stream(&mut after, addr, Version::HTTP_2).await;

    // A certificate that does not match the key is not taken: the renewed pair stays.
    replace(&cert, &old.cert);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        trusted_by(&new, addr).await,
        "a mismatched pair replaced a good one"
    );
    let (mut after, _) = Client::connect(addr, new.client(&[b"http/1.1"]))
        .await
        .unwrap();
    completion_and_stream(&mut after, addr, Version::HTTP_11).await;
}

/// The binary with `args` after a good `--config`: it must exit within 20 s with a failure;
/// its stderr comes back.
fn failed_start(args: &[&str]) -> String {
    let config = write_config("tls-bad", DEMO);
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["--host", "127.0.0.1", "--port", "0"])
        .args(args)
        .env_remove("SSL_CERTFILE_PATH")
        .env_remove("SSL_KEYFILE_PATH")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("llmgate started with {args:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{args:?}: {status}: {stderr}");
    stderr
}

fn s(path: &Path) -> String {
    path.display().to_string()
}

#[test]
fn bad_certificate_or_key_files_stop_the_start_naming_the_file() {
    let pki = Pki::new("bad");
    let other = Pki::new("bad-other");
    let missing = pki.path("missing.pem");
    let not_a_cert = pki.path("not-a-cert.pem");
    std::fs::write(&not_a_cert, "this is not PEM\n").unwrap();
    let (cert, key) = (s(&pki.cert), s(&pki.key));

    // (certificate, key, what the message must contain)
    let cases: Vec<(String, String, Vec<String>)> = vec![
        (
            s(&missing),
            key.clone(),
            vec![
                s(&missing),
                "--ssl_certfile_path".into(),
                "cannot read".into(),
            ],
        ),
        (
            cert.clone(),
            s(&missing),
            vec![
                s(&missing),
                "--ssl_keyfile_path".into(),
                "cannot read".into(),
            ],
        ),
        // A directory cannot be read as a file.
        (
            s(&pki.dir),
            key.clone(),
            vec![s(&pki.dir), "--ssl_certfile_path".into()],
        ),
        (
            s(&not_a_cert),
            key.clone(),
            vec![s(&not_a_cert), "no PEM certificate".into()],
        ),
        // The certificate and the key swapped.
        (
            key.clone(),
            cert.clone(),
            vec![key.clone(), "no PEM certificate".into()],
        ),
        (
            cert.clone(),
            cert.clone(),
            vec![cert.clone(), "no PEM private key".into()],
        ),
        // Another certificate's key.
        (
            cert.clone(),
            s(&other.key),
            vec![
                s(&other.key),
                cert.clone(),
                "does not match".into(),
                "--ssl_keyfile_path".into(),
            ],
        ),
    ];
    for (cert_arg, key_arg, expected) in cases {
        let stderr = failed_start(&[
            "--ssl_certfile_path",
            &cert_arg,
            "--ssl_keyfile_path",
            &key_arg,
        ]);
        for needle in &expected {
            assert!(
                stderr.contains(needle.as_str()),
                "cert {cert_arg}, key {key_arg}: {needle:?} missing from: {stderr}"
            );
        }
    }

    // One file without the other is refused too (LiteLLM would quietly serve plain HTTP).
    let stderr = failed_start(&["--ssl_certfile_path", &cert]);
    assert!(stderr.contains("--ssl_keyfile_path"), "{stderr}");
    let stderr = failed_start(&["--ssl_keyfile_path", &key]);
    assert!(stderr.contains("--ssl_certfile_path"), "{stderr}");
}
