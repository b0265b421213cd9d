//! Durations in the agent's configuration: a number of seconds (`30`,
//! `0.5`) or text (`"30s"`, `"2m"`, `"1h30m"`, `"1d"`).

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// Parses a duration written as text: whole numbers each followed by a unit
/// (`s`, `m`, `h`, `d`), combined largest first or not (`"90s"`, `"1h30m"`),
/// or a number of seconds (`"30"`, `"0.5"`, `"2.5s"`). `None` when it is not of
/// that shape, negative or overflows.
///
/// ```
/// use std::time::Duration;
/// use tailmon_collect::plugins::parse_duration;
///
/// assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
/// assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
/// assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
/// assert_eq!(parse_duration("2.5"), Some(Duration::from_millis(2500)));
/// assert_eq!(parse_duration("2 minutes"), None);
/// ```
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let number = text.strip_suffix('s').unwrap_or(text);
    if let Ok(secs) = number.parse::<f64>() {
        return seconds(secs);
    }
    tailmon_core::duration_text::parse(text)
}

/// Writes a duration the way [`parse_duration`] reads it: `"1h30m"`, `"0s"`,
/// or seconds with a fraction (`"2.5s"`) when it is not whole.
pub fn format_duration(duration: Duration) -> String {
    if duration.subsec_nanos() != 0 {
        return format!("{}s", duration.as_secs_f64());
    }
    tailmon_core::duration_text::format(duration)
}

fn seconds(secs: f64) -> Option<Duration> {
    (secs.is_finite() && secs >= 0.0)
        .then(|| Duration::try_from_secs_f64(secs).ok())
        .flatten()
}

/// Serde helpers for a `Duration` setting: reads a number of seconds or
/// text, writes text (`#[serde(with = "duration_setting")]`).
pub(crate) mod serde_setting {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Whole(u64),
            Seconds(f64),
            Text(String),
        }
        let refuse = |what: String| {
            serde::de::Error::custom(format!(
                "{what} is not a duration: write seconds (30) or text like \"30s\", \"2m\", \"1h\""
            ))
        };
        match Written::deserialize(d)? {
            Written::Whole(secs) => Ok(Duration::from_secs(secs)),
            Written::Seconds(secs) => seconds(secs).ok_or_else(|| refuse(secs.to_string())),
            Written::Text(text) => parse_duration(&text).ok_or_else(|| refuse(format!("{text:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_durations() {
        assert_eq!(parse_duration("0s"), Some(Duration::ZERO));
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("2d"), Some(Duration::from_secs(172_800)));
        assert_eq!(parse_duration(" 15 "), Some(Duration::from_secs(15)));
        for bad in [
            "",
            "m",
            "1x",
            "1h 2m",
            "-1s",
            "-1",
            "NaN",
            "inf",
            "99999999999999999999s",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        for d in [
            Duration::ZERO,
            Duration::from_secs(5400),
            Duration::from_secs(86_401),
            Duration::from_millis(2500),
        ] {
            assert_eq!(parse_duration(&format_duration(d)), Some(d), "{d:?}");
        }
    }
}
