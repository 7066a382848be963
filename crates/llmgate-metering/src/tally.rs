//! [`Tally`]: what a relayed answer said, counted as its bytes pass, for an answer whose
//! provider reported no usage (a stream the client dropped, a server that omits `usage`).
//!
//! Metering sees OpenAI's shapes for every dialect (the `/v1/messages` translation sits above
//! it): a stream of `data:` events of `chat.completion.chunk`s, or one JSON answer. It counts
//! the bytes of the text the model produced — the string values of `content`,
//! `reasoning_content`, `reasoning`, `refusal`, tool-call `arguments` and legacy completions'
//! `text` — and notes how a stream ended: `[DONE]`, or an error event (the gateway's
//! `gateway_shutting_down` one, or any other).
//!
//! When the provider's relay already counted the text as it checked each event (a
//! [`TextCount`] on the response, [`Tally::stream_counted`]), that count is taken and the
//! events are only read for how the stream ended. Otherwise no JSON is parsed: one `memmem`
//! pass over each event finds the `":` that ends every key, the few keys above are compared,
//! and their string values are measured with `memchr`. An event split across body frames is
//! carried over (the only copy, and rare: the providers' relays send whole events).

use llmgate_core::text::TEXT_KEYS;
use llmgate_core::TextCount;
use memchr::memmem;

use crate::record::Outcome;

/// At most this much of an unfinished line (or a complete answer) is held; past it, what is
/// held is counted as it is and dropped.
const CARRY_LIMIT: usize = 4 * 1024 * 1024;

/// What is counted of one answer's body.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Bytes of the model's text relayed so far (see [`Tally::text_bytes`]).
    text_bytes: u64,
    /// The provider's relay counts the text as it checks each event (see
    /// [`llmgate_core::text`]): the events are not scanned for it again here.
    counted: Option<TextCount>,
    /// `[DONE]` passed.
    pub(crate) done: bool,
    /// The first error event that passed, as the outcome it means.
    pub(crate) error: Option<Outcome>,
    /// A complete JSON answer (`false`: an event stream).
    json: bool,
    /// The start of a line (of the answer, for JSON) not yet complete.
    carry: Vec<u8>,
    /// The body as relayed, up to [`crate::log::CAPTURE_LIMIT`], when the spend record keeps
    /// answers (`store_prompts_in_spend_logs`).
    capture: Option<Vec<u8>>,
}

impl Tally {
    /// For an event stream.
    pub(crate) fn stream() -> Tally {
        Tally::default()
    }

    /// For an event stream whose relay counts its text (`text`).
    pub(crate) fn stream_counted(text: TextCount) -> Tally {
        Tally {
            counted: Some(text),
            ..Tally::default()
        }
    }

    /// Bytes of the model's text relayed so far.
    pub(crate) fn text_bytes(&self) -> u64 {
        self.counted
            .as_ref()
            .map_or(self.text_bytes, TextCount::get)
    }

    /// For a complete JSON answer.
    pub(crate) fn answer() -> Tally {
        Tally {
            json: true,
            ..Tally::default()
        }
    }

    /// Keeps the body as it passes, bounded (see [`Tally::captured`]).
    pub(crate) fn capturing(mut self) -> Tally {
        self.capture = Some(Vec::new());
        self
    }

    /// What [`Tally::capturing`] kept, credentials masked.
    pub(crate) fn captured(&self) -> Option<String> {
        let bytes = self.capture.as_ref()?;
        Some(crate::log::bounded(&String::from_utf8_lossy(bytes)))
    }

    /// Counts one body frame.
    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        if let Some(c) = &mut self.capture {
            let room = crate::log::CAPTURE_LIMIT.saturating_sub(c.len());
            c.extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
        if self.json {
            self.hold(bytes);
            return;
        }
        let mut rest = bytes;
        if !self.carry.is_empty() {
            let Some(nl) = memchr::memchr(b'\n', rest) else {
                self.hold(rest);
                return;
            };
            self.carry.extend_from_slice(&rest[..nl]);
            let line = std::mem::take(&mut self.carry);
            self.line(&line);
            rest = &rest[nl + 1..];
        }
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', rest) {
            self.line(&rest[start..nl]);
            start = nl + 1;
        }
        self.hold(&rest[start..]);
    }

    /// The body ended: counts what is held.
    pub(crate) fn end(&mut self) {
        let held = std::mem::take(&mut self.carry);
        if self.json {
            self.text_bytes += text_bytes(&held);
        } else {
            self.line(&held);
        }
    }

    fn hold(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.carry.len() + bytes.len() > CARRY_LIMIT {
            let held = std::mem::take(&mut self.carry);
            self.text_bytes += text_bytes(&held) + text_bytes(bytes);
            return;
        }
        self.carry.extend_from_slice(bytes);
    }

    /// One line of an event stream.
    fn line(&mut self, line: &[u8]) {
        let Some(data) = line.strip_prefix(b"data:") else {
            return;
        };
        let data = data.trim_ascii();
        if data == b"[DONE]" {
            self.done = true;
        } else if is_error(data) {
            if self.error.is_none() {
                let shutdown = memmem::find(data, b"gateway_shutting_down").is_some();
                self.error = Some(if shutdown {
                    Outcome::GatewayShutdown
                } else {
                    Outcome::UpstreamError
                });
            }
        } else if self.counted.is_none() {
            self.text_bytes += text_bytes(data);
        }
    }
}

/// An error body, `{"error": ...}`, as the gateway's error events are.
fn is_error(data: &[u8]) -> bool {
    data.strip_prefix(b"{")
        .map(<[u8]>::trim_ascii_start)
        .is_some_and(|d| d.starts_with(b"\"error\""))
}

/// The `":` that ends every key, searched for with one searcher built once (building it
/// for each event cost more than the search in a chunk of a few hundred bytes).
static KEY_END: std::sync::LazyLock<memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memmem::Finder::new(b"\":"));

/// Bytes of the model's text in one JSON chunk or answer.
pub(crate) fn text_bytes(json: &[u8]) -> u64 {
    let mut n = 0;
    // Where the last counted string value ended: keys found inside it are not keys.
    let mut counted_to = 0;
    for end in KEY_END.find_iter(json) {
        if end < counted_to {
            continue;
        }
        let Some(open) = memchr::memrchr(b'"', &json[..end]) else {
            continue;
        };
        if !TEXT_KEYS
            .iter()
            .any(|k| k.as_bytes() == &json[open + 1..end])
        {
            continue;
        }
        let mut i = end + 2;
        while json.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        if json.get(i) != Some(&b'"') {
            continue;
        }
        let (len, close) = string_len(&json[i + 1..]);
        n += len;
        counted_to = i + 1 + close;
    }
    n
}

/// The length in bytes of a JSON string's text (an escape counts 1, `\uXXXX` 2) and where its
/// closing quote is, given the bytes after its opening quote.
fn string_len(s: &[u8]) -> (u64, usize) {
    let mut len = 0u64;
    let mut i = 0;
    while let Some(j) = memchr::memchr2(b'"', b'\\', &s[i..]) {
        len += j as u64;
        i += j;
        if s[i] == b'"' {
            return (len, i);
        }
        // An escape.
        let unicode = s.get(i + 1) == Some(&b'u');
        len += if unicode { 2 } else { 1 };
        i += if unicode { 6 } else { 2 };
        if i >= s.len() {
            return (len, s.len());
        }
    }
    (len + (s.len() - i) as u64, s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHUNK: &str = r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","system_fingerprint":"fp","choices":[{"index":0,"delta":{"content":"Hello, \"world\"\n"},"logprobs":null,"finish_reason":null}],"usage":null}"#;

    #[test]
    fn counts_the_text_of_each_kind_and_nothing_else() {
        // 7 + 1 + 5 + 1 + 1 = 15 bytes of text (escapes count 1).
        assert_eq!(text_bytes(CHUNK.as_bytes()), 15);
        let tools = r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":"}}]}}]}"#;
        assert_eq!(text_bytes(tools.as_bytes()), 8);
        let reasoning = r#"{"choices":[{"delta":{"reasoning_content":"think","content":null, "refusal": "no"}}]}"#;
        assert_eq!(text_bytes(reasoning.as_bytes()), 7);
        // A key's name inside the text is text, not a key.
        let tricky = r#"{"choices":[{"delta":{"content":"say \"content\": \"x\""}}]}"#;
        assert_eq!(text_bytes(tricky.as_bytes()), 18);
        let usage = r#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}"#;
        assert_eq!(text_bytes(usage.as_bytes()), 0);
        let logprobs =
            r#"{"choices":[{"delta":{"content":"ab"},"logprobs":{"content":[{"token":"ab"}]}}]}"#;
        assert_eq!(text_bytes(logprobs.as_bytes()), 2);
        let legacy = r#"{"choices":[{"text":"four","index":0}],"context":"x"}"#;
        assert_eq!(text_bytes(legacy.as_bytes()), 4);
        assert_eq!(text_bytes(br#"{"content":"\u00e9t"}"#), 3);
        assert_eq!(text_bytes(br#"{"content":"unterminated"#), 12);
    }

    #[test]
    fn a_stream_split_anywhere_counts_the_same_and_notes_its_end() {
        let stream = format!("data: {CHUNK}\n\n: comment\n\ndata: {CHUNK}\r\n\r\ndata: [DONE]\n\n");
        for cut in 0..stream.len() {
            let mut t = Tally::stream();
            t.feed(&stream.as_bytes()[..cut]);
            t.feed(&stream.as_bytes()[cut..]);
            t.end();
            assert_eq!((t.text_bytes, t.done, t.error), (30, true, None), "{cut}");
        }
    }

    #[test]
    fn error_events_say_who_ended_the_stream() {
        let mut t = Tally::stream();
        t.feed(format!("data: {CHUNK}\n\ndata: {{\"error\":{{\"message\":\"m\",\"type\":\"server_error\",\"param\":null,\"code\":\"gateway_shutting_down\"}}}}\n\n").as_bytes());
        t.feed(b"data: {\"error\":{\"message\":\"later\"}}\n\n");
        assert_eq!(t.error, Some(Outcome::GatewayShutdown));
        assert_eq!(t.text_bytes, 15);
        let mut t = Tally::stream();
        t.feed(b"data: { \"error\": {\"message\":\"upstream stream ended\"}}\n\n");
        assert_eq!(t.error, Some(Outcome::UpstreamError));
        assert!(!t.done);
    }

    #[test]
    fn a_counting_relays_count_is_taken_and_the_events_are_not_scanned() {
        let text = TextCount::new();
        let mut t = Tally::stream_counted(text.clone());
        t.feed(format!("data: {CHUNK}\n\n").as_bytes());
        assert_eq!(t.text_bytes, 0, "not scanned");
        text.add(42);
        t.feed(b"data: {\"error\":{\"message\":\"m\",\"code\":\"gateway_shutting_down\"}}\n\n");
        t.end();
        assert_eq!(
            (t.text_bytes(), t.error),
            (42, Some(Outcome::GatewayShutdown))
        );
        let mut t = Tally::stream_counted(TextCount::new());
        t.feed(b"data: [DONE]\n\n");
        assert!(t.done);
    }

    #[test]
    fn a_complete_answer_is_counted_at_its_end() {
        let answer = r#"{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Twelve bytes"},"finish_reason":"stop"}]}"#;
        let mut t = Tally::answer();
        let (a, b) = answer.as_bytes().split_at(70);
        t.feed(a);
        t.feed(b);
        assert_eq!(t.text_bytes, 0);
        t.end();
        assert_eq!(t.text_bytes, 12);
    }

    /// What counting costs per chunk (run with `--release --ignored --nocapture`).
    #[test]
    #[ignore = "a measurement"]
    fn cost_per_chunk() {
        let event = format!("data: {CHUNK}\n\n");
        let frames: Vec<u8> = event.repeat(1000).into_bytes();
        let start = std::time::Instant::now();
        let mut t = Tally::stream();
        for _ in 0..1000 {
            t.feed(std::hint::black_box(&frames));
        }
        let per = start.elapsed().as_nanos() as f64 / 1e6;
        println!("{per:.1} ns per chunk of {} bytes", event.len());
        assert_eq!(t.text_bytes, 15_000_000);
    }
}
