//! [`UpstreamClient`]: the one pooled HTTP client a process uses for every provider.
//!
//! hyper-util's legacy client over hyper-rustls (rustls with the `ring` provider, Mozilla's
//! roots from `webpki-roots`, so no system certificate store is needed), speaking HTTP/1.1 and
//! HTTP/2 (chosen by ALPN) to `https://` and plain HTTP/1.1 to `http://` (local vLLM, Ollama,
//! LM Studio). Connections are pooled per host and reused across deployments.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::error::Error;

/// The hyper client type behind [`UpstreamClient`].
pub(crate) type HyperClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// How the pooled upstream client behaves. Built by value:
///
/// ```
/// use std::time::Duration;
/// use llmgate_providers::UpstreamClientConfig;
/// let config = UpstreamClientConfig::default()
///     .pool_idle_timeout(Duration::from_secs(30))
///     .connect_timeout(Duration::from_secs(3));
/// ```
#[derive(Debug, Clone)]
pub struct UpstreamClientConfig {
    pool_idle_timeout: Duration,
    pool_max_idle_per_host: usize,
    connect_timeout: Duration,
    tcp_nodelay: bool,
    tcp_keepalive: Option<Duration>,
    default_timeout: Option<Duration>,
}

impl Default for UpstreamClientConfig {
    /// Idle connections kept 90 s, at most 256 per host; connect timeout 10 s; `TCP_NODELAY`
    /// on; TCP keep-alive 60 s; attempts without a configured timeout bounded at 600 s (the
    /// OpenAI SDKs' default).
    fn default() -> Self {
        UpstreamClientConfig {
            pool_idle_timeout: Duration::from_secs(90),
            pool_max_idle_per_host: 256,
            connect_timeout: Duration::from_secs(10),
            tcp_nodelay: true,
            tcp_keepalive: Some(Duration::from_secs(60)),
            default_timeout: Some(Duration::from_secs(600)),
        }
    }
}

impl UpstreamClientConfig {
    /// How long an idle pooled connection is kept (default 90 s).
    #[must_use]
    pub fn pool_idle_timeout(mut self, d: Duration) -> Self {
        self.pool_idle_timeout = d;
        self
    }

    /// How many idle connections are kept per host (default 256).
    #[must_use]
    pub fn pool_max_idle_per_host(mut self, n: usize) -> Self {
        self.pool_max_idle_per_host = n;
        self
    }

    /// How long a TCP connect may take (default 10 s). A connect that takes longer fails as
    /// "could not be reached" (502, retryable).
    #[must_use]
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Sets `TCP_NODELAY` on upstream sockets (default on: small requests, latency matters).
    #[must_use]
    pub fn tcp_nodelay(mut self, on: bool) -> Self {
        self.tcp_nodelay = on;
        self
    }

    /// TCP keep-alive on upstream sockets (default 60 s; `None` turns it off).
    #[must_use]
    pub fn tcp_keepalive(mut self, d: Option<Duration>) -> Self {
        self.tcp_keepalive = d;
        self
    }

    /// The deadline of an attempt whose deployment and request set no `timeout` (default
    /// 600 s; `None` waits forever, which a hung provider turns into a hung client).
    #[must_use]
    pub fn default_timeout(mut self, d: Option<Duration>) -> Self {
        self.default_timeout = d;
        self
    }
}

/// The pooled upstream client: cheap to clone (clones share the pool). Build one per process
/// and give it to [`crate::ProviderService::new`].
///
/// Building it spawns nothing; connections and their tasks are created on the Tokio runtime
/// of the first request that needs them.
#[derive(Clone)]
pub struct UpstreamClient {
    pub(crate) inner: HyperClient,
    pub(crate) default_timeout: Option<Duration>,
}

impl fmt::Debug for UpstreamClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamClient")
            .field("default_timeout", &self.default_timeout)
            .finish_non_exhaustive()
    }
}

impl UpstreamClient {
    /// Builds the client. Fails only if rustls rejects its own safe defaults ([`Error::Tls`]),
    /// which the `ring` provider never does.
    pub fn new(config: UpstreamClientConfig) -> Result<Self, Error> {
        let mut http = HttpConnector::new();
        // The TLS connector in front handles https://; let it through.
        http.enforce_http(false);
        http.set_nodelay(config.tcp_nodelay);
        http.set_connect_timeout(Some(config.connect_timeout));
        http.set_keepalive(config.tcp_keepalive);

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(provider)
            .map_err(Error::Tls)?
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);

        let inner = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(config.pool_idle_timeout)
            .pool_max_idle_per_host(config.pool_max_idle_per_host)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(https);
        Ok(UpstreamClient {
            inner,
            default_timeout: config.default_timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_outside_a_runtime() {
        let c = UpstreamClient::new(UpstreamClientConfig::default()).unwrap();
        assert_eq!(c.default_timeout, Some(Duration::from_secs(600)));
        let _clone = c.clone();
    }
}
