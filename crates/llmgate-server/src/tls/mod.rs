//! HTTPS on the listener: LiteLLM's `--ssl_certfile_path` and `--ssl_keyfile_path`, served by
//! Pingora with rustls.
//!
//! The certificate chain and the private key are read and checked here, before the gateway
//! opens anything: a file that is missing or unreadable, holds no PEM certificate or key, or a
//! key that does not belong to the certificate stops the start with a message naming the file
//! and its flag. Pingora's own loader would panic inside its runtime instead, leaving a process
//! that serves nothing, so the checked pair is handed to Pingora as a certificate resolver and
//! its loader never runs. The resolver is fixed, or, by default, reloads the files when they
//! change ([`reload`]), so a renewed certificate needs no restart.
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
use pingora_core::listeners::tls::TlsSettings;
use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::ResolvesServerCert;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::InconsistentKeys;

pub use plain::PlainHttpAnswer;

mod plain;
mod reload;

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
    /// offered by ALPN. With `reload_every`, the files are checked that often and a changed
    /// pair is served to new connections once it loads and checks out.
    pub fn settings(&self, reload_every: Option<Duration>) -> anyhow::Result<TlsSettings> {
        let resolver: Arc<dyn ResolvesServerCert> = match reload_every {
            Some(every) => reload::watch(self.clone(), every)?,
            None => Arc::new(SingleCertAndKey::from(self.load()?)),
        };
        // The paths are only kept by Pingora: with a resolver set it never reads them.
        let mut settings =
            TlsSettings::intermediate(&self.cert.to_string_lossy(), &self.key.to_string_lossy())
                .context("preparing the TLS listener")?;
        settings.set_cert_resolver(resolver);
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
