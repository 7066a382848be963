//! Redacting secrets from upstream text before it reaches a client or a log line.
//!
//! An upstream's error message is passed on to the client (and logged), so an upstream that
//! echoes what it received (its `Authorization` header, the key in a URL) would leak the
//! deployment's key to any caller. Every upstream message goes through [`redact`] when its
//! error is made, so the client, the logs (debug included), the spend log and the error events
//! of streams only ever see `[REDACTED]` in its place. Removed:
//!
//! - the deployment's own secrets: `api_key`, AWS `aws_access_key_id`,
//!   `aws_secret_access_key`, `aws_session_token`, and the values of its configured headers
//!   whose name says they carry a credential (`authorization`, `*key*`, `*token*`,
//!   `*secret*`);
//! - anything shaped like a key: `sk-...` (OpenAI, Anthropic, OpenRouter, LiteLLM virtual
//!   keys), `Bearer <token>`, `AKIA...`/`ASIA...` (AWS access key ids), `AIza...` (Google API
//!   keys), and a token of 16 or more characters right after a word ending in `key`, `token`,
//!   `secret` or `password` and `:` or `=` (`"api_key": "..."`, `token=...`): the one matcher
//!   in `llmgate_core::redact`, which logs and the spend log use too.
//!
//! Only failures pay for it: successful answers and stream events are never scanned.

use std::borrow::Cow;

use llmgate_core::DeploymentSpec;

use crate::error::Error;

/// `e` with every upstream-provided text redacted of `dep`'s secrets and of key-shaped tokens.
pub(crate) fn error(e: Error, dep: &DeploymentSpec) -> Error {
    match e {
        Error::Upstream {
            provider,
            deployment,
            status,
            message,
            error_type,
            code,
            param,
            retry_after,
        } => Error::Upstream {
            provider,
            deployment,
            status,
            message: redact(&message, dep).into_owned(),
            error_type: error_type.map(|t| Box::from(redact(&t, dep).as_ref())),
            code: code.map(|c| Box::from(redact(&c, dep).as_ref())),
            param: param.map(|p| Box::from(redact(&p, dep).as_ref())),
            retry_after,
        },
        Error::Unreachable {
            provider,
            deployment,
            cause,
        } => Error::Unreachable {
            provider,
            deployment,
            cause: redact(&cause, dep).into_owned(),
        },
        Error::InvalidResponse {
            provider,
            deployment,
            detail,
        } => Error::InvalidResponse {
            provider,
            deployment,
            detail: redact(&detail, dep).into_owned(),
        },
        other => other,
    }
}

/// `text` without `dep`'s secrets and key-shaped tokens; borrowed when there was none.
pub(crate) fn redact<'a>(text: &'a str, dep: &DeploymentSpec) -> Cow<'a, str> {
    let out = llmgate_core::redact::replace_known(text, secrets(dep));
    match llmgate_core::redact::key_shaped_masked(&out) {
        Some(cleaned) => Cow::Owned(cleaned),
        None => out,
    }
}

/// The deployment's own secrets.
fn secrets(dep: &DeploymentSpec) -> impl Iterator<Item = &str> {
    let key = dep.api_key.as_ref().map(|k| k.expose());
    let aws = dep.aws.as_ref().into_iter().flat_map(|a| {
        [
            a.access_key_id.as_ref(),
            a.secret_access_key.as_ref(),
            a.session_token.as_ref(),
        ]
        .into_iter()
        .flatten()
        .map(|s| s.expose())
    });
    let headers = dep.headers.iter().filter_map(|(name, value)| {
        let n = name.as_str();
        let credential = n == "authorization"
            || n.contains("key")
            || n.contains("token")
            || n.contains("secret");
        credential.then(|| value.to_str().ok()).flatten()
    });
    // `Bearer <key>` as configured: the token alone is the secret.
    let headers = headers.flat_map(|v| {
        let token = v
            .split_once(' ')
            .map(|(_, t)| t.trim())
            .filter(|t| !t.is_empty());
        [Some(v), token].into_iter().flatten()
    });
    key.into_iter().chain(aws).chain(headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmgate_core::{AwsParams, ProviderKind, Secret};

    fn dep() -> DeploymentSpec {
        let mut d = DeploymentSpec::new("d", "g", ProviderKind::OpenAi, "m");
        d.api_key = Some(Secret::new("plain-provider-key-123"));
        d.aws = Some(AwsParams {
            access_key_id: Some(Secret::new("AKIDEXAMPLE")),
            secret_access_key: Some(Secret::new("wJalrXUtnFEMI/K7MDENG")),
            session_token: None,
            region: None,
        });
        d.headers.push((
            http::HeaderName::from_static("x-custom-token"),
            http::HeaderValue::from_static("hdr-secret-value"),
        ));
        d
    }

    #[test]
    fn the_deployments_own_secrets_go() {
        let d = dep();
        let text = "got key plain-provider-key-123, id AKIDEXAMPLE, secret wJalrXUtnFEMI/K7MDENG, \
                    header hdr-secret-value";
        let got = redact(text, &d);
        for secret in [
            "plain-provider-key-123",
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG",
            "hdr-secret-value",
        ] {
            assert!(!got.contains(secret), "{got}");
        }
        assert!(
            got.starts_with("got key [REDACTED], id [REDACTED]"),
            "{got}"
        );
    }

    #[test]
    fn key_shaped_tokens_go() {
        let d = DeploymentSpec::new("d", "g", ProviderKind::OpenAi, "m");
        let cases = [
            (
                "Incorrect API key provided: sk-proj-abcDEF123456789xyz.",
                "Incorrect API key provided: [REDACTED].",
            ),
            (
                "header was Authorization: Bearer eyJhbGciOi.J9.abc-def_123",
                "header was Authorization: Bearer [REDACTED]",
            ),
            (
                "bad credentials AKIAIOSFODNN7EXAMPLE here",
                "bad credentials [REDACTED] here",
            ),
            (
                "key AIzaSyA-1234567890abcdefghijklmnopqrstu is invalid",
                "key [REDACTED] is invalid",
            ),
            (
                r#"{"api_key": "0123456789abcdef0123", "n": 1}"#,
                r#"{"api_key": "[REDACTED]", "n": 1}"#,
            ),
            (
                "access_token=abcdefghijklmnopqrstuvwx&x=1",
                "access_token=[REDACTED]&x=1",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(redact(text, &d), want, "{text}");
        }
        // Ordinary messages stay as they are (and are not copied).
        for text in [
            "Rate limit reached for gpt-4o in organization org-123 on tokens per min",
            "This model's maximum context length is 8192 tokens",
            "invalid x-api-key",
            "token: short",
            "The bearer of bad news",
            "risk-assessment failed",
        ] {
            assert!(matches!(redact(text, &d), Cow::Borrowed(_)), "{text}");
        }
    }
}
