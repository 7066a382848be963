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
//!   `secret` or `password` and `:` or `=` (`"api_key": "..."`, `token=...`).
//!
//! Only failures pay for it: successful answers and stream events are never scanned.

use std::borrow::Cow;

use llmgate_core::DeploymentSpec;

use crate::error::Error;

/// What a secret is replaced with.
pub(crate) const REDACTED: &str = "[REDACTED]";

/// Secrets shorter than this are not searched for (a 3-character "key" would redact ordinary
/// words); such keys are not real provider keys anyway.
const MIN_SECRET_LEN: usize = 6;

/// A token after `key=`/`token:` shorter than this is kept (ids, counts, `"invalid"`).
const MIN_ASSIGNED_LEN: usize = 16;

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
    let mut out = Cow::Borrowed(text);
    for secret in secrets(dep) {
        if secret.len() >= MIN_SECRET_LEN && out.contains(secret) {
            out = Cow::Owned(out.replace(secret, REDACTED));
        }
    }
    match patterns(&out) {
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

/// Is `b` part of a token (letters, digits and the characters keys are made of)?
fn token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'+' | b'/' | b'=')
}

/// The end of the token starting at `i`.
fn token_end(bytes: &[u8], i: usize) -> usize {
    bytes[i..]
        .iter()
        .position(|b| !token_byte(*b))
        .map_or(bytes.len(), |n| i + n)
}

/// `text` with key-shaped tokens replaced, or `None` when it has none.
fn patterns(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    // (start, end) of each token to replace, in order.
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let at_word_start = i == 0 || !token_byte(bytes[i - 1]);
        if at_word_start && token_byte(bytes[i]) {
            let end = token_end(bytes, i);
            // A sentence's full stop after a key is not part of it.
            let key_end = end
                - bytes[i..end]
                    .iter()
                    .rev()
                    .take_while(|b| **b == b'.')
                    .count();
            let word = &text[i..end];
            // `secret=value` is one token: the name ends at the `=`.
            let name_end = bytes[i..end]
                .iter()
                .position(|b| *b == b'=')
                .map_or(end, |n| i + n);
            if key_shaped(&text[i..key_end]) {
                spans.push((i, key_end));
            } else if word.eq_ignore_ascii_case("bearer") {
                // `Bearer <token>`: the token after the spaces.
                let start = end + bytes[end..].iter().take_while(|b| **b == b' ').count();
                let token_to = token_end(bytes, start);
                if start > end && token_to - start >= 8 {
                    spans.push((start, token_to));
                    i = token_to;
                    continue;
                }
            } else if names_a_secret(&text[i..name_end]) {
                // `key: value`, `"token": "value"`, `secret=value`.
                let mut j = name_end;
                while j < bytes.len() && matches!(bytes[j], b'"' | b'\'' | b' ' | b'\\') {
                    j += 1;
                }
                if j < bytes.len() && matches!(bytes[j], b':' | b'=') {
                    j += 1;
                    while j < bytes.len() && matches!(bytes[j], b'"' | b'\'' | b' ' | b'\\') {
                        j += 1;
                    }
                    let value_to = token_end(bytes, j);
                    if value_to - j >= MIN_ASSIGNED_LEN {
                        spans.push((j, value_to));
                        i = value_to;
                        continue;
                    }
                }
            }
            i = end;
        } else {
            i += 1;
        }
    }
    if spans.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    for (start, end) in spans {
        out.push_str(&text[from..start]);
        out.push_str(REDACTED);
        from = end;
    }
    out.push_str(&text[from..]);
    Some(out)
}

/// `sk-...`, `AKIA...`/`ASIA...`, `AIza...`.
fn key_shaped(word: &str) -> bool {
    let alnum_after = |prefix: &str, min: usize| {
        word.strip_prefix(prefix).is_some_and(|rest| {
            rest.len() >= min
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
    };
    let aws_key_id = (word.starts_with("AKIA") || word.starts_with("ASIA"))
        && word.len() >= 20
        && word.bytes().all(|b| b.is_ascii_alphanumeric());
    alnum_after("sk-", 8) || aws_key_id || alnum_after("AIza", 30)
}

/// A word naming a secret: ends in `key`, `token`, `secret` or `password` (any case, with
/// `_`/`-` inside: `api_key`, `x-api-key`, `access_token`, `client_secret`).
fn names_a_secret(word: &str) -> bool {
    let lower = word.to_ascii_lowercase();
    let lower = lower.trim_end_matches(['"', '\'']);
    ["key", "token", "secret", "password"]
        .iter()
        .any(|s| lower.ends_with(s))
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
