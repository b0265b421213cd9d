//! How long each tier of history is kept: [`Retention`] and its defaults.

use std::time::Duration;

/// How long raw reports are kept: 48 hours.
pub const DEFAULT_RAW_RETENTION: Duration = Duration::from_secs(48 * 3600);
/// How long one-minute buckets are kept: 30 days.
pub const DEFAULT_MINUTE_RETENTION: Duration = Duration::from_secs(30 * 86_400);
/// How long one-hour buckets are kept: one year.
pub const DEFAULT_HOUR_RETENTION: Duration = Duration::from_secs(365 * 86_400);

/// How long a store keeps each tier of history: raw reports, one-minute
/// buckets and one-hour buckets. Given at open
/// (`SqliteStoreBuilder::retention`) or changed at run time
/// ([`Store::set_retention`](crate::Store::set_retention), through a
/// [`Reloader`](crate::Reloader)).
///
/// ```
/// use std::time::Duration;
/// use tailmon_server::store::Retention;
///
/// let retention = Retention {
///     raw: Duration::from_secs(24 * 3600),
///     ..Retention::default()
/// };
/// assert!(retention.check().is_ok());
/// assert!(Retention { raw: Duration::ZERO, ..retention }.check().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Retention {
    /// Raw reports; defaults to [`DEFAULT_RAW_RETENTION`].
    pub raw: Duration,
    /// One-minute buckets; defaults to [`DEFAULT_MINUTE_RETENTION`].
    pub minute: Duration,
    /// One-hour buckets; defaults to [`DEFAULT_HOUR_RETENTION`].
    pub hour: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            raw: DEFAULT_RAW_RETENTION,
            minute: DEFAULT_MINUTE_RETENTION,
            hour: DEFAULT_HOUR_RETENTION,
        }
    }
}

/// The longest a tier may be kept: 100 years (further is no limit at all,
/// and would overflow the time arithmetic).
pub const MAX_RETENTION: Duration = Duration::from_secs(100 * 366 * 86_400);

impl Retention {
    /// Checks each duration: at least one minute (zero would keep nothing)
    /// and at most [`MAX_RETENTION`]. `Err` names the tier at fault
    /// (`raw_retention`, `minute_retention` or `hour_retention`) and why.
    pub fn check(&self) -> Result<(), (&'static str, &'static str)> {
        for (name, keep) in [
            ("raw_retention", self.raw),
            ("minute_retention", self.minute),
            ("hour_retention", self.hour),
        ] {
            if keep < Duration::from_secs(60) {
                return Err((name, "must be at least one minute"));
            }
            if keep > MAX_RETENTION {
                return Err((name, "must be at most 100 years"));
            }
        }
        Ok(())
    }
}
