use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{Report, Status, Thresholds};

/// How long [`DeviceSummary::id_conflict_at`] is kept after two agents were
/// last seen reporting under one device id: 10 minutes.
pub const ID_CONFLICT_KEPT: time::Duration = time::Duration::minutes(10);

/// One device as `GET /api/v1/devices` lists it: its latest report and its status.
///
/// Its JSON is the report's fields with `status`, `clock_skew_seconds`
/// (and, when set, `offline_since` and `id_conflict_at`) beside them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceSummary {
    /// How healthy it looks, or `offline` when it has not reported for
    /// longer than the server's offline delay (see [`DeviceSummary::new`]).
    pub status: Status,
    /// When the device was last heard of, set when `status` is
    /// [`Status::Offline`]: its latest report's `received_at`, else its
    /// `last_seen`.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub offline_since: Option<OffsetDateTime>,
    /// The last time two agents were seen reporting under this device id
    /// (kept for [`ID_CONFLICT_KEPT`]); `None` otherwise.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub id_conflict_at: Option<OffsetDateTime>,
    /// How many seconds the device's clock was ahead of the server's when
    /// its latest report arrived, when that was beyond
    /// [`MAX_FUTURE_SKEW`](crate::MAX_FUTURE_SKEW): that report (and the
    /// batch it came in) was stored at the server's receive time instead.
    /// `None` (`null`) within the allowance. Signed: positive is ahead.
    #[serde(default)]
    pub clock_skew_seconds: Option<i64>,
    /// Its latest report.
    #[serde(flatten)]
    pub report: Report,
}

impl DeviceSummary {
    /// The one status rule, for every view: a device whose latest `report`
    /// was last heard of (its `received_at`, else its `last_seen`) more than
    /// `offline_after` before `now` is [`Status::Offline`], with
    /// `offline_since` set, and is neither ok nor critical; otherwise its
    /// status is what `thresholds` make of the report.
    ///
    /// ```
    /// use tailmon_core::{DeviceSummary, OffsetDateTime, Report, Status, Thresholds};
    ///
    /// let seen = OffsetDateTime::UNIX_EPOCH;
    /// let mut report = Report::new("web-1", seen);
    /// report.cpu_usage = 95.0;
    /// let fifteen = time::Duration::seconds(15);
    /// let t = Thresholds::default();
    /// let live = DeviceSummary::new(report.clone(), seen + fifteen, fifteen, &t);
    /// assert_eq!(live.status, Status::Critical);
    /// let gone = DeviceSummary::new(report, seen + time::Duration::seconds(16), fifteen, &t);
    /// assert_eq!(gone.status, Status::Offline);
    /// assert_eq!(gone.offline_since, Some(seen));
    /// ```
    pub fn new(
        report: Report,
        now: OffsetDateTime,
        offline_after: time::Duration,
        thresholds: &Thresholds,
    ) -> Self {
        let (status, offline_since) = Self::status_of(&report, now, offline_after, thresholds);
        Self {
            status,
            offline_since,
            id_conflict_at: None,
            clock_skew_seconds: None,
            report,
        }
    }

    /// The status [`new`](Self::new) gives `report` at `now`, and its
    /// `offline_since`, without building a summary.
    pub fn status_of(
        report: &Report,
        now: OffsetDateTime,
        offline_after: time::Duration,
        thresholds: &Thresholds,
    ) -> (Status, Option<OffsetDateTime>) {
        let seen = Self::seen(report);
        if now - seen > offline_after {
            (Status::Offline, Some(seen))
        } else {
            (report.status(thresholds), None)
        }
    }

    /// When the device of `report` was last heard of: the report's
    /// `received_at`, else its `last_seen`.
    pub fn seen(report: &Report) -> OffsetDateTime {
        report.received_at.unwrap_or(report.last_seen)
    }

    /// This summary with `clock_skew_seconds` set to `seconds`.
    #[must_use]
    pub fn with_clock_skew(mut self, seconds: Option<i64>) -> Self {
        self.clock_skew_seconds = seconds;
        self
    }

    /// This summary with `id_conflict_at` set to `at` unless it is older
    /// than [`ID_CONFLICT_KEPT`] at `now`.
    #[must_use]
    pub fn with_id_conflict(mut self, at: Option<OffsetDateTime>, now: OffsetDateTime) -> Self {
        self.id_conflict_at = at.filter(|at| now - *at <= ID_CONFLICT_KEPT);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn report() -> Report {
        let mut report = Report::new("a", datetime!(2025-07-10 14:30:00 UTC));
        report.ram_used_mb = 1;
        report.ram_total_mb = 2;
        report
    }

    #[test]
    fn offline_after_the_delay_from_received_at() {
        let mut r = report();
        r.cpu_usage = 99.0;
        r.received_at = Some(datetime!(2025-07-10 14:30:10 UTC));
        let t = Thresholds::default();
        let d = time::Duration::seconds(15);
        let at = |now| DeviceSummary::new(r.clone(), now, d, &t);
        assert_eq!(
            at(datetime!(2025-07-10 14:30:25 UTC)).status,
            Status::Critical
        );
        let gone = at(datetime!(2025-07-10 14:30:25.001 UTC));
        assert_eq!(gone.status, Status::Offline);
        assert_eq!(gone.offline_since, r.received_at);
    }

    #[test]
    fn json_omits_unset_times_and_reads_back() {
        let s = DeviceSummary::new(
            report(),
            datetime!(2025-07-10 14:30:01 UTC),
            time::Duration::seconds(15),
            &Thresholds::default(),
        );
        let json = serde_json::to_string(&s).unwrap();
        assert!(
            json.starts_with(r#"{"status":"ok","clock_skew_seconds":null,"device_id":"a""#),
            "{json}"
        );
        let gone = DeviceSummary::new(
            report(),
            datetime!(2025-07-10 15:00:00 UTC),
            time::Duration::seconds(15),
            &Thresholds::default(),
        )
        .with_id_conflict(
            Some(datetime!(2025-07-10 14:55:00 UTC)),
            datetime!(2025-07-10 15:00:00 UTC),
        );
        let json = serde_json::to_string(&gone).unwrap();
        assert!(
            json.starts_with(
                r#"{"status":"offline","offline_since":"2025-07-10T14:30:00Z","id_conflict_at":"2025-07-10T14:55:00Z","clock_skew_seconds":null,"device_id""#
            ),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<DeviceSummary>(&json).unwrap(), gone);
        let skewed = gone.with_clock_skew(Some(612));
        let json = serde_json::to_string(&skewed).unwrap();
        assert!(json.contains(r#","clock_skew_seconds":612,"#), "{json}");
        assert_eq!(
            serde_json::from_str::<DeviceSummary>(&json).unwrap(),
            skewed
        );
        // Written before the field existed: read as within the allowance.
        let old = json.replace(r#""clock_skew_seconds":612,"#, "");
        assert_eq!(
            serde_json::from_str::<DeviceSummary>(&old)
                .unwrap()
                .clock_skew_seconds,
            None
        );
    }

    #[test]
    fn an_id_conflict_is_kept_ten_minutes() {
        let now = datetime!(2025-07-10 15:00:00 UTC);
        let s = DeviceSummary::new(
            report(),
            now,
            time::Duration::hours(9),
            &Thresholds::default(),
        );
        let kept = s
            .clone()
            .with_id_conflict(Some(now - ID_CONFLICT_KEPT), now);
        assert!(kept.id_conflict_at.is_some());
        let gone = s.with_id_conflict(Some(now - ID_CONFLICT_KEPT - time::Duration::SECOND), now);
        assert_eq!(gone.id_conflict_at, None);
    }
}
