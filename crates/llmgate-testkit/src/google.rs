//! Google's OAuth 2.0 token endpoint (`oauth2.googleapis.com/token`) as it answers a service
//! account, and the test service account that signs for it.
//!
//! | request | answer |
//! |---|---|
//! | `POST /token`, `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>` | `{"access_token": "ya29.mock-<n>", "expires_in": <lifetime>, "token_type": "Bearer"}` |
//! | `POST /token`, `grant_type=refresh_token&client_id=..&client_secret=..&refresh_token=..` (a user's ADC, [`authorized_user_json`]) | the same; a wrong client is 401 `invalid_client`, a wrong refresh token 400 `invalid_grant` |
//!
//! The mock checks the assertion as Google does: an RS256 JWT whose signature verifies with
//! the test account's public key, whose `iss` is the account's email, `aud` the token URL it
//! was sent to, `scope` includes `https://www.googleapis.com/auth/cloud-platform`, and whose
//! `iat`..`exp` spans at most an hour around now. Otherwise it answers 400
//! `{"error": "invalid_grant", "error_description": ...}` (Google's words: "Invalid JWT
//! Signature.", "Invalid email or User ID", ...). A form that is not a JWT-bearer grant is 400
//! `unsupported_grant_type`.
//!
//! Issued tokens go into a [`AccessTokens`] list that the Vertex mock
//! ([`MockProvider::start_vertex`]) checks requests against: an unknown or expired token is
//! its 401 `UNAUTHENTICATED`.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Method, StatusCode};
use ring::signature::{RsaKeyPair, UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use serde_json::{json, Value};

use crate::server::{Ctx, Dialect, MockProvider, Recorded, Reply};

/// A throwaway RSA key made for these tests only (`openssl genpkey -algorithm RSA`); it
/// belongs to no Google account and grants nothing anywhere.
pub const TEST_PRIVATE_KEY_PEM: &str = include_str!("google/throwaway-test-key.pem");

/// The test service account's email.
pub const TEST_CLIENT_EMAIL: &str = "llmgate-test@llmgate-test.iam.gserviceaccount.com";

/// The test service account's key id.
pub const TEST_KEY_ID: &str = "0123456789abcdef0123456789abcdef01234567";

const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// The test user's OAuth client id (in [`authorized_user_json`]).
pub const TEST_USER_CLIENT_ID: &str = "llmgate-test.apps.googleusercontent.com";
/// The test user's OAuth client secret.
pub const TEST_USER_CLIENT_SECRET: &str = "llmgate-test-client-secret";
/// The test user's refresh token.
pub const TEST_USER_REFRESH_TOKEN: &str = "1//llmgate-test-refresh-token";

/// A user's application-default credentials, as `gcloud auth application-default login`
/// writes them, for the test user, with `token_uri` (the mock's
/// [`MockProvider::token_url`]; `gcloud` leaves it out, meaning Google's).
#[must_use]
pub fn authorized_user_json(token_uri: &str) -> String {
    json!({
        "type": "authorized_user",
        "client_id": TEST_USER_CLIENT_ID,
        "client_secret": TEST_USER_CLIENT_SECRET,
        "refresh_token": TEST_USER_REFRESH_TOKEN,
        "token_uri": token_uri,
        "universe_domain": "googleapis.com",
    })
    .to_string()
}

/// A service account key file's JSON, as the Cloud console downloads it, for the test key,
/// with `token_uri` (the mock's [`MockProvider::token_url`]) and `project_id`.
#[must_use]
pub fn service_account_json(token_uri: &str, project_id: &str) -> String {
    json!({
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": TEST_KEY_ID,
        "private_key": TEST_PRIVATE_KEY_PEM,
        "client_email": TEST_CLIENT_EMAIL,
        "client_id": "100000000000000000001",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "universe_domain": "googleapis.com",
    })
    .to_string()
}

/// The access tokens a mock token endpoint issued (Google's or IBM Cloud IAM's), each with its
/// expiry; shared with the provider mock (Vertex, watsonx), which accepts only these. Cheap to
/// clone: clones share the list.
#[derive(Clone, Debug)]
pub struct AccessTokens {
    lifetime: Duration,
    issued: Arc<Mutex<Vec<(String, Instant)>>>,
}

impl AccessTokens {
    /// Tokens that live `lifetime` (sent as `expires_in`, whole seconds).
    #[must_use]
    pub fn new(lifetime: Duration) -> Self {
        AccessTokens {
            lifetime,
            issued: Arc::default(),
        }
    }

    /// How many tokens were issued.
    #[must_use]
    pub fn issued(&self) -> usize {
        self.issued
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub(crate) fn lifetime(&self) -> Duration {
        self.lifetime
    }

    pub(crate) fn issue(&self, prefix: &str, n: u64) -> String {
        let token = format!("{prefix}{n}");
        self.issued
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((token.clone(), Instant::now() + self.lifetime));
        token
    }

    /// `None` when `token` was issued and has not expired, else Google's reason.
    pub(crate) fn check(&self, token: &str) -> Option<&'static str> {
        let issued = self.issued.lock().unwrap_or_else(PoisonError::into_inner);
        match issued.iter().find(|(t, _)| t == token) {
            Some((_, expires)) if Instant::now() < *expires => None,
            Some(_) => Some("Request had invalid authentication credentials. The access token expired."),
            None => Some("Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential."),
        }
    }
}

impl MockProvider {
    /// Starts a mock Google token endpoint on `127.0.0.1:0` that issues `tokens`; its
    /// [`token_url`](MockProvider::token_url) is a service account's `token_uri`.
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound.
    #[expect(
        clippy::expect_used,
        reason = "a test fixture: failing to bind loopback means the test cannot run at all"
    )]
    pub async fn start_google_token(tokens: AccessTokens) -> Self {
        Self::try_start_google_token(tokens)
            .await
            .expect("llmgate-testkit: could not bind 127.0.0.1:0")
    }

    /// Starts a mock Google token endpoint, returning the bind error.
    pub async fn try_start_google_token(tokens: AccessTokens) -> io::Result<Self> {
        Self::start_dialect(Arc::new(TokenEndpoint { tokens })).await
    }

    /// `http://127.0.0.1:PORT/token`: the token endpoint's URL.
    #[must_use]
    pub fn token_url(&self) -> String {
        format!("{}/token", self.base_url())
    }
}

struct TokenEndpoint {
    tokens: AccessTokens,
}

fn oauth_error(error: &str, description: &str) -> Reply {
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    Reply::Full {
        status: StatusCode::BAD_REQUEST,
        headers,
        body: Bytes::from(json!({"error": error, "error_description": description}).to_string()),
    }
}

impl Dialect for TokenEndpoint {
    fn default_models(&self) -> Vec<String> {
        Vec::new()
    }

    fn is_stream(&self, _req: &Recorded) -> bool {
        false
    }

    fn respond(&self, req: &Recorded, _content: Option<&str>, ctx: &Ctx) -> Reply {
        if req.method != Method::POST || req.path != "/token" {
            return oauth_error("invalid_request", "Not Found");
        }
        let form = String::from_utf8_lossy(&req.body);
        let field = |name: &str| {
            form.split('&')
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .map(str::to_owned)
        };
        if field("grant_type").as_deref() == Some("refresh_token") {
            if let Some(refused) = refresh_refused(&field) {
                return refused;
            }
            return self.issue(ctx);
        }
        if field("grant_type").as_deref()
            != Some("urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer")
        {
            return oauth_error("unsupported_grant_type", "Invalid grant_type: ");
        }
        let audience = format!("http://{}/token", req.header("host").unwrap_or("127.0.0.1"));
        if let Err(why) = field("assertion")
            .ok_or("Missing required parameter: assertion")
            .and_then(|jwt| verify(&jwt, &audience))
        {
            return oauth_error("invalid_grant", why);
        }
        self.issue(ctx)
    }
}

/// Google's refusal of a refresh-token grant, if it refuses it.
fn refresh_refused(field: &dyn Fn(&str) -> Option<String>) -> Option<Reply> {
    let client_ok = field("client_id").as_deref() == Some(TEST_USER_CLIENT_ID)
        && field("client_secret").as_deref() == Some(TEST_USER_CLIENT_SECRET);
    if !client_ok {
        let mut reply = oauth_error("invalid_client", "The OAuth client was not found.");
        if let Reply::Full { status, .. } = &mut reply {
            *status = StatusCode::UNAUTHORIZED;
        }
        return Some(reply);
    }
    let refresh = field("refresh_token").map(|t| t.replace("%2F", "/"));
    (refresh.as_deref() != Some(TEST_USER_REFRESH_TOKEN))
        .then(|| oauth_error("invalid_grant", "Bad Request"))
}

impl TokenEndpoint {
    /// A fresh token's answer.
    fn issue(&self, ctx: &Ctx) -> Reply {
        let token = self.tokens.issue("ya29.mock-", ctx.seq);
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        let body = json!({
            "access_token": token,
            "expires_in": self.tokens.lifetime.as_secs(),
            "token_type": "Bearer",
        });
        Reply::Full {
            status: StatusCode::OK,
            headers,
            body: Bytes::from(body.to_string()),
        }
    }
}

/// Checks a JWT-bearer assertion as Google does (see the module docs).
fn verify(jwt: &str, audience: &str) -> Result<(), &'static str> {
    let mut parts = jwt.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("Invalid JWT: Token must be a short-lived token and in a reasonable timeframe");
    };
    let decode = |s: &str| {
        URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| "Invalid JWT Signature.")
    };
    let header: Value =
        serde_json::from_slice(&decode(header)?).map_err(|_| "Invalid JWT Signature.")?;
    if header["alg"] != "RS256" {
        return Err("Invalid JWT Signature.");
    }
    let signed = &jwt[..jwt.len() - signature.len() - 1];
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_key())
        .verify(signed.as_bytes(), &decode(signature)?)
        .map_err(|_| "Invalid JWT Signature.")?;
    let claims: Value =
        serde_json::from_slice(&decode(claims)?).map_err(|_| "Invalid JWT Signature.")?;
    if claims["iss"] != TEST_CLIENT_EMAIL {
        return Err("Invalid email or User ID");
    }
    if claims["aud"] != audience {
        return Err("Invalid JWT: Failed audience check.");
    }
    let scopes = claims["scope"].as_str().unwrap_or_default();
    if !scopes.split(' ').any(|s| s == SCOPE) {
        return Err("Invalid OAuth scope or ID token audience provided.");
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match (claims["iat"].as_u64(), claims["exp"].as_u64()) {
        (Some(iat), Some(exp)) if iat <= now + 60 && exp > now && exp - iat <= 3600 => Ok(()),
        _ => Err("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."),
    }
}

/// The test key's public half (DER `RSAPublicKey`).
fn public_key() -> Vec<u8> {
    let body: String = TEST_PRIVATE_KEY_PEM
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    STANDARD
        .decode(body)
        .ok()
        .and_then(|der| RsaKeyPair::from_pkcs8(&der).ok())
        .map(|k| k.public().as_ref().to_vec())
        .unwrap_or_default()
}
