use std::time::Duration;

/// Shortest collection interval accepted: 0.2 s, sysinfo's minimum CPU window.
pub const MIN_INTERVAL: Duration = Duration::from_millis(200);
/// Longest collection interval accepted: one day.
pub const MAX_INTERVAL: Duration = Duration::from_secs(86_400);

/// Parses a collection interval in seconds, fractions allowed
/// (`TAILMON_INTERVAL`), between [`MIN_INTERVAL`] and [`MAX_INTERVAL`].
///
/// ```
/// use std::time::Duration;
/// use tailmon_collect::parse_interval;
///
/// assert_eq!(parse_interval("5"), Ok(Duration::from_secs(5)));
/// assert_eq!(parse_interval("0.5"), Ok(Duration::from_millis(500)));
/// assert!(parse_interval("0").is_err());
/// ```
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let refuse = || {
        format!(
            "{text:?} is not a number of seconds from {} to {}",
            MIN_INTERVAL.as_secs_f64(),
            MAX_INTERVAL.as_secs()
        )
    };
    let secs: f64 = text.trim().parse().map_err(|_| refuse())?;
    let range = MIN_INTERVAL.as_secs_f64()..=MAX_INTERVAL.as_secs_f64();
    if !secs.is_finite() || !range.contains(&secs) {
        return Err(refuse());
    }
    Ok(Duration::from_secs_f64(secs))
}
