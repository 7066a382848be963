//! [`RequestLines`] against the reference: the fmt subscriber the binary used before it, fed
//! the same events. Every line must come out byte for byte the same (timestamps aside), text
//! and JSON, with and without colours, and exactly once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::{fmt, EnvFilter};

use super::*;

thread_local! {
    static CAPTURED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

fn capture(line: &[u8]) {
    CAPTURED.with(|c| c.borrow_mut().extend_from_slice(line));
}

fn captured() -> String {
    CAPTURED.with(|c| String::from_utf8(std::mem::take(&mut *c.borrow_mut())).unwrap())
}

/// What a fmt layer wrote.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    fn take(&self) -> String {
        String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap())).unwrap()
    }
}

/// Request lines as metering writes them (a success, a failure with awkward text), and one
/// other line.
fn emit() {
    tracing::info!(
        target: TARGET,
        message = "request succeeded",
        request_id = "01a2379d-c8dd-713f-9c46-2331af503008",
        key_alias = "billing-app",
        team = None::<&str>,
        model = "gpt-4o",
        endpoint = "/chat/completions",
        status = 200_u16,
        latency_ms = 12_u64,
        ttft_ms = None::<u64>,
        prompt_tokens = 5_u32,
        cost = 6.25e-5,
        usage_estimated = false,
        attempts = 1_u32,
        stream = true,
    );
    tracing::info!(
        target: TARGET,
        message = "request failed",
        request_id = "r-2",
        model = "say \"hi\" \\ o'clock",
        status = 502_u16,
        cost = 0.0,
        big = 1.5e300,
        tiny = 1e-7,
        neg = -3_i64,
        error_class = "connect",
        error = "naïve: tab\there, newline\nand \u{1b}[31mred\u{7f} \u{85} [REDACTED]",
    );
    tracing::info!(target: "llmgate::rescue", request_id = "r-2", "something else");
}

/// The line with its timestamp (27 bytes, wherever it starts) replaced by `TS`.
fn untimed(text: &str) -> String {
    text.lines()
        .map(|line| {
            for start in [0, 4, 14] {
                if line.len() > start + 27 && line.as_bytes()[start + 26] == b'Z' {
                    return format!("{}TS{}\n", &line[..start], &line[start + 27..]);
                }
            }
            format!("{line}\n")
        })
        .collect()
}

/// What the fmt subscriber alone writes for `f` (the reference).
fn reference(json: bool, ansi: bool, filter: &str, f: impl FnOnce()) -> String {
    let buf = Buffer::default();
    let w = buf.clone();
    let layer = fmt::layer().with_writer(move || w.clone()).with_ansi(ansi);
    let registry = tracing_subscriber::registry().with(EnvFilter::new(filter));
    let dispatch = match json {
        false => tracing::Dispatch::new(registry.with(layer)),
        true => tracing::Dispatch::new(
            registry.with(
                layer
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            ),
        ),
    };
    tracing::dispatcher::with_default(&dispatch, f);
    untimed(&buf.take())
}

/// What the binary's stack writes for `f`: (fmt's lines, the request lines).
fn ours(json: bool, ansi: bool, filter: &str, f: impl FnOnce()) -> (String, String) {
    let buf = Buffer::default();
    let w = buf.clone();
    let mut lines = RequestLines::new(json, ansi);
    lines.write = capture;
    let stack = crate::logging::stack(EnvFilter::new(filter), json, ansi, move || w.clone(), lines);
    let _ = captured();
    tracing::subscriber::with_default(stack, f);
    (untimed(&buf.take()), untimed(&captured()))
}

#[test]
fn request_lines_are_written_as_fmt_writes_them_and_only_once() {
    for (json, ansi) in [(false, false), (false, true), (true, false)] {
        let want = reference(json, ansi, "info", emit);
        let (generic, lines) = ours(json, ansi, "info", emit);
        let mut want_lines = want.lines();
        let mut got = lines.lines().chain(generic.lines());
        assert_eq!(want.lines().count(), 3, "{want}");
        for _ in 0..3 {
            assert_eq!(got.next(), want_lines.next(), "json {json}, ansi {ansi}");
        }
        assert_eq!(lines.lines().count(), 2, "{lines}");
        assert!(!generic.contains("request_id=\"r-2\" model"), "{generic}");
    }
}

#[test]
fn inside_a_span_the_line_is_fmt_s_with_the_span() {
    let in_span = || {
        let span = tracing::info_span!("request", request_id = "r-1", method = "POST");
        span.in_scope(emit);
    };
    for json in [false, true] {
        let want = reference(json, false, "info", in_span);
        let (generic, lines) = ours(json, false, "info", in_span);
        assert_eq!(generic, want);
        assert_eq!(lines, "");
        assert_eq!(want.lines().count(), 3, "{want}");
    }
}

#[test]
fn filtered_out_the_line_is_not_written_and_the_max_level_stays_the_filter_s() {
    for filter in ["info,llmgate::request=off", "warn"] {
        for json in [false, true] {
            let (generic, lines) = ours(json, false, filter, emit);
            assert_eq!(lines, "", "{filter}");
            assert!(
                !generic.contains("request_id=\"01a2"),
                "{filter}: {generic}"
            );
            assert!(!generic.contains("\"01a2"), "{filter}: {generic}");
        }
    }
    for (filter, level) in [("warn", LevelFilter::WARN), ("info", LevelFilter::INFO)] {
        let stack = crate::logging::stack(
            EnvFilter::new(filter),
            false,
            false,
            std::io::sink,
            RequestLines::new(false, false),
        );
        assert_eq!(stack.max_level_hint(), Some(level), "{filter}");
    }
}

#[test]
fn timestamps_are_rfc3339_utc_with_microseconds() {
    for (secs, micros, want) in [
        (1_796_229_417, 637_606, "2026-12-02T16:36:57.637606Z"),
        (951_782_400, 5, "2000-02-29T00:00:00.000005Z"),
        (1_709_164_800, 0, "2024-02-29T00:00:00.000000Z"),
        (0, 0, "1970-01-01T00:00:00.000000Z"),
        (4_102_444_799, 999_999, "2099-12-31T23:59:59.999999Z"),
        (253_402_300_799, 1, "9999-12-31T23:59:59.000001Z"),
        (253_402_300_800, 10, "10000-01-01T00:00:00.000010Z"),
    ] {
        let t = UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros);
        let mut out = Vec::new();
        timestamp(t, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }
}

#[test]
fn string_values_are_escaped_as_debug_escapes_them() {
    for v in [
        "",
        "plain-id-01a2379d",
        "say \"hi\"",
        "C:\\path",
        "tab\there",
        "naïve",
        "\u{1b}[31m",
        "\u{7f}",
        "end\\",
    ] {
        let mut out = b"x=".to_vec();
        debug_str(&mut out, v);
        assert_eq!(String::from_utf8(out).unwrap(), format!("x={v:?}"), "{v}");
    }
}
