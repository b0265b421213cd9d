//! Reports from a device whose clock runs ahead: measured, and moved back
//! to the server's receive time rather than refused.
//!
//! A report whose `last_seen` is more than [`MAX_FUTURE_SKEW`] ahead of the
//! server's clock would otherwise be placed in the future (or refused, as
//! it was before): it is stored as if stamped when it arrived, and its
//! device carries the measured skew (`clock_skew_seconds`) until a report
//! within the allowance arrives. Reports of one device in one batch are all
//! moved back by the skew of the newest of them, so that their order and
//! spacing survive (an agent's back-fill after an outage keeps its shape);
//! the newest lands on the receive time.

use std::collections::HashMap;

use tailmon_core::{MAX_FUTURE_SKEW, OffsetDateTime, Report};

/// How far `last_seen` is ahead of `now`, when that is beyond the
/// allowance; `None` within it.
pub(crate) fn beyond_allowance(
    last_seen: OffsetDateTime,
    now: OffsetDateTime,
) -> Option<time::Duration> {
    let ahead = last_seen - now;
    (ahead > MAX_FUTURE_SKEW).then_some(ahead)
}

/// Moves `report` back by `skew`: its `last_seen`, and its `boot_time`,
/// which the same clock stamped.
/// A time that cannot move that far (before the year -9999) is left as it
/// is, and a `boot_time` dropped: never a panic on input.
pub(crate) fn move_back(report: &mut Report, skew: time::Duration) {
    if let Some(at) = report.last_seen.checked_sub(skew) {
        report.last_seen = at;
    }
    if let Some(boot) = report.boot_time {
        report.boot_time = boot.checked_sub(skew);
    }
}

/// A skew in whole seconds, as the API shows it.
pub(crate) fn seconds(skew: time::Duration) -> i64 {
    skew.whole_seconds()
}

/// Per device of `reports` (one batch), the skew of its newest report when
/// that is beyond the allowance at `now`; every report of such a device is
/// moved back by it. Returns the skews measured, by device id.
pub(crate) fn correct_batch(
    reports: &mut [Report],
    now: OffsetDateTime,
) -> HashMap<String, time::Duration> {
    let mut newest: HashMap<&str, OffsetDateTime> = HashMap::new();
    for report in reports.iter() {
        let at = newest
            .entry(report.device_id.as_str())
            .or_insert(report.last_seen);
        *at = (*at).max(report.last_seen);
    }
    let skews: HashMap<String, time::Duration> = newest
        .into_iter()
        .filter_map(|(id, at)| beyond_allowance(at, now).map(|skew| (id.to_owned(), skew)))
        .collect();
    if !skews.is_empty() {
        for report in reports.iter_mut() {
            if let Some(skew) = skews.get(&report.device_id) {
                move_back(report, *skew);
            }
        }
    }
    skews
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_batch_keeps_its_order_and_spacing_and_ends_at_the_receive_time() {
        let now = datetime!(2026-01-01 12:00:00 UTC);
        let ahead = time::Duration::seconds(612);
        let mut reports = vec![
            Report::new("fast", now + ahead - time::Duration::seconds(10)),
            Report::new("fast", now + ahead),
            Report::new("fine", now - time::Duration::seconds(5)),
            Report::new("fast", now + ahead - time::Duration::seconds(5)),
            Report::new("fine", now + time::Duration::seconds(300)),
        ];
        reports[1].boot_time = Some(now + ahead - time::Duration::hours(1));
        let skews = correct_batch(&mut reports, now);
        assert_eq!(skews.len(), 1, "{skews:?}");
        assert_eq!(seconds(skews["fast"]), 612);
        let at: Vec<_> = reports.iter().map(|r| r.last_seen).collect();
        assert_eq!(
            at,
            [
                now - time::Duration::seconds(10),
                now,
                now - time::Duration::seconds(5),
                now - time::Duration::seconds(5),
                now + time::Duration::seconds(300),
            ],
            "within the allowance nothing moves"
        );
        assert_eq!(reports[1].boot_time, Some(now - time::Duration::hours(1)));
    }

    #[test]
    fn the_extremes_of_time_move_without_a_panic() {
        let now = datetime!(2026-01-01 12:00:00 UTC);
        let far = datetime!(+9999-12-31 23:59:59 UTC);
        let mut reports = vec![
            Report::new("x", far),
            Report::new("x", datetime!(-9999-01-01 00:00:00 UTC)),
        ];
        reports[0].boot_time = Some(datetime!(-9999-01-01 00:00:00 UTC));
        let skews = correct_batch(&mut reports, now);
        assert_eq!(skews["x"], far - now);
        assert_eq!(reports[0].last_seen, now);
        assert_eq!(reports[0].boot_time, None);
        assert_eq!(reports[1].last_seen, datetime!(-9999-01-01 00:00:00 UTC));
    }

    #[test]
    fn the_allowance_is_not_a_skew() {
        let now = datetime!(2026-01-01 12:00:00 UTC);
        assert_eq!(beyond_allowance(now + MAX_FUTURE_SKEW, now), None);
        assert_eq!(
            beyond_allowance(now + MAX_FUTURE_SKEW + time::Duration::SECOND, now),
            Some(MAX_FUTURE_SKEW + time::Duration::SECOND)
        );
    }
}
