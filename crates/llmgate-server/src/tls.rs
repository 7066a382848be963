//! HTTPS on the listener: LiteLLM's `--ssl_certfile_path` and `--ssl_keyfile_path`, served by
//! Pingora with rustls.
//!
//! The certificate chain and the private key are read and checked here, before the gateway
//! opens anything: a file that is missing or unreadable, holds no PEM certificate or key, or a
//! key that does not belong to the certificate stops the start with a message naming the file
//! and its flag. Pingora's own loader would panic inside its runtime instead, leaving a process
//! that serves nothing, so the checked pair is handed to Pingora as a fixed certificate
//! resolver and its loader never runs.
//!
//! The listener offers HTTP/2 and HTTP/1.1 by ALPN (`h2` first); a client that offers no ALPN
//! gets HTTP/1.1. TLS 1.2 and 1.3 with rustls's default cipher suites (ring).
//!
//! A plain-HTTP request sent to the TLS port ([`PlainHttpAnswer`]) is answered with a 400 in
//! OpenAI's error shape saying the port speaks HTTPS, instead of a TLS alert the client shows as
//! a garbled or empty reply.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use bytes::Bytes;
use llmgate::HostError;
use pingora_core::listeners::tls::TlsSettings;
use pingora_core::listeners::PreTlsProcess;
use pingora_core::protocols::l4::stream::Stream as L4Stream;
use pingora_core::protocols::Peek as _;
use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::InconsistentKeys;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// After the 400 on the TLS port, how long what the client still sends is read and dropped, so
/// the kernel does not reset the connection (and destroy the answer) over unread bytes.
const LINGER_FOR: Duration = Duration::from_secs(2);
/// The most read and dropped in that time.
const LINGER_BYTES: usize = 64 * 1024;

/// The two files of a TLS listener, as given on the command line.
#[derive(Clone, Debug)]
pub struct CertFiles {
    /// The certificate chain (PEM), the server's certificate first.
    pub cert: PathBuf,
    /// The private key of the first certificate (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl CertFiles {
    /// Read both files and check that the key belongs to the certificate.
    pub fn load(&self) -> anyhow::Result<CertifiedKey> {
        let chain = read_chain(&self.cert)?;
        let key = read_key(&self.key)?;
        let key = ring::default_provider()
            .key_provider
            .load_private_key(key)
            .map_err(|e| {
                anyhow::anyhow!(
                    "the private key in {} (--ssl_keyfile_path) cannot be used: {e}",
                    self.key.display()
                )
            })?;
        let certified = CertifiedKey::new(chain, key);
        match certified.keys_match() {
            // ring can tell the public key of every key type it loads; a key that cannot
            // say is let through, as rustls itself does.
            Ok(()) | Err(rustls::Error::InconsistentKeys(InconsistentKeys::Unknown)) => {
                Ok(certified)
            }
            Err(rustls::Error::InconsistentKeys(_)) => Err(anyhow::anyhow!(
                "the private key in {} (--ssl_keyfile_path) does not match the certificate in {} \
                 (--ssl_certfile_path)",
                self.key.display(),
                self.cert.display()
            )),
            Err(e) => Err(anyhow::anyhow!(
                "the first certificate in {} (--ssl_certfile_path) cannot be used: {e}",
                self.cert.display()
            )),
        }
    }

    /// Pingora's TLS settings for a listener that serves this pair, with HTTP/2 and HTTP/1.1
    /// offered by ALPN.
    pub fn settings(&self) -> anyhow::Result<TlsSettings> {
        let certified = self.load()?;
        // The paths are only kept by Pingora: with a resolver set it never reads them.
        let mut settings =
            TlsSettings::intermediate(&self.cert.to_string_lossy(), &self.key.to_string_lossy())
                .context("preparing the TLS listener")?;
        settings.set_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
        settings.enable_h2();
        Ok(settings)
    }
}

impl fmt::Display for CertFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (key {})", self.cert.display(), self.key.display())
    }
}

/// Every certificate in the PEM file at `path`, in order.
fn read_chain(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path).with_context(|| {
        format!(
            "cannot read the TLS certificate file {} (--ssl_certfile_path)",
            path.display()
        )
    })?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            anyhow::anyhow!(
                "the TLS certificate file {} (--ssl_certfile_path) is not valid PEM: {e}",
                path.display()
            )
        })?;
    if chain.is_empty() {
        anyhow::bail!(
            "the TLS certificate file {} (--ssl_certfile_path) holds no PEM certificate \
             (-----BEGIN CERTIFICATE-----)",
            path.display()
        );
    }
    Ok(chain)
}

/// The first private key in the PEM file at `path`.
fn read_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    let pem = std::fs::read(path).with_context(|| {
        format!(
            "cannot read the TLS private key file {} (--ssl_keyfile_path)",
            path.display()
        )
    })?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => anyhow::anyhow!(
            "the TLS private key file {} (--ssl_keyfile_path) holds no PEM private key \
             (PKCS#8, PKCS#1 RSA or SEC1 EC)",
            path.display()
        ),
        other => anyhow::anyhow!(
            "the TLS private key file {} (--ssl_keyfile_path) is not valid PEM: {other}",
            path.display()
        ),
    })
}

/// Pingora's pre-TLS hook on the TLS listener: when a connection's first byte is an ASCII
/// letter (an HTTP method) instead of a TLS record type, it answers a 400 in OpenAI's error shape
/// ("this port speaks HTTPS"), closes the connection and fails the handshake. Anything else is
/// left to rustls. The wait for the first byte is bounded by Pingora's handshake timeout (60 s),
/// as the handshake itself is.
#[derive(Debug, Default)]
pub struct PlainHttpAnswer;

#[async_trait]
impl PreTlsProcess for PlainHttpAnswer {
    async fn process(&self, stream: &mut L4Stream) -> pingora_core::Result<()> {
        let mut first = [0u8; 1];
        // Closed before a byte: the handshake reports it as before.
        if stream.try_peek(&mut first).await.is_err() || !first[0].is_ascii_alphabetic() {
            return Ok(());
        }
        let answer = llmgate::raw_answer(
            &HostError::Malformed(
                "this port speaks HTTPS (TLS), and a plain HTTP request was sent to it: use \
                 https://"
                    .into(),
            ),
            true,
        );
        answer_and_close(stream, answer).await;
        pingora_core::Error::e_explain(
            pingora_core::ErrorType::InvalidHTTPHeader,
            "a plain HTTP request on the TLS port (answered 400)",
        )
    }
}

/// Write `answer`, shut the write side, and read and drop what the client still sends for a
/// moment (a lingering close). Failures end it early: the connection is dropped either way.
async fn answer_and_close(stream: &mut L4Stream, answer: Bytes) {
    if stream.write_all(&answer).await.is_err() || stream.flush().await.is_err() {
        return;
    }
    if stream.shutdown().await.is_err() {
        return;
    }
    let drain = async {
        let mut scratch = [0u8; 4096];
        let mut left = LINGER_BYTES;
        while let Ok(n @ 1..) = stream.read(&mut scratch).await {
            left = left.saturating_sub(n);
            if left == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_FOR, drain).await;
}
