//! Google's OAuth 2.0 for server-to-server calls: the credentials JSON a deployment names, the
//! token request made from it, and the token endpoint's answer.
//!
//! - A **service account** key (`"type": "service_account"`, what the Cloud console downloads)
//!   signs a JWT with its RSA private key (RS256: RSASSA-PKCS1-v1_5 with SHA-256, by `ring`)
//!   asserting `iss` = its `client_email`, `scope` = [`SCOPE`], `aud` = its `token_uri`, valid
//!   for an hour, and exchanges it with the `urn:ietf:params:oauth:grant-type:jwt-bearer` grant
//!   (RFC 7523) at its `token_uri` (default [`DEFAULT_TOKEN_URI`]).
//! - A **user's** application-default credentials (`"type": "authorized_user"`, what
//!   `gcloud auth application-default login` writes) trade their `refresh_token` with the
//!   `refresh_token` grant.
//!
//! The answer is `{"access_token", "expires_in", "token_type": "Bearer"}`. Messages about the
//! credentials name what is wrong, never a value from them.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::PrivatePkcs8KeyDer;
use serde::Deserialize;

/// The scope Vertex AI's calls need.
pub(crate) const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// Google's token endpoint, when the credentials name none.
pub(crate) const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

/// How long a signed assertion is valid (Google's maximum).
const ASSERTION_LIFETIME: u64 = 3600;

/// The `grant_type` of a JWT-bearer exchange, form-encoded.
const JWT_BEARER: &str = "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer";

/// Credentials that can be exchanged for access tokens.
pub(crate) enum Account {
    /// A service account's key.
    Service {
        /// `client_email`: the JWT's issuer.
        email: String,
        /// `private_key_id`: the JWT's `kid`.
        key_id: Option<String>,
        /// The parsed RSA key.
        key: Box<RsaKeyPair>,
        /// Where the JWT is exchanged.
        token_uri: String,
    },
    /// A user's refresh token.
    User {
        /// `client_id`.
        client_id: String,
        /// `client_secret`.
        client_secret: String,
        /// `refresh_token`.
        refresh_token: String,
        /// Where it is exchanged.
        token_uri: String,
    },
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Account::Service { email, .. } => write!(f, "Service({email})"),
            Account::User { .. } => f.write_str("User(<redacted>)"),
        }
    }
}

/// The fields of a credentials file that llmgate reads.
#[derive(Deserialize)]
struct CredentialsFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    client_email: Option<String>,
    private_key: Option<String>,
    private_key_id: Option<String>,
    token_uri: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    refresh_token: Option<String>,
}

/// Parses credentials JSON. The error says what is missing or wrong, never a value.
pub(crate) fn parse(text: &str) -> Result<Account, String> {
    let file: CredentialsFile = serde_json::from_str(text).map_err(|e| {
        format!(
            "is not valid credentials JSON (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    let token_uri = file
        .token_uri
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| DEFAULT_TOKEN_URI.to_owned());
    let missing = |field: &str| format!("has no `{field}`");
    match file.kind.as_deref() {
        Some("service_account") | None => {
            let email = file.client_email.ok_or_else(|| missing("client_email"))?;
            let pem = file.private_key.ok_or_else(|| missing("private_key"))?;
            Ok(Account::Service {
                email,
                key_id: file.private_key_id,
                key: Box::new(rsa_key(&pem)?),
                token_uri,
            })
        }
        Some("authorized_user") => Ok(Account::User {
            client_id: file.client_id.ok_or_else(|| missing("client_id"))?,
            client_secret: file.client_secret.ok_or_else(|| missing("client_secret"))?,
            refresh_token: file.refresh_token.ok_or_else(|| missing("refresh_token"))?,
            token_uri,
        }),
        Some(other) => Err(format!(
            "has `type` \"{}\": only service_account and authorized_user credentials are supported",
            other.escape_debug()
        )),
    }
}

/// The RSA key of a PKCS#8 PEM `private_key`.
fn rsa_key(pem: &str) -> Result<RsaKeyPair, String> {
    let der = PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|_| "has a `private_key` that is not a PKCS#8 PEM key".to_owned())?;
    RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())
        .map_err(|e| format!("has a `private_key` that is not a usable RSA key ({e})"))
}

impl Account {
    /// Where the token request goes.
    pub(crate) fn token_uri(&self) -> &str {
        match self {
            Account::Service { token_uri, .. } | Account::User { token_uri, .. } => token_uri,
        }
    }

    /// The form-encoded body of the token request, made at `now` (Unix seconds).
    pub(crate) fn token_request(&self, now: u64) -> Result<String, String> {
        match self {
            Account::Service {
                email,
                key_id,
                key,
                token_uri,
            } => {
                let jwt = sign(key, key_id.as_deref(), email, token_uri, now)?;
                Ok(format!("grant_type={JWT_BEARER}&assertion={jwt}"))
            }
            Account::User {
                client_id,
                client_secret,
                refresh_token,
                ..
            } => {
                let enc = |s: &str| form_encode(s);
                Ok(format!(
                    "grant_type=refresh_token&client_id={}&client_secret={}&refresh_token={}",
                    enc(client_id),
                    enc(client_secret),
                    enc(refresh_token)
                ))
            }
        }
    }
}

/// The signed JWT `header.claims.signature`, each part base64url without padding.
fn sign(
    key: &RsaKeyPair,
    key_id: Option<&str>,
    email: &str,
    audience: &str,
    now: u64,
) -> Result<String, String> {
    let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
    if let Some(kid) = key_id {
        header["kid"] = kid.into();
    }
    let claims = serde_json::json!({
        "iss": email,
        "scope": SCOPE,
        "aud": audience,
        "iat": now,
        "exp": now + ASSERTION_LIFETIME,
    });
    let mut jwt = URL_SAFE_NO_PAD.encode(header.to_string());
    jwt.push('.');
    jwt.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        jwt.as_bytes(),
        &mut signature,
    )
    .map_err(|_| "could not sign the token request with its `private_key`".to_owned())?;
    jwt.push('.');
    jwt.push_str(&URL_SAFE_NO_PAD.encode(signature));
    Ok(jwt)
}

/// `application/x-www-form-urlencoded` for one value.
pub(crate) fn form_encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    out
}

/// An access token and how long it lives.
#[derive(Debug)]
pub(crate) struct Issued {
    /// `access_token`.
    pub(crate) token: String,
    /// `expires_in` (an hour when the endpoint does not say).
    pub(crate) lifetime: Duration,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    expires_in: Option<u64>,
}

/// Reads a 2xx answer of the token endpoint.
pub(crate) fn read_token(body: &[u8]) -> Result<Issued, String> {
    let answer: TokenAnswer = serde_json::from_slice(body)
        .map_err(|_| "the token endpoint's answer is not JSON".to_owned())?;
    let token = answer
        .access_token
        .filter(|t| !t.is_empty())
        .ok_or("the token endpoint's answer has no access_token")?;
    Ok(Issued {
        token,
        lifetime: Duration::from_secs(answer.expires_in.unwrap_or(3600)),
    })
}

/// The `error` and `error_description` of the token endpoint's refusal (OAuth's error shape),
/// else nothing: the status says enough.
pub(crate) fn refusal(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Refusal {
        error: Option<serde_json::Value>,
        error_description: Option<String>,
        /// IBM Cloud IAM's `{"errorCode", "errorMessage"}`.
        #[serde(rename = "errorCode")]
        error_code: Option<String>,
        #[serde(rename = "errorMessage")]
        error_message: Option<String>,
    }
    let Ok(r) = serde_json::from_slice::<Refusal>(body) else {
        return String::new();
    };
    if let (None, Some(m)) = (&r.error, &r.error_message) {
        return match &r.error_code {
            Some(c) => format!(": {c} ({m})"),
            None => format!(": {m}"),
        };
    }
    let error = match r.error {
        Some(serde_json::Value::String(s)) => s,
        // Google APIs' own shape: {"error": {"message": ...}}.
        Some(v) => v
            .get("message")
            .and_then(|m| m.as_str())
            .unwrap_or_default()
            .to_owned(),
        None => String::new(),
    };
    match r.error_description {
        Some(d) if !error.is_empty() => format!(": {error} ({d})"),
        Some(d) => format!(": {d}"),
        None if !error.is_empty() => format!(": {error}"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_errors_never_show_values() {
        let e =
            parse(r#"{"type": "service_account", "client_email": "a@b", "private_key": "sekrit"}"#)
                .unwrap_err();
        assert_eq!(e, "has a `private_key` that is not a PKCS#8 PEM key");
        let e = parse(r#"{"type": "service_account", "private_key": "sekrit"}"#).unwrap_err();
        assert_eq!(e, "has no `client_email`");
        let e = parse("{\"private_key\": \"sekrit\",,}").unwrap_err();
        assert!(
            e.starts_with("is not valid credentials JSON (line 1"),
            "{e}"
        );
        assert!(!e.contains("sekrit"));
        let e = parse(r#"{"type": "external_account"}"#).unwrap_err();
        assert!(e.contains("\"external_account\""), "{e}");
    }

    #[test]
    fn user_credentials_use_the_refresh_grant() {
        let a = parse(
            r#"{"type": "authorized_user", "client_id": "c", "client_secret": "s/x", "refresh_token": "r+1"}"#,
        )
        .unwrap();
        assert_eq!(a.token_uri(), DEFAULT_TOKEN_URI);
        assert_eq!(
            a.token_request(0).unwrap(),
            "grant_type=refresh_token&client_id=c&client_secret=s%2Fx&refresh_token=r%2B1"
        );
    }

    #[test]
    fn token_answers_and_refusals() {
        let t = read_token(
            br#"{"access_token": "ya29.x", "expires_in": 3599, "token_type": "Bearer"}"#,
        )
        .unwrap();
        assert_eq!((t.token.as_str(), t.lifetime.as_secs()), ("ya29.x", 3599));
        assert!(read_token(br#"{"expires_in": 1}"#).is_err());
        assert_eq!(
            refusal(
                br#"{"error": "invalid_grant", "error_description": "Invalid JWT Signature."}"#
            ),
            ": invalid_grant (Invalid JWT Signature.)"
        );
        assert_eq!(refusal(b"<html>"), "");
        assert_eq!(
            refusal(br#"{"errorCode": "BXNIM0415E", "errorMessage": "Provided API key could not be found."}"#),
            ": BXNIM0415E (Provided API key could not be found.)"
        );
    }
}
