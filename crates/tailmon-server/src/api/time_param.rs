//! Times in query strings: RFC 3339 or Unix seconds.

use tailmon_core::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Parses `2025-07-10T14:30:00Z` or `1752157800` (fractions allowed).
pub(crate) fn parse(text: &str) -> Option<OffsetDateTime> {
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(at);
    }
    if let Some(at) = decimal_seconds(text) {
        return Some(at);
    }
    let secs: f64 = text.parse().ok()?;
    if !secs.is_finite() {
        return None;
    }
    OffsetDateTime::from_unix_timestamp_nanos((secs * 1e9).round() as i128).ok()
}

/// `1752157800.25` read digit by digit, to the nanosecond: through a double
/// the fraction would be off by up to some hundred nanoseconds.
fn decimal_seconds(text: &str) -> Option<OffsetDateTime> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = whole.strip_prefix('-').unwrap_or(whole);
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if digits.is_empty() || !all_digits(digits) || !all_digits(fraction) || fraction.len() > 9 {
        return None;
    }
    let mut nanos: i128 = whole.parse::<i64>().ok()?.into();
    nanos *= 1_000_000_000;
    let fraction_nanos = format!("{fraction:0<9}").parse::<i128>().ok()?;
    nanos += if whole.starts_with('-') {
        -fraction_nanos
    } else {
        fraction_nanos
    };
    OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms() {
        let at = parse("2025-07-10T14:30:00Z").unwrap();
        assert_eq!(at.unix_timestamp(), 1_752_157_800);
        assert_eq!(parse("1752157800"), Some(at));
        assert_eq!(parse("1752157800.5").unwrap().millisecond(), 500);
        assert_eq!(
            parse("1795832745.25").unwrap().unix_timestamp_nanos(),
            1_795_832_745_250_000_000,
            "exact"
        );
        assert_eq!(
            parse("-1.5").unwrap().unix_timestamp_nanos(),
            -1_500_000_000
        );
        assert_eq!(parse("1.5e3").unwrap().unix_timestamp(), 1_500);
        for bad in ["yesterday", "", "NaN", "1e400", "2025-13-01T00:00:00Z"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
