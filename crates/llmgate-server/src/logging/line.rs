//! The request's log line (target [`TARGET`]), formatted here rather than by
//! `tracing-subscriber`'s generic formatter, which spent about 22,000 instructions on it (a
//! `write_fmt` per field, `Debug` escaping through `core::fmt`): 10 % of a request's work.
//!
//! [`RequestLines`] writes the same bytes as the fmt layer would (text or JSON, ANSI colours
//! when it has them) into a thread-local buffer, integers with `itoa`, strings copied with
//! their escapes, and hands the line to the batch written to stderr (`batch.rs`). The fmt
//! layer is filtered with [`generic`] so it skips exactly the events this layer writes. Filtering is untouched: the
//! global `EnvFilter` decides, as before, whether the event exists at all.
//!
//! Inside a span (only when the request span is enabled, at `debug`), the line is left to the
//! fmt layer, which prefixes the span's fields (text) or adds `"span"` (JSON).

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use llmgate::metering::REQUEST_LOG_TARGET as TARGET;
use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::filter::DynFilterFn;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// A buffer that grew past this (a long error message) is dropped rather than kept.
const KEEP: usize = 16 * 1024;

thread_local! {
    static BUF: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(1024));
}

/// Whether this layer writes `meta`'s event (`in_span`: there is a current span): the request
/// line outside any span.
fn ours(meta: &Metadata<'_>, in_span: bool) -> bool {
    meta.is_event() && meta.target() == TARGET && !in_span
}

/// The fmt layer's filter: every event and span but those [`RequestLines`] writes. Asked per
/// event only at the request line's callsite; every other callsite is always on for fmt.
pub(super) fn generic<S>() -> DynFilterFn<S, Enabled<S>, fn(&'static Metadata<'static>) -> Interest>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let enabled: Enabled<S> = |meta, cx| !ours(meta, cx.lookup_current().is_some());
    DynFilterFn::new(enabled).with_callsite_filter(|meta| {
        if meta.target() == TARGET {
            Interest::sometimes()
        } else {
            Interest::always()
        }
    })
}

/// The signature of [`generic`]'s per-event check.
type Enabled<S> = fn(&Metadata<'_>, &Context<'_, S>) -> bool;

/// Writes the request's log line, text or JSON.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestLines {
    json: bool,
    ansi: bool,
    /// Where a finished line goes: the batch for stderr (a test captures it instead).
    write: fn(&[u8]),
}

/// `line` into the batch written to stderr (`batch.rs`).
fn batched(line: &[u8]) {
    super::batch::LINES.push(line);
}

impl RequestLines {
    /// JSON lines when `json`, else text, coloured when `ansi` (text only, like fmt's).
    pub(crate) fn new(json: bool, ansi: bool) -> RequestLines {
        RequestLines {
            json,
            ansi: ansi && !json,
            write: batched,
        }
    }

    /// The line for `event` at `now`, appended to `out`.
    fn format(&self, event: &Event<'_>, now: SystemTime, out: &mut Vec<u8>) {
        let level = *event.metadata().level();
        if self.json {
            out.extend_from_slice(b"{\"timestamp\":\"");
            timestamp(now, out);
            out.extend_from_slice(b"\",\"level\":\"");
            out.extend_from_slice(level.as_str().as_bytes());
            out.push(b'"');
            event.record(&mut JsonFields { out });
            out.extend_from_slice(b",\"target\":");
            json_str(out, TARGET);
            out.extend_from_slice(b"}\n");
        } else {
            let a = Ansi::new(self.ansi);
            out.extend_from_slice(a.dim.as_bytes());
            timestamp(now, out);
            out.extend_from_slice(a.reset.as_bytes());
            out.push(b' ');
            out.extend_from_slice(a.level(level).as_bytes());
            out.extend_from_slice(padded(level).as_bytes());
            out.extend_from_slice(a.reset.as_bytes());
            out.push(b' ');
            for part in [a.dim, TARGET, a.reset, a.dim, ":", a.reset, " "] {
                out.extend_from_slice(part.as_bytes());
            }
            event.record(&mut TextFields {
                out,
                ansi: a,
                first: true,
            });
            out.push(b'\n');
        }
    }
}

impl<S> Layer<S> for RequestLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        // The target first: for every other event this is the whole cost of this layer.
        if meta.target() != TARGET || !ours(meta, ctx.lookup_current().is_some()) {
            return;
        }
        let now = SystemTime::now();
        BUF.with(|cell| {
            let Ok(mut buf) = cell.try_borrow_mut() else {
                return;
            };
            buf.clear();
            self.format(event, now, &mut buf);
            (self.write)(&buf);
            if buf.capacity() > KEEP {
                *buf = Vec::with_capacity(1024);
            }
        });
    }
}

/// `level` padded to five characters, as fmt prints it.
fn padded(level: Level) -> &'static str {
    match level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => " INFO",
        Level::WARN => " WARN",
        Level::ERROR => "ERROR",
    }
}

/// The escape codes fmt (through `nu-ansi-term`) writes, or none.
#[derive(Clone, Copy)]
struct Ansi {
    dim: &'static str,
    italic: &'static str,
    reset: &'static str,
    on: bool,
}

impl Ansi {
    fn new(on: bool) -> Ansi {
        let code = |c: &'static str| if on { c } else { "" };
        Ansi {
            dim: code("\x1b[2m"),
            italic: code("\x1b[3m"),
            reset: code("\x1b[0m"),
            on,
        }
    }

    fn level(&self, level: Level) -> &'static str {
        if !self.on {
            return "";
        }
        match level {
            Level::TRACE => "\x1b[35m",
            Level::DEBUG => "\x1b[34m",
            Level::INFO => "\x1b[32m",
            Level::WARN => "\x1b[33m",
            Level::ERROR => "\x1b[31m",
        }
    }
}

/// `now` as fmt's `SystemTime` timer writes it: RFC 3339, UTC, microseconds,
/// `2026-12-02T16:36:57.637606Z`.
fn timestamp(now: SystemTime, out: &mut Vec<u8>) {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil(days);
    // The digits written into a template and copied once (a line's timestamp was a dozen
    // small copies).
    let mut t = *b"0000-00-00T00:00:00.000000Z";
    let mut put = |at: usize, width: usize, mut n: u64| {
        for b in t[at..at + width].iter_mut().rev() {
            *b = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    if y > 9999 {
        // Past the template's four digits: the year in full, then the rest.
        out.extend_from_slice(itoa::Buffer::new().format(y).as_bytes());
    } else {
        put(0, 4, y);
    }
    put(5, 2, m);
    put(8, 2, d);
    put(11, 2, rem / 3600);
    put(14, 2, rem % 3600 / 60);
    put(17, 2, rem % 60);
    put(20, 6, u64::from(since.subsec_micros()));
    out.extend_from_slice(if y > 9999 { &t[4..] } else { &t[..] });
}

/// Year, month, day of `days` since 1970-01-01 (`llmgate::core::seconds::civil_from_days`).
fn civil(days: u64) -> (u64, u64, u64) {
    let (y, m, d) = llmgate::core::seconds::civil_from_days(i64::try_from(days).unwrap_or(0));
    (u64::try_from(y).unwrap_or(0), u64::from(m), u64::from(d))
}

/// Appends the message as fmt writes it: bare, with the control characters a terminal could
/// act on written out (its `EscapeGuard`).
fn message(out: &mut Vec<u8>, v: &str) {
    if v.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        out.extend_from_slice(v.as_bytes());
        return;
    }
    let mut w = Utf8(out);
    for ch in v.chars() {
        let _ = match ch {
            '\x1b' => w.write_str("\\x1b"),
            '\x07' => w.write_str("\\x07"),
            '\x08' => w.write_str("\\x08"),
            '\x0c' => w.write_str("\\x0c"),
            '\x7f' => w.write_str("\\x7f"),
            '\u{80}'..='\u{9f}' => write!(w, "\\u{{{:x}}}", u32::from(ch)),
            _ => w.write_char(ch),
        };
    }
}

/// Appends `v` as Rust's `Debug` writes a `str` (fmt's text format for a string field).
fn debug_str(out: &mut Vec<u8>, v: &str) {
    // One pass without an early exit (it runs over many bytes at a time): almost every value
    // (ids, names, models) has nothing to escape and is copied once.
    let (other, quotes) = v.bytes().fold((false, false), |(other, quotes), b| {
        (
            other | !(0x20..0x7f).contains(&b),
            quotes | (b == b'"') | (b == b'\\'),
        )
    });
    if other {
        // Non-ASCII or control characters: `Debug`'s escaping is the reference.
        let _ = write!(Utf8(out), "{v:?}");
        return;
    }
    out.reserve(v.len() + 2);
    out.push(b'"');
    let mut start = 0;
    if quotes {
        for (i, b) in v.bytes().enumerate() {
            if b == b'"' || b == b'\\' {
                out.extend_from_slice(&v.as_bytes()[start..i]);
                out.push(b'\\');
                start = i;
            }
        }
    }
    out.extend_from_slice(&v.as_bytes()[start..]);
    out.push(b'"');
}

/// Appends `v` as a JSON string, escaped as `serde_json` escapes it.
fn json_str(out: &mut Vec<u8>, v: &str) {
    out.push(b'"');
    let mut start = 0;
    for (i, b) in v.bytes().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&v.as_bytes()[start..i]);
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&v.as_bytes()[start..]);
    out.push(b'"');
}

/// `fmt::Write` into the byte buffer (for the rare value written through `core::fmt`).
struct Utf8<'a>(&'a mut Vec<u8>);

impl fmt::Write for Utf8<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// fmt's `DefaultFields`: `message` bare, then ` name=value` with `Debug` values.
struct TextFields<'a> {
    out: &'a mut Vec<u8>,
    ansi: Ansi,
    first: bool,
}

impl TextFields<'_> {
    /// The separator and `name=` of `field` (nothing before the message).
    fn name(&mut self, field: &Field) {
        if !std::mem::take(&mut self.first) {
            self.out.push(b' ');
        }
        let name = field.name();
        if name == "message" {
            return;
        }
        let a = self.ansi;
        if !a.on {
            // Two copies, not six: this runs for every field of every request's line.
            self.out.reserve(name.len() + 1);
            self.out.extend_from_slice(name.as_bytes());
            self.out.push(b'=');
            return;
        }
        for part in [a.italic, name, a.reset, a.dim, "=", a.reset] {
            self.out.extend_from_slice(part.as_bytes());
        }
    }
}

impl Visit for TextFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.name(field);
        if field.name() == "message" {
            message(self.out, value);
        } else {
            debug_str(self.out, value);
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.name(field);
        self.out
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.name(field);
        self.out
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.name(field);
        self.out
            .extend_from_slice(if value { b"true" } else { b"false" });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.name(field);
        let _ = write!(Utf8(self.out), "{value:?}");
    }
}

/// tracing-serde's flattened fields: `,"name":value`, in the order they were declared.
struct JsonFields<'a> {
    out: &'a mut Vec<u8>,
}

impl JsonFields<'_> {
    fn name(&mut self, field: &Field) {
        self.out.push(b',');
        json_str(self.out, field.name());
        self.out.push(b':');
    }
}

impl Visit for JsonFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.name(field);
        json_str(self.out, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.name(field);
        self.out
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.name(field);
        self.out
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.name(field);
        // serde_json's own float format (what tracing-serde writes; `null` when not finite).
        let _ = serde_json::to_writer(&mut *self.out, &value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.name(field);
        self.out
            .extend_from_slice(if value { b"true" } else { b"false" });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        self.record_str(field, &text);
    }
}

#[cfg(test)]
mod tests;
