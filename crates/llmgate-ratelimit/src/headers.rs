//! `x-ratelimit-*` response headers, as OpenAI sends them.

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use llmgate_core::headers as names;

use crate::plan::{LimitName, Unit};
use crate::store::{Check, CheckState};

/// A duration as OpenAI writes it in `x-ratelimit-reset-*`: `20ms`, `1s`, `8.571s`, `6m0s`,
/// `1h2m3s`. Written digit by digit into one string: `format!` and its temporaries cost a
/// few thousand instructions on every limited request.
pub fn duration(d: Duration) -> String {
    let mut out = String::with_capacity(16);
    let mut digits = itoa::Buffer::new();
    let ms = d.as_millis();
    if ms < 1000 {
        out.push_str(digits.format(ms));
        out.push_str("ms");
        return out;
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    if h > 0 {
        out.push_str(digits.format(h));
        out.push('h');
    }
    if h > 0 || m > 0 {
        out.push_str(digits.format(m));
        out.push('m');
    }
    out.push_str(digits.format(s));
    let frac = d.subsec_millis();
    if frac != 0 {
        out.push('.');
        let all = [frac / 100, frac / 10 % 10, frac % 10];
        let mut f = all.as_slice();
        while let [rest @ .., 0] = f {
            f = rest;
        }
        out.extend(f.iter().map(|&n| char::from(b'0' + n as u8)));
    }
    out.push('s');
    out
}

/// The headers of one response, in the order they are added.
pub(crate) type Headers = Vec<(HeaderName, HeaderValue)>;

/// The headers for one request: for requests and for tokens, the applying limit with the
/// fewest units left. Nothing when no rate limit applies. A list, not a `HeaderMap`: they
/// are added to the response's map once, not hashed into a map of their own first.
pub(crate) fn build(names: &[LimitName], checks: &[Check], states: &[CheckState]) -> Headers {
    let mut out = Headers::new();
    for (unit, [limit, remaining, reset]) in [
        (
            Unit::Requests,
            [
                names::RATELIMIT_LIMIT_REQUESTS,
                names::RATELIMIT_REMAINING_REQUESTS,
                names::RATELIMIT_RESET_REQUESTS,
            ],
        ),
        (
            Unit::Tokens,
            [
                names::RATELIMIT_LIMIT_TOKENS,
                names::RATELIMIT_REMAINING_TOKENS,
                names::RATELIMIT_RESET_TOKENS,
            ],
        ),
    ] {
        let tightest = names
            .iter()
            .zip(checks.iter().zip(states))
            .filter(|(n, _)| n.unit() == unit)
            .map(|(_, cs)| cs)
            .min_by_key(|(c, s)| (s.remaining, c.limit));
        if let Some((c, s)) = tightest {
            out.reserve(6);
            out.push((limit, HeaderValue::from(c.limit)));
            out.push((remaining, HeaderValue::from(s.remaining)));
            if let Ok(v) = HeaderValue::try_from(duration(s.reset)) {
                out.push((reset, v));
            }
        }
    }
    out
}

/// Sets `headers` on a response, each replacing what the upstream sent under its name (a
/// provider's own `x-ratelimit-*` are about the gateway's key, not the caller's).
pub(crate) fn set(map: &mut HeaderMap, headers: Headers) {
    map.reserve(headers.len());
    for (name, value) in headers {
        map.insert(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_openai_s() {
        let d = |ms| duration(Duration::from_millis(ms));
        assert_eq!(d(0), "0ms");
        assert_eq!(d(20), "20ms");
        assert_eq!(d(1000), "1s");
        assert_eq!(d(8571), "8.571s");
        assert_eq!(d(1500), "1.5s");
        assert_eq!(d(360_000), "6m0s");
        assert_eq!(d(3_723_000), "1h2m3s");
        assert_eq!(d(999), "999ms");
        assert_eq!(d(1050), "1.05s");
        assert_eq!(d(1001), "1.001s");
        assert_eq!(d(61_500), "1m1.5s");
        assert_eq!(d(3_600_000), "1h0m0s");
        assert_eq!(d(90_061_100), "25h1m1.1s");
    }
}
