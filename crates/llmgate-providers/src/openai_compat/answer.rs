//! Reading an OpenAI-compatible answer cheaply: a complete body's validity and usage, without
//! building the rest of it.

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
}
