//! `llmgate healthcheck`: the container image's health check. The image has no shell and no
//! curl, so the binary probes the gateway itself: one HTTP/1.1 `GET /health/liveliness` over a
//! [`TcpStream`], [`TIMEOUT`] in all, exit 0 on a `200` and 1 otherwise, with one line on stderr
//! saying why (Docker, podman and Kubernetes exec probes read 1 as unhealthy).
//!
//! ```text
//! llmgate healthcheck                   # http://127.0.0.1:$PORT/health/liveliness, PORT else 4000
//! llmgate healthcheck --port 8080
//! llmgate healthcheck --tls             # https://; the default when SSL_CERTFILE_PATH is set
//! llmgate healthcheck --url http://10.0.0.5:4000/health/readiness
//! ```
//!
//! No HTTP client crate: the probe asks one question of a server on the same machine and reads
//! one status line, which `std::net` does in a few lines, with nothing to start (no runtime, no
//! gateway) in a process that a container engine runs every few seconds. Over TLS (the gateway
//! serving `--ssl_certfile_path`) it speaks through rustls, the gateway's own TLS library, and
//! does not verify the certificate: the probe asks whether this listener answers, not who it
//! is, and a certificate names a host, not `127.0.0.1`.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs as _};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};

/// How long the whole probe (connect, ask, read the status line) may take.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// The path probed unless `--url` names another: the liveness endpoint, which answers 200
/// whenever the process serves, without touching any backend.
pub const LIVELINESS: &str = "/health/liveliness";

/// The longest status line read; a server sending more without a line break is not ours.
const MAX_STATUS_LINE: usize = 1024;

/// The variable that turns the gateway's listener to HTTPS, and so the probe's default.
const SSL_CERTFILE_PATH: &str = "SSL_CERTFILE_PATH";

/// `llmgate healthcheck`'s flags.
#[derive(Debug, Args)]
pub struct Probe {
    /// The gateway's address.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,

    /// The gateway's port.
    #[arg(long, env = "PORT", default_value_t = 4000)]
    pub port: u16,

    /// Speak HTTPS, without verifying the certificate [default: on when SSL_CERTFILE_PATH is
    /// set, as the gateway then serves HTTPS].
    #[arg(long)]
    pub tls: bool,

    /// A full http:// or https:// URL to probe instead of --host, --port, --tls and
    /// /health/liveliness, e.g. http://127.0.0.1:4000/health/readiness.
    #[arg(long, value_name = "URL")]
    pub url: Option<http::Uri>,
}

/// What to ask, and of whom.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    host: String,
    port: u16,
    path: String,
    tls: bool,
}

impl Target {
    /// `host:port`, with IPv6 hosts in brackets: the `Host` header and the URL's authority.
    fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}{}", self.authority(), self.path)
    }
}

impl Probe {
    /// The target the flags name; `--url` wins over `--host`, `--port` (which the `PORT`
    /// variable of the image always sets) and `--tls`.
    fn target(&self, ssl_certfile_set: bool) -> Result<Target, String> {
        let Some(url) = &self.url else {
            return Ok(Target {
                host: self.host.clone(),
                port: self.port,
                path: LIVELINESS.to_owned(),
                tls: self.tls || ssl_certfile_set,
            });
        };
        let tls = match url.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            Some(other) => {
                return Err(format!(
                    "--url {url}: {other}:// is not supported, give an http:// or https:// URL"
                ))
            }
            None => return Err(format!("--url {url}: give a full http:// or https:// URL")),
        };
        let host = url.host().ok_or_else(|| format!("--url {url}: no host"))?;
        Ok(Target {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port: url.port_u16().unwrap_or(if tls { 443 } else { 80 }),
            path: url
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
            tls,
        })
    }
}

/// Runs the probe: exit 0 on a 200, else 1 with the reason on stderr.
pub fn run(probe: &Probe) -> ExitCode {
    let ssl_certfile_set = std::env::var_os(SSL_CERTFILE_PATH).is_some_and(|v| !v.is_empty());
    let target = match probe.target(ssl_certfile_set) {
        Ok(target) => target,
        Err(why) => {
            eprintln!("llmgate healthcheck: {why}");
            return ExitCode::FAILURE;
        }
    };
    match check(&target, Instant::now() + TIMEOUT) {
        Ok(status_line) => {
            let _ = writeln!(std::io::stdout(), "{}: {status_line}", target.url());
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("llmgate healthcheck: {}: {why}", target.url());
            ExitCode::FAILURE
        }
    }
}

/// Asks `target` and returns the status line of a 200, or why the answer is not one.
fn check(target: &Target, deadline: Instant) -> Result<String, String> {
    let socket = connect(target, deadline)?;
    // A clone shares the socket, and so its timeouts, with the stream that TLS may own.
    let timeouts = socket
        .try_clone()
        .map_err(|e| io_reason(&e, "preparing the socket"))?;
    let mut stream: Box<dyn Stream> = if target.tls {
        Box::new(tls_stream(socket, &target.host)?)
    } else {
        Box::new(socket)
    };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: llmgate-healthcheck\r\nConnection: close\r\n\r\n",
        target.path,
        target.authority()
    );
    // Over TLS the handshake runs inside the first write, reading as well as writing.
    let time = left(deadline)?;
    timeouts
        .set_write_timeout(Some(time))
        .and_then(|()| timeouts.set_read_timeout(Some(time)))
        .and_then(|()| stream.write_all(request.as_bytes()))
        .and_then(|()| stream.flush())
        .map_err(|e| io_reason(&e, "sending the request"))?;

    let mut line = Vec::with_capacity(128);
    let mut chunk = [0_u8; 256];
    while !line.windows(2).any(|w| w == b"\r\n") {
        if line.len() > MAX_STATUS_LINE {
            return Err("the answer is not HTTP (no status line)".to_owned());
        }
        timeouts
            .set_read_timeout(Some(left(deadline)?))
            .map_err(|e| io_reason(&e, "reading the answer"))?;
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => line.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(io_reason(&e, "reading the answer")),
        }
    }
    // A TLS record (an alert: 0x15, version 3.x) in answer to plain HTTP.
    if !target.tls && line.starts_with(&[0x15, 0x03]) {
        return Err("answered in TLS: the gateway serves HTTPS, probe it with --tls".to_owned());
    }
    let text = String::from_utf8_lossy(&line);
    let status_line = text.split("\r\n").next().unwrap_or_default().trim();
    match status_code(status_line) {
        Some(200) => Ok(status_line.to_owned()),
        Some(_) => Err(format!("answered {status_line:?}, not 200")),
        None if status_line.is_empty() => Err("closed the connection without answering".to_owned()),
        None => Err(format!("answered {status_line:?}, which is not HTTP")),
    }
}

/// A byte stream the probe talks HTTP over: the socket, or TLS over it.
trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

/// TLS over `socket` (the handshake happens on the first write), naming `host` by SNI when it
/// is a name. The certificate is not verified (see the module docs); the handshake's signatures
/// are, so the peer holds the key of the certificate it shows.
fn tls_stream(
    socket: TcpStream,
    host: &str,
) -> Result<StreamOwned<ClientConnection, TcpStream>, String> {
    let provider = Arc::new(ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    let name = match host.parse::<IpAddr>() {
        Ok(ip) => ServerName::IpAddress(ip.into()),
        Err(_) => ServerName::try_from(host.to_owned())
            .map_err(|e| format!("TLS: {host} is not a server name: {e}"))?,
    };
    let connection =
        ClientConnection::new(Arc::new(config), name).map_err(|e| format!("TLS: {e}"))?;
    Ok(StreamOwned::new(connection, socket))
}

/// Accepts any certificate; checks the handshake's signatures with the provider's algorithms.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Connects to the first of the host's addresses that accepts before the deadline.
fn connect(target: &Target, deadline: Instant) -> Result<TcpStream, String> {
    let addrs: Vec<SocketAddr> = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", target.host))?
        .collect();
    let mut why = format!("{} has no address", target.host);
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, left(deadline)?) {
            Ok(stream) => return Ok(stream),
            Err(e) => why = io_reason(&e, &format!("connecting to {addr}")),
        }
    }
    Err(why)
}

/// The time left before `deadline`, or the probe's timeout as the reason to give up.
fn left(deadline: Instant) -> Result<Duration, String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(timed_out())
    } else {
        Ok(left)
    }
}

fn timed_out() -> String {
    format!("no answer within {}s", TIMEOUT.as_secs())
}

/// An I/O error as a reason: timeouts say so (a blocking socket's timeout is `WouldBlock` on
/// Unix), the rest name what was being done.
fn io_reason(e: &std::io::Error, doing: &str) -> String {
    match e.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => timed_out(),
        _ => format!("{doing}: {e}"),
    }
}

/// The code of an HTTP/1 status line (`HTTP/1.1 200 OK` -> 200).
fn status_code(line: &str) -> Option<u16> {
    let mut parts = line.split_whitespace();
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser as _;

    fn probe(args: &[&str]) -> Probe {
        let cli = Cli::try_parse_from(["llmgate", "healthcheck"].iter().chain(args)).unwrap();
        match cli.command {
            Some(Command::Healthcheck(probe)) => probe,
            other => panic!("expected healthcheck, got {other:?}"),
        }
    }

    #[test]
    fn defaults_to_liveliness_on_loopback() {
        let target = probe(&["--port", "8080"]).target(false).unwrap();
        assert_eq!(target.url(), "http://127.0.0.1:8080/health/liveliness");
        let target = probe(&["--host", "::1", "--port", "8080"])
            .target(false)
            .unwrap();
        assert_eq!(target.url(), "http://[::1]:8080/health/liveliness");
        assert_eq!(target.authority(), "[::1]:8080");
    }

    #[test]
    fn needs_no_config_source() {
        // The serve flags' required --config/--model do not apply to the probe.
        assert!(Cli::try_parse_from(["llmgate", "healthcheck"]).is_ok());
    }

    #[test]
    fn tls_by_flag_or_by_the_gateway_s_variable() {
        let target = probe(&["--tls", "--port", "8443"]).target(false).unwrap();
        assert_eq!(target.url(), "https://127.0.0.1:8443/health/liveliness");
        let target = probe(&["--port", "8443"]).target(true).unwrap();
        assert!(target.tls, "SSL_CERTFILE_PATH set: HTTPS");
    }

    #[test]
    fn url_wins_and_names_its_scheme() {
        let target = probe(&["--port", "1", "--url", "http://[::1]:4001/health/readiness"])
            .target(true)
            .unwrap();
        assert_eq!(
            target,
            Target {
                host: "::1".into(),
                port: 4001,
                path: "/health/readiness".into(),
                tls: false,
            }
        );
        let target = probe(&["--url", "http://gateway"]).target(false).unwrap();
        assert_eq!(target.url(), "http://gateway:80/");
        let target = probe(&["--url", "https://gateway"]).target(false).unwrap();
        assert_eq!(target.url(), "https://gateway:443/");
        let err = probe(&["--url", "ftp://127.0.0.1:4000/"])
            .target(false)
            .unwrap_err();
        assert!(err.contains("ftp:// is not supported"), "{err}");
        let err = probe(&["--url", "/health"]).target(false).unwrap_err();
        assert!(err.contains("full http:// or https:// URL"), "{err}");
    }

    #[test]
    fn reads_the_status_code() {
        assert_eq!(status_code("HTTP/1.1 200 OK"), Some(200));
        assert_eq!(status_code("HTTP/1.0 503 Service Unavailable"), Some(503));
        assert_eq!(status_code("SSH-2.0-OpenSSH_9.2"), None);
        assert_eq!(status_code("HTTP/1.1"), None);
        assert_eq!(status_code(""), None);
    }
}
