//! [`Poster`]: POSTs one payload to one URL, retrying with backoff on timeouts, connection
//! errors, 429 and 5xx; any other answer is final. On the providers' client stack
//! (hyper-util's pooled client, rustls with ring and webpki roots).

use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::AlertingSettings;

/// The alert sender's HTTP client and retry rules.
#[derive(Debug, Clone)]
pub(crate) struct Poster {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
    retries: u32,
    backoff: Duration,
}

/// Why a payload was not delivered.
#[derive(Debug)]
pub(crate) struct Undelivered(pub(crate) String);

impl Poster {
    /// A client for `settings`' timeouts and retries; fails only if TLS cannot be set up.
    pub(crate) fn new(settings: &AlertingSettings) -> Result<Poster, String> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(settings.timeout));
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(provider)
            .map_err(|e| format!("cannot set up TLS for alerts: {e}"))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(https);
        Ok(Poster {
            client,
            timeout: settings.timeout,
            retries: settings.retries,
            backoff: settings.backoff,
        })
    }

    /// POSTs `body` (JSON) to `url`, with the retries; the last failure when none succeeded.
    pub(crate) async fn post(&self, url: &str, body: Bytes) -> Result<(), Undelivered> {
        let mut wait = self.backoff;
        let mut last = String::new();
        for attempt in 0..=self.retries {
            if attempt > 0 {
                tokio::time::sleep(wait).await;
                wait = wait.saturating_mul(2);
            }
            match self.once(url, body.clone()).await {
                Ok(status) if status.is_success() => return Ok(()),
                Ok(status)
                    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS =>
                {
                    last = format!("answered {status}");
                }
                Ok(status) => return Err(Undelivered(format!("answered {status}"))),
                Err(e) => last = e,
            }
        }
        Err(Undelivered(last))
    }

    async fn once(&self, url: &str, body: Bytes) -> Result<StatusCode, String> {
        let req = Request::builder()
            .method(Method::POST)
            .uri(url)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .map_err(|e| format!("invalid URL: {e}"))?;
        let call = async {
            let res = self.client.request(req).await.map_err(|e| e.to_string())?;
            let status = res.status();
            // Read the answer so the connection goes back to the pool.
            let _ = res.into_body().collect().await;
            Ok::<_, String>(status)
        };
        match tokio::time::timeout(self.timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {} ms", self.timeout.as_millis())),
        }
    }
}
