//! The check and count of [`super::json_object_text`], by hand: one pass over the bytes, no
//! allocation, no recursion.
//!
//! It accepts exactly what serde_json's `from_str` accepts for a value walked with
//! `deserialize_any` (the walk this replaced, kept as the tests' reference): RFC 8259's grammar
//! with JSON's four whitespace bytes; no control byte in a string; `\u` escapes whose
//! surrogates come in pairs (a lone one is refused, as serde_json refuses it for a `str`); at
//! most [`MAX_DEPTH`] nested arrays and objects; a number whose value overflows an `f64`
//! refused (`1e400`). The input is a `&str`, so its UTF-8 is valid already.
//!
//! Strings, most of an event's bytes, are skipped eight bytes at a time (a SWAR test for `"`,
//! `\` and control bytes in a `u64`), as serde_json's own string reader does: the strings of
//! a chunk are mostly shorter than the 16 bytes where `memchr`'s SIMD search starts to pay,
//! and `memchr` would still need a second pass for control bytes.

/// serde_json's recursion limit: it counts down from 128 at each `[` or `{` and fails when
/// the count reaches 0, so 127 nested containers pass and the 128th fails.
pub(super) const MAX_DEPTH: u32 = 127;

/// The longest of [`TEXT_KEYS`](super::TEXT_KEYS), in bytes: a key with escapes is decoded up to this length.
const LONGEST_KEY: usize = 17;

/// A number whose integer digits plus its exponent exceed this is checked by serde_json
/// itself (its `f64` may overflow, and serde_json's rounding decides where); below it, the
/// value is under 10^300 and always finite.
const SURELY_FINITE: i64 = 300;

/// The bytes of the model's text in `data` if it is one JSON object (leading and trailing
/// JSON whitespace allowed), else `None`.
pub(super) fn object_text(data: &str) -> Option<u64> {
    let mut s = Scan {
        s: data,
        b: data.as_bytes(),
        i: 0,
    };
    s.ws();
    if s.peek()? != b'{' {
        return None;
    }
    let mut n = 0u64;
    // The open containers: `depth` of them; bit d of `objects` is set when the d-th is an
    // object (bit 0 unused); `in_object`: the innermost is.
    let mut depth = 0u32;
    let mut objects = 0u128;
    let mut in_object = false;
    // The value about to be read is a text key's.
    let mut text = false;
    loop {
        // A value starts here (whitespace skipped).
        let c = s.peek()?;
        match c {
            b'{' | b'[' => {
                if depth == MAX_DEPTH {
                    return None;
                }
                depth += 1;
                s.i += 1;
                s.ws();
                in_object = c == b'{';
                if in_object {
                    objects |= 1 << depth;
                    if s.peek()? != b'}' {
                        text = s.key()?;
                        continue;
                    }
                } else {
                    objects &= !(1 << depth);
                    if s.peek()? != b']' {
                        text = false;
                        continue;
                    }
                }
                // `{}` or `[]`.
                s.i += 1;
                depth -= 1;
                in_object = objects & (1 << depth) != 0;
            }
            b'"' => {
                s.i += 1;
                let len = s.string()?;
                if text {
                    n += len;
                }
            }
            b't' => s.literal(b"true")?,
            b'f' => s.literal(b"false")?,
            b'n' => s.literal(b"null")?,
            b'-' | b'0'..=b'9' => s.number()?,
            _ => return None,
        }
        // After a value: `,` and the next one, or the containers it closes.
        loop {
            s.ws();
            if depth == 0 {
                return (s.i == s.b.len()).then_some(n);
            }
            match s.peek()? {
                b',' => {
                    s.i += 1;
                    s.ws();
                    text = in_object && s.key()?;
                    break;
                }
                b'}' if in_object => {}
                b']' if !in_object => {}
                _ => return None,
            }
            s.i += 1;
            depth -= 1;
            in_object = objects & (1 << depth) != 0;
        }
    }
}

/// The input and the position in it.
struct Scan<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

impl Scan<'_> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// Skips JSON's whitespace: space, tab, LF, CR.
    #[inline]
    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if c > b' ' || !matches!(c, b' ' | b'\n' | b'\t' | b'\r') {
                return;
            }
            self.i += 1;
        }
    }

    /// An object's key, its `:` and the whitespace after it: whether it is a text key.
    // Inlined, as are `string` and `is_text_key`: about a fifth of a chunk's scan was their
    // calls (2,570 -> 2,030 Ir for a 180-byte chat chunk, counted by callgrind).
    #[inline(always)]
    fn key(&mut self) -> Option<bool> {
        if self.peek()? != b'"' {
            return None;
        }
        self.i += 1;
        let start = self.i;
        let len = self.string()?;
        let raw = self.b.get(start..self.i - 1)?;
        let text = if raw.len() as u64 == len {
            is_text_key(raw)
        } else {
            decoded_is_text_key(raw)
        };
        self.ws();
        if self.peek()? != b':' {
            return None;
        }
        self.i += 1;
        self.ws();
        Some(text)
    }

    /// A string's rest, after its opening quote: the bytes it decodes to.
    #[inline(always)]
    fn string(&mut self) -> Option<u64> {
        let start = self.i;
        // What the escapes so far save: each stands for fewer bytes than it is written in.
        let mut saved = 0;
        loop {
            self.i = skip_plain(self.b, self.i);
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    return Some((self.i - 1 - start - saved) as u64);
                }
                b'\\' => saved += self.escape()?,
                _ => return None,
            }
        }
    }

    /// One escape (a surrogate pair is one) at a backslash: the bytes it saves.
    fn escape(&mut self) -> Option<usize> {
        match *self.b.get(self.i + 1)? {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {
                self.i += 2;
                Some(1)
            }
            b'u' => {
                let u = hex4(self.b, self.i + 2)?;
                self.i += 6;
                match u {
                    0xDC00..=0xDFFF => None,
                    0xD800..=0xDBFF => {
                        if self.b.get(self.i..self.i + 2)? != b"\\u" {
                            return None;
                        }
                        if !(0xDC00..=0xDFFF).contains(&hex4(self.b, self.i + 2)?) {
                            return None;
                        }
                        self.i += 6;
                        // 12 bytes for one 4-byte character
                        Some(8)
                    }
                    0..=0x7F => Some(5),
                    0x80..=0x7FF => Some(4),
                    _ => Some(3),
                }
            }
            _ => None,
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if !self.b.get(self.i..)?.starts_with(word) {
            return None;
        }
        self.i += word.len();
        Some(())
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, finite as an `f64`.
    fn number(&mut self) -> Option<()> {
        let start = self.i;
        if self.peek()? == b'-' {
            self.i += 1;
        }
        let int_start = self.i;
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        let int_digits = (self.i - int_start) as i64;
        if self.peek() == Some(b'.') {
            self.i += 1;
            let from = self.i;
            self.digits();
            if self.i == from {
                return None;
            }
        }
        let mut exp = 0i64;
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            let negative = match self.peek() {
                Some(b'-') => {
                    self.i += 1;
                    true
                }
                Some(b'+') => {
                    self.i += 1;
                    false
                }
                _ => false,
            };
            let from = self.i;
            while let Some(c @ b'0'..=b'9') = self.peek() {
                exp = (exp * 10 + i64::from(c - b'0')).min(1 << 20);
                self.i += 1;
            }
            if self.i == from {
                return None;
            }
            if negative {
                exp = -exp;
            }
        }
        if int_digits + exp > SURELY_FINITE {
            return large_number_is_finite(self.s.get(start..self.i)?).then_some(());
        }
        Some(())
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
    }
}

/// Whether serde_json reads `number` (valid JSON number syntax) as a finite value: it
/// refuses what overflows an `f64`, and where that starts depends on its own rounding.
#[cold]
#[inline(never)]
fn large_number_is_finite(number: &str) -> bool {
    serde_json::from_str::<f64>(number).is_ok()
}

/// The position of the first `"`, `\` or control byte at or after `i` (or the end).
#[inline]
fn skip_plain(b: &[u8], mut i: usize) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    while let Some(chunk) = b.get(i..i + 8) {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        // Bytes below 0x20, equal to `"`, equal to `\`: each test may also flag bytes after
        // a flagged one (a borrow carries upward), never before, so the lowest flag is exact.
        let control = w.wrapping_sub(ONES * 0x20);
        let quote = w ^ (ONES * u64::from(b'"'));
        let backslash = w ^ (ONES * u64::from(b'\\'));
        let found =
            (control | quote.wrapping_sub(ONES) | backslash.wrapping_sub(ONES)) & !w & HIGHS;
        if found != 0 {
            return i + (found.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        if c < 0x20 || c == b'"' || c == b'\\' {
            break;
        }
        i += 1;
    }
    i
}

/// The value of four hex digits at `i`.
#[inline]
fn hex4(b: &[u8], i: usize) -> Option<u32> {
    let mut u = 0;
    for &c in b.get(i..i + 4)? {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return None,
        };
        u = u << 4 | u32::from(d);
    }
    Some(u)
}

/// Whether a key written with escapes (already checked) decodes to one of [`TEXT_KEYS`](super::TEXT_KEYS).
#[cold]
fn decoded_is_text_key(raw: &[u8]) -> bool {
    let mut key = [0u8; LONGEST_KEY];
    let mut len = 0;
    let mut i = 0;
    while let Some(&c) = raw.get(i) {
        let mut utf8 = [0u8; 4];
        let bytes: &[u8] = if c != b'\\' {
            i += 1;
            std::slice::from_ref(&c)
        } else {
            let e = raw.get(i + 1).copied().unwrap_or_default();
            i += 2;
            let ch = match e {
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => {
                    let Some(hi) = hex4(raw, i) else { return false };
                    i += 4;
                    let code = if (0xD800..=0xDBFF).contains(&hi) {
                        let Some(lo) = hex4(raw, i + 2) else {
                            return false;
                        };
                        i += 6;
                        0x1_0000 + ((hi - 0xD800) << 10 | (lo - 0xDC00))
                    } else {
                        hi
                    };
                    let Some(ch) = char::from_u32(code) else {
                        return false;
                    };
                    ch
                }
                other => char::from(other),
            };
            ch.encode_utf8(&mut utf8).as_bytes()
        };
        let Some(slot) = key.get_mut(len..len + bytes.len()) else {
            return false;
        };
        slot.copy_from_slice(bytes);
        len += bytes.len();
    }
    is_text_key(&key[..len])
}

/// Whether `key` is one of [`TEXT_KEYS`](super::TEXT_KEYS), by its length first (most keys have none of theirs).
#[inline(always)]
pub(super) fn is_text_key(key: &[u8]) -> bool {
    match key.len() {
        4 => key == b"text",
        7 => key == b"content" || key == b"refusal",
        9 => key == b"reasoning" || key == b"arguments",
        17 => key == b"reasoning_content",
        _ => false,
    }
}
