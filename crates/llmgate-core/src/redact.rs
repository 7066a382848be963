//! Secrets kept out of logs and the spend log.
//!
//! An upstream's error message is passed on to the client, logged and kept in the spend log,
//! and upstreams sometimes echo what they were sent ("Incorrect API key provided: sk-...").
//! The providers crate redacts every upstream message with the deployment's own secrets and
//! [`key_shaped_masked`] when the error is made; [`scrub`] does the same for any other text
//! headed for a log line or the spend log (a prompt or an answer kept with
//! `store_prompts_in_spend_logs`, an error from elsewhere), and bounds its length. A secret is
//! replaced by [`REDACTED`]. Texts with nothing to mask are not copied.

use std::borrow::Cow;

/// What a secret is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// The longest text [`scrub`] answers, in bytes (cut at a character boundary, `…` added).
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// Known secrets shorter than this are not searched for (a 3-character "key" would redact
/// ordinary words); such keys are not real provider keys anyway.
pub const MIN_SECRET_LEN: usize = 6;

/// A token after `key=`/`token:` shorter than this is kept (ids, counts, `"invalid"`).
const MIN_ASSIGNED_LEN: usize = 16;

/// `text` with the `known` secrets and key-shaped tokens replaced by [`REDACTED`], cut to
/// [`MAX_MESSAGE_BYTES`]. Borrowed when there was nothing to change.
pub fn scrub<'a>(text: &'a str, known: &[&str]) -> Cow<'a, str> {
    scrub_within(text, known, MAX_MESSAGE_BYTES)
}

/// [`scrub`], cut to `max` bytes instead.
pub fn scrub_within<'a>(text: &'a str, known: &[&str], max: usize) -> Cow<'a, str> {
    let out = replace_known(text, known.iter().copied());
    let out = match key_shaped_masked(&out) {
        Some(masked) => Cow::Owned(masked),
        None => out,
    };
    match out {
        Cow::Borrowed(t) if t.len() <= max => Cow::Borrowed(t),
        other => Cow::Owned(truncate(&other, max)),
    }
}

/// `text` with each of `secrets` (those of [`MIN_SECRET_LEN`] or more) replaced by
/// [`REDACTED`].
pub fn replace_known<'a, 's>(
    text: &'a str,
    secrets: impl IntoIterator<Item = &'s str>,
) -> Cow<'a, str> {
    let mut out = Cow::Borrowed(text);
    for secret in secrets {
        if secret.len() >= MIN_SECRET_LEN && out.contains(secret) {
            out = Cow::Owned(out.replace(secret, REDACTED));
        }
    }
    out
}

/// `text` cut to at most `max` bytes at a character boundary, with `…` when it was cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = String::with_capacity(end + 3);
    out.push_str(&text[..end]);
    out.push('…');
    out
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

/// `text` with key-shaped tokens replaced by [`REDACTED`], or `None` when it has none:
/// `sk-...`, `AKIA...`/`ASIA...`, `AIza...`, the token after `Bearer`, and a token of 16 or more
/// characters after a word ending in `key`, `token`, `secret` or `password` and `:` or `=`.
pub fn key_shaped_masked(text: &str) -> Option<String> {
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

    #[test]
    fn known_secrets_and_key_shapes_are_replaced() {
        let out = scrub(
            "your key 0123456789qwerty is not valid; org key sk-org-abcdefgh12345",
            &["0123456789qwerty"],
        );
        assert_eq!(out, "your key [REDACTED] is not valid; org key [REDACTED]");
        let out = scrub(
            r#"[{"role":"user","content":"Bearer abcdefgh.ijk-lmnop"}]"#,
            &[],
        );
        assert!(!out.contains("abcdefgh.ijk-lmnop"), "{out}");
    }

    #[test]
    fn plain_messages_are_borrowed_untouched() {
        for text in [
            "upstream exploded",
            "Rate limit reached for gpt-4o in organization org-abc on tokens per min",
            "key is missing",
            "Incorrect API key provided: [REDACTED].",
        ] {
            assert!(
                matches!(scrub(text, &[]), Cow::Borrowed(t) if t == text),
                "{text}"
            );
        }
    }

    #[test]
    fn long_texts_are_cut_at_a_character_boundary() {
        let text = "é".repeat(MAX_MESSAGE_BYTES);
        let out = scrub(&text, &[]);
        assert!(out.len() <= MAX_MESSAGE_BYTES);
        assert!(out.ends_with('…'));
        assert_eq!(scrub_within("abcdef", &[], 4), "a…");
    }
}
