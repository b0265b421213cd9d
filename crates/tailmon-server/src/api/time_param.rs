//! Times in query strings: RFC 3339 or Unix seconds.

use tailmon_core::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Parses `2025-07-10T14:30:00Z` or `1752157800` (fractions allowed).
pub(crate) fn parse(text: &str) -> Option<OffsetDateTime> {
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(at);
    }
    let secs: f64 = text.parse().ok()?;
    if !secs.is_finite() {
        return None;
    }
    OffsetDateTime::from_unix_timestamp_nanos((secs * 1e9).round() as i128).ok()
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
        for bad in ["yesterday", "", "NaN", "1e400", "2025-13-01T00:00:00Z"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
