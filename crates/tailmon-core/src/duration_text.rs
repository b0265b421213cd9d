//! Durations as people write them in configuration files and the API:
//! whole numbers each followed by a unit, `"90s"`, `"15m"`, `"4h"`, `"2d"`,
//! or combined, `"1h30m"`. The server's alert settings and the agent's
//! plugin settings both read them.

use std::time::Duration;

/// The units, largest first, with their length in seconds.
const UNITS: [(u64, char); 4] = [(86_400, 'd'), (3600, 'h'), (60, 'm'), (1, 's')];

/// Parses `text` (`"0s"`, `"1m"`, `"1h30m"`, `"2d"`); `None` when it is not
/// of that shape or overflows.
///
/// ```
/// use std::time::Duration;
/// use tailmon_core::duration_text;
///
/// assert_eq!(duration_text::parse("1h30m"), Some(Duration::from_secs(5400)));
/// assert_eq!(duration_text::parse("5"), None);
/// ```
pub fn parse(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = UNITS.iter().find(|(_, name)| *name == c)?.0;
        let n: u64 = digits.parse().ok()?;
        digits.clear();
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    if !digits.is_empty() {
        return None;
    }
    Some(Duration::from_secs(total))
}

/// Writes the whole seconds of `duration` the way [`parse`] reads them,
/// e.g. `"1h30m"`, `"0s"`.
pub fn format(duration: Duration) -> String {
    let mut secs = duration.as_secs();
    if secs == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, name) in UNITS {
        if secs >= unit {
            out.push_str(&(secs / unit).to_string());
            out.push(name);
            secs %= unit;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_durations() {
        assert_eq!(parse("0s"), Some(Duration::ZERO));
        assert_eq!(parse("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse("2d"), Some(Duration::from_secs(172_800)));
        for bad in ["", "5", "m", "1x", "1h 2m", "-1s", "99999999999999999999s"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert_eq!(format(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format(Duration::ZERO), "0s");
    }
}
