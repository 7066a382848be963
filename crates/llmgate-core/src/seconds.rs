//! Seconds written as numbers (a request's `timeout`, a config's `cooldown_time`) turned into a
//! [`Duration`] without a panic.
//!
//! [`Duration::from_secs_f64`] panics on a negative, infinite, NaN or too large value, and a
//! `Duration` that fits can still overflow a clock (`Instant::now() + d` panics past about 292
//! billion years, moka refuses a time to live over 1,000 years). Every number of seconds the
//! gateway accepts goes through [`seconds`], which refuses anything over [`MAX_SECONDS`]
//! (100 years): far beyond any real timeout or interval, and small enough for every clock.

use std::time::Duration;

/// The largest number of seconds accepted anywhere: 100 years of 365.25 days.
pub const MAX_SECONDS: u64 = 3_155_760_000;

/// How [`MAX_SECONDS`] reads in a message.
pub const MAX_SECONDS_TEXT: &str = "3155760000 (100 years)";

/// `secs` as a [`Duration`], or `None` if it is NaN, infinite, negative or over
/// [`MAX_SECONDS`]. Zero is accepted (callers that need a positive value check that).
#[must_use]
pub fn seconds(secs: f64) -> Option<Duration> {
    // Exact: MAX_SECONDS is below 2^53.
    let max = MAX_SECONDS as f64;
    if !(0.0..=max).contains(&secs) {
        return None;
    }
    Duration::try_from_secs_f64(secs).ok()
}

/// LiteLLM's durations (`budget_duration: 30d`): `<n>s`, `m`, `h`, `d`, `w`, `mo` (30 days), or
/// plain seconds, as whole seconds. `None` for anything else, zero, or an overflow.
#[must_use]
pub fn parse_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().ok().filter(|n| *n > 0)?;
    let unit_secs = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "mo" => 30 * 86_400,
        _ => return None,
    };
    n.checked_mul(unit_secs)
}

/// Year, month (1-12) and day (1-31) of `days` since 1970-01-01, UTC (Howard Hinnant's
/// `civil_from_days`): for log timestamps and daily totals without a date crate.
#[must_use]
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    // Both are small: 1..=12 and 1..=31.
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_would_panic_or_overflow_a_clock() {
        for bad in [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -1.0,
            -0.001,
            1e300,
            1e18,
            3_155_760_000.5,
        ] {
            assert_eq!(seconds(bad), None, "{bad}");
        }
        assert_eq!(seconds(0.0), Some(Duration::ZERO));
        assert_eq!(seconds(1.5), Some(Duration::from_millis(1500)));
        let max = seconds(3_155_760_000.0).unwrap();
        assert!(std::time::Instant::now().checked_add(max).is_some());
    }
}
