//! [`Tokens`]: short-lived access tokens, one per set of credentials, shared by every deployment
//! and request that uses them: Google's for Vertex AI (a service account's signed JWT, a user's
//! refresh token, or the metadata server's default service account, see [`crate::vertex`]),
//! IBM Cloud IAM's for watsonx.ai (an API key, see [`crate::watsonx`]).
//!
//! A token is used until it is *stale* (half its life left, at most five minutes before it
//! expires); the first request after that starts one refresh in the background and keeps
//! using the token it has. Only a request that finds no token, or one about to expire (a tenth
//! of its life left, at most 30 seconds), waits for a refresh. However many requests need one,
//! one exchange runs per set of credentials at a time: the others wait for it and take its
//! token. A failed exchange is the request's error (see [`Tokens::bearer`]); a failed
//! background refresh is logged and the next request tries again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use dashmap::DashMap;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full, Limited};
use llmgate_core::{Deployment, DeploymentSpec, GoogleCredentials, Secret};
use std::fmt;
use tokio::time::Instant;

use crate::client::UpstreamClient;
use crate::error::{chain, Error};
use crate::vertex::auth;

/// The longest a token exchange may take (less when the deployment's `timeout` is shorter).
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long after a failed background refresh the next one may start (requests keep the
/// current token meanwhile; one that finds it expired still waits for an exchange of its own).
const BACKGROUND_RETRY: Duration = Duration::from_secs(10);

/// The most of the token endpoint's answer that is read.
const ANSWER_LIMIT: usize = 64 * 1024;

/// What a token is got with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum TokenKey {
    /// Google credentials (a service account's key, or a user's refresh token).
    Google(GoogleCredentials),
    /// An IBM Cloud API key, exchanged at this IAM token endpoint.
    IbmApiKey {
        /// The API key.
        api_key: Secret,
        /// IAM's token endpoint.
        iam_url: Arc<str>,
    },
}

impl fmt::Display for TokenKey {
    /// Names the credentials without their contents.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenKey::Google(c) => c.fmt(f),
            TokenKey::IbmApiKey { .. } => f.write_str("the deployment's api_key"),
        }
    }
}

impl TokenKey {
    /// Whose token it is, for messages.
    fn issuer(&self) -> &'static str {
        match self {
            TokenKey::Google(_) => "a Google access token",
            TokenKey::IbmApiKey { .. } => "an IBM Cloud IAM token",
        }
    }

    /// The error `code` of a failed exchange: the setting to look at.
    fn code(&self) -> &'static str {
        match self {
            TokenKey::Google(_) => "vertex_credentials",
            TokenKey::IbmApiKey { .. } => "watsonx_credentials",
        }
    }
}

/// Access tokens by credentials. Cheap to clone: clones share the tokens.
#[derive(Clone, Default)]
pub(crate) struct Tokens {
    sources: Arc<DashMap<TokenKey, Arc<Source>>>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("credentials", &self.sources.len())
            .finish()
    }
}

/// One set of credentials and its current token.
struct Source {
    credentials: TokenKey,
    current: ArcSwapOption<Token>,
    /// Held while an exchange runs: one at a time.
    exchange: tokio::sync::Mutex<()>,
    /// A background refresh has been started and has not finished.
    refreshing: AtomicBool,
    /// No background refresh before this (set when one fails). Locked only for stale tokens.
    quiet_until: std::sync::Mutex<Option<Instant>>,
}

struct Token {
    value: Secret,
    stale_at: Instant,
    expires_at: Instant,
}

impl Token {
    fn new(issued: auth::Issued, now: Instant) -> Self {
        let life = issued.lifetime;
        Token {
            value: Secret::new(issued.token),
            stale_at: now + life.saturating_sub((life / 2).min(Duration::from_secs(300))),
            expires_at: now + life.saturating_sub((life / 10).min(Duration::from_secs(30))),
        }
    }
}

impl Tokens {
    /// A token for `credentials`, to send as `Authorization: Bearer` to `dep`. Fails with a
    /// 401 when the credentials cannot be read or the token endpoint refuses them, with a 503
    /// when the token endpoint cannot be reached or fails; the message names the credentials
    /// (the file's path) and the deployment, never their contents.
    pub(crate) async fn bearer(
        &self,
        client: &UpstreamClient,
        credentials: &TokenKey,
        dep: &Deployment,
    ) -> Result<Secret, Error> {
        let source = match self.sources.get(credentials) {
            Some(s) => Arc::clone(&s),
            None => Arc::clone(
                self.sources
                    .entry(credentials.clone())
                    .or_insert_with(|| {
                        Arc::new(Source {
                            credentials: credentials.clone(),
                            current: ArcSwapOption::empty(),
                            exchange: tokio::sync::Mutex::new(()),
                            refreshing: AtomicBool::new(false),
                            quiet_until: std::sync::Mutex::new(None),
                        })
                    })
                    .value(),
            ),
        };
        let now = Instant::now();
        if let Some(t) = source.current.load_full() {
            if now < t.stale_at {
                return Ok(t.value.clone());
            }
            if now < t.expires_at {
                source.refresh_in_background(client, dep);
                return Ok(t.value.clone());
            }
        }
        source.refresh(client, dep).await
    }
}

impl Source {
    /// Waits for the one exchange in flight, or runs one: a fresh token.
    async fn refresh(
        &self,
        client: &UpstreamClient,
        dep: &DeploymentSpec,
    ) -> Result<Secret, Error> {
        let _one = self.exchange.lock().await;
        if let Some(t) = self.current.load_full() {
            // Another request refreshed it while this one waited.
            if Instant::now() < t.stale_at {
                return Ok(t.value.clone());
            }
        }
        let token = exchange(client, &self.credentials, dep).await?;
        let value = token.value.clone();
        self.current.store(Some(Arc::new(token)));
        Ok(value)
    }

    /// Starts one refresh in the background unless one is running, or one failed less than
    /// [`BACKGROUND_RETRY`] ago.
    fn refresh_in_background(self: &Arc<Self>, client: &UpstreamClient, dep: &Deployment) {
        {
            let mut until = self
                .quiet_until
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match *until {
                Some(t) if Instant::now() < t => return,
                Some(_) => *until = None,
                None => {}
            }
        }
        if self.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let (me, client, dep) = (Arc::clone(self), client.clone(), dep.clone());
        tokio::spawn(async move {
            if let Err(e) = me.refresh(&client, &dep).await {
                tracing::warn!(deployment = %dep.id, error = %e, "refreshing the access token failed; the current one is used until it expires");
                *me.quiet_until
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) =
                    Some(Instant::now() + BACKGROUND_RETRY);
            }
            me.refreshing.store(false, Ordering::Release);
        });
    }
}

/// Why an exchange failed: the status the client gets (401: the credentials; 503: the token
/// endpoint) and what went wrong.
type Failure = (StatusCode, String);

/// One token exchange for `credentials`; a failure is the [`Error`] [`Tokens::bearer`]
/// describes.
async fn exchange(
    client: &UpstreamClient,
    credentials: &TokenKey,
    dep: &DeploymentSpec,
) -> Result<Token, Error> {
    let asked = Instant::now();
    let limit = dep
        .timeout
        .map_or(EXCHANGE_TIMEOUT, |t| t.min(EXCHANGE_TIMEOUT));
    let issued = issue(client, credentials, limit)
        .await
        .map_err(|(status, detail)| {
            let err = Error::Upstream {
                provider: dep.provider,
                deployment: dep.id.clone(),
                status,
                message: format!(
                    "could not get {} with {credentials}: {detail}",
                    credentials.issuer()
                ),
                error_type: Some(Box::from(if status == StatusCode::UNAUTHORIZED {
                    "authentication_error"
                } else {
                    "service_unavailable"
                })),
                code: Some(Box::from(credentials.code())),
                param: None,
                retry_after: None,
            };
            crate::redact::error(err, dep)
        })?;
    tracing::debug!(deployment = %dep.id, lifetime = ?issued.lifetime, "got an access token");
    Ok(Token::new(issued, asked))
}

/// Reads the credentials, asks their token endpoint, reads its answer.
async fn issue(
    client: &UpstreamClient,
    credentials: &TokenKey,
    limit: Duration,
) -> Result<auth::Issued, Failure> {
    let (url, ask) = match credentials {
        TokenKey::Google(google) => google_ask(google)?,
        TokenKey::IbmApiKey { api_key, iam_url } => (
            iam_url.to_string(),
            Ask::Form(format!(
                "grant_type=urn%3Aibm%3Aparams%3Aoauth%3Agrant-type%3Aapikey&apikey={}",
                auth::form_encode(api_key.expose())
            )),
        ),
    };
    let (status, answer) = fetch(client, &url, ask, limit).await?;
    if !status.is_success() {
        let out = if status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        let why = auth::refusal(&answer);
        return Err((out, format!("the token endpoint answered {status}{why}")));
    }
    auth::read_token(&answer).map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e))
}

/// Where and how a token for Google credentials is asked for.
fn google_ask(google: &GoogleCredentials) -> Result<(String, Ask), Failure> {
    let refused = |detail: String| (StatusCode::UNAUTHORIZED, detail);
    let text = match google {
        GoogleCredentials::Metadata(host) => return Ok((metadata_token_url(host), Ask::Metadata)),
        GoogleCredentials::File(path) => std::fs::read_to_string(&**path)
            .map_err(|e| refused(format!("it cannot be read ({e})")))?,
        GoogleCredentials::Json(json) => json.expose().to_owned(),
    };
    let account = auth::parse(&text).map_err(|e| refused(format!("it {e}")))?;
    let body = account
        .token_request(crate::dialect::now())
        .map_err(refused)?;
    Ok((account.token_uri().to_owned(), Ask::Form(body)))
}

/// The metadata server's token URL for the default service account, asking for
/// [`auth::SCOPE`] as Google's libraries do.
fn metadata_token_url(host: &str) -> String {
    let host = host.trim().trim_end_matches('/');
    let host = host.strip_prefix("http://").unwrap_or(host);
    format!(
        "http://{host}/computeMetadata/v1/instance/service-accounts/default/token?scopes={}",
        auth::form_encode(auth::SCOPE)
    )
}

/// How a token is asked for.
enum Ask {
    /// `POST` this `application/x-www-form-urlencoded` body (OAuth's token endpoints).
    Form(String),
    /// `GET` with `Metadata-Flavor: Google` (the metadata server).
    Metadata,
}

/// Asks `url` as `ask` says within `limit`: the answer's status and (at most
/// [`ANSWER_LIMIT`] of) its body.
async fn fetch(
    client: &UpstreamClient,
    url: &str,
    ask: Ask,
    limit: Duration,
) -> Result<(StatusCode, Bytes), Failure> {
    let uri = Uri::try_from(url).map_err(|_| {
        (
            StatusCode::UNAUTHORIZED,
            "its token endpoint is not a URL".to_owned(),
        )
    })?;
    let mut req = match ask {
        Ask::Form(body) => {
            let mut req = Request::new(Full::new(Bytes::from(body)));
            *req.method_mut() = Method::POST;
            req.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            );
            req
        }
        Ask::Metadata => {
            let mut req = Request::new(Full::new(Bytes::new()));
            req.headers_mut()
                .insert("metadata-flavor", HeaderValue::from_static("Google"));
            req
        }
    };
    *req.uri_mut() = uri;
    let unavailable = |detail: String| (StatusCode::SERVICE_UNAVAILABLE, detail);
    tokio::time::timeout(limit, async {
        let res = client.inner.request(req).await.map_err(|e| {
            unavailable(format!(
                "the token endpoint {url} could not be reached: {}",
                chain(&e)
            ))
        })?;
        let status = res.status();
        let body = Limited::new(res.into_body(), ANSWER_LIMIT)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Ok((status, body))
    })
    .await
    .map_err(|_| {
        unavailable(format!(
            "the token endpoint did not answer within {limit:?}"
        ))
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_urls() {
        let scopes = "?scopes=https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fcloud-platform";
        assert_eq!(
            metadata_token_url("metadata.google.internal"),
            format!("http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token{scopes}")
        );
        assert_eq!(
            metadata_token_url("http://127.0.0.1:8080/"),
            format!("http://127.0.0.1:8080/computeMetadata/v1/instance/service-accounts/default/token{scopes}")
        );
    }

    #[test]
    fn a_token_goes_stale_before_it_expires() {
        let now = Instant::now();
        let issued = |secs| auth::Issued {
            token: "t".into(),
            lifetime: Duration::from_secs(secs),
        };
        let t = Token::new(issued(3600), now);
        assert_eq!(t.stale_at - now, Duration::from_secs(3300));
        assert_eq!(t.expires_at - now, Duration::from_secs(3570));
        let t = Token::new(issued(2), now);
        assert_eq!(t.stale_at - now, Duration::from_secs(1));
        assert_eq!(t.expires_at - now, Duration::from_millis(1800));
    }
}
