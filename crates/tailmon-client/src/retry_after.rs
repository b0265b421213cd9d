//! The `Retry-After` header of an error answer: how long the server asks the
//! client to wait before it tries again.

use std::time::Duration;

use tailmon_core::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

/// The wait a `Retry-After` value asks for, from `now`: delta-seconds
/// (`120`) or an HTTP date (`Wed, 21 Oct 2015 07:28:00 GMT`). A date already
/// past asks for no wait; a value that is neither is ignored (`None`).
pub(crate) fn parse_retry_after(value: &str, now: OffsetDateTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Digits only: seconds; a number too large for u64 is "very long".
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = OffsetDateTime::parse(value, &Rfc2822).ok()?;
    Some(Duration::try_from(at - now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> OffsetDateTime {
        // Wed, 21 Oct 2015 07:28:00 GMT
        OffsetDateTime::from_unix_timestamp(1_445_412_480).expect("valid")
    }

    #[test]
    fn delta_seconds() {
        assert_eq!(parse_retry_after("5", now()), Some(Duration::from_secs(5)));
        assert_eq!(
            parse_retry_after(" 30 ", now()),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after("0", now()), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now()),
            Some(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn http_date_from_now() {
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:40 GMT", now()),
            Some(Duration::from_secs(40))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:20:00 GMT", now()),
            Some(Duration::ZERO),
            "a date already past: no wait"
        );
    }

    #[test]
    fn anything_else_is_ignored() {
        for value in [
            "",
            "-5",
            "1.5",
            "soon",
            "5 s",
            "Wed, 32 Oct 2015 07:28:00 GMT",
        ] {
            assert_eq!(parse_retry_after(value, now()), None, "{value:?}");
        }
    }
}
