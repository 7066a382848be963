//! Reading OpenAI-compatible answers cheaply: a complete body's validity and usage, and the
//! usage in a stream chunk, without building the rest of either.

use llmgate_core::wire::Usage;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

/// What a complete (non-stream) success body says, read cheaply.
#[derive(Debug)]
pub(crate) enum Answer {
    /// A valid body, with its usage when it reports one.
    Ok(Option<Usage>),
    /// Valid JSON carrying an `error` object instead of an answer.
    Error,
    /// Not valid JSON.
    Invalid(String),
}

/// Validates a complete body and takes its usage without building the rest of it.
pub(crate) fn read_answer(bytes: &[u8]) -> Answer {
    #[derive(Deserialize)]
    struct Partial<'a> {
        #[serde(borrow, default)]
        usage: Option<&'a RawValue>,
        #[serde(default)]
        error: Option<Value>,
        #[serde(default)]
        choices: Option<IgnoredAny>,
        #[serde(default)]
        data: Option<IgnoredAny>,
    }
    match serde_json::from_slice::<Partial<'_>>(bytes) {
        Ok(p)
            if p.choices.is_none()
                && p.data.is_none()
                && p.error.as_ref().is_some_and(|e| !e.is_null()) =>
        {
            Answer::Error
        }
        // A usage block we cannot read is not worth failing a good answer for.
        Ok(p) => Answer::Ok(p.usage.and_then(|raw| serde_json::from_str(raw.get()).ok())),
        Err(e) => Answer::Invalid(e.to_string()),
    }
}

/// A stream event's usage, if it carries one, and whether it is the usage-only chunk (empty
/// `choices`) that the client did not ask for. Chunks without a `"usage": {` are not parsed.
pub(crate) fn chunk_usage(data: &str) -> Option<(Usage, bool)> {
    if !has_usage_object(data) {
        return None;
    }
    #[derive(Deserialize)]
    struct Chunk {
        #[serde(default)]
        choices: Option<Vec<IgnoredAny>>,
        #[serde(default)]
        usage: Option<Usage>,
        /// Groq reports usage here.
        #[serde(default)]
        x_groq: Option<XGroq>,
    }
    #[derive(Deserialize)]
    struct XGroq {
        #[serde(default)]
        usage: Option<Usage>,
    }
    let chunk: Chunk = serde_json::from_str(data).ok()?;
    let usage_only = chunk.choices.as_ref().is_some_and(Vec::is_empty) && chunk.usage.is_some();
    let usage = chunk.usage.or_else(|| chunk.x_groq.and_then(|x| x.usage))?;
    Some((usage, usage_only))
}

/// Whether `"usage"` appears as a key followed by an object (OpenAI sends `"usage":null` in
/// every chunk of a stream that asked for usage; those are skipped without parsing).
fn has_usage_object(data: &str) -> bool {
    const KEY: &str = "\"usage\"";
    let bytes = data.as_bytes();
    let mut from = 0;
    while let Some(i) = data.get(from..).and_then(|rest| rest.find(KEY)) {
        let mut j = from + i + KEY.len();
        from = j;
        while bytes.get(j).is_some_and(u8::is_ascii_whitespace) {
            j += 1;
        }
        if bytes.get(j) != Some(&b':') {
            continue;
        }
        j += 1;
        while bytes.get(j).is_some_and(u8::is_ascii_whitespace) {
            j += 1;
        }
        if bytes.get(j) == Some(&b'{') {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_answers() {
        let Answer::Ok(Some(u)) = read_answer(
            br#"{"id":"x","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#,
        ) else {
            panic!()
        };
        assert_eq!(u.total_tokens, 7);
        assert!(matches!(
            read_answer(br#"{"choices":[]}"#),
            Answer::Ok(None)
        ));
        assert!(matches!(
            read_answer(br#"{"choices":[],"usage":{"prompt_tokens":"many"}}"#),
            Answer::Ok(None)
        ));
        assert!(matches!(read_answer(br#"{"id": nope"#), Answer::Invalid(_)));
        assert!(matches!(
            read_answer(br#"{"error":{"message":"x"}}"#),
            Answer::Error
        ));
    }

    #[test]
    fn finds_usage_chunks_cheaply() {
        assert!(
            chunk_usage(r#"{"choices":[{"delta":{"content":"\"usage\": {"}}],"usage":null}"#)
                .is_none()
        );
        let (u, only) = chunk_usage(
            r#"{"choices":[],"usage" : {"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#,
        )
        .unwrap();
        assert_eq!((u.total_tokens, only), (3, true));
        let (u, only) = chunk_usage(
            r#"{"choices":[{"delta":{}}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#,
        )
        .unwrap();
        assert_eq!((u.total_tokens, only), (2, false));
        let (u, only) = chunk_usage(
            r#"{"choices":[{"delta":{}}],"x_groq":{"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}}"#,
        )
        .unwrap();
        assert_eq!((u.total_tokens, only), (2, false));
    }
}
