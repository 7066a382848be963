//! The model's text in an OpenAI-shaped JSON chunk or answer, counted.
//!
//! Metering estimates an answer's completion tokens from its text when the provider reports no
//! usage (a stream the client dropped, a server that omits `usage`). The text is the string
//! values of [`TEXT_KEYS`], wherever they appear: `content`, `reasoning_content`,
//! `reasoning`, `refusal`, tool-call `arguments` and legacy completions' `text`.
//!
//! [`json_object_text`] checks that an event's data is one JSON object and counts its text in
//! the same pass of serde_json's parser, so a stream relay that must check every event anyway
//! hands metering the count ([`TextCount`]) instead of metering scanning every event again.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The keys whose string values are the model's output.
pub const TEXT_KEYS: [&str; 6] = [
    "content",
    "reasoning_content",
    "reasoning",
    "refusal",
    "arguments",
    "text",
];

/// The text bytes a relay counted in the events it passed on, shared with metering (a
/// response extension). Only a relay that counts every event it relays puts one on its
/// response; without it, metering counts the text itself.
#[derive(Debug, Clone, Default)]
pub struct TextCount(Arc<AtomicU64>);

impl TextCount {
    /// Zero so far.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `n` bytes.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The bytes counted so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Why [`json_object_text`] refused the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotJson {
    /// It does not start with `{`.
    NotAnObject,
    /// It is not valid JSON (or has something after the object).
    Invalid,
}

impl NotJson {
    /// The reason, as an error event says it.
    pub fn as_str(self) -> &'static str {
        match self {
            NotJson::NotAnObject => "its data is not a JSON object",
            NotJson::Invalid => "its data is not valid JSON",
        }
    }
}

/// Checks `data` is one JSON object and returns the bytes of the model's text in it (an escape
/// counts as the bytes it stands for). Nothing is allocated but serde_json's scratch buffer for
/// strings with escapes.
pub fn json_object_text(data: &str) -> Result<u64, NotJson> {
    if !data.trim_start().starts_with('{') {
        return Err(NotJson::NotAnObject);
    }
    let mut n = 0;
    let mut de = serde_json::Deserializer::from_str(data);
    Walk {
        n: &mut n,
        text: false,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end())
    .map_err(|_| NotJson::Invalid)?;
    Ok(n)
}

/// Walks one value; `text`: it is the value of a text key (a string counts).
struct Walk<'a> {
    n: &'a mut u64,
    text: bool,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, s: &str) -> Result<(), E> {
        if self.text {
            *self.n += s.len() as u64;
        }
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(Walk {
                n: &mut *self.n,
                text: false,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(text) = map.next_key_seed(Key)? {
            map.next_value_seed(Walk {
                n: &mut *self.n,
                text,
            })?;
        }
        Ok(())
    }
}

/// A map key: whether it is one of [`TEXT_KEYS`].
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E>(self, s: &str) -> Result<bool, E> {
        Ok(TEXT_KEYS.contains(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_text_of_each_kind_and_nothing_else() {
        let chunk = r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Hello, \"world\"\n"},"logprobs":null,"finish_reason":null}],"usage":null}"#;
        assert_eq!(json_object_text(chunk), Ok(15));
        let tools = r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":"}}]}}]}"#;
        assert_eq!(json_object_text(tools), Ok(8));
        let reasoning = r#"{"choices":[{"delta":{"reasoning_content":"think","content":null, "refusal": "no"}}]}"#;
        assert_eq!(json_object_text(reasoning), Ok(7));
        let tricky = r#"{"choices":[{"delta":{"content":"say \"content\": \"x\""}}]}"#;
        assert_eq!(json_object_text(tricky), Ok(18));
        let usage = r#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}"#;
        assert_eq!(json_object_text(usage), Ok(0));
        let logprobs =
            r#"{"choices":[{"delta":{"content":"ab"},"logprobs":{"content":[{"token":"ab"}]}}]}"#;
        assert_eq!(json_object_text(logprobs), Ok(2));
        let parts = r#"{"content":[{"type":"text","text":"four"}]}"#;
        assert_eq!(json_object_text(parts), Ok(4));
        assert_eq!(json_object_text(r#" {"content":"\u00e9t"} "#), Ok(3));
    }

    #[test]
    fn refuses_what_is_not_one_json_object() {
        for bad in ["{\"a\": nope", "{} {}", "{\"content\":\"unterminated"] {
            assert_eq!(json_object_text(bad), Err(NotJson::Invalid), "{bad}");
        }
        for bad in ["42", "[{}]", "\"x\"", "null", ""] {
            assert_eq!(json_object_text(bad), Err(NotJson::NotAnObject), "{bad}");
        }
    }
}
