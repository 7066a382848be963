//! `json_object_text` against fixtures, and against the serde_json walk it replaced
//! (`reference`) on targeted edge cases and on many generated and mutated objects.

use super::reference;
use super::*;

#[test]
fn counts_the_text_of_each_kind_and_nothing_else() {
    let chunk = r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Hello, \"world\"\n"},"logprobs":null,"finish_reason":null}],"usage":null}"#;
    assert_eq!(json_object_text(chunk), Ok(15));
    let tools = r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":"}}]}}]}"#;
    assert_eq!(json_object_text(tools), Ok(8));
    let reasoning =
        r#"{"choices":[{"delta":{"reasoning_content":"think","content":null, "refusal": "no"}}]}"#;
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

/// `data`'s answer from both, which must agree.
#[track_caller]
fn same(data: &str) -> Result<u64, NotJson> {
    let got = json_object_text(data);
    assert_eq!(got, reference::json_object_text(data), "{data:?}");
    got
}

#[test]
fn edge_cases_are_answered_as_serde_json_answers_them() {
    let ok = |data: &str, n: u64| assert_eq!(same(data), Ok(n), "{data:?}");
    let bad = |data: &str| assert_eq!(same(data), Err(NotJson::Invalid), "{data:?}");
    // numbers
    for num in [
        "0",
        "-0",
        "1",
        "-1",
        "10",
        "1.5",
        "-0.0",
        "1e5",
        "1E5",
        "1e+5",
        "1e-5",
        "0e0",
        "0.1e-2",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775808",
        "-9223372036854775809",
        "123456789012345678901234567890",
        "1e308",
        "1.7976931348623157e308",
        "17976931348623157e292",
        "1e-400",
        "0e400",
        "0.0e99999999999",
        "1e-99999999999",
        "0.0000000000000000000000000001e330",
    ] {
        ok(&format!(r#"{{"n":{num}}}"#), 0);
        ok(&format!(r#"{{"n":[{num}, {num} ]}}"#), 0);
    }
    for num in [
        "01",
        "-01",
        "00",
        "1.",
        "-",
        "+1",
        ".5",
        "1.e5",
        "1e",
        "1e+",
        "1e-",
        "--1",
        "0x10",
        "1e400",
        "-1e400",
        "1.8e308",
        "1e99999999999",
        "NaN",
        "Infinity",
        "-Infinity",
        "1_000",
        "1.5.5",
        "1ee5",
    ] {
        bad(&format!(r#"{{"n":{num}}}"#));
    }
    let big = format!(r#"{{"n":1{}}}"#, "0".repeat(400));
    bad(&big);
    let small = format!(r#"{{"n":0.{}1}}"#, "0".repeat(400));
    ok(&small, 0);
    // strings and escapes: the count is the decoded bytes
    ok(r#"{"content":"\"\\\/\b\f\n\r\t"}"#, 8);
    ok(
        r#"{"content":"\u0041\u00e9\u20AC\ud83d\ude00"}"#,
        1 + 2 + 3 + 4,
    );
    ok(r#"{"content":"\u0000"}"#, 1);
    ok("{\"content\":\"é€😀\"}", 2 + 3 + 4);
    for lone in [
        r"\ud83d",
        r"\ude00",
        r"\ud83dx",
        r"\ud83d\n",
        r"\ud83d\u0041",
        r"\ud83d\ud83d",
    ] {
        bad(&format!(r#"{{"content":"{lone}"}}"#));
        bad(&format!(r#"{{"{lone}":1}}"#));
    }
    for esc in [r"\x", r"\U0041", r"\u004", r"\u00g0", r"\'", r"\0", "\\"] {
        bad(&format!(r#"{{"content":"{esc}"}}"#));
    }
    for c in (0u8..0x20).chain([0x7f]) {
        let data = format!("{{\"content\":\"a{}b\"}}", c as char);
        if c == 0x7f {
            ok(&data, 3);
        } else {
            bad(&data);
        }
    }
    // keys: decoded before they are compared; only a string directly under one counts
    ok(r#"{"cont\u0065nt":"ab"}"#, 2);
    ok(r#"{"\u0063ontent":"ab","conten\u0074s":"x"}"#, 2);
    ok(
        r#"{"reasoning_cont\u0065nt":"ab","reasoning_content\u0000":"x"}"#,
        2,
    );
    ok(
        r#"{"content":["ab",{"text":"c"}],"text":{"content":"d"}}"#,
        2,
    );
    ok(r#"{"a":{"b":[[{"arguments":"xyz"}]]}}"#, 3);
    ok(
        r#"{"content":null,"text":1,"refusal":true,"reasoning":{}}"#,
        0,
    );
    bad(r#"{1:2}"#);
    bad(r#"{"a"}"#);
    bad(r#"{"a":}"#);
    bad(r#"{"a" 1}"#);
    // structure and whitespace
    ok(" \t\r\n{ \"a\" : [ 1 , { } , [ ] ] } \n\r\t ", 0);
    for trailing in ["{} x", "{}}", "{},", "{} {}", "{}\u{a0}", "{}\u{b}", "{}\0"] {
        bad(trailing);
    }
    for leading in ["\u{a0}{}", "\u{b}{}", "\u{c}{}", "\u{2028}{}"] {
        bad(leading);
    }
    for broken in [
        "{",
        "{\"a\":1",
        "{\"a\":1,}",
        "{,}",
        "{\"a\":[1,]}",
        "{\"a\":[,1]}",
        "{\"a\":[1 2]}",
        "{\"a\":tru}",
        "{\"a\":nul}",
        "{\"a\":falsey}",
        "{\"a\":True}",
        "{\"a\":[}",
        "{\"a\":{]}",
        "{\"a\":\"x}",
        "{\"a\":'x'}",
        "{\"a\":1}/*c*/",
    ] {
        bad(broken);
    }
    for not_object in ["", "  ", "[]", "1", "\"{}\"", "null", "\u{feff}{}"] {
        assert_eq!(
            same(not_object),
            Err(NotJson::NotAnObject),
            "{not_object:?}"
        );
    }
}

#[test]
fn the_scanner_knows_the_text_keys_and_no_other() {
    for key in TEXT_KEYS {
        assert!(scan::is_text_key(key.as_bytes()), "{key}");
        assert_eq!(same(&format!(r#"{{"{key}":"ab"}}"#)), Ok(2), "{key}");
    }
    assert_eq!(TEXT_KEYS.len(), 6, "is_text_key lists six keys");
    for other in [
        "",
        "tex",
        "texts",
        "Content",
        "contenT",
        "refusals",
        "reasoninG",
        "argument",
    ] {
        assert!(!scan::is_text_key(other.as_bytes()), "{other}");
    }
}

#[test]
fn nesting_stops_where_serde_jsons_recursion_limit_does() {
    for depth in [2, 3, 126, 127, 128, 129, 300] {
        // `depth` containers in all, the outer object included
        let arrays = format!(
            r#"{{"a":{}{{"content":"xy"}}{}}}"#,
            "[".repeat(depth - 2),
            "]".repeat(depth - 2)
        );
        let objects = format!(
            r#"{}"content":"xy"{}"#,
            r#"{"a":"#.repeat(depth - 1) + "{",
            "}".repeat(depth)
        );
        let expected = if depth <= scan::MAX_DEPTH as usize {
            Ok(2)
        } else {
            Err(NotJson::Invalid)
        };
        assert_eq!(same(&arrays), expected, "{depth} arrays");
        assert_eq!(same(&objects), expected, "{depth} objects");
    }
}

#[test]
fn a_special_byte_is_found_at_every_offset_of_a_long_string() {
    for len in 0..40 {
        for at in 0..len {
            for special in ['"', '\\', '\u{1}', '\u{1f}', 'é', '\u{7f}'] {
                let mut s: Vec<char> = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH"
                    .chars()
                    .take(len)
                    .collect();
                s[at] = special;
                let s: String = s.into_iter().collect();
                let got = same(&format!(r#"{{"content":"{s}","x":"{s}"}}"#));
                match special {
                    'é' => assert_eq!(got, Ok(len as u64 + 1)),
                    '\u{7f}' => assert_eq!(got, Ok(len as u64)),
                    '\\' => {}
                    _ => assert_eq!(got, Err(NotJson::Invalid)),
                }
            }
        }
    }
}

/// A small, deterministic generator (splitmix64): the same cases on every run. Its lists put
/// the valid choices first and the invalid ones last; `clean` picks the valid ones only.
struct Gen(u64, bool);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    /// One of `items`, of the first `valid` only when clean.
    fn pick_some<'a>(&mut self, items: &[&'a str], valid: usize) -> &'a str {
        let n = if self.1 { valid } else { items.len() };
        items[self.below(n)]
    }

    fn ws(&mut self, out: &mut String) {
        if self.below(4) == 0 {
            out.push_str(self.pick(&[" ", "\n", "\t", "\r", "  ", " \r\n "]));
        }
    }

    fn string(&mut self, out: &mut String) {
        out.push('"');
        let parts = match self.below(4) {
            0 => 0,
            1 => self.below(3),
            2 => self.below(12),
            _ => self.below(60),
        };
        for _ in 0..parts {
            let part = self.pick_some(
                &[
                    "a",
                    "hello",
                    " world",
                    "0123456789abcdef",
                    "é",
                    "€",
                    "😀",
                    "\\\"",
                    "\\\\",
                    "\\/",
                    "\\b",
                    "\\f",
                    "\\n",
                    "\\r",
                    "\\t",
                    "\\u0041",
                    "\\u00e9",
                    "\\u20ac",
                    "\\uFFFF",
                    "\\u0000",
                    "\\ud83d\\ude00",
                    "\\uD83D\\uDE00",
                    "content",
                    ":",
                    "{",
                    "\u{7f}",
                    "\\ud83d",
                    "\\ude00",
                    "\u{1}",
                    "\t",
                    "\\x",
                ],
                26,
            );
            out.push_str(part);
        }
        out.push('"');
    }

    fn key(&mut self, out: &mut String) {
        if self.below(3) == 0 {
            self.string(out);
        } else {
            out.push('"');
            out.push_str(self.pick(&[
                "content",
                "reasoning_content",
                "reasoning",
                "refusal",
                "arguments",
                "text",
                "cont\\u0065nt",
                "\\u0074ext",
                "id",
                "choices",
                "delta",
                "contents",
                "Content",
                "",
            ]));
            out.push('"');
        }
    }

    fn number(&mut self, out: &mut String) {
        let n = self.pick_some(
            &[
                "0",
                "-0",
                "1",
                "42",
                "-17",
                "3.25",
                "1e5",
                "2E-3",
                "1e+2",
                "1e308",
                "0e999",
                "18446744073709551616",
                "1.7976931348623157e308",
                "9007199254740993",
                "1e-400",
                "01",
                "1.",
                ".5",
                "-",
                "1e400",
                "-1e309",
                "1.7976931348623159e308",
                "0.5e309",
            ],
            15,
        );
        out.push_str(n);
    }

    fn value(&mut self, out: &mut String, depth: usize) {
        let choice = if depth > 6 {
            self.below(5)
        } else {
            self.below(8)
        };
        match choice {
            0 => self.string(out),
            1 => self.number(out),
            2 => out.push_str(self.pick(&["true", "false", "null"])),
            3 => self.string(out),
            4 => self.number(out),
            5 | 6 => self.object(out, depth + 1),
            _ => self.array(out, depth + 1),
        }
    }

    fn object(&mut self, out: &mut String, depth: usize) {
        out.push('{');
        let n = self.below(5);
        for i in 0..n {
            if i > 0 {
                out.push(',');
            }
            self.ws(out);
            self.key(out);
            self.ws(out);
            out.push(':');
            self.ws(out);
            self.value(out, depth);
            self.ws(out);
        }
        out.push('}');
    }

    fn array(&mut self, out: &mut String, depth: usize) {
        out.push('[');
        let n = self.below(4);
        for i in 0..n {
            if i > 0 {
                out.push(',');
            }
            self.ws(out);
            self.value(out, depth);
            self.ws(out);
        }
        out.push(']');
    }

    /// One random edit of `doc`: a byte removed, inserted or changed, a cut, a copied slice.
    fn mutate(&mut self, doc: &str) -> Option<String> {
        let mut b = doc.as_bytes().to_vec();
        let at = self.below(b.len() + 1);
        let bytes = b"\"\\{}[],: 0123456789-+.eEutrfalsn\x01\t\nx";
        let byte = bytes[self.below(bytes.len())];
        match self.below(5) {
            0 if at < b.len() => {
                b.remove(at);
            }
            1 => b.insert(at, byte),
            2 if at < b.len() => b[at] = byte,
            3 => b.truncate(at),
            _ => {
                let end = (at + self.below(8)).min(b.len());
                let copy = b[at..end].to_vec();
                let to = self.below(b.len() + 1);
                b.splice(to..to, copy);
            }
        }
        String::from_utf8(b).ok()
    }
}

#[test]
fn generated_and_mutated_objects_are_answered_as_serde_json_answers_them() {
    let mut g = Gen(19, false);
    let (mut valid, mut invalid, mut counted) = (0, 0, 0);
    for round in 0..20_000 {
        g.1 = round % 4 != 0;
        let mut doc = String::new();
        g.ws(&mut doc);
        g.object(&mut doc, 1);
        g.ws(&mut doc);
        let mut docs = vec![doc.clone()];
        let mut edited = doc;
        for _ in 0..3 {
            if let Some(m) = g.mutate(&edited) {
                docs.push(m.clone());
                edited = m;
            }
        }
        for d in &docs {
            match same(d) {
                Ok(0) => valid += 1,
                Ok(_) => counted += 1,
                Err(_) => invalid += 1,
            }
        }
    }
    // Both answers, and counts, are common enough for the comparison to mean something.
    assert!(
        valid > 10_000 && counted > 4_000 && invalid > 40_000,
        "{valid} {counted} {invalid}"
    );
}
