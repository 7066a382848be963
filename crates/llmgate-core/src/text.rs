//! The model's text in an OpenAI-shaped JSON chunk or answer, counted.
//!
//! Metering estimates an answer's completion tokens from its text when the provider reports no
//! usage (a stream the client dropped, a server that omits `usage`). The text is the string
//! values of [`TEXT_KEYS`], wherever they appear: `content`, `reasoning_content`,
//! `reasoning`, `refusal`, tool-call `arguments` and legacy completions' `text`.
//!
//! [`json_object_text`] checks that an event's data is one JSON object and counts its text in
//! the same pass, so a stream relay that must check every event anyway hands metering the
//! count ([`TextCount`]) instead of metering scanning every event again. The pass is a
//! hand-written scanner (`text/scan.rs`: no allocation, no recursion, strings skipped eight
//! bytes at a time) that accepts exactly what serde_json accepts; the serde_json walk it
//! replaced is the reference its tests and the `json_object_text` fuzz target compare it with.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod reference;
mod scan;
#[cfg(test)]
mod tests;

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

/// Checks `data` is one JSON object and returns the bytes of the model's text in it: the string
/// values of [`TEXT_KEYS`] in any object at any depth (not the strings of an array under such a
/// key), an escape counted as the bytes it stands for. It accepts what serde_json's `from_str`
/// accepts (RFC 8259, at most 127 nested arrays and objects, numbers that fit an `f64`, no
/// lone surrogate escapes), and allocates nothing.
pub fn json_object_text(data: &str) -> Result<u64, NotJson> {
    if !data.trim_start().starts_with('{') {
        return Err(NotJson::NotAnObject);
    }
    scan::object_text(data).ok_or(NotJson::Invalid)
}
